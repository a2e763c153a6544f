//! Transforms: an async function per element (Beam's `DoFn`), run with bounded concurrency.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

/// Any error, boxed: what sources, transforms and sinks report.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an element failed in a transform, and whether trying again may help.
#[derive(Debug)]
pub struct StepError {
    error: BoxError,
    transient: bool,
}

impl StepError {
    /// A failure that trying again will not fix (bad input, 404): the element goes to the error
    /// output at once.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        Self {
            error: error.into(),
            transient: false,
        }
    }

    /// A failure that may pass on a later try (timeout, 502, 429): retried per the stage's
    /// [`Retry`] before the element goes to the error output.
    pub fn transient(error: impl Into<BoxError>) -> Self {
        Self {
            error: error.into(),
            transient: true,
        }
    }

    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

/// A per-element async function (Beam's `DoFn`): zero, one or many outputs per input.
///
/// One instance serves the whole stage: [`DoFn::setup`] runs once before the first element (open
/// clients, load tokens), then [`DoFn::process`] runs for up to the stage's concurrency elements
/// at once.
#[async_trait]
pub trait DoFn: Send + Sync + 'static {
    /// The elements it takes.
    type In: Send + Sync + 'static;
    /// The elements it produces.
    type Out: Send + 'static;

    /// Prepares the function before the first element.
    async fn setup(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Processes one element.
    async fn process(&self, input: &Self::In) -> Result<Vec<Self::Out>, StepError>;

    /// Names an element in failure reports (a delivery id, `file:line`).
    fn describe(&self, input: &Self::In) -> String {
        let _ = input;
        String::new()
    }
}

/// How a stage retries an element whose failure is [`StepError::transient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all, the first included (1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled for each next one.
    pub backoff: Duration,
    /// The longest wait between tries.
    pub max_backoff: Duration,
}

impl Retry {
    /// No retries.
    pub const NONE: Retry = Retry {
        attempts: 1,
        backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    };

    /// The wait before try number `attempt` (1-based; the first try does not wait).
    pub fn delay(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (attempt - 2).min(16);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// A transform stage: a [`DoFn`] with its name, concurrency, ordering and retries.
pub struct ParDo<F> {
    pub(crate) name: String,
    pub(crate) function: F,
    pub(crate) concurrency: usize,
    pub(crate) ordered: bool,
    pub(crate) retry: Retry,
}

impl<F: DoFn> ParDo<F> {
    /// A stage called `name` running `function` on one element at a time, in order, with the
    /// default [`Retry`].
    pub fn new(name: impl Into<String>, function: F) -> Self {
        Self {
            name: name.into(),
            function,
            concurrency: 1,
            ordered: true,
            retry: Retry::default(),
        }
    }

    /// Runs up to `n` elements at once (at least 1). Memory stays bounded: the stage takes no
    /// new element while `n` are in flight and its output is full.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Whether outputs keep the input order (the default) or go out as soon as they are ready.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// How transient failures are retried.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }
}

/// A [`DoFn`] made from an async closure, for small steps.
pub struct MapFn<I, O, C> {
    closure: C,
    _types: std::marker::PhantomData<fn(I) -> O>,
}

impl<I, O, C, Fut> MapFn<I, O, C>
where
    C: Fn(&I) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Vec<O>, StepError>> + Send,
{
    /// Wraps `closure`, which maps one element to its outputs.
    pub fn new(closure: C) -> Self {
        Self {
            closure,
            _types: std::marker::PhantomData,
        }
    }
}

#[async_trait]
impl<I, O, C, Fut> DoFn for MapFn<I, O, C>
where
    I: Send + Sync + 'static,
    O: Send + 'static,
    C: Fn(&I) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Vec<O>, StepError>> + Send,
{
    type In = I;
    type Out = O;

    async fn process(&self, input: &I) -> Result<Vec<O>, StepError> {
        (self.closure)(input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let retry = Retry {
            attempts: 6,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let delays: Vec<_> = (1..=5).map(|a| retry.delay(a).as_millis()).collect();
        assert_eq!(delays, [0, 100, 200, 400, 500]);
    }
}
