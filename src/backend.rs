//! The one place a command's backend is chosen and opened: `--sink` of `gma serve` and `gma
//! import` (where events land) and `--warehouse` of `gma retry` and `gma leech` (where their
//! tables are) turned into the data directory's event store and tables, or BigQuery's clients.
//!
//! BigQuery's side ([`bigquery`]) is compiled with the cargo feature `bigquery` only; in a build
//! without it, asking for BigQuery fails with a message naming the feature.

#[cfg(feature = "bigquery")]
pub mod bigquery;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::ValueEnum;
use gma_pipeline::warehouse::Warehouse;
#[cfg(feature = "bigquery")]
use gma_pipeline::warehouse::bigquery::event_sink::BigQueryEventSink;
use gma_pipeline::warehouse::local::LocalWarehouse;
use gma_store::event_sink::EventSink;
use gma_store::{EventStore, StoreOptions};

use crate::cli::{Backend, BigQueryArgs, MemoryArgs};

/// The variable `gma retry` and `gma leech` read their warehouse from before `--warehouse` had
/// its name (it is `--sink`'s); still read when GMA_WAREHOUSE is unset.
const FORMER_WAREHOUSE_VAR: &str = "GMA_SINK";

/// Why `gma retry --mode fetch` cannot open the data directory's store: the one job that lands
/// events needs the directory to itself.
const LANDING_NEEDS_THE_STORE: &str = "--mode fetch lands events in the data directory itself; \
     while gma serve runs on it, use --mode redeliver (GitHub sends them to gma serve)";

/// Where `gma serve` and `gma import` land events (`--sink`).
pub enum EventTarget {
    /// The event store of the data directory.
    Store(Arc<EventStore>),
    /// A BigQuery events table.
    #[cfg(feature = "bigquery")]
    BigQuery(Arc<BigQueryEventSink>),
}

/// What `gma retry` and `gma leech` work on (`--warehouse`).
pub struct JobBackend {
    /// Where the job's tables are.
    pub warehouse: Arc<dyn Warehouse>,
    /// Where the job lands events, when it lands any.
    pub lander: Option<Arc<dyn EventSink>>,
    /// The data directory's event store when the job opened it: close it at the end.
    pub store: Option<Arc<EventStore>>,
    /// The events table's name in BigQuery (--events-table); `None` in the data directory,
    /// whose tables keep their own names.
    pub events_table: Option<String>,
}

/// The warehouse of `gma retry` and `gma leech`: `--warehouse` (alias `--sink`, variable
/// GMA_WAREHOUSE) when given, else GMA_SINK, else the data directory.
pub fn warehouse_choice(flag: Option<Backend>) -> Result<Backend> {
    if let Some(backend) = flag {
        return Ok(backend);
    }
    match std::env::var(FORMER_WAREHOUSE_VAR) {
        Ok(value) if !value.trim().is_empty() => Backend::from_str(value.trim(), false)
            .map_err(|_| {
                anyhow!(
                    "{FORMER_WAREHOUSE_VAR}={value:?} names no warehouse: set it (or GMA_WAREHOUSE, or --warehouse) to local or bigquery"
                )
            }),
        _ => Ok(Backend::Local),
    }
}

/// The event store of `data_dir`, opened on a blocking thread (opening replays its log).
async fn open_store(data_dir: &Path, options: StoreOptions) -> Result<Arc<EventStore>> {
    let dir = data_dir.to_path_buf();
    let store = tokio::task::spawn_blocking(move || EventStore::open(&dir, options))
        .await
        .context("opening the event store")??;
    Ok(Arc::new(store))
}

/// Where `--sink` says events land: the store of `data_dir` (opened with `options`), or the
/// BigQuery table `bigquery` names.
pub async fn event_target(
    sink: Backend,
    bigquery: &BigQueryArgs,
    data_dir: &Path,
    options: StoreOptions,
) -> Result<EventTarget> {
    match sink {
        Backend::Local => Ok(EventTarget::Store(open_store(data_dir, options).await?)),
        #[cfg(feature = "bigquery")]
        Backend::Bigquery => Ok(EventTarget::BigQuery(Arc::new(
            bigquery::event_sink(bigquery, data_dir, "--sink bigquery").await?,
        ))),
        #[cfg(not(feature = "bigquery"))]
        Backend::Bigquery => {
            let _ = bigquery;
            Err(without_bigquery("use --sink local"))
        }
    }
}

/// Where `gma serve` lands events, as [`event_target`] opens it (logged when it is BigQuery),
/// with the data directory's store when it is that.
pub async fn event_sink(
    sink: Backend,
    bigquery: &BigQueryArgs,
    data_dir: &Path,
    options: StoreOptions,
) -> Result<(Arc<dyn EventSink>, Option<Arc<EventStore>>)> {
    Ok(
        match event_target(sink, bigquery, data_dir, options).await? {
            EventTarget::Store(store) => (Arc::clone(&store) as Arc<dyn EventSink>, Some(store)),
            #[cfg(feature = "bigquery")]
            EventTarget::BigQuery(sink) => {
                bigquery::log_landing(&sink, bigquery);
                (sink, None)
            }
        },
    )
}

/// The warehouse `--warehouse` names (`flag`, else GMA_SINK, else local), with a lander when
/// the job `lands_events` (the data directory's store, opened for the job alone, or BigQuery's
/// events table). The data directory's queries get `memory`'s limit.
pub async fn job_backend(
    flag: Option<Backend>,
    bigquery: &BigQueryArgs,
    data_dir: &Path,
    lands_events: bool,
    memory: MemoryArgs,
) -> Result<JobBackend> {
    match warehouse_choice(flag)? {
        Backend::Local if lands_events => {
            let store = open_store(data_dir, StoreOptions::default())
                .await
                .context(LANDING_NEEDS_THE_STORE)?;
            let warehouse = LocalWarehouse::with_event_store(Arc::clone(&store)).await?;
            Ok(JobBackend {
                warehouse: Arc::new(limited(warehouse, memory)?),
                lander: Some(Arc::clone(&store) as Arc<dyn EventSink>),
                store: Some(store),
                events_table: None,
            })
        }
        Backend::Local => Ok(JobBackend {
            warehouse: Arc::new(open_local(data_dir, memory).await?),
            lander: None,
            store: None,
            events_table: None,
        }),
        #[cfg(feature = "bigquery")]
        Backend::Bigquery => bigquery::job_backend(bigquery, data_dir, lands_events).await,
        #[cfg(not(feature = "bigquery"))]
        Backend::Bigquery => {
            let _ = bigquery;
            Err(without_bigquery("use --warehouse local"))
        }
    }
}

/// The data directory `dir`'s warehouse, with the memory limit of `memory`.
pub async fn open_local(dir: &Path, memory: MemoryArgs) -> Result<LocalWarehouse> {
    let warehouse = LocalWarehouse::open(dir)
        .await
        .with_context(|| format!("opening {}", dir.display()))?;
    limited(warehouse, memory)
}

/// `warehouse` with the memory limit of `memory` (`--memory-limit`), when it gives one.
pub fn limited(warehouse: LocalWarehouse, memory: MemoryArgs) -> Result<LocalWarehouse> {
    Ok(match memory.memory_limit {
        Some(bytes) => warehouse
            .with_memory_limit(bytes)
            .context("setting the memory limit")?,
        None => warehouse,
    })
}

/// The error of a build without BigQuery asked for it; `instead` says what works without it.
#[cfg(not(feature = "bigquery"))]
pub fn without_bigquery(instead: &str) -> anyhow::Error {
    anyhow!(
        "this gma was built without BigQuery (cargo feature `bigquery`); rebuild with `cargo build --release` (default features), or {instead}"
    )
}
