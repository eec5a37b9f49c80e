//! Captured streams (for `logwire g3 import`): syslog records one per line or RFC 6587 octet-counted, or a
//! fluentd forward byte stream, told apart by the first byte. Sans-IO: feed chunks, collect records.

use crate::error::DecodeError;
use crate::forward::{event_to_log, ForwardDecoder, ForwardMessage};
use crate::framing::SyslogFramer;
use crate::log::G3Log;
use bytes::BytesMut;

/// What a capture holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// Syslog records, newline-delimited or octet-counted.
    Syslog,
    /// fluentd forward messages (msgpack).
    Fluentd,
}

impl StreamFormat {
    /// `<` or a digit starts syslog; a msgpack array (or `nil`) starts fluentd forward.
    pub fn detect(first: u8) -> Option<StreamFormat> {
        match first {
            b'<' | b'0'..=b'9' => Some(StreamFormat::Syslog),
            0x90..=0x9f | 0xdc | 0xdd | 0xc0 => Some(StreamFormat::Fluentd),
            _ => None,
        }
    }
}

/// Decodes a capture chunk by chunk. Per-record errors come out with the records (the stream goes on);
/// an `Err` from [`StreamDecoder::feed`] means the stream cannot be followed any further.
#[derive(Debug)]
pub struct StreamDecoder {
    format: Option<StreamFormat>,
    framer: SyslogFramer,
    forward: ForwardDecoder,
    buf: BytesMut,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        StreamDecoder::new(None)
    }
}

impl StreamDecoder {
    /// `None`: detect the format from the first byte.
    pub fn new(format: Option<StreamFormat>) -> Self {
        StreamDecoder {
            format,
            framer: SyslogFramer::default(),
            forward: ForwardDecoder::default(),
            buf: BytesMut::new(),
        }
    }

    pub fn format(&self) -> Option<StreamFormat> {
        self.format
    }

    /// Add `chunk` and push every record it completes to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Result<G3Log, DecodeError>>) -> Result<(), DecodeError> {
        self.buf.extend_from_slice(chunk);
        self.drain(out, false)
    }

    /// End of stream: the last unterminated line, or an error if a frame was cut short.
    pub fn finish(&mut self, out: &mut Vec<Result<G3Log, DecodeError>>) -> Result<(), DecodeError> {
        self.drain(out, true)?;
        if !self.buf.is_empty() {
            return Err(DecodeError::Framing("the stream ends inside a record"));
        }
        Ok(())
    }

    fn drain(&mut self, out: &mut Vec<Result<G3Log, DecodeError>>, eof: bool) -> Result<(), DecodeError> {
        let format = match self.format {
            Some(f) => f,
            None => match self.buf.first() {
                None => return Ok(()),
                Some(&b) => {
                    let f =
                        StreamFormat::detect(b).ok_or(DecodeError::Framing("neither syslog nor fluentd forward"))?;
                    self.format = Some(f);
                    f
                }
            },
        };
        match format {
            StreamFormat::Syslog => loop {
                let frame =
                    if eof { self.framer.decode_eof(&mut self.buf)? } else { self.framer.decode(&mut self.buf)? };
                match frame {
                    Some(f) => out.push(crate::syslog::decode(&f)),
                    None => return Ok(()),
                }
            },
            StreamFormat::Fluentd => loop {
                match self.forward.decode(&mut self.buf)? {
                    Some(ForwardMessage::Events { tag, events, .. }) => {
                        out.extend(events.iter().map(|(t, r)| event_to_log(&tag, *t, r)));
                    }
                    Some(ForwardMessage::Heartbeat) => {}
                    Some(ForwardMessage::Ping(_)) => {
                        return Err(DecodeError::Forward("a handshake PING in a capture".into()))
                    }
                    None => return Ok(()),
                }
            },
        }
    }
}
