//! A large, valid zip generated on the fly for the leech benchmark: stored (uncompressed)
//! entries of repeated log lines, streamed in 64 KiB chunks so a 1 GiB archive costs the fake
//! no memory. Sizes and CRCs are written in the local headers (no data descriptors), so both
//! central-directory readers and streaming readers accept it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

/// Uncompressed size of each entry but the last.
const ENTRY_BYTES: u64 = 8 << 20;
/// Chunk size of the stream.
const CHUNK: usize = 64 << 10;
/// Archives stay below 4 GiB so no zip64 records are needed.
const MAX_BYTES: u64 = 3 << 30;
/// 2026-01-01 00:00:00 in MS-DOS format.
const DOS_DATE: u16 = ((2026 - 1980) << 9) | (1 << 5) | 1;
const DOS_TIME: u16 = 0;
const FLAG_UTF8: u16 = 0x0800;

/// One 64-byte log line; entry contents are prefixes of this line repeated.
fn line() -> [u8; 64] {
    let mut out = [b' '; 64];
    let text = b"2026-01-01T00:00:00.0000000Z generated log line from the fake";
    out[..text.len()].copy_from_slice(text);
    out[63] = b'\n';
    out
}

struct Entry {
    local_header: Bytes,
    size: u64,
}

/// The layout of a generated archive (headers precomputed; data produced while streaming).
pub(super) struct GeneratedZip {
    entries: Vec<Entry>,
    central_and_end: Bytes,
    pattern: Bytes,
    len: u64,
}

impl GeneratedZip {
    /// An archive holding `bytes` bytes of log text (capped at 3 GiB) in entries
    /// `bench/{n}_Run step {n}.txt` of 8 MiB each.
    pub(super) fn new(bytes: u64) -> Self {
        let bytes = bytes.min(MAX_BYTES);
        let line = line();
        let mut pattern = BytesMut::with_capacity(CHUNK + 64);
        while pattern.len() < CHUNK + 64 {
            pattern.put_slice(&line);
        }
        let pattern = pattern.freeze();
        let count = bytes.div_ceil(ENTRY_BYTES).max(1);
        let mut crcs: HashMap<u64, u32> = HashMap::new();
        let mut entries = Vec::new();
        let mut central = BytesMut::new();
        let mut offset: u64 = 0;
        for n in 1..=count {
            let size = (bytes - (n - 1) * ENTRY_BYTES).min(ENTRY_BYTES);
            let crc = *crcs.entry(size).or_insert_with(|| crc_of(&pattern, size));
            let name = format!("bench/{n}_Run step {n}.txt");
            let mut header = BytesMut::new();
            header.put_u32_le(0x0403_4b50);
            put_common(&mut header, crc, size, &name);
            header.put_u16_le(0); // extra field length
            header.put_slice(name.as_bytes());

            central.put_u32_le(0x0201_4b50);
            central.put_u16_le(20); // version made by
            put_common(&mut central, crc, size, &name);
            central.put_u16_le(0); // extra field length
            central.put_u16_le(0); // comment length
            central.put_u16_le(0); // disk number
            central.put_u16_le(0); // internal attributes
            central.put_u32_le(0); // external attributes
            central.put_u32_le(u32::try_from(offset).unwrap_or(u32::MAX));
            central.put_slice(name.as_bytes());

            offset += header.len() as u64 + size;
            entries.push(Entry {
                local_header: header.freeze(),
                size,
            });
        }
        let central_len = central.len() as u64;
        let count16 = u16::try_from(count).unwrap_or(u16::MAX);
        central.put_u32_le(0x0605_4b50);
        central.put_u16_le(0);
        central.put_u16_le(0);
        central.put_u16_le(count16);
        central.put_u16_le(count16);
        central.put_u32_le(u32::try_from(central_len).unwrap_or(u32::MAX));
        central.put_u32_le(u32::try_from(offset).unwrap_or(u32::MAX));
        central.put_u16_le(0);
        let central_and_end = central.freeze();
        Self {
            len: offset + central_and_end.len() as u64,
            entries,
            central_and_end,
            pattern,
        }
    }

    /// The archive's exact length (`Content-Length`).
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// The archive's bytes, chunk by chunk.
    pub(super) fn chunks(self: Arc<Self>) -> impl Iterator<Item = Bytes> + Send + 'static {
        let mut entry = 0;
        // None: the entry's header is next; Some(o): data from offset o is next.
        let mut data_offset: Option<u64> = None;
        let mut done = false;
        std::iter::from_fn(move || {
            loop {
                if done {
                    return None;
                }
                let Some(current) = self.entries.get(entry) else {
                    done = true;
                    return Some(self.central_and_end.clone());
                };
                match data_offset {
                    None => {
                        data_offset = Some(0);
                        return Some(current.local_header.clone());
                    }
                    Some(o) if o < current.size => {
                        let n = (current.size - o).min(CHUNK as u64);
                        data_offset = Some(o + n);
                        let start = (o % 64) as usize;
                        return Some(self.pattern.slice(start..start + n as usize));
                    }
                    Some(_) => {
                        entry += 1;
                        data_offset = None;
                    }
                }
            }
        })
    }
}

/// The fields local and central headers share, from "version needed" to the name length.
fn put_common(out: &mut BytesMut, crc: u32, size: u64, name: &str) {
    let size32 = u32::try_from(size).unwrap_or(u32::MAX);
    out.put_u16_le(20); // version needed
    out.put_u16_le(FLAG_UTF8);
    out.put_u16_le(0); // stored
    out.put_u16_le(DOS_TIME);
    out.put_u16_le(DOS_DATE);
    out.put_u32_le(crc);
    out.put_u32_le(size32); // compressed
    out.put_u32_le(size32); // uncompressed
    out.put_u16_le(u16::try_from(name.len()).unwrap_or(u16::MAX));
}

fn crc_of(pattern: &Bytes, size: u64) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    let mut o = 0;
    while o < size {
        let n = (size - o).min(CHUNK as u64);
        let start = (o % 64) as usize;
        hasher.update(&pattern[start..start + n as usize]);
        o += n;
    }
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn generated_archive_is_a_valid_zip_of_the_promised_size() {
        let size = ENTRY_BYTES + 1000;
        let zip = Arc::new(GeneratedZip::new(size));
        let bytes: Vec<u8> = zip.clone().chunks().flat_map(|c| c.to_vec()).collect();
        assert_eq!(bytes.len() as u64, zip.len());
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 2);
        let mut total = 0;
        for i in 0..archive.len() {
            let mut file = archive.by_index(i).unwrap();
            let mut text = Vec::new();
            file.read_to_end(&mut text).unwrap(); // checks the CRC
            total += text.len() as u64;
        }
        assert_eq!(total, size);
    }
}
