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
//! - **Ownership.** Elements move from stage to stage: a [`DoFn`] takes each element by value, so
//!   elements need only be `Send`.
//! - **Failed elements.** An element a transform fails on is not tried again (calls that may
//!   pass on a later try, such as GitHub's, retry inside their clients): it is counted in the
//!   [`RunSummary`] with its error and logged, and the run goes on. A failing source or sink, or a
//!   panicking stage, stops the run ([`FlowError`]).
//! - **Cancellation.** Dropping the future of [`Pipeline::run`] aborts every stage's task and the
//!   calls in flight.
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
pub mod table;
mod task;
#[cfg(test)]
mod tests;
pub mod transform;
pub mod watermark;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use shard::Shard;
pub use sink::{CollectSink, Sink, SplitSink, TableSink};
pub use source::{IterSource, Limited, Mode, Source, SourceContext, Sourced};
pub use sql_source::SqlSource;
pub use summary::{Failure, RunSummary, StageCounts, StageKind};
pub use table::{AppendError, TableWriter};
pub use transform::{BoxError, DoFn, ParDo};
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
    #[error("source {stage}")]
    Source {
        /// The source's name.
        stage: String,
        /// What failed.
        #[source]
        error: BoxError,
    },
    /// A transform's setup failed.
    #[error("setting up {stage}")]
    Setup {
        /// The transform's name.
        stage: String,
        /// What failed.
        #[source]
        error: BoxError,
    },
    /// A sink failed to write; the batch is not done and a later run redoes it.
    #[error("writing {stage}")]
    Sink {
        /// The sink's name.
        stage: String,
        /// What failed.
        #[source]
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
    #[error("loading or saving the watermark")]
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
    counters: Arc<RunCounters>,
    /// Stops the source: cancelled on shutdown and when any stage fails.
    stop: CancellationToken,
    resume_after: Option<chrono::DateTime<chrono::Utc>>,
}

impl RunContext {
    /// What the source learns when the run starts.
    fn source_context(&self) -> SourceContext {
        SourceContext {
            pipeline: self.options.name.clone(),
            shard: self.options.shard,
            mode: self.options.mode,
            resume_after: self.resume_after,
        }
    }
}

type StageResult = Result<(), FlowError>;
type Starter = Box<dyn FnOnce(Arc<RunContext>) -> BoxFuture<'static, StageResult> + Send>;

/// A stage added to a pipeline: its name and how to start its task when the run starts.
struct Stage {
    name: String,
    start: Starter,
}

/// A pipeline under construction: add a source with [`Pipeline::read`], then transforms and a
/// sink, then [`Pipeline::run`]. Nothing runs before `run`.
pub struct Pipeline {
    options: PipelineOptions,
    stages: Vec<Stage>,
    counters: Arc<RunCounters>,
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
            stages: Vec::new(),
            counters: Arc::new(RunCounters::default()),
            size_hint: None,
        }
    }

    /// Reads elements from `source`, called `name` in counts and errors.
    pub fn read<S: Source>(mut self, name: &str, source: S) -> Flow<S::Item> {
        let (tx, rx) = self.channel();
        let counters = self.counters.stage(name, StageKind::Source);
        self.size_hint = source.size_hint();
        let stage_name = name.to_owned();
        self.add_stage(name, move |run| {
            task::read(stage_name, source, counters, tx, run).boxed()
        });
        Flow {
            pipeline: self,
            input: rx,
        }
    }

    /// Runs every stage to its end and returns the summary (also logged). In follow mode the run
    /// ends on shutdown; the watermark is persisted every `checkpoint_every` and at the end.
    /// Dropping the returned future before it ends cancels every stage.
    ///
    /// # Errors
    /// The first [`FlowError`] of a stage; the others stop too, and the watermark stays behind
    /// the unfinished work.
    pub async fn run(self) -> Result<RunSummary, FlowError> {
        let started = Instant::now();
        let Pipeline {
            options,
            stages,
            counters,
            size_hint,
        } = self;
        let follow = options.mode.is_follow();
        let watermarks = options.watermarks.clone().filter(|_| follow);
        let resume_after = resume_point(&options, watermarks.as_ref()).await?;
        let run = Arc::new(RunContext {
            options: options.clone(),
            tracker: Tracker::new(resume_after),
            counters: Arc::clone(&counters),
            stop: options.shutdown.child_token(),
            resume_after,
        });
        let helpers = Helpers::start(&run, size_hint, watermarks.clone());
        let first_error = join_stages(stages, &run).await;
        helpers.finish().await;
        let watermark = run.tracker.watermark();
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

    /// A channel from one stage to the next.
    fn channel<T>(&self) -> (mpsc::Sender<Envelope<T>>, mpsc::Receiver<Envelope<T>>) {
        mpsc::channel(self.options.channel_capacity.max(1))
    }

    /// Adds the stage `name`, whose task `start` makes when the run starts.
    fn add_stage(
        &mut self,
        name: &str,
        start: impl FnOnce(Arc<RunContext>) -> BoxFuture<'static, StageResult> + Send + 'static,
    ) {
        self.stages.push(Stage {
            name: name.to_owned(),
            start: Box::new(start),
        });
    }
}

impl<T: Send + 'static> Flow<T> {
    /// Runs each element through `stage`'s function, with its concurrency and ordering. Elements
    /// it fails on are counted and reported in the run's summary; the run goes on.
    pub fn apply<F: DoFn<In = T>>(self, stage: ParDo<F>) -> Flow<F::Out> {
        let Flow {
            mut pipeline,
            input,
        } = self;
        let (tx, rx) = pipeline.channel();
        let counters = pipeline.counters.stage(&stage.name, StageKind::Transform);
        let stage_name = stage.name.clone();
        pipeline.add_stage(&stage_name, move |run| {
            task::transform(stage, input, tx, counters, run).boxed()
        });
        Flow {
            pipeline,
            input: rx,
        }
    }

    /// Ends the flow in `sink`, called `name`, writing up to the options' `sink_batch` elements
    /// at once.
    pub fn write(self, name: &str, sink: impl Sink<T>) -> Pipeline {
        let Flow {
            mut pipeline,
            input,
        } = self;
        let counters = pipeline.counters.stage(name, StageKind::Sink);
        let stage_name = name.to_owned();
        pipeline.add_stage(name, move |run| {
            task::write(stage_name, sink, input, counters, run).boxed()
        });
        pipeline
    }
}

/// Where a follow-mode run resumes: the watermark `watermarks` holds for its shard.
async fn resume_point(
    options: &PipelineOptions,
    watermarks: Option<&WatermarkStore>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, FlowError> {
    let Some(store) = watermarks else {
        return Ok(None);
    };
    let resume_after = store.load(&options.name, options.shard).await?;
    if let Some(resume) = resume_after {
        tracing::info!(pipeline = %options.name, shard = %options.shard, resume_after = %resume.to_rfc3339(), "Resuming from the watermark.");
    }
    Ok(resume_after)
}

/// Runs every stage as a task to its end and returns the first error. A failing stage poisons
/// the watermark and stops the source, so the others drain and end. Dropping the future aborts
/// the tasks.
async fn join_stages(stages: Vec<Stage>, run: &Arc<RunContext>) -> Option<FlowError> {
    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();
    for Stage { name, start } in stages {
        let task = tasks.spawn(start(Arc::clone(run)));
        names.insert(task.id(), name);
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or_else(|error| {
            let name = names.get(&error.id()).map_or("?", String::as_str);
            Err(task::panicked(name, error))
        });
        if let Err(error) = result {
            run.tracker.poison();
            run.stop.cancel();
            first_error.get_or_insert(error);
        }
    }
    first_error
}

/// The tasks that run beside the stages: the progress display and, in follow mode, the
/// watermark checkpoints. They end when [`Helpers::finish`] is called or the run is dropped.
struct Helpers {
    progress: JoinHandle<()>,
    checkpoints: Option<JoinHandle<()>>,
    done: DropGuard,
}

impl Helpers {
    /// Starts the helpers of `run`.
    fn start(run: &RunContext, size_hint: Option<u64>, watermarks: Option<WatermarkStore>) -> Self {
        let options = &run.options;
        let done = CancellationToken::new();
        let progress = progress::start(
            options.name.clone(),
            Arc::clone(&run.counters),
            size_hint,
            options.progress_bar,
            options.mode.is_follow().then_some(Duration::from_secs(60)),
            done.clone(),
        );
        let checkpoints = watermarks.map(|store| {
            tokio::spawn(checkpoint_loop(
                store,
                options.clone(),
                run.tracker.clone(),
                done.clone(),
            ))
        });
        Self {
            progress,
            checkpoints,
            done: done.drop_guard(),
        }
    }

    /// Stops the helpers and waits for them.
    async fn finish(self) {
        drop(self.done);
        let _ = self.progress.await;
        if let Some(checkpoints) = self.checkpoints {
            let _ = checkpoints.await;
        }
    }
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
                    tracing::warn!(pipeline = %options.name, error = %crate::error::error_chain(&error), "Could not save the watermark; trying again later.")
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
