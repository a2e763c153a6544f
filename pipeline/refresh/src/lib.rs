//! `gma views refresh`: keeps the typed event tables (one per event view, see
//! `gma_pipeline::views::typed_views`) up to date with the events stored, so the views analysts
//! query read typed columns of what is new, never every payload of all history.
//!
//! A pipeline on `gma-pipeline`:
//!
//! - **plan** ([`plan`]): per typed table, the windows of `received` to take: everything stored
//!   on the first refresh (day by day, with a progress bar), else the arrivals since the table's
//!   watermark (less a lateness allowance, for rows that land a little out of order from several
//!   servers), plus the ranges jobs asked for in `refresh_requests` (an import of old events);
//!   each window cut at UTC midnights into day chunks, the source's elements;
//! - **step** ([`step`]): per chunk, one query (`sql/refresh_rows.sql`): the window's events
//!   projected through the event view's own SELECT, less the delivery ids the table holds among
//!   its rows near the window; the rows are appended to the table;
//! - **watermarks**: once every chunk of a table is done, its watermarks move (rows of the
//!   `watermarks` table), in one append.
//!
//! Exactly once: a chunk that is redone (after a crash, a kill, a failed run) finds its rows
//! already held and appends nothing twice, so a run can stop anywhere and the next one goes on.
//! One refresh may write a set of tables at a time: locally [`RefreshLock`] (a file lock in the
//! data directory) serialises `gma serve`'s background refresh, `gma views refresh` and the
//! refresh `gma query` runs first; on BigQuery the scheduled job runs one task per shard.
#![deny(missing_docs)]

pub mod job;
pub mod lock;
pub mod options;
pub mod plan;
pub mod step;
pub mod summary;

pub use job::{Compaction, RefreshError, refresh, refresh_data_dir};
pub use lock::RefreshLock;
pub use options::RefreshOptions;
pub use summary::RefreshSummary;
