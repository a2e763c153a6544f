//! The log's on-disk format: a segment is a magic header followed by frames, each
//! `[body length: u32 LE][CRC-32 of body: u32 LE][body]`.
//!
//! The body is a small fixed-order binary encoding of an [`Event`]. A frame that is cut short,
//! too long or fails its checksum marks the torn tail a crash left; everything before it is
//! intact, because a record is acknowledged only after the frames before it were fsynced.

use std::path::Path;

use bytes::Bytes;

use crate::event::{DeliveryHeaders, Event, Lifted, Payload};

/// First bytes of every segment file.
pub(crate) const MAGIC: &[u8; 8] = b"GMAWAL01";
const FRAME_HEADER: usize = 8;
/// Longest body a frame may hold; a longer length field means the tail is torn.
const MAX_BODY: usize = 64 * 1024 * 1024;
const VERSION: u8 = 1;
const PAYLOAD_INLINE: u8 = 0;
const PAYLOAD_SPILLED: u8 = 1;

/// One frame in two parts: everything up to the inline payload, and the payload itself, so the
/// writer can hand both to one `writev` without copying the payload.
pub(crate) struct FrameParts {
    /// Frame header and the body up to the payload bytes.
    pub head: Vec<u8>,
    /// The inline payload bytes (empty for a spilled payload).
    pub payload: Bytes,
}

impl FrameParts {
    /// Bytes the frame takes in the log.
    pub fn len(&self) -> usize {
        self.head.len() + self.payload.len()
    }
}

/// Appends `event` to `out` as one frame.
#[cfg(test)]
pub(crate) fn encode_frame(event: &Event, out: &mut Vec<u8>) {
    let parts = encode_parts(event);
    out.extend_from_slice(&parts.head);
    out.extend_from_slice(&parts.payload);
}

/// Encodes `event` as one frame.
pub(crate) fn encode_parts(event: &Event) -> FrameParts {
    let mut head = Vec::with_capacity(256);
    let out = &mut head;
    out.extend_from_slice(&[0; FRAME_HEADER]);
    let headers = &event.headers;
    let lifted = &event.lifted;
    out.push(VERSION);
    out.extend_from_slice(&event.received_micros.to_le_bytes());
    put_str(out, &headers.delivery_id);
    put_str(out, &headers.signature);
    put_str(out, &headers.event);
    put_opt_i64(out, headers.hook_id);
    put_opt_str(out, headers.target_type.as_deref());
    put_opt_i64(out, headers.target_id);
    put_opt_str(out, lifted.action.as_deref());
    put_opt_i64(out, lifted.installation_id);
    put_opt_str(out, lifted.enterprise.as_deref());
    put_opt_str(out, lifted.organization.as_deref());
    put_opt_i64(out, lifted.organization_id);
    put_opt_str(out, lifted.repository.as_deref());
    put_opt_i64(out, lifted.repository_id);
    put_opt_str(out, lifted.sender.as_deref());
    put_opt_i64(out, lifted.sender_id);
    out.extend_from_slice(&event.payload_size.to_le_bytes());
    let mut payload = Bytes::new();
    match &event.payload {
        Payload::Inline(bytes) => {
            out.push(PAYLOAD_INLINE);
            out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
            payload = bytes.clone();
        }
        Payload::Spilled(path) => {
            out.push(PAYLOAD_SPILLED);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            put_str(out, &name);
        }
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[FRAME_HEADER..]);
    crc.update(&payload);
    let len = u32::try_from(head.len() - FRAME_HEADER + payload.len()).unwrap_or(u32::MAX);
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..FRAME_HEADER].copy_from_slice(&crc.finalize().to_le_bytes());
    FrameParts { head, payload }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    put_bytes(out, value.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => {
            out.push(1);
            put_str(out, value);
        }
        None => out.push(0),
    }
}

fn put_opt_i64(out: &mut Vec<u8>, value: Option<i64>) {
    match value {
        Some(value) => {
            out.push(1);
            out.extend_from_slice(&value.to_le_bytes());
        }
        None => out.push(0),
    }
}

/// What reading a segment found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The intact records, in log order.
    pub events: Vec<Event>,
    /// Length of the intact prefix of the file, header included.
    pub valid_len: u64,
    /// Why reading stopped before the end of the file, if it did.
    pub torn: Option<String>,
}

/// Reads every intact frame of a segment's bytes. Spilled payloads resolve to files in
/// `payload_dir`.
pub(crate) fn scan(data: &Bytes, payload_dir: &Path) -> Scan {
    let mut scan = Scan {
        events: Vec::new(),
        valid_len: 0,
        torn: None,
    };
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        scan.torn = Some("the segment header is missing or not gma's".into());
        return scan;
    }
    let mut pos = MAGIC.len();
    scan.valid_len = pos as u64;
    while pos < data.len() {
        let rest = data.len() - pos;
        if rest < FRAME_HEADER {
            scan.torn = Some(format!("a frame header is cut short at byte {pos}"));
            break;
        }
        let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        let crc = u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        let len = len as usize;
        if len > MAX_BODY || rest - FRAME_HEADER < len {
            scan.torn = Some(format!("the frame at byte {pos} is cut short"));
            break;
        }
        let body_start = pos + FRAME_HEADER;
        let body = data.slice(body_start..body_start + len);
        if crc32fast::hash(&body) != crc {
            scan.torn = Some(format!("the frame at byte {pos} fails its checksum"));
            break;
        }
        match decode(&body, payload_dir) {
            Some(event) => scan.events.push(event),
            None => {
                scan.torn = Some(format!("the frame at byte {pos} does not decode"));
                break;
            }
        }
        pos = body_start + len;
        scan.valid_len = pos as u64;
    }
    scan
}

struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<Bytes> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len() {
            return None;
        }
        let out = self.data.slice(self.pos..end);
        self.pos = end;
        Some(out)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.as_ref().try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Option<Bytes> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        self.take(len)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }

    fn opt_i64(&mut self) -> Option<Option<i64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.i64()?)),
            _ => None,
        }
    }
}

fn decode(body: &Bytes, payload_dir: &Path) -> Option<Event> {
    let mut r = Reader { data: body, pos: 0 };
    if r.u8()? != VERSION {
        return None;
    }
    let received_micros = r.i64()?;
    let headers = DeliveryHeaders {
        delivery_id: r.string()?,
        signature: r.string()?,
        event: r.string()?,
        hook_id: r.opt_i64()?,
        target_type: r.opt_string()?,
        target_id: r.opt_i64()?,
    };
    let lifted = Lifted {
        action: r.opt_string()?,
        installation_id: r.opt_i64()?,
        enterprise: r.opt_string()?,
        organization: r.opt_string()?,
        organization_id: r.opt_i64()?,
        repository: r.opt_string()?,
        repository_id: r.opt_i64()?,
        sender: r.opt_string()?,
        sender_id: r.opt_i64()?,
    };
    let payload_size = u64::from_le_bytes(r.array()?);
    let payload = match r.u8()? {
        PAYLOAD_INLINE => Payload::Inline(r.bytes()?),
        PAYLOAD_SPILLED => Payload::Spilled(payload_dir.join(r.string()?)),
        _ => return None,
    };
    (r.pos == body.len()).then_some(Event {
        headers,
        received_micros,
        lifted,
        payload,
        payload_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EventBuilder;

    /// An event whose every kind of column is set: hook headers, a negative id, lifted
    /// columns, a timestamp with microseconds.
    fn event(id: &str, payload: &'static [u8]) -> Event {
        EventBuilder::new(id, payload)
            .signature("sha256=ab")
            .hook_id(1)
            .target_id(-3)
            .received_micros(1_764_000_000_123_456)
            .lifted(Lifted {
                action: Some("opened".into()),
                sender_id: Some(9),
                ..Lifted::default()
            })
            .build()
    }

    fn segment(events: &[Event]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for event in events {
            encode_frame(event, &mut out);
        }
        out
    }

    #[test]
    fn round_trips_records() {
        let mut spilled = event("b", b"");
        spilled.payload = Payload::Spilled("/elsewhere/big-1.json".into());
        let events = vec![event("a", b"{\"x\":1}"), spilled];
        let data = Bytes::from(segment(&events));
        let scan = scan(&data, Path::new("/store/payloads"));
        assert_eq!(scan.torn, None);
        assert_eq!(scan.valid_len, data.len() as u64);
        assert_eq!(scan.events[0], events[0]);
        assert_eq!(
            scan.events[1].payload,
            Payload::Spilled("/store/payloads/big-1.json".into())
        );
    }

    #[test]
    fn a_torn_tail_at_any_byte_keeps_every_whole_record_before_it() {
        let events = vec![
            event("a", b"{}"),
            event("b", b"{\"y\":[1,2]}"),
            event("c", b"{}"),
        ];
        let full = segment(&events);
        let ends: Vec<usize> = (0..=events.len())
            .map(|n| segment(&events[..n]).len())
            .collect();
        for cut in 0..full.len() {
            let data = Bytes::copy_from_slice(&full[..cut]);
            let scan = scan(&data, Path::new("/p"));
            let whole = ends
                .iter()
                .filter(|end| **end <= cut)
                .count()
                .saturating_sub(1);
            assert_eq!(scan.events.len(), whole, "cut at {cut}");
            assert_eq!(scan.events[..], events[..whole]);
            if cut >= MAGIC.len() {
                assert_eq!(scan.valid_len as usize, ends[whole], "cut at {cut}");
            }
            assert_eq!(scan.torn.is_some(), !ends.contains(&cut), "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_checksum() {
        let mut data = segment(&[event("a", b"{}"), event("b", b"{}")]);
        let last = data.len() - 3;
        data[last] ^= 0x10;
        let scan = scan(&Bytes::from(data), Path::new("/p"));
        assert_eq!(scan.events.len(), 1);
        assert!(scan.torn.unwrap().contains("checksum"));
    }
}
