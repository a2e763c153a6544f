//! The runner's promises: order, backpressure, error output, retries, failure handling, follow
//! mode and its watermark.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::mpsc;

use super::*;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().unwrap()
}

/// Doubles numbers after a pseudo-random delay, so concurrent calls finish out of order.
struct SlowDouble;

#[async_trait]
impl DoFn for SlowDouble {
    type In = u64;
    type Out = u64;

    async fn process(&self, input: &u64) -> Result<Vec<u64>, StepError> {
        tokio::time::sleep(Duration::from_micros((input * 7919) % 3000)).await;
        Ok(vec![input * 2])
    }
}

#[tokio::test]
async fn an_ordered_stage_keeps_the_input_order_at_any_concurrency() {
    let (sink, out) = CollectSink::new();
    let summary = Pipeline::new(PipelineOptions::new("order"))
        .read("numbers", IterSource::new(0..500u64, 7))
        .apply(ParDo::new("double", SlowDouble).concurrency(16))
        .write("collect", sink)
        .run()
        .await
        .unwrap();
    let out = out.lock().unwrap().clone();
    assert_eq!(out, (0..500u64).map(|n| n * 2).collect::<Vec<_>>());
    assert_eq!(summary.read(), 500);
    assert_eq!(summary.written(), 500);
    assert_eq!(summary.stage("double").unwrap().input, 500);
    assert_eq!(summary.failed, 0);
}

#[tokio::test]
async fn an_unordered_stage_delivers_every_element() {
    let (sink, out) = CollectSink::new();
    Pipeline::new(PipelineOptions::new("unordered"))
        .read("numbers", IterSource::new(0..300u64, 10))
        .apply(
            ParDo::new("double", SlowDouble)
                .concurrency(16)
                .ordered(false),
        )
        .write("collect", sink)
        .run()
        .await
        .unwrap();
    let mut out = out.lock().unwrap().clone();
    out.sort_unstable();
    assert_eq!(out, (0..300u64).map(|n| n * 2).collect::<Vec<_>>());
}

/// An endless source that counts what it produced.
struct Counting {
    produced: Arc<AtomicU64>,
}

#[async_trait]
impl Source for Counting {
    type Item = u64;

    async fn next(&mut self) -> Result<Option<Vec<Sourced<u64>>>, BoxError> {
        let n = self.produced.fetch_add(1, Ordering::SeqCst);
        if n >= 2_000 {
            return Ok(None);
        }
        Ok(Some(vec![Sourced::new(n)]))
    }
}

/// A sink that takes its time and records the largest gap between produced and written.
struct SlowSink {
    produced: Arc<AtomicU64>,
    written: u64,
    widest: Arc<AtomicU64>,
}

#[async_trait]
impl Sink<u64> for SlowSink {
    async fn write(&mut self, items: Vec<u64>) -> Result<(), BoxError> {
        let in_flight = self.produced.load(Ordering::SeqCst) - self.written;
        self.widest.fetch_max(in_flight, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.written += items.len() as u64;
        Ok(())
    }
}

#[tokio::test]
async fn a_slow_sink_holds_the_source_back() {
    let produced = Arc::new(AtomicU64::new(0));
    let widest = Arc::new(AtomicU64::new(0));
    let mut options = PipelineOptions::new("backpressure");
    options.channel_capacity = 8;
    options.sink_batch = 4;
    let summary = Pipeline::new(options)
        .read(
            "counting",
            Counting {
                produced: Arc::clone(&produced),
            },
        )
        .apply(ParDo::new("double", SlowDouble).concurrency(4))
        .write(
            "slow",
            SlowSink {
                produced: Arc::clone(&produced),
                written: 0,
                widest: Arc::clone(&widest),
            },
        )
        .run()
        .await
        .unwrap();
    assert_eq!(summary.written(), 2_000);
    // Two channels of 8, 4 in flight in the transform, a batch of 4, and one element the source
    // holds while it waits: everything else waited in the source.
    let bound = 8 + 8 + 4 + 4 + 2;
    let widest = widest.load(Ordering::SeqCst);
    assert!(
        widest <= bound,
        "{widest} elements were in flight; backpressure should hold it to {bound}"
    );
}

/// Fails on odd numbers, permanently; on multiples of 10 transiently, until the third try.
struct Picky {
    tries: Arc<AtomicUsize>,
}

#[async_trait]
impl DoFn for Picky {
    type In = u64;
    type Out = u64;

    async fn process(&self, input: &u64) -> Result<Vec<u64>, StepError> {
        if !input.is_multiple_of(2) {
            return Err(StepError::permanent(format!("{input} is odd")));
        }
        if input.is_multiple_of(10) {
            let tries = self.tries.fetch_add(1, Ordering::SeqCst);
            if tries % 3 != 2 {
                return Err(StepError::transient("flaky"));
            }
        }
        Ok(vec![*input])
    }

    fn describe(&self, input: &u64) -> String {
        format!("number {input}")
    }
}

#[tokio::test]
async fn failed_elements_go_to_the_error_output_and_transient_ones_are_retried() {
    let (sink, out) = CollectSink::new();
    let (errors, failures) = CollectSink::new();
    let retry = Retry {
        attempts: 3,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    };
    let summary = Pipeline::new(PipelineOptions::new("errors"))
        .errors_to(errors)
        .read("numbers", IterSource::new(0..40u64, 5))
        .apply(
            ParDo::new(
                "picky",
                Picky {
                    tries: Arc::new(AtomicUsize::new(0)),
                },
            )
            .retry(retry),
        )
        .write("collect", sink)
        .run()
        .await
        .unwrap();
    let out = out.lock().unwrap().clone();
    assert_eq!(out, (0..40u64).filter(|n| n % 2 == 0).collect::<Vec<_>>());
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 20);
    assert_eq!(failures[0].stage, "picky");
    assert_eq!(failures[0].element, "number 1");
    assert_eq!(failures[0].error, "1 is odd");
    assert_eq!(summary.failed, 20);
    assert_eq!(summary.failures.len(), summary::KEPT_FAILURES);
    assert_eq!(summary.stage("picky").unwrap().failed, 20);
    assert!(
        summary
            .to_string()
            .contains("failed: picky: number 1: 1 is odd")
    );
}

#[tokio::test]
async fn a_transient_failure_that_persists_ends_in_the_error_output() {
    let (sink, out) = CollectSink::new();
    let summary = Pipeline::new(PipelineOptions::new("flaky"))
        .read("one", IterSource::new([10u64], 1))
        .apply(
            ParDo::new(
                "picky",
                Picky {
                    tries: Arc::new(AtomicUsize::new(0)),
                },
            )
            .retry(Retry {
                attempts: 2,
                backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(1),
            }),
        )
        .write("collect", sink)
        .run()
        .await
        .unwrap();
    assert!(out.lock().unwrap().is_empty());
    assert_eq!(summary.failed, 1);
    assert_eq!(summary.failures[0].error, "flaky");
}

/// Fails its second batch.
struct Breaks {
    batches: usize,
}

#[async_trait]
impl Sink<u64> for Breaks {
    async fn write(&mut self, _items: Vec<u64>) -> Result<(), BoxError> {
        self.batches += 1;
        if self.batches == 2 {
            return Err("disk full".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_failing_sink_stops_the_run_with_its_error() {
    let mut options = PipelineOptions::new("broken");
    options.sink_batch = 10;
    let err = Pipeline::new(options)
        .read(
            "numbers",
            IterSource::with_times((0..1000u64).map(|n| Sourced::at(n, at(n as i64))), 10),
        )
        .write("breaks", Breaks { batches: 0 })
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::Sink { .. }));
    assert_eq!(err.to_string(), "writing breaks: disk full");
}

/// A follow-mode source fed through a channel; waits when it has nothing.
struct Feed {
    rx: mpsc::Receiver<(u64, i64)>,
}

#[async_trait]
impl Source for Feed {
    type Item = u64;

    async fn next(&mut self) -> Result<Option<Vec<Sourced<u64>>>, BoxError> {
        match self.rx.recv().await {
            Some((n, time)) => Ok(Some(vec![Sourced::at(n, at(time))])),
            None => std::future::pending().await,
        }
    }
}

#[tokio::test]
async fn follow_mode_takes_new_elements_until_shutdown_and_reports_its_watermark() {
    let (tx, rx) = mpsc::channel(16);
    let (sink, out) = CollectSink::new();
    let mut options = PipelineOptions::new("follow");
    options.mode = Mode::Follow {
        poll: Duration::from_millis(10),
    };
    options.sink_delay = Duration::from_millis(5);
    let shutdown = options.shutdown.clone();
    let run = tokio::spawn(
        Pipeline::new(options)
            .read("feed", Feed { rx })
            .apply(ParDo::new("double", SlowDouble).concurrency(4))
            .write("collect", sink)
            .run(),
    );
    for n in 1..=5u64 {
        tx.send((n, 100 + n as i64)).await.unwrap();
    }
    wait_for(|| out.lock().unwrap().len() == 5).await;
    tx.send((6, 106)).await.unwrap();
    wait_for(|| out.lock().unwrap().len() == 6).await;
    shutdown.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run ends on shutdown")
        .unwrap()
        .unwrap();
    assert!(summary.interrupted);
    assert!(summary.follow);
    assert_eq!(summary.written(), 6);
    assert_eq!(summary.watermark, Some(at(106)));
}

async fn wait_for(condition: impl Fn() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 5 s");
}
