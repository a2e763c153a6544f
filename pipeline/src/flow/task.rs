//! The tasks of a run's stages: a source's reading loop, a transform's bounded-concurrency calls
//! and a sink's batching loop, joined by bounded channels of [`Envelope`]s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};

use super::summary::StageCounters;
use super::watermark::Ack;
use super::{DoFn, Envelope, Failure, FlowError, ParDo, RunContext, Sink, Source, StageResult};

/// Reads `source` chunk by chunk into `output` until it ends, the run stops or the next stage is
/// gone.
pub(super) async fn read<S: Source>(
    name: String,
    mut source: S,
    counters: Arc<StageCounters>,
    output: mpsc::Sender<Envelope<S::Item>>,
    run: Arc<RunContext>,
) -> StageResult {
    let failed = |error| FlowError::Source {
        stage: name.clone(),
        error,
    };
    source.open(&run.source_context()).await.map_err(failed)?;
    loop {
        let next = tokio::select! {
            biased;
            _ = run.stop.cancelled() => return Ok(()),
            next = source.next() => next,
        };
        let Some(chunk) = next.map_err(failed)? else {
            return Ok(());
        };
        counters.add_output(chunk.len() as u64);
        for sourced in chunk {
            let envelope = Envelope {
                ack: run.tracker.emit(sourced.time),
                item: sourced.item,
            };
            if output.send(envelope).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// What one call of a transform gave: its outputs, or the element's description and the error.
type Called<O> = (Result<Vec<O>, (String, String)>, Ack);

/// Runs `stage`'s function on every element of `input`, up to its concurrency at once (each call
/// a task of its own, aborted if the stage is), and sends the outputs to `output`. A failed
/// element is counted and recorded in the run's summary.
pub(super) async fn transform<F: DoFn>(
    stage: ParDo<F>,
    mut input: mpsc::Receiver<Envelope<F::In>>,
    output: mpsc::Sender<Envelope<F::Out>>,
    counters: Arc<StageCounters>,
    run: Arc<RunContext>,
) -> StageResult {
    let ParDo {
        name,
        mut function,
        concurrency,
        ordered,
    } = stage;
    function.setup().await.map_err(|error| FlowError::Setup {
        stage: name.clone(),
        error,
    })?;
    let function = Arc::new(function);
    let calls = futures::stream::poll_fn(move |cx| input.poll_recv(cx))
        .map(move |envelope| AbortOnDrop(tokio::spawn(call(Arc::clone(&function), envelope))));
    let mut results = if ordered {
        calls.buffered(concurrency).boxed()
    } else {
        calls.buffer_unordered(concurrency).boxed()
    };
    while let Some(joined) = results.next().await {
        let (result, ack) = joined.map_err(|error| panicked(&name, error))?;
        counters.add_input(1);
        match result {
            Ok(outputs) => {
                counters.add_output(outputs.len() as u64);
                for item in outputs {
                    let envelope = Envelope {
                        item,
                        ack: ack.clone(),
                    };
                    if output.send(envelope).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Err((element, error)) => {
                counters.add_failed(1);
                run.counters.record_failure(&Failure {
                    stage: name.clone(),
                    element,
                    error,
                    at: chrono::Utc::now(),
                });
            }
        }
    }
    Ok(())
}

/// Runs `function` on the element of `envelope`, which it takes (after describing it for a
/// failure report).
async fn call<F: DoFn>(function: Arc<F>, envelope: Envelope<F::In>) -> Called<F::Out> {
    let Envelope { item, ack } = envelope;
    let element = function.describe(&item);
    let result = function
        .process(item)
        .await
        .map_err(|error| (element, crate::error::error_chain(&*error)));
    (result, ack)
}

/// Writes `input` to `sink` in batches of up to the run's `sink_batch` elements, each batch
/// waiting at most `sink_delay` to fill. A batch's elements are done when its write returns.
pub(super) async fn write<T: Send + 'static>(
    name: String,
    mut sink: impl Sink<T>,
    mut input: mpsc::Receiver<Envelope<T>>,
    counters: Arc<StageCounters>,
    run: Arc<RunContext>,
) -> StageResult {
    let failed = |error| FlowError::Sink {
        stage: name.clone(),
        error,
    };
    sink.open().await.map_err(failed)?;
    let (max_batch, delay) = (run.options.sink_batch.max(1), run.options.sink_delay);
    while let Some(batch) = next_batch(&mut input, max_batch, delay).await {
        let count = batch.len() as u64;
        let (items, acks): (Vec<T>, Vec<Ack>) = batch.into_iter().map(|e| (e.item, e.ack)).unzip();
        counters.add_input(count);
        if let Err(error) = sink.write(items).await {
            // Before the acks drop: the failed batch must not count as done.
            run.tracker.poison();
            return Err(failed(error));
        }
        counters.add_output(count);
        drop(acks);
    }
    sink.close().await.map_err(failed)
}

/// The next batch of `input`: up to `max` elements, taken until `delay` after the first one
/// came; `None` when `input` is closed and empty.
async fn next_batch<T>(
    input: &mut mpsc::Receiver<Envelope<T>>,
    max: usize,
    delay: Duration,
) -> Option<Vec<Envelope<T>>> {
    let first = input.recv().await?;
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + delay;
    while batch.len() < max {
        match tokio::time::timeout_at(deadline, input.recv()).await {
            Ok(Some(envelope)) => batch.push(envelope),
            Ok(None) | Err(_) => break,
        }
    }
    Some(batch)
}

/// The error of the stage `name` whose task panicked (or was cancelled) with `error`.
pub(super) fn panicked(name: &str, error: JoinError) -> FlowError {
    let message = match error.try_into_panic() {
        Ok(panic) => match panic.downcast::<String>() {
            Ok(message) => *message,
            Err(panic) => panic.downcast_ref::<&str>().map_or_else(
                || "a panic without a message".to_owned(),
                |m| (*m).to_owned(),
            ),
        },
        Err(error) => error.to_string(),
    };
    FlowError::Panicked {
        stage: name.to_owned(),
        message,
    }
}

/// A spawned task that is aborted when its handle is dropped, so calls in flight stop with the
/// stage that made them.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
