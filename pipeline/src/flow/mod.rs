//! The pipeline framework: sources → transforms → sinks, run with bounded concurrency.
//!
//! A pipeline reads like Beam's:
//!
//! ```text
//! Pipeline::new(options)
//!     .read("runs", SqlSource::new(warehouse, sql::LEECH_SOURCE).key("delivery_id"))
//!     .apply(ParDo::new("archive", ArchiveLogs { .. }).concurrency(8))
//!     .write("status", TableSink::new(warehouse, sql::LEECH_STATUS))
//!     .run()
//!     .await?
//! ```
//!
//! - **Backpressure.** Stages are tasks joined by bounded channels; a transform runs at most its
//!   concurrency elements at once. A slow sink fills the channels and stops the source, so memory
//!   is bounded by the channel capacities, never by the input's size.
//! - **Error output.** An element a transform fails on (after its retries) goes to the run's error
//!   output with its error: counted in the [`RunSummary`], logged, and written to the error sink
//!   when one is set. A failing source or sink stops the run.
//! - **Modes.** [`Mode::Bounded`] reads the source once; [`Mode::Follow`] keeps reading rows
//!   newer than the watermark until shutdown, then finishes what it read and persists the
//!   watermark ([`watermark`]), from which the next run resumes.
//! - **Sharding.** A run takes [`Shard`] i of N; SQL sources push a stable hash predicate on their
//!   key column into the query, so N tasks split the rows with no overlap.

pub mod progress;
pub mod rows;
pub mod shard;
pub mod sink;
pub mod source;
pub mod sql_source;
#[cfg(test)]
mod sql_source_tests;
pub mod summary;
#[cfg(test)]
mod tests;
pub mod transform;
pub mod watermark;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use shard::Shard;
pub use sink::{CollectSink, Sink, SplitSink, TableSink};
pub use source::{IterSource, Limited, Mode, Source, SourceContext, Sourced};
pub use sql_source::SqlSource;
pub use summary::{Failure, RunSummary, StageCounts, StageKind};
pub use transform::{BoxError, DoFn, MapFn, ParDo, Retry, StepError};
pub use watermark::WatermarkStore;

use summary::RunCounters;
use watermark::{Ack, Tracker};

/// How a run goes: its name, shard, mode, and the knobs of its stages.
#[derive(Clone)]
pub struct PipelineOptions {
    /// The pipeline's name (in logs, summaries and the watermarks table).
    pub name: String,
    /// The shard this run takes.
    pub shard: Shard,
    /// Bounded or follow.
    pub mode: Mode,
    /// Cancelled on SIGTERM/SIGINT: the source stops, in-flight work finishes, the watermark is
    /// persisted.
    pub shutdown: CancellationToken,
    /// Where follow-mode watermarks are loaded from and saved to; without one a follow run
    /// starts from the beginning and persists nothing.
    pub watermarks: Option<WatermarkStore>,
    /// How often a follow run persists its watermark while it runs.
    pub checkpoint_every: Duration,
    /// Elements buffered between two stages.
    pub channel_capacity: usize,
    /// Elements a sink writes at once at most.
    pub sink_batch: usize,
    /// How long a sink waits to fill a batch before writing a partial one.
    pub sink_delay: Duration,
    /// Show a progress bar (set it when stderr is a terminal).
    pub progress_bar: bool,
}

impl PipelineOptions {
    /// Options for a bounded, unsharded run of `name` with the default knobs.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            shard: Shard::ALL,
            mode: Mode::Bounded,
            shutdown: CancellationToken::new(),
            watermarks: None,
            checkpoint_every: Duration::from_secs(30),
            channel_capacity: 64,
            sink_batch: 500,
            sink_delay: Duration::from_millis(500),
            progress_bar: false,
        }
    }
}

/// Errors that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The source failed.
    #[error("source {stage}: {error}")]
    Source {
        /// The source's name.
        stage: String,
        /// What failed.
        error: BoxError,
    },
    /// A transform's setup failed.
    #[error("setting up {stage}: {error}")]
    Setup {
        /// The transform's name.
        stage: String,
        /// What failed.
        error: BoxError,
    },
    /// A sink failed to write; the batch is not done and a later run redoes it.
    #[error("writing {stage}: {error}")]
    Sink {
        /// The sink's name.
        stage: String,
        /// What failed.
        error: BoxError,
    },
    /// A stage panicked (a bug).
    #[error("stage {stage} panicked: {message}")]
    Panicked {
        /// The stage's name.
        stage: String,
        /// The panic's message.
        message: String,
    },
    /// Loading or saving the watermark failed.
    #[error("watermark: {0}")]
    Watermark(#[from] crate::warehouse::WarehouseError),
}

/// An element in flight with the acknowledgement of the source element it came from.
struct Envelope<T> {
    item: T,
    ack: Ack,
}

/// What every stage of a run shares.
struct RunContext {
    options: PipelineOptions,
    tracker: Tracker,
    failures: mpsc::Sender<(Failure, Ack)>,
    /// Stops the source: cancelled on shutdown and when any stage fails.
    stop: CancellationToken,
    resume_after: Option<chrono::DateTime<chrono::Utc>>,
}

type StageResult = Result<(), FlowError>;
type Starter = Box<dyn FnOnce(Arc<RunContext>) -> JoinHandle<StageResult> + Send>;

/// A pipeline under construction: add a source with [`Pipeline::read`], then transforms and a
/// sink, then [`Pipeline::run`]. Nothing runs before `run`.
pub struct Pipeline {
    options: PipelineOptions,
    starters: Vec<Starter>,
    counters: Arc<RunCounters>,
    error_sink: Option<Box<dyn Sink<Failure>>>,
    size_hint: Option<u64>,
}

/// The elements flowing out of the last stage added; continue with [`Flow::apply`] or end with
/// [`Flow::write`].
pub struct Flow<T> {
    pipeline: Pipeline,
    input: mpsc::Receiver<Envelope<T>>,
}

impl Pipeline {
    /// An empty pipeline run with `options`.
    pub fn new(options: PipelineOptions) -> Self {
        Self {
            options,
            starters: Vec::new(),
            counters: Arc::new(RunCounters::default()),
            error_sink: None,
            size_hint: None,
        }
    }

    /// Sends failed elements to `sink` as well as to the summary and the log (e.g. a table of
    /// failures). A failing error sink stops the run.
    pub fn errors_to(mut self, sink: impl Sink<Failure>) -> Self {
        self.error_sink = Some(Box::new(sink));
        self
    }

    /// Reads elements from `source`, called `name` in counts and errors.
    pub fn read<S: Source>(mut self, name: &str, mut source: S) -> Flow<S::Item> {
        let (tx, rx) = mpsc::channel(self.options.channel_capacity.max(1));
        let counters = self.counters.stage(name, StageKind::Source);
        let stage = name.to_owned();
        self.size_hint = source.size_hint();
        self.starters.push(Box::new(move |run: Arc<RunContext>| {
            tokio::spawn(async move {
                let failed = |error| FlowError::Source {
                    stage: stage.clone(),
                    error,
                };
                let context = SourceContext {
                    pipeline: run.options.name.clone(),
                    shard: run.options.shard,
                    mode: run.options.mode,
                    resume_after: run.resume_after,
                };
                source.open(&context).await.map_err(failed)?;
                loop {
                    let next = tokio::select! {
                        biased;
                        _ = run.stop.cancelled() => break,
                        next = source.next() => next,
                    };
                    let Some(chunk) = next.map_err(failed)? else {
                        break;
                    };
                    counters.add_output(chunk.len() as u64);
                    for sourced in chunk {
                        let ack = run.tracker.emit(sourced.time);
                        let envelope = Envelope {
                            item: sourced.item,
                            ack,
                        };
                        if tx.send(envelope).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                Ok(())
            })
        }));
        Flow {
            pipeline: self,
            input: rx,
        }
    }

    /// Runs every stage to its end and returns the summary (also logged). In follow mode the run
    /// ends on shutdown; the watermark is persisted every `checkpoint_every` and at the end.
    ///
    /// # Errors
    /// The first [`FlowError`] of a stage; the others stop too, and the watermark stays behind
    /// the unfinished work.
    pub async fn run(self) -> Result<RunSummary, FlowError> {
        let started = Instant::now();
        let Pipeline {
            options,
            starters,
            counters,
            error_sink,
            size_hint,
        } = self;
        let follow = options.mode.is_follow();
        let watermarks = options.watermarks.clone().filter(|_| follow);
        let resume_after = match &watermarks {
            Some(store) => store.load(&options.name, options.shard).await?,
            None => None,
        };
        if let Some(resume) = resume_after {
            tracing::info!(pipeline = %options.name, shard = %options.shard, resume_after = %resume.to_rfc3339(), "resuming from the watermark");
        }
        let tracker = Tracker::new(resume_after);
        let (failures_tx, failures_rx) = mpsc::channel(options.channel_capacity.max(1));
        let stop = options.shutdown.child_token();
        let run = Arc::new(RunContext {
            options: options.clone(),
            tracker: tracker.clone(),
            failures: failures_tx,
            stop: stop.clone(),
            resume_after,
        });
        let done = CancellationToken::new();
        let progress = progress::start(
            options.name.clone(),
            Arc::clone(&counters),
            size_hint,
            options.progress_bar,
            follow.then_some(Duration::from_secs(60)),
            done.clone(),
        );
        let errors = tokio::spawn(drain_failures(
            failures_rx,
            Arc::clone(&counters),
            error_sink,
        ));
        let mut stages: Vec<_> = starters
            .into_iter()
            .map(|start| start(Arc::clone(&run)))
            .collect();
        drop(run);
        let checkpoints = watermarks.clone().map(|store| {
            tokio::spawn(checkpoint_loop(
                store,
                options.clone(),
                tracker.clone(),
                done.clone(),
            ))
        });

        let mut first_error = None;
        while !stages.is_empty() {
            let (result, _, rest) = futures::future::select_all(stages).await;
            stages = rest;
            let result = result.unwrap_or_else(|panic| {
                Err(FlowError::Panicked {
                    stage: "a stage".into(),
                    message: panic.to_string(),
                })
            });
            if let Err(error) = result {
                tracker.poison();
                stop.cancel();
                first_error.get_or_insert(error);
            }
        }
        match errors.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracker.poison();
                first_error.get_or_insert(error);
            }
            Err(panic) => {
                first_error.get_or_insert(FlowError::Panicked {
                    stage: "error output".into(),
                    message: panic.to_string(),
                });
            }
        }
        done.cancel();
        let _ = progress.await;
        if let Some(handle) = checkpoints {
            let _ = handle.await;
        }
        let watermark = tracker.watermark();
        if let (Some(store), Some(mark)) = (&watermarks, watermark)
            && watermark != resume_after
        {
            store.save(&options.name, options.shard, mark).await?;
        }
        let summary = RunSummary::new(
            &options.name,
            options.shard,
            follow,
            &counters,
            watermark,
            started.elapsed(),
            options.shutdown.is_cancelled(),
        );
        summary.log();
        match first_error {
            Some(error) => Err(error),
            None => Ok(summary),
        }
    }
}

impl<T: Send + Sync + 'static> Flow<T> {
    /// Runs each element through `stage`'s function, with its concurrency, ordering and retries.
    /// Elements it fails on go to the error output.
    pub fn apply<F: DoFn<In = T>>(self, stage: ParDo<F>) -> Flow<F::Out> {
        let Flow {
            mut pipeline,
            mut input,
        } = self;
        let (tx, rx) = mpsc::channel(pipeline.options.channel_capacity.max(1));
        let counters = pipeline.counters.stage(&stage.name, StageKind::Transform);
        pipeline
            .starters
            .push(Box::new(move |run: Arc<RunContext>| {
                tokio::spawn(async move {
                    let ParDo {
                        name,
                        mut function,
                        concurrency,
                        ordered,
                        retry,
                    } = stage;
                    function.setup().await.map_err(|error| FlowError::Setup {
                        stage: name.clone(),
                        error,
                    })?;
                    let function = Arc::new(function);
                    let calls = futures::stream::poll_fn(move |cx| input.poll_recv(cx)).map(
                        move |envelope: Envelope<T>| {
                            let function = Arc::clone(&function);
                            tokio::spawn(async move {
                                let result =
                                    process_with_retries(&*function, &envelope.item, retry)
                                        .await
                                        .map_err(|error| {
                                            (function.describe(&envelope.item), error.to_string())
                                        });
                                (result, envelope.ack)
                            })
                        },
                    );
                    let mut results = if ordered {
                        calls.buffered(concurrency).boxed()
                    } else {
                        calls.buffer_unordered(concurrency).boxed()
                    };
                    while let Some(joined) = results.next().await {
                        let (result, ack) = joined.map_err(|panic| FlowError::Panicked {
                            stage: name.clone(),
                            message: panic.to_string(),
                        })?;
                        counters.add_input(1);
                        match result {
                            Ok(outputs) => {
                                counters.add_output(outputs.len() as u64);
                                for item in outputs {
                                    let envelope = Envelope {
                                        item,
                                        ack: ack.clone(),
                                    };
                                    if tx.send(envelope).await.is_err() {
                                        return Ok(());
                                    }
                                }
                            }
                            Err((element, error)) => {
                                counters.add_failed(1);
                                let failure = Failure {
                                    stage: name.clone(),
                                    element,
                                    error,
                                    at: chrono::Utc::now(),
                                };
                                if run.failures.send((failure, ack)).await.is_err() {
                                    return Ok(());
                                }
                            }
                        }
                    }
                    Ok(())
                })
            }));
        Flow {
            pipeline,
            input: rx,
        }
    }

    /// Ends the flow in `sink`, called `name`, writing up to the options' `sink_batch` elements
    /// at once.
    pub fn write(self, name: &str, mut sink: impl Sink<T>) -> Pipeline {
        let Flow {
            mut pipeline,
            mut input,
        } = self;
        let counters = pipeline.counters.stage(name, StageKind::Sink);
        let stage = name.to_owned();
        pipeline
            .starters
            .push(Box::new(move |run: Arc<RunContext>| {
                tokio::spawn(async move {
                    let failed = |error| FlowError::Sink {
                        stage: stage.clone(),
                        error,
                    };
                    sink.open().await.map_err(failed)?;
                    let max_batch = run.options.sink_batch.max(1);
                    while let Some(first) = input.recv().await {
                        let mut batch = vec![first];
                        let deadline = tokio::time::Instant::now() + run.options.sink_delay;
                        while batch.len() < max_batch {
                            match tokio::time::timeout_at(deadline, input.recv()).await {
                                Ok(Some(envelope)) => batch.push(envelope),
                                Ok(None) | Err(_) => break,
                            }
                        }
                        let count = batch.len() as u64;
                        let (items, acks): (Vec<T>, Vec<Ack>) =
                            batch.into_iter().map(|e| (e.item, e.ack)).unzip();
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
                })
            }));
        pipeline
    }
}

async fn process_with_retries<F: DoFn>(
    function: &F,
    item: &F::In,
    retry: Retry,
) -> Result<Vec<F::Out>, StepError> {
    let mut attempt = 1;
    loop {
        match function.process(item).await {
            Ok(outputs) => return Ok(outputs),
            Err(error) if error.is_transient() && attempt < retry.attempts => {
                attempt += 1;
                tokio::time::sleep(retry.delay(attempt)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn drain_failures(
    mut failures: mpsc::Receiver<(Failure, Ack)>,
    counters: Arc<RunCounters>,
    mut sink: Option<Box<dyn Sink<Failure>>>,
) -> StageResult {
    let failed = |error| FlowError::Sink {
        stage: "error output".into(),
        error,
    };
    if let Some(sink) = sink.as_mut() {
        sink.open().await.map_err(failed)?;
    }
    while let Some((failure, ack)) = failures.recv().await {
        counters.record_failure(&failure);
        if let Some(sink) = sink.as_mut() {
            sink.write(vec![failure]).await.map_err(failed)?;
        }
        drop(ack);
    }
    if let Some(sink) = sink.as_mut() {
        sink.close().await.map_err(failed)?;
    }
    Ok(())
}

async fn checkpoint_loop(
    store: WatermarkStore,
    options: PipelineOptions,
    tracker: Tracker,
    done: CancellationToken,
) {
    let mut saved = tracker.watermark();
    let mut every = tokio::time::interval(options.checkpoint_every);
    every.tick().await;
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = every.tick() => {}
        }
        let mark = tracker.watermark();
        if let Some(mark) = mark
            && mark_is_newer(mark, saved)
        {
            match store.save(&options.name, options.shard, mark).await {
                Ok(()) => saved = Some(mark),
                Err(error) => {
                    tracing::warn!(pipeline = %options.name, %error, "could not save the watermark; will try again")
                }
            }
        }
    }
}

fn mark_is_newer(
    mark: chrono::DateTime<chrono::Utc>,
    saved: Option<chrono::DateTime<chrono::Utc>>,
) -> bool {
    saved.is_none_or(|saved| mark > saved)
}
