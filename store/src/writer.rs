//! The log writer: one thread that owns the active segment and the delivery-id index.
//!
//! Appends queue on a bounded channel. The thread takes everything queued, writes it with one
//! `write`, makes it durable with one `fdatasync`, then answers every request of the batch: that
//! is group commit, so under load hundreds of requests share an fsync. While it syncs, new
//! requests queue and form the next batch.
//!
//! The index is only touched here, so "is this delivery id new?" and "append it" are one step:
//! two concurrent deliveries of one id cannot both land. A duplicate of a record still in the
//! current batch waits for that batch's fsync and shares its fate.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::compactor::CompactorMsg;
use super::error_chain;
use super::index::DeliveryKey;
use super::layout::{Layout, fsync_dir};
use super::metrics::StoreMetrics;
use super::record::{FrameParts, MAGIC};
use super::{AppendOutcome, StoreError};

/// Most bytes one group commit writes before it syncs; later requests form the next batch.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// A request to the writer thread.
pub(crate) enum Command {
    /// Land one encoded record unless its delivery id is already stored.
    Append {
        key: DeliveryKey,
        frame: FrameParts,
        spilled: bool,
        reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    },
    /// Time passes: seal the active segment if it is older than the seal age.
    Tick,
    /// Seal the active segment now and answer once it is compacted.
    Seal(oneshot::Sender<Result<(), StoreError>>),
    /// Take the delivery ids of a bulk load: answer, for each key in order, whether it was new,
    /// and hold the new ones in the index (so a later duplicate, in the same list or elsewhere,
    /// is refused) until they are stored or released.
    Reserve {
        keys: Vec<DeliveryKey>,
        reply: oneshot::Sender<Vec<bool>>,
    },
    /// Give back keys a bulk load reserved and did not store.
    Release(Vec<DeliveryKey>),
    /// Hand out a number from the segment counter, for a file that must never share a name
    /// with a compacted segment's.
    AllocateId(oneshot::Sender<u64>),
    /// Seal, hand the last segment to the compactor and stop.
    Shutdown,
}

struct Active {
    id: u64,
    file: File,
    len: u64,
    opened: Instant,
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub layout: Layout,
    pub index: HashSet<DeliveryKey>,
    pub next_segment: u64,
    pub segment_max_bytes: u64,
    pub seal_after: Duration,
    pub compactor: std_mpsc::Sender<CompactorMsg>,
    pub metrics: Arc<StoreMetrics>,
    pub healthy: Arc<AtomicBool>,
    active: Option<Active>,
}

struct Pending {
    reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    outcome: AppendOutcome,
}

impl Writer {
    pub(crate) fn new(
        layout: Layout,
        index: HashSet<DeliveryKey>,
        next_segment: u64,
        options: &super::StoreOptions,
        compactor: std_mpsc::Sender<CompactorMsg>,
        metrics: Arc<StoreMetrics>,
        healthy: Arc<AtomicBool>,
    ) -> Self {
        Self {
            layout,
            index,
            next_segment,
            segment_max_bytes: options.segment_max_bytes,
            seal_after: options.seal_after,
            compactor,
            metrics,
            healthy,
            active: None,
        }
    }

    /// Serves commands until [`Command::Shutdown`] or until every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut appends = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut bytes = 0;
            let mut next = Some(first);
            let mut stop = false;
            while let Some(command) = next.take() {
                match command {
                    Command::Append { ref frame, .. } => {
                        bytes += frame.len();
                        appends.push(command);
                    }
                    Command::Tick => self.seal_if_old(),
                    Command::Seal(reply) => {
                        self.commit(&mut appends);
                        self.seal(Some(reply));
                    }
                    Command::Reserve { keys, reply } => {
                        // Appends queued before the reservation are decided first, so an id is
                        // either appended or reserved, never both.
                        self.commit(&mut appends);
                        let fresh = keys.into_iter().map(|key| self.index.insert(key)).collect();
                        let _ = reply.send(fresh);
                    }
                    Command::Release(keys) => {
                        for key in &keys {
                            self.index.remove(key);
                        }
                    }
                    Command::AllocateId(reply) => {
                        let id = self.next_segment;
                        self.next_segment += 1;
                        let _ = reply.send(id);
                    }
                    Command::Shutdown => {
                        stop = true;
                        break;
                    }
                }
                if bytes < MAX_BATCH_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            self.commit(&mut appends);
            if stop {
                rx.close();
                while let Ok(command) = rx.try_recv() {
                    if let Command::Append { .. } = command {
                        appends.push(command);
                    }
                }
                self.commit(&mut appends);
                break;
            }
        }
        self.seal(None);
        let _ = self.compactor.send(CompactorMsg::Shutdown);
    }

    fn seal_if_old(&mut self) {
        if self
            .active
            .as_ref()
            .is_some_and(|active| active.opened.elapsed() >= self.seal_after)
        {
            self.seal(None);
        }
    }

    /// Closes the active segment (already durable) and queues it for compaction.
    fn seal(&mut self, reply: Option<oneshot::Sender<Result<(), StoreError>>>) {
        let Some(active) = self.active.take() else {
            if let Some(reply) = reply {
                let _ = self.compactor.send(CompactorMsg::Barrier(reply));
            }
            return;
        };
        drop(active.file);
        tracing::debug!(
            segment = active.id,
            bytes = active.len,
            "Sealed a log segment."
        );
        let _ = self.compactor.send(CompactorMsg::Segment(active.id));
        if let Some(reply) = reply {
            let _ = self.compactor.send(CompactorMsg::Barrier(reply));
        }
    }

    fn open_segment(&mut self) -> std::io::Result<&mut Active> {
        if self.active.is_none() {
            let id = self.next_segment;
            let path = self.layout.segment_path(id);
            let mut file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            file.write_all(MAGIC)?;
            file.sync_all()?;
            fsync_dir(&self.layout.wal_dir())?;
            self.next_segment += 1;
            self.active = Some(Active {
                id,
                file,
                len: MAGIC.len() as u64,
                opened: Instant::now(),
            });
        }
        self.active
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no active segment"))
    }

    /// Writes and syncs every queued append, then answers each.
    fn commit(&mut self, appends: &mut Vec<Command>) {
        if appends.is_empty() {
            return;
        }
        let mut frames = Vec::with_capacity(appends.len());
        let mut pending = Vec::with_capacity(appends.len());
        let mut batch_keys = HashSet::new();
        let mut any_spilled = false;
        for command in appends.drain(..) {
            let Command::Append {
                key,
                frame,
                spilled,
                reply,
            } = command
            else {
                continue;
            };
            if self.index.contains(&key) {
                if batch_keys.contains(&key) {
                    pending.push(Pending {
                        reply,
                        outcome: AppendOutcome::Duplicate,
                    });
                } else {
                    let _ = reply.send(Ok(AppendOutcome::Duplicate));
                }
                continue;
            }
            self.index.insert(key);
            batch_keys.insert(key);
            frames.push(frame);
            any_spilled |= spilled;
            pending.push(Pending {
                reply,
                outcome: AppendOutcome::Landed,
            });
        }
        if frames.is_empty() {
            for p in pending {
                let _ = p.reply.send(Ok(p.outcome));
            }
            return;
        }
        match self.write_durably(&frames, any_spilled) {
            Ok(bytes) => {
                self.healthy.store(true, Ordering::Relaxed);
                self.metrics.observe_commit(batch_keys.len(), bytes);
                for p in pending {
                    let _ = p.reply.send(Ok(p.outcome));
                }
                if self
                    .active
                    .as_ref()
                    .is_some_and(|a| a.len >= self.segment_max_bytes)
                {
                    self.seal(None);
                }
            }
            Err(error) => {
                self.healthy.store(false, Ordering::Relaxed);
                self.metrics.commit_failures.inc();
                for key in &batch_keys {
                    self.index.remove(key);
                }
                tracing::error!(error = %error_chain(&error), events = batch_keys.len(), "Could not make a batch of events durable; answering 503 so GitHub's delivery fails and can be redelivered.");
                let reason = error_chain(&error);
                for p in pending {
                    let _ = p.reply.send(Err(StoreError::Unavailable {
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    /// Appends `frames` to the active segment with vectored writes (no payload is copied) and
    /// syncs it, returning the bytes written. On failure the segment is cut back to its last
    /// durable length, or abandoned for a new one if even that fails, so a failed batch never
    /// sits between two acknowledged ones.
    fn write_durably(
        &mut self,
        frames: &[FrameParts],
        any_spilled: bool,
    ) -> std::io::Result<usize> {
        let payload_dir = self.layout.payload_dir();
        let active = self.open_segment()?;
        let before = active.len;
        let total: usize = frames.iter().map(FrameParts::len).sum();
        let result = (|| {
            let mut slices: Vec<IoSlice<'_>> = frames
                .iter()
                .flat_map(|f| [IoSlice::new(&f.head), IoSlice::new(&f.payload)])
                .filter(|s| !s.is_empty())
                .collect();
            write_all_vectored(&mut active.file, &mut slices)?;
            if any_spilled {
                fsync_dir(&payload_dir)?;
            }
            active.file.sync_data()
        })();
        match result {
            Ok(()) => {
                active.len += total as u64;
                Ok(total)
            }
            Err(error) => {
                let rolled_back = active
                    .file
                    .set_len(before)
                    .and_then(|()| active.file.sync_data());
                if rolled_back.is_err() {
                    self.seal(None);
                }
                Err(error)
            }
        }
    }
}

/// Writes every slice, retrying short writes (`Write::write_all_vectored` is not stable yet).
fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
