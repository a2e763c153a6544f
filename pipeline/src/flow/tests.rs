//! The runner's promises: order, backpressure, failed elements, failure handling, cancellation,
//! follow mode and its watermark.

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

    async fn process(&self, input: u64) -> Result<Vec<u64>, BoxError> {
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

/// Fails on odd numbers.
struct Picky;

#[async_trait]
impl DoFn for Picky {
    type In = u64;
    type Out = u64;

    async fn process(&self, input: u64) -> Result<Vec<u64>, BoxError> {
        if !input.is_multiple_of(2) {
            return Err(format!("{input} is odd").into());
        }
        Ok(vec![input])
    }

    fn describe(&self, input: &u64) -> String {
        format!("number {input}")
    }
}

#[tokio::test]
async fn failed_elements_are_counted_in_the_summary_and_the_run_goes_on() {
    let (sink, out) = CollectSink::new();
    let summary = Pipeline::new(PipelineOptions::new("errors"))
        .read("numbers", IterSource::new(0..40u64, 5))
        .apply(ParDo::new("picky", Picky))
        .write("collect", sink)
        .run()
        .await
        .unwrap();
    let out = out.lock().unwrap().clone();
    assert_eq!(out, (0..40u64).filter(|n| n % 2 == 0).collect::<Vec<_>>());
    assert_eq!(summary.failed, 20);
    assert_eq!(summary.failures.len(), summary::KEPT_FAILURES);
    assert_eq!(summary.failures[0].stage, "picky");
    assert_eq!(summary.failures[0].element, "number 1");
    assert_eq!(summary.failures[0].error, "1 is odd");
    assert_eq!(summary.stage("picky").unwrap().failed, 20);
    assert!(
        summary
            .to_string()
            .contains("failed: picky: number 1: 1 is odd")
    );
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
    assert_eq!(crate::error::error_chain(&err), "writing breaks: disk full");
}

/// Panics on its first batch.
struct Explodes;

#[async_trait]
impl Sink<u64> for Explodes {
    async fn write(&mut self, _items: Vec<u64>) -> Result<(), BoxError> {
        panic!("boom")
    }
}

#[tokio::test]
async fn a_panicking_stage_is_reported_by_its_name() {
    let err = Pipeline::new(PipelineOptions::new("panics"))
        .read("numbers", IterSource::new(0..10u64, 5))
        .write("explodes", Explodes)
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FlowError::Panicked { stage, .. } if stage == "explodes"),
        "{err}"
    );
    assert_eq!(err.to_string(), "stage explodes panicked: boom");
}

/// Panics on 3.
struct PanicsOnThree;

#[async_trait]
impl DoFn for PanicsOnThree {
    type In = u64;
    type Out = u64;

    async fn process(&self, input: u64) -> Result<Vec<u64>, BoxError> {
        assert_ne!(input, 3, "three");
        Ok(vec![input])
    }
}

#[tokio::test]
async fn a_panicking_call_is_reported_by_its_stage_name() {
    let (sink, _out) = CollectSink::new();
    let err = Pipeline::new(PipelineOptions::new("panics"))
        .read("numbers", IterSource::new(0..10u64, 5))
        .apply(ParDo::new("fragile", PanicsOnThree).concurrency(2))
        .write("collect", sink)
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FlowError::Panicked { stage, message } if stage == "fragile" && message.contains("three")),
        "{err}"
    );
}

/// One more in `live` while it lives.
struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(live))
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An endless source, alive while its stage runs.
struct Endless {
    next: u64,
    _alive: Alive,
}

#[async_trait]
impl Source for Endless {
    type Item = u64;

    async fn next(&mut self) -> Result<Option<Vec<Sourced<u64>>>, BoxError> {
        self.next += 1;
        Ok(Some(vec![Sourced::new(self.next)]))
    }
}

/// A function whose calls never end; each call is alive until it is dropped.
struct Hangs {
    live: Arc<AtomicUsize>,
    _alive: Alive,
}

#[async_trait]
impl DoFn for Hangs {
    type In = u64;
    type Out = u64;

    async fn process(&self, _input: u64) -> Result<Vec<u64>, BoxError> {
        let _call = Alive::new(&self.live);
        std::future::pending().await
    }
}

/// A sink alive while its stage runs.
struct Holds {
    _alive: Alive,
}

#[async_trait]
impl Sink<u64> for Holds {
    async fn write(&mut self, _items: Vec<u64>) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test]
async fn dropping_a_running_pipeline_cancels_its_stages_and_calls() {
    let live = Arc::new(AtomicUsize::new(0));
    let run = Pipeline::new(PipelineOptions::new("dropped"))
        .read(
            "endless",
            Endless {
                next: 0,
                _alive: Alive::new(&live),
            },
        )
        .apply(
            ParDo::new(
                "hangs",
                Hangs {
                    live: Arc::clone(&live),
                    _alive: Alive::new(&live),
                },
            )
            .concurrency(4),
        )
        .write(
            "holds",
            Holds {
                _alive: Alive::new(&live),
            },
        )
        .run();
    // The source, the function, the sink and 4 calls in flight.
    tokio::select! {
        _ = run => panic!("the run cannot end by itself"),
        () = wait_for(|| live.load(Ordering::SeqCst) == 7) => {}
    }
    wait_for(|| live.load(Ordering::SeqCst) == 0).await;
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
