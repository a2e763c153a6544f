//! Reading a request body as it streams in: counting it against the limit, feeding the
//! signature check and the payload digest, and spilling to a spool file past a threshold so
//! that memory stays flat however large the body is.

use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use gma_store::event_sink::EventSink;
use gma_store::{Spool, error_chain};

use crate::rejection::Rejection;
use crate::secret::SignatureCheck;

/// Where a body's bytes ended up.
#[derive(Debug)]
pub enum BodyBytes {
    /// In memory.
    Inline(Bytes),
    /// In a spool file, not yet synced.
    Spooled(Spool),
}

/// A body read to its end.
pub struct ReadBody {
    /// The bytes.
    pub bytes: BodyBytes,
    /// Its length.
    pub len: u64,
}

/// Limits on reading one body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body accepted.
    pub max_bytes: u64,
    /// Bodies larger than this go to a spool file.
    pub spill_bytes: usize,
    /// Longest time the whole body may take to arrive.
    pub timeout: Duration,
}

/// Reads `body` to its end, feeding `check` along the way.
///
/// # Errors
/// [`Rejection::TooLarge`] as soon as the body passes the limit (the rest is not read),
/// [`Rejection::IncompleteBody`] if the stream fails, [`Rejection::BodyTimeout`],
/// [`Rejection::StoreUnavailable`] if a spool file cannot be written.
pub async fn read_body(
    body: Body,
    limits: BodyLimits,
    check: &mut SignatureCheck<'_>,
    store: &dyn EventSink,
) -> Result<ReadBody, Rejection> {
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let mut stream = body.into_data_stream();
    // Most bodies arrive in one chunk, which is kept as it is; later chunks are gathered.
    let mut first: Option<Bytes> = None;
    let mut inline = BytesMut::new();
    let mut spool: Option<Spool> = None;
    let mut len: u64 = 0;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| Rejection::BodyTimeout(limits.timeout.as_secs()))?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| Rejection::IncompleteBody(error_chain(&e)))?;
        len += chunk.len() as u64;
        if len > limits.max_bytes {
            return Err(Rejection::TooLarge {
                limit: limits.max_bytes,
            });
        }
        check.update(&chunk);
        match &mut spool {
            Some(file) => file.write(&chunk).await.map_err(Rejection::spool)?,
            None if len > limits.spill_bytes as u64 => {
                let mut file = store.spool().await?;
                if let Some(first) = first.take() {
                    file.write(&first).await.map_err(Rejection::spool)?;
                }
                file.write(&inline).await.map_err(Rejection::spool)?;
                file.write(&chunk).await.map_err(Rejection::spool)?;
                inline = BytesMut::new();
                spool = Some(file);
            }
            None if first.is_none() && inline.is_empty() => first = Some(chunk),
            None => {
                if let Some(first) = first.take() {
                    inline.extend_from_slice(&first);
                }
                inline.extend_from_slice(&chunk);
            }
        }
    }
    let bytes = match spool {
        Some(file) => BodyBytes::Spooled(file),
        None => BodyBytes::Inline(first.unwrap_or_else(|| inline.freeze())),
    };
    Ok(ReadBody { bytes, len })
}
