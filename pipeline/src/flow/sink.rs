//! Sinks: where a pipeline's elements end up (table rows, blobs, memory).

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;

use super::table::TableWriter;
use super::transform::BoxError;
use crate::warehouse::{TableDef, Warehouse};

/// Writes elements, a batch at a time. A write that returns `Ok` is durable; an error stops the
/// run (the watermark stays behind the batch, so a later run redoes it).
#[async_trait]
pub trait Sink<T: Send + 'static>: Send + 'static {
    /// Prepares the sink before the first batch (e.g. creates its table).
    async fn open(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Writes `items` durably.
    async fn write(&mut self, items: Vec<T>) -> Result<(), BoxError>;

    /// Called once after the last batch.
    async fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Appends rows to a warehouse table: each element is a struct whose fields are the table's
/// columns by name.
pub struct TableSink<T> {
    warehouse: Arc<dyn Warehouse>,
    table: TableDef,
    /// Made when the sink opens, or given made by the caller.
    writer: Option<TableWriter>,
    _rows: PhantomData<fn(T)>,
}

impl<T> TableSink<T> {
    /// Appends to `table` in `warehouse` (creating it from its DDL when absent).
    pub fn new(warehouse: Arc<dyn Warehouse>, table: TableDef) -> Self {
        Self {
            warehouse,
            table,
            writer: None,
            _rows: PhantomData,
        }
    }

    /// Appends through `writer`, whose table the caller has created already
    /// ([`TableWriter::open`]): opening the sink creates nothing.
    pub fn with_writer(writer: TableWriter) -> Self {
        Self {
            warehouse: Arc::clone(writer.warehouse()),
            table: *writer.table(),
            writer: Some(writer),
            _rows: PhantomData,
        }
    }
}

#[async_trait]
impl<T: Serialize + Send + 'static> Sink<T> for TableSink<T> {
    async fn open(&mut self) -> Result<(), BoxError> {
        if self.writer.is_none() {
            let writer = TableWriter::open(Arc::clone(&self.warehouse), self.table).await?;
            self.writer = Some(writer);
        }
        Ok(())
    }

    async fn write(&mut self, items: Vec<T>) -> Result<(), BoxError> {
        let writer = match &self.writer {
            Some(writer) => writer,
            None => self
                .writer
                .insert(TableWriter::new(Arc::clone(&self.warehouse), self.table)?),
        };
        writer.append(&items).await?;
        Ok(())
    }
}

/// Keeps elements in memory, for tests and for callers that want a pipeline's output as a list.
pub struct CollectSink<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> CollectSink<T> {
    /// A sink and the list it fills.
    pub fn new() -> (Self, Arc<Mutex<Vec<T>>>) {
        let items = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                items: Arc::clone(&items),
            },
            items,
        )
    }
}

#[async_trait]
impl<T: Send + 'static> Sink<T> for CollectSink<T> {
    async fn write(&mut self, items: Vec<T>) -> Result<(), BoxError> {
        self.items
            .lock()
            .map_err(|_| "the collected list is poisoned")?
            .extend(items);
        Ok(())
    }
}

/// A function splitting an element into two kinds of rows.
type Splitter<T, A, B> = dyn Fn(T) -> (Vec<A>, Vec<B>) + Send + Sync;

/// Splits each element into two kinds of rows and writes each kind to its own sink, e.g. a
/// status row and the index rows of one archived run. A batch is done when both writes are.
pub struct SplitSink<T, A, B, SA, SB> {
    split: Box<Splitter<T, A, B>>,
    first: SA,
    second: SB,
}

impl<T, A, B, SA, SB> SplitSink<T, A, B, SA, SB> {
    /// Writes `split(element).0` to `first` and `.1` to `second`.
    pub fn new(
        split: impl Fn(T) -> (Vec<A>, Vec<B>) + Send + Sync + 'static,
        first: SA,
        second: SB,
    ) -> Self {
        Self {
            split: Box::new(split),
            first,
            second,
        }
    }
}

#[async_trait]
impl<T, A, B, SA, SB> Sink<T> for SplitSink<T, A, B, SA, SB>
where
    T: Send + 'static,
    A: Send + 'static,
    B: Send + 'static,
    SA: Sink<A>,
    SB: Sink<B>,
{
    async fn open(&mut self) -> Result<(), BoxError> {
        self.first.open().await?;
        self.second.open().await
    }

    async fn write(&mut self, items: Vec<T>) -> Result<(), BoxError> {
        let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
        for item in items {
            let (a, b) = (self.split)(item);
            firsts.extend(a);
            seconds.extend(b);
        }
        // The second kind first: for a status row plus its detail rows, the status row (which
        // marks the work as done) is written last.
        if !seconds.is_empty() {
            self.second.write(seconds).await?;
        }
        if !firsts.is_empty() {
            self.first.write(firsts).await?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), BoxError> {
        self.second.close().await?;
        self.first.close().await
    }
}
