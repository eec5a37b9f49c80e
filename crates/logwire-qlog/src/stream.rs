//! Reading a JSON-SEQ file as a stream: one reused buffer instead of the whole file in memory, so a large
//! file costs neither a copy of itself nor the page faults of a fresh allocation. Events are the same as
//! [`crate::Reader`]'s (same record numbers, offsets, damage); they borrow the buffer, so they are handed
//! to a callback. Contained JSON is one document: read it with [`crate::Reader`].

use crate::error::{QlogError, Result};
use crate::header::{Header, Trace};
use crate::reader::{decode_event, seq_header, Damage, Event, RS};
use crate::tail::MAX_RECORD;
use std::io::Read;

const CHUNK: usize = 256 * 1024;

/// Reads JSON-SEQ from `input`, calling `on_event` with every event (or the damage of a record that
/// could not be read) and its trace; returns the header and the trace at the end.
pub fn read_seq<R: Read>(
    input: R,
    on_event: impl FnMut(std::result::Result<Event<'_>, Damage>, &Trace),
) -> Result<(Header, Trace)> {
    read_seq_chunked(input, CHUNK, on_event)
}

struct Buffer<R> {
    input: R,
    buf: Vec<u8>,
    /// Bytes of `buf` filled from the input.
    len: usize,
    /// File offset of `buf[0]`.
    base: usize,
    eof: bool,
}

impl<R: Read> Buffer<R> {
    /// Drops `buf[..keep_from]` and reads more (growing the buffer when it is full).
    fn fill(&mut self, keep_from: usize, chunk: usize) -> Result<()> {
        // A record longer than a read is refilled with its RS already at 0: nothing to move.
        if keep_from > 0 {
            self.buf.copy_within(keep_from..self.len, 0);
            self.len -= keep_from;
            self.base += keep_from;
        }
        if self.buf.len() - self.len < chunk / 2 {
            self.buf.resize(self.len + chunk, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.len..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(QlogError::Io(e)),
            }
            return Ok(());
        }
    }

    /// The next record after `pos` (an RS or the start): `(start of body, end)`, reading more as needed.
    /// `None` at the end of the input.
    fn record(&mut self, pos: &mut usize, chunk: usize) -> Result<Option<(usize, usize)>> {
        // Bytes of the body already searched for the next RS: a record longer than a read is searched
        // once, not again after every refill.
        let mut searched = 0;
        loop {
            match memchr::memchr(RS, &self.buf[*pos..self.len]) {
                Some(i) => {
                    let body = *pos + i + 1;
                    let from = body + searched;
                    if let Some(j) = memchr::memchr(RS, &self.buf[from..self.len]) {
                        return Ok(Some((body, from + j)));
                    }
                    if self.eof {
                        return Ok(Some((body, self.len)));
                    }
                    if self.len - body >= MAX_RECORD {
                        // Cut an endless record here; the rest parses as damage.
                        return Ok(Some((body, body + MAX_RECORD)));
                    }
                    searched = self.len - body;
                    let keep = *pos + i;
                    self.fill(keep, chunk)?;
                    *pos = 0;
                }
                None if self.eof => return Ok(None),
                None => {
                    // Nothing but bytes before any RS: drop them.
                    let len = self.len;
                    self.fill(len, chunk)?;
                    *pos = 0;
                }
            }
        }
    }
}

pub(crate) fn read_seq_chunked<R: Read>(
    input: R,
    chunk: usize,
    mut on_event: impl FnMut(std::result::Result<Event<'_>, Damage>, &Trace),
) -> Result<(Header, Trace)> {
    let mut b = Buffer { input, buf: vec![0; chunk], len: 0, base: 0, eof: false };
    b.fill(0, chunk)?;
    while !b.eof && b.len == 0 {
        b.fill(0, chunk)?;
    }
    if crate::reader::sniff(&b.buf[..b.len])? != crate::Serialization::Seq {
        return Err(QlogError::State("contained JSON is one document: read it with Reader::new"));
    }
    let mut pos = 0;
    let (body, end) = b.record(&mut pos, chunk)?.ok_or(QlogError::Empty)?;
    let header_text =
        std::str::from_utf8(&b.buf[body..end]).map_err(|e| QlogError::HeaderJson(serde::de::Error::custom(e)))?;
    let (header, mut trace) = seq_header(header_text)?;
    pos = end;
    let mut record = 1;
    while let Some((body, end)) = b.record(&mut pos, chunk)? {
        pos = end;
        let bytes = &b.buf[body..end];
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let offset = b.base + body - 1;
        let last = b.eof && end == b.len;
        let result =
            match std::str::from_utf8(bytes) {
                Ok(text) => decode_event(text, &header, &mut trace, record, offset, 0)
                    .map_err(|(message, eof)| Damage { record, offset, truncated: eof && last, message }),
                Err(e) => Err(Damage { record, offset, truncated: false, message: format!("not UTF-8: {e}") }),
            };
        on_event(result, &trace);
        record += 1;
    }
    Ok((header, trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/qlog");
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn same_events_as_the_whole_file_reader_at_any_chunk_size() {
        let mut damaged = fixture("quinn-0.11.19-server.sqlog");
        damaged.extend_from_slice(
            b"\x1e{\"time\":1,\"na\x1e\x1e\n\x1e{\"time\":2,\"name\":\"quic:packet_sent\",\"data\":{\"hea",
        );
        for bytes in [fixture("ngtcp2-0.12.1-client-clean.sqlog"), damaged] {
            let (_, traces, events, damage) = crate::Reader::new(&bytes).unwrap().read_all();
            let whole: Vec<String> = events
                .iter()
                .map(|e| format!("{} {} {} {} {:?}", e.record, e.offset, e.name, e.time_ms, e.typed(&traces[0])))
                .chain(damage.iter().map(|d| d.to_string()))
                .collect();
            for chunk in [7, 64, 1000, CHUNK] {
                let (mut seen, mut hurt) = (Vec::new(), Vec::new());
                read_seq_chunked(&bytes[..], chunk, |r, t| match r {
                    Ok(e) => seen.push(format!("{} {} {} {} {:?}", e.record, e.offset, e.name, e.time_ms, e.typed(t))),
                    Err(d) => hurt.push(d.to_string()),
                })
                .unwrap();
                seen.extend(hurt);
                assert_eq!(seen, whole, "chunk {chunk}");
            }
        }
    }
}
