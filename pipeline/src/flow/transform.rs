//! Transforms: an async function per element (Beam's `DoFn`), run with bounded concurrency.

use async_trait::async_trait;

/// Any error, boxed: what sources, transforms and sinks report.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A per-element async function (Beam's `DoFn`): zero, one or many outputs per input.
///
/// One instance serves the whole stage: [`DoFn::setup`] runs once before the first element (open
/// clients, load tokens), then [`DoFn::process`] runs for up to the stage's concurrency elements
/// at once. An element [`DoFn::process`] fails on is not tried again: it is counted and reported
/// in the run's summary with its error, and the run goes on.
#[async_trait]
pub trait DoFn: Send + Sync + 'static {
    /// The elements it takes.
    type In: Send + 'static;
    /// The elements it produces.
    type Out: Send + 'static;

    /// Prepares the function before the first element.
    async fn setup(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Processes one element, which it takes.
    async fn process(&self, input: Self::In) -> Result<Vec<Self::Out>, BoxError>;

    /// Names an element in failure reports (a delivery id, `file:line`). It is called for every
    /// element before [`DoFn::process`] takes it, so it should be cheap.
    fn describe(&self, input: &Self::In) -> String {
        let _ = input;
        String::new()
    }
}

/// A transform stage: a [`DoFn`] with its name, concurrency and ordering.
pub struct ParDo<F> {
    pub(crate) name: String,
    pub(crate) function: F,
    pub(crate) concurrency: usize,
    pub(crate) ordered: bool,
}

impl<F: DoFn> ParDo<F> {
    /// A stage called `name` running `function` on one element at a time, in order.
    pub fn new(name: impl Into<String>, function: F) -> Self {
        Self {
            name: name.into(),
            function,
            concurrency: 1,
            ordered: true,
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
}
