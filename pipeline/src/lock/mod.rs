//! A lease lock ("TTL lock") held as one object in a [`BlobStore`]: one run works at a time.
//!
//! `gma retry` takes it before it lists deliveries, so two runs (a scheduled one and a manual
//! one, or two overlapping schedules) never recover the same events twice. Other batch jobs can
//! take their own under another key.
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn gma_pipeline::blob::BlobStore>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use gma_pipeline::blob::BlobKey;
//! use gma_pipeline::lock::{Acquired, LockOptions, acquire};
//!
//! let options = LockOptions::new(Duration::from_secs(300));
//! match acquire(store, BlobKey::new("retry-lock.json")?, options).await? {
//!     Acquired::Busy { holder, until } => {
//!         println!("another run holds the lock until {until} (holder {holder})");
//!     }
//!     Acquired::Held(lock) => {
//!         let lost = lock.lost();
//!         tokio::select! {
//!             _ = lost.cancelled() => { /* someone took the lock over: stop working */ }
//!             _ = async { /* the work */ } => {}
//!         }
//!         lock.release().await?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # The object
//!
//! A JSON body `{"holder": "...", "acquired_at": "...", "expires_at": "..."}` (RFC 3339 times),
//! content type `application/json`. `holder` names the host, the process id and a unique part
//! ([`default_holder`]), so a busy run can say who holds the lock.
//!
//! # How it stays correct
//!
//! Every write is conditional, and [`BlobStore`] makes conditional writes atomic on every store
//! (local directory, memory, GCS):
//!
//! - **Acquire**: [`BlobStore::create_if_absent`]; of many racing acquirers exactly one creates
//!   the object. The others read it: it is held while `now < expires_at + clock_skew`, and they
//!   report [`Acquired::Busy`]. The skew allowance makes takers wait longer than the holder
//!   believes its lease lasts, so a holder whose clock runs behind the taker's is not robbed.
//! - **Takeover** of an expired lock (its holder crashed): [`BlobStore::replace_if_generation`]
//!   with the generation that was read. Of many racing takers one succeeds; the others get
//!   `PreconditionFailed`, read the winner's object and report `Busy`. Never two winners.
//! - **Renewal**: while held, a background task rewrites the object every `ttl / 3` with a new
//!   `expires_at = now + ttl`, conditional on the generation it last wrote. A run longer than the
//!   TTL keeps its lock (GMA's lock was never renewed, so long runs overlapped). If the renewal
//!   finds another generation (someone took the lock over) or cannot renew before the lock
//!   expires, it cancels [`HeldLock::lost`] and stops; the caller must then stop its work. The
//!   holder learns this no later than its own `expires_at`, while takers wait until
//!   `expires_at + clock_skew`: the skew is the holder's margin to stop.
//! - **Release**: [`HeldLock::release`] stops the renewal, then deletes the object only if it
//!   still has the generation this holder wrote ([`BlobStore::delete_if_generation`]), so a
//!   holder that lost its lock never deletes its successor's. Before the conditional delete it
//!   also compares the generation with [`BlobStore::head`]: fake-gcs-server, the GCS stand-in the
//!   tests run against, ignores `ifGenerationMatch` on DELETE
//!   (`docs/architecture.md#gcs-emulator`). Dropping a [`HeldLock`] without releasing it
//!   releases it in the background, best effort.
//!
//! An object whose body is not this JSON (GMA's metadata-only `retry-lock` object, or anything
//! else) counts as expiring at its last write ([`BlobMeta::updated`]) plus the TTL.
//!
//! Reads take the generation first ([`BlobStore::head`]), then the body: a body newer than the
//! generation can only make a takeover fail its precondition, never succeed on stale data.
//!
//! Transient store errors ([`crate::error::Transient::is_transient`]) are retried a few times with backoff,
//! on top of the retries a store makes itself. When a write's answer is lost and the write did
//! land, the next read finds this caller's own record and takes it as its own.

#[cfg(test)]
mod tests;

use crate::error::{Transient, error_chain};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::blob::{BlobError, BlobKey, BlobMeta, BlobStore, CreateOutcome, Generation};

/// GMA's lock TTL (`LOCK_TTL`): 5 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// GMA's clock-skew allowance (`LOCK_TTL_CLOCK_SKEW`): 10 seconds.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(10);

/// The shortest TTL accepted: renewal runs every `ttl / 3`, and a store call must fit in that.
pub const MIN_TTL: Duration = Duration::from_millis(100);

/// The content type of the lock object.
const CONTENT_TYPE: &str = "application/json";

/// Attempts per store call before a transient error is returned.
const STORE_ATTEMPTS: u32 = 4;

/// Wait before the first retry of a transient store error; doubles each time.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// How many times acquire re-reads an object that keeps changing under it (deleted between the
/// create and the read, or taken over by a racing taker) before it gives up.
const MAX_ACQUIRE_ROUNDS: u32 = 5;

/// What [`acquire`] needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOptions {
    /// How long the lock lasts without renewal: the longest a crashed holder blocks others
    /// (plus `clock_skew`). The holder renews every `ttl / 3`. At least [`MIN_TTL`]. GMA's
    /// `LOCK_TTL`, default 5 minutes.
    pub ttl: Duration,
    /// How much longer than the recorded expiry a taker waits before it takes a lock over, to
    /// allow for the holder's clock running behind the taker's. GMA's `LOCK_TTL_CLOCK_SKEW`
    /// (which GMA parsed and never used), default 10 seconds.
    pub clock_skew: Duration,
    /// Who takes the lock, for the "held by" message: host, process id and a unique part. Must
    /// differ between acquirers; [`default_holder`] does.
    pub holder: String,
}

impl LockOptions {
    /// Options with the given TTL, GMA's clock skew ([`DEFAULT_CLOCK_SKEW`]) and this process's
    /// [`default_holder`].
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            clock_skew: DEFAULT_CLOCK_SKEW,
            holder: default_holder(),
        }
    }

    /// These options with another clock-skew allowance.
    pub fn with_clock_skew(mut self, clock_skew: Duration) -> Self {
        self.clock_skew = clock_skew;
        self
    }

    /// These options with another holder name.
    pub fn with_holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = holder.into();
        self
    }

    /// The TTL and skew as chrono durations, or why the options are unusable.
    fn checked(&self) -> Result<(TimeDelta, TimeDelta), LockError> {
        let invalid = |reason: String| LockError::InvalidOptions { reason };
        if self.ttl < MIN_TTL {
            return Err(invalid(format!(
                "the lock TTL {:?} is shorter than the minimum {MIN_TTL:?}; use a longer TTL",
                self.ttl
            )));
        }
        if self.holder.trim().is_empty() {
            return Err(invalid(
                "the holder name is empty; use lock::default_holder()".to_owned(),
            ));
        }
        let ttl = TimeDelta::from_std(self.ttl)
            .map_err(|_| invalid(format!("the lock TTL {:?} is too long", self.ttl)))?;
        let skew = TimeDelta::from_std(self.clock_skew).map_err(|_| {
            invalid(format!(
                "the clock skew allowance {:?} is too long",
                self.clock_skew
            ))
        })?;
        Ok((ttl, skew))
    }
}

impl Default for LockOptions {
    /// GMA's defaults: a 5 minute TTL, 10 seconds of clock skew, this process as holder.
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

/// A holder name for this process: `host:pid:unique`, where `unique` differs on every call, so
/// two acquirers in one process are told apart too.
pub fn default_holder() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let host = host_name();
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    hasher.update(nanos.to_le_bytes());
    hasher.update(pid.to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let unique = hex::encode(&hasher.finalize()[..4]);
    format!("{host}:{pid}:{unique}")
}

/// The machine's host name (Linux: the kernel's, else `$HOSTNAME`), or `unknown-host`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// The result of [`acquire`].
#[derive(Debug)]
pub enum Acquired {
    /// This caller holds the lock until it releases it or [`HeldLock::lost`] fires.
    Held(HeldLock),
    /// Someone else holds the lock. Tell the user "another run holds the lock until {until}
    /// (holder {holder})" and end without error.
    Busy {
        /// Who holds it (the holder's [`LockOptions::holder`]).
        holder: String,
        /// When the holder's lease ends unless it renews it (the `expires_at` recorded in the
        /// object). A taker waits [`LockOptions::clock_skew`] longer.
        until: DateTime<Utc>,
    },
}

/// Why a lock operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The options cannot work (a TTL below [`MIN_TTL`], an empty holder); fix the caller.
    #[error("invalid lock options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// The blob store failed (after retrying transient errors).
    #[error(
        "could not {action} the lock object {uri}; check that the blob store is \
         reachable and allows reading, writing and deleting that object, then run again"
    )]
    Store {
        /// What was being done (`create`, `read`, `take over`, `delete`).
        action: &'static str,
        /// The lock object's URI.
        uri: String,
        /// The store's error (boxed: a blob error is large).
        #[source]
        source: Box<BlobError>,
    },
    /// The lock object kept changing while this caller tried to acquire it: other processes
    /// are creating and deleting it in a tight loop.
    #[error(
        "the lock object {uri} changed {rounds} times while acquiring it; other processes are \
         taking and releasing it constantly; try again later"
    )]
    Contended {
        /// The lock object's URI.
        uri: String,
        /// How many times it was read.
        rounds: u32,
    },
}

/// The JSON body of the lock object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct LockRecord {
    holder: String,
    acquired_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl LockRecord {
    fn to_bytes(&self) -> Bytes {
        let rfc3339 = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        Bytes::from(
            serde_json::json!({
                "holder": self.holder,
                "acquired_at": rfc3339(&self.acquired_at),
                "expires_at": rfc3339(&self.expires_at),
            })
            .to_string(),
        )
    }
}

/// The lock object as read: its generation and what its body says.
#[derive(Debug)]
struct Observed {
    generation: Generation,
    /// The parsed body, or `None` for a body that is not a lock record.
    record: Option<LockRecord>,
    /// Who holds it, for messages.
    holder: String,
    /// When it expires: the record's `expires_at`, or `updated + ttl` for an unreadable body.
    expires_at: DateTime<Utc>,
}

/// Shared between ends of a store call: the store, the key and its URI for errors.
#[derive(Debug, Clone)]
struct Target {
    store: Arc<dyn BlobStore>,
    key: BlobKey,
    uri: String,
}

impl Target {
    fn error(&self, action: &'static str, source: BlobError) -> LockError {
        LockError::Store {
            action,
            uri: self.uri.clone(),
            source: Box::new(source),
        }
    }

    /// Reads the lock object: `None` when there is none. The generation is read before the
    /// body (see the module docs).
    async fn observe(&self, ttl: TimeDelta) -> Result<Option<Observed>, BlobError> {
        let meta = match retrying("head", &self.key, || self.store.head(&self.key)).await {
            Ok(meta) => meta,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let body = match retrying("read", &self.key, || self.store.get(&self.key)).await {
            Ok(body) => body,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(observed(&meta, &body, ttl)))
    }
}

/// What a read object says, given its metadata and body.
fn observed(meta: &BlobMeta, body: &[u8], ttl: TimeDelta) -> Observed {
    match serde_json::from_slice::<LockRecord>(body) {
        Ok(record) => Observed {
            generation: meta.generation,
            holder: record.holder.clone(),
            expires_at: record.expires_at,
            record: Some(record),
        },
        Err(_) => Observed {
            generation: meta.generation,
            record: None,
            holder: format!(
                "unknown (the lock object is not gma's JSON; last written {})",
                meta.updated
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            expires_at: meta.updated + ttl,
        },
    }
}

/// Runs `call`, retrying transient store errors with exponential backoff.
async fn retrying<T, F, Fut>(what: &'static str, key: &BlobKey, mut call: F) -> Result<T, BlobError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, BlobError>>,
{
    let mut wait = INITIAL_BACKOFF;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if error.is_transient() && attempt < STORE_ATTEMPTS => {
                tracing::debug!(operation = what, key = %key, attempt, error = %error_chain(&error), ?wait, "Retrying a lock store call.");
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Takes the lock under `key` in `store`, or reports who holds it.
///
/// A lock that exists and has expired (by more than [`LockOptions::clock_skew`]) is taken over;
/// of several racing acquirers or takers exactly one gets [`Acquired::Held`]. While held, the
/// lock renews itself in the background (see the module docs); must be called inside a tokio
/// runtime.
///
/// # Errors
///
/// [`LockError::InvalidOptions`] for unusable options, [`LockError::Store`] when the store fails
/// (transient errors are retried first), [`LockError::Contended`] when the object keeps
/// changing under this caller.
pub async fn acquire(
    store: Arc<dyn BlobStore>,
    key: BlobKey,
    options: LockOptions,
) -> Result<Acquired, LockError> {
    let (ttl, skew) = options.checked()?;
    let mut acquiring = Acquiring {
        target: Target {
            uri: store.uri(&key),
            store,
            key,
        },
        options,
        ttl,
        skew,
        written: Vec::new(),
    };
    for _round in 0..MAX_ACQUIRE_ROUNDS {
        if let Some(acquired) = acquiring.round().await? {
            return Ok(acquired);
        }
    }
    Err(LockError::Contended {
        uri: acquiring.target.uri,
        rounds: MAX_ACQUIRE_ROUNDS,
    })
}

/// One call of [`acquire`], from round to round.
struct Acquiring {
    target: Target,
    options: LockOptions,
    ttl: TimeDelta,
    skew: TimeDelta,
    /// Every record this call wrote: if a write's answer was lost but the write landed, a later
    /// read finds one of these, and the lock is ours.
    written: Vec<LockRecord>,
}

impl Acquiring {
    /// One round: create the object, else read it and report who holds it, else take it over.
    /// `None` when the object changed under this round and the next must look again.
    async fn round(&mut self) -> Result<Option<Acquired>, LockError> {
        if let Some(held) = self.create().await? {
            return Ok(Some(held));
        }
        let target = &self.target;
        let Some(current) = target
            .observe(self.ttl)
            .await
            .map_err(|e| target.error("read", e))?
        else {
            return Ok(None); // Released between our create and our read: try to create it again.
        };
        if let Some(mine) = current.record.as_ref().filter(|r| self.written.contains(r)) {
            tracing::info!(key = %target.key, holder = %mine.holder, expires_at = %mine.expires_at, "Acquired the lock (the store's answer to the write was lost).");
            let mine = mine.clone();
            return Ok(Some(self.held(current.generation, mine)));
        }
        let now = Utc::now();
        if now < current.expires_at + self.skew {
            tracing::info!(key = %target.key, holder = %current.holder, until = %current.expires_at, "The lock is held by another holder.");
            return Ok(Some(Acquired::Busy {
                holder: current.holder,
                until: current.expires_at,
            }));
        }
        self.take_over(&current, now).await
    }

    /// A new record of this holder from `now`, remembered as written.
    fn record(&mut self, now: DateTime<Utc>) -> LockRecord {
        let record = LockRecord {
            holder: self.options.holder.clone(),
            acquired_at: now,
            expires_at: now + self.ttl,
        };
        self.written.push(record.clone());
        record
    }

    /// The lock, held from the object of `generation` holding `record`.
    fn held(&self, generation: Generation, record: LockRecord) -> Acquired {
        Acquired::Held(HeldLock::start(
            self.target.clone(),
            self.options.clone(),
            generation,
            record,
        ))
    }

    /// Creates the object if there is none: the lock, or `None` when it exists (or the
    /// create's answer was lost: the read that follows tells).
    async fn create(&mut self) -> Result<Option<Acquired>, LockError> {
        let record = self.record(Utc::now());
        let target = &self.target;
        let created = retrying("create", &target.key, || {
            target
                .store
                .create_if_absent(&target.key, record.to_bytes(), CONTENT_TYPE)
        })
        .await;
        match created {
            Ok(CreateOutcome::Created(meta)) => {
                tracing::info!(key = %target.key, holder = %record.holder, expires_at = %record.expires_at, "Acquired the lock.");
                Ok(Some(self.held(meta.generation, record)))
            }
            Ok(CreateOutcome::AlreadyExists) => Ok(None),
            // The create may have landed; the read that follows tells.
            Err(e) if e.is_transient() => Ok(None),
            Err(e) => Err(target.error("create", e)),
        }
    }

    /// Takes the expired object `current` over (its holder crashed or lost it), only if nobody
    /// else did first: `None` when another taker won, for the next round to report.
    async fn take_over(
        &mut self,
        current: &Observed,
        now: DateTime<Utc>,
    ) -> Result<Option<Acquired>, LockError> {
        let record = self.record(now);
        let target = &self.target;
        let replaced = retrying("take over", &target.key, || {
            target.store.replace_if_generation(
                &target.key,
                record.to_bytes(),
                CONTENT_TYPE,
                current.generation,
            )
        })
        .await;
        match replaced {
            Ok(meta) => {
                tracing::info!(
                    key = %target.key,
                    holder = %record.holder,
                    previous_holder = %current.holder,
                    expired_at = %current.expires_at,
                    expires_at = %record.expires_at,
                    "Took over an expired lock."
                );
                Ok(Some(self.held(meta.generation, record)))
            }
            // Another taker won the race (or our write landed and its answer was lost): the
            // next round reads the object again and reports who holds it.
            Err(BlobError::PreconditionFailed { .. }) => Ok(None),
            Err(e) => Err(target.error("take over", e)),
        }
    }
}

/// What the holder and its renewal task share.
#[derive(Debug)]
struct Lease {
    /// The generation this holder last wrote.
    generation: Generation,
    /// The record it last wrote.
    record: LockRecord,
}

/// The state behind a [`HeldLock`], moved out by [`HeldLock::release`] or its `Drop`.
#[derive(Debug)]
struct Holding {
    target: Target,
    lease: Arc<Mutex<Lease>>,
    /// Cancelled when the lock is lost.
    lost: CancellationToken,
    /// Cancelled to stop the renewal task.
    stop: CancellationToken,
    renewal: JoinHandle<()>,
}

/// A lock this process holds. Renews itself until released; check [`HeldLock::lost`].
///
/// Release it with [`HeldLock::release`]. Dropping it without releasing stops the renewal and
/// releases it in the background, best effort (only when a tokio runtime is current; otherwise
/// the lock simply expires).
#[derive(Debug)]
pub struct HeldLock {
    holding: Option<Holding>,
    holder: String,
    key: BlobKey,
}

impl HeldLock {
    fn start(
        target: Target,
        options: LockOptions,
        generation: Generation,
        record: LockRecord,
    ) -> Self {
        let lease = Arc::new(Mutex::new(Lease { generation, record }));
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let renewal = tokio::spawn(renew(
            target.clone(),
            options.ttl,
            Arc::clone(&lease),
            lost.clone(),
            stop.clone(),
        ));
        Self {
            holder: options.holder,
            key: target.key.clone(),
            holding: Some(Holding {
                target,
                lease,
                lost,
                stop,
                renewal,
            }),
        }
    }

    /// The current expiry; moves forward with every renewal.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.holding.as_ref().map_or(DateTime::<Utc>::MIN_UTC, |h| {
            lease_of(&h.lease).record.expires_at
        })
    }

    /// A token cancelled when the lock is lost: someone else took it over, or it could not be
    /// renewed before it expired. Stop working when it fires. (Cancelling the returned token
    /// yourself does not affect the lock.)
    pub fn lost(&self) -> CancellationToken {
        self.holding
            .as_ref()
            .map_or_else(CancellationToken::new, |h| h.lost.child_token())
    }

    /// Who holds it (this process's [`LockOptions::holder`]).
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The lock object's key.
    pub fn key(&self) -> &BlobKey {
        &self.key
    }

    /// Stops renewing and deletes the lock object, unless someone else has taken it over (then
    /// their object is left alone, a warning is logged, and this returns `Ok`).
    ///
    /// # Errors
    ///
    /// [`LockError::Store`] when the store fails (after retries); the lock then expires by
    /// itself after its TTL.
    pub async fn release(mut self) -> Result<(), LockError> {
        match self.holding.take() {
            Some(holding) => release(holding, &self.holder).await,
            None => Ok(()),
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let Some(holding) = self.holding.take() else {
            return;
        };
        holding.stop.cancel();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let holder = std::mem::take(&mut self.holder);
                tracing::debug!(key = %self.key, holder = %holder, "A held lock was dropped without release; releasing it in the background.");
                runtime.spawn(async move {
                    if let Err(error) = release(holding, &holder).await {
                        tracing::warn!(holder = %holder, error = %error_chain(&error), "Could not release a dropped lock; it expires after its TTL.");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(key = %self.key, holder = %self.holder, "A held lock was dropped outside a tokio runtime; it expires after its TTL.");
            }
        }
    }
}

/// The lease behind the mutex. The lease is only ever replaced whole, so a poisoned mutex still
/// holds a consistent value.
fn lease_of(lease: &Mutex<Lease>) -> std::sync::MutexGuard<'_, Lease> {
    lease.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops the renewal, waits until no renewal write is in flight, and deletes the object if it
/// is still ours.
async fn release(holding: Holding, holder: &str) -> Result<(), LockError> {
    let Holding {
        target,
        lease,
        lost,
        stop,
        renewal,
    } = holding;
    stop.cancel();
    // The task finishes its write in flight, if any, so the generation below is the last one.
    let _ = renewal.await;
    let (mut generation, ours) = {
        let lease = lease_of(&lease);
        (lease.generation, lease.record.clone())
    };
    let key = &target.key;
    // The TTL only matters for bodies that are not lock records, which are not ours anyway.
    let current = match target.observe(TimeDelta::zero()).await {
        Ok(Some(current)) => current,
        Ok(None) => {
            tracing::warn!(key = %key, holder, "The lock object was already gone at release.");
            return Ok(());
        }
        Err(e) => return Err(target.error("read", e)),
    };
    if current.generation != generation {
        // A renewal whose answer was lost (or timed out) may have landed: still ours if it is
        // our holder with our acquisition time.
        let still_ours = current
            .record
            .as_ref()
            .is_some_and(|r| r.holder == ours.holder && r.acquired_at == ours.acquired_at);
        if !still_ours {
            tracing::warn!(key = %key, holder, current_holder = %current.holder, "The lock was taken over by someone else; leaving their lock in place.");
            return Ok(());
        }
        generation = current.generation;
    }
    match retrying("delete", key, || {
        target.store.delete_if_generation(key, generation)
    })
    .await
    {
        Ok(()) => {
            tracing::info!(key = %key, holder, lost = lost.is_cancelled(), "Released the lock.");
            Ok(())
        }
        Err(BlobError::PreconditionFailed { .. }) => {
            tracing::warn!(key = %key, holder, "The lock was taken over by someone else; leaving their lock in place.");
            Ok(())
        }
        Err(e) if e.is_not_found() => {
            tracing::warn!(key = %key, holder, "The lock object was already gone at release.");
            Ok(())
        }
        Err(e) => Err(target.error("delete", e)),
    }
}

/// How one renewal ended.
enum Renewal {
    Renewed,
    Stopped,
    Lost(String),
}

/// The renewal task: every `ttl / 3`, renews the lease; cancels `lost` and ends when it cannot.
async fn renew(
    target: Target,
    ttl: Duration,
    lease: Arc<Mutex<Lease>>,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let interval = ttl / 3;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match renew_once(&target, ttl, &lease, &stop).await {
            Renewal::Renewed => {}
            Renewal::Stopped => return,
            Renewal::Lost(reason) => {
                let holder = lease_of(&lease).record.holder.clone();
                tracing::warn!(key = %target.key, holder = %holder, reason = %reason, "Lost the lock; the work it guards must stop.");
                lost.cancel();
                return;
            }
        }
    }
}

/// One renewal: rewrites the object with a later expiry, conditional on our last generation,
/// retrying transient errors until the lease would expire. A write in flight is finished even
/// when `stop` fires, so the lease always knows the object's last generation.
async fn renew_once(
    target: &Target,
    ttl: Duration,
    lease: &Mutex<Lease>,
    stop: &CancellationToken,
) -> Renewal {
    let (generation, previous) = {
        let lease = lease_of(lease);
        (lease.generation, lease.record.clone())
    };
    // Checked by `LockOptions::checked` before the lock was taken.
    let ttl_delta = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
    let mut written: Vec<LockRecord> = Vec::new();
    let mut wait = INITIAL_BACKOFF;
    loop {
        let now = Utc::now();
        let Ok(remaining) = (previous.expires_at - now).to_std() else {
            return Renewal::Lost(format!(
                "could not renew it before it expired at {}",
                previous.expires_at
            ));
        };
        let record = LockRecord {
            expires_at: now + ttl_delta,
            ..previous.clone()
        };
        written.push(record.clone());
        let error = match write_renewal(target, lease, record, generation, remaining).await {
            Ok(()) => return Renewal::Renewed,
            Err(RenewalFailed::Late) => {
                return Renewal::Lost(format!(
                    "the store did not answer before the lock expired at {}",
                    previous.expires_at
                ));
            }
            Err(RenewalFailed::Store(error)) => error,
        };
        match error {
            BlobError::PreconditionFailed { .. } => {
                return renewal_refused(target, ttl_delta, lease, &written).await;
            }
            error if error.is_transient() => {
                tracing::debug!(key = %target.key, error = %error_chain(&error), ?wait, "Retrying the lock renewal.");
            }
            error => {
                return Renewal::Lost(format!(
                    "the store refused the renewal: {}",
                    error_chain(&error)
                ));
            }
        }
        if stop.is_cancelled() {
            return Renewal::Stopped;
        }
        tokio::select! {
            () = stop.cancelled() => return Renewal::Stopped,
            () = tokio::time::sleep(wait.min(remaining)) => {}
        }
        wait = wait.saturating_mul(2);
    }
}

/// Why one renewal write did not renew.
enum RenewalFailed {
    /// The store did not answer within the time left.
    Late,
    /// The store's error.
    Store(BlobError),
}

/// Writes `record` over the object of `generation`, waiting at most `remaining`; on success
/// the lease holds what was written.
async fn write_renewal(
    target: &Target,
    lease: &Mutex<Lease>,
    record: LockRecord,
    generation: Generation,
    remaining: Duration,
) -> Result<(), RenewalFailed> {
    let write = target.store.replace_if_generation(
        &target.key,
        record.to_bytes(),
        CONTENT_TYPE,
        generation,
    );
    match tokio::time::timeout(remaining, write).await {
        Ok(Ok(meta)) => {
            *lease_of(lease) = Lease {
                generation: meta.generation,
                record,
            };
            tracing::debug!(key = %target.key, expires_at = %lease_of(lease).record.expires_at, "Renewed the lock.");
            Ok(())
        }
        Ok(Err(error)) => Err(RenewalFailed::Store(error)),
        Err(_) => Err(RenewalFailed::Late),
    }
}

/// A renewal the store refused on its precondition: renewed after all when an earlier attempt
/// of ours landed with its answer lost, else lost.
async fn renewal_refused(
    target: &Target,
    ttl: TimeDelta,
    lease: &Mutex<Lease>,
    written: &[LockRecord],
) -> Renewal {
    if written.len() > 1
        && let Ok(Some(current)) = target.observe(ttl).await
        && let Some(mine) = current.record.filter(|r| written.contains(r))
    {
        *lease_of(lease) = Lease {
            generation: current.generation,
            record: mine,
        };
        return Renewal::Renewed;
    }
    Renewal::Lost("another process replaced or deleted the lock object".to_owned())
}
