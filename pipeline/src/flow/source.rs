//! Sources: where a pipeline's elements come from.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::shard::Shard;
use super::transform::BoxError;

/// One element read by a source, with its time (the source's time column) when it has one: the
/// run's watermark moves over element times.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    /// The element.
    pub item: T,
    /// Its time, if the source orders by time.
    pub time: Option<DateTime<Utc>>,
}

impl<T> Sourced<T> {
    /// An element without time.
    pub fn new(item: T) -> Self {
        Self { item, time: None }
    }

    /// An element with time `time`.
    pub fn at(item: T, time: DateTime<Utc>) -> Self {
        Self {
            item,
            time: Some(time),
        }
    }
}

/// Whether a run reads its source once or keeps following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read the source once to its end.
    Bounded,
    /// Keep reading rows that land after the watermark, checking every `poll` when caught up,
    /// until shutdown.
    Follow {
        /// How long to wait before looking again when no new rows came.
        poll: Duration,
    },
}

impl Mode {
    /// Whether the mode is [`Mode::Follow`].
    pub fn is_follow(self) -> bool {
        matches!(self, Mode::Follow { .. })
    }
}

/// What a source learns when the run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceContext {
    /// The pipeline's name.
    pub pipeline: String,
    /// The shard this run takes.
    pub shard: Shard,
    /// Bounded or follow.
    pub mode: Mode,
    /// Where the previous follow-mode run of this shard stopped: read only what is newer.
    pub resume_after: Option<DateTime<Utc>>,
}

/// Reads elements for a pipeline, chunk by chunk. An error stops the run
/// ([`FlowError::Source`](super::FlowError::Source)), and its watermark stays where the finished
/// work put it.
///
/// A bounded source returns `Ok(None)` at its end. In [`Mode::Follow`], a source that has
/// caught up waits for new rows instead; the runner stops calling it on shutdown (dropping the
/// pending `next` future, so `next` must be cancel-safe: lose nothing it has not returned).
#[async_trait]
pub trait Source: Send + 'static {
    /// The elements it yields.
    type Item: Send + 'static;

    /// Prepares the source for a run (e.g. builds its query for the shard and watermark).
    async fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        let _ = context;
        Ok(())
    }

    /// The next chunk of elements, or `None` when a bounded source is exhausted.
    async fn next(&mut self) -> Result<Option<Vec<Sourced<Self::Item>>>, BoxError>;

    /// How many elements the source will yield in all, when it knows (for progress bars).
    fn size_hint(&self) -> Option<u64> {
        None
    }
}

/// A bounded source over elements already in memory, yielded in chunks of `chunk`: for tests and
/// for pipelines whose input is a list (files to import, deliveries fetched from an API).
pub struct IterSource<T> {
    items: std::vec::IntoIter<Sourced<T>>,
    chunk: usize,
    len: u64,
}

impl<T: Send + 'static> IterSource<T> {
    /// Yields `items` (without times), `chunk` at a time.
    pub fn new(items: impl IntoIterator<Item = T>, chunk: usize) -> Self {
        Self::with_times(items.into_iter().map(Sourced::new), chunk)
    }

    /// Yields `items` with their times, `chunk` at a time.
    pub fn with_times(items: impl IntoIterator<Item = Sourced<T>>, chunk: usize) -> Self {
        let items: Vec<_> = items.into_iter().collect();
        Self {
            len: items.len() as u64,
            items: items.into_iter(),
            chunk: chunk.max(1),
        }
    }
}

#[async_trait]
impl<T: Send + 'static> Source for IterSource<T> {
    type Item = T;

    async fn next(&mut self) -> Result<Option<Vec<Sourced<T>>>, BoxError> {
        let chunk: Vec<_> = self.items.by_ref().take(self.chunk).collect();
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.len)
    }
}

/// A source that ends after `limit` elements of another, e.g. for `--limit` on a backfill.
pub struct Limited<S> {
    inner: S,
    left: u64,
}

impl<S> Limited<S> {
    /// At most `limit` elements of `inner`.
    pub fn new(inner: S, limit: u64) -> Self {
        Self { inner, left: limit }
    }
}

#[async_trait]
impl<S: Source> Source for Limited<S> {
    type Item = S::Item;

    async fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        self.inner.open(context).await
    }

    async fn next(&mut self) -> Result<Option<Vec<Sourced<S::Item>>>, BoxError> {
        if self.left == 0 {
            return Ok(None);
        }
        let Some(mut chunk) = self.inner.next().await? else {
            return Ok(None);
        };
        let keep = usize::try_from(self.left).unwrap_or(usize::MAX);
        chunk.truncate(keep);
        self.left -= chunk.len() as u64;
        Ok(Some(chunk))
    }

    fn size_hint(&self) -> Option<u64> {
        Some(
            self.inner
                .size_hint()
                .map_or(self.left, |n| n.min(self.left)),
        )
    }
}

#[cfg(test)]
mod limited_tests {
    use super::*;

    #[tokio::test]
    async fn stops_after_the_limit_across_chunks() {
        let mut source = Limited::new(IterSource::new(0..10, 3), 7);
        assert_eq!(source.size_hint(), Some(7));
        let mut seen = Vec::new();
        while let Some(chunk) = source.next().await.unwrap() {
            seen.extend(chunk.into_iter().map(|s| s.item));
        }
        assert_eq!(seen, [0, 1, 2, 3, 4, 5, 6]);
    }
}
