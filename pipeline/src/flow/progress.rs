//! Live progress of a run: a bar on a terminal, a periodic log line otherwise.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::summary::{RunCounters, StageCounts, StageKind};

/// How often the bar is redrawn.
const DRAW_EVERY: Duration = Duration::from_millis(200);

/// Starts showing `counters` until `done` is cancelled: a progress bar when `bar` (a terminal),
/// else an info log line every `log_every` (follow-mode runs are long; batch runs log their
/// summary at the end).
pub(crate) fn start(
    pipeline: String,
    counters: Arc<RunCounters>,
    total: Option<u64>,
    bar: bool,
    log_every: Option<Duration>,
    done: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let bar = bar.then(|| {
            let bar = match total {
                Some(total) => ProgressBar::new(total),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{spinner} {prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}"
            } else {
                "{spinner} {prefix} [{elapsed_precise}] {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_prefix(pipeline.clone());
            bar
        });
        let mut draw = tokio::time::interval(DRAW_EVERY);
        let mut last_log = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = draw.tick() => {}
            }
            let stages = counters.snapshot();
            if let Some(bar) = &bar {
                if let Some(read) = stages.iter().find(|s| s.kind == StageKind::Source) {
                    bar.set_position(read.output);
                }
                bar.set_message(line(&stages));
            } else if let Some(every) = log_every
                && last_log.elapsed() >= every
            {
                last_log = tokio::time::Instant::now();
                tracing::info!(pipeline = %pipeline, progress = %line(&stages), "The run is in progress.");
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    })
}

/// One line of counts: `read 10 · lift 10 ok 1 failed · write 9`.
fn line(stages: &[StageCounts]) -> String {
    stages
        .iter()
        .map(|s| match s.kind {
            StageKind::Source => format!("{} {}", s.name, s.output),
            StageKind::Transform if s.failed > 0 => {
                format!("{} {} ({} failed)", s.name, s.input, s.failed)
            }
            StageKind::Transform => format!("{} {}", s.name, s.input),
            StageKind::Sink => format!("{} {}", s.name, s.output),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}
