//! The writer: a buffered streamer in the spirit of the qlog crate's `QlogStreamer`.
//!
//! Events are serialised into an internal buffer that goes to the output in 64 KiB writes (or through a
//! gzip/zstd encoder), so logging never costs a syscall per token. It writes the spec's media types,
//! `event_schemas` with the draft suffix, and optionally the header fields qvis needs
//! (`qlog_version`/`qlog_format`, as quic-go does). No event type makes it panic.
//!
//! Frame mode (as `QlogStreamer::add_frame`): [`Streamer::start_packet`] writes a packet event up to its
//! `frames` array, [`Streamer::add_frame`] appends frames as the stack builds them, and
//! [`Streamer::finish_frames`] closes the event.

use crate::background::BackgroundWriter;
use crate::error::{QlogError, Result};
use crate::events::{EventData, PacketHeader, QuicFrame, RawInfo};
use crate::header::Serialization;
use crate::reader::Event;
use serde::Serialize;
use std::io::Write;
use std::time::Instant;

/// The event schemas this writer's events belong to, with the draft suffix the spec requires.
pub const QUIC_SCHEMA: &str = "urn:ietf:params:qlog:events:quic-13";
pub const HTTP3_SCHEMA: &str = "urn:ietf:params:qlog:events:http3-13";
pub const LOGLEVEL_SCHEMA: &str = "urn:ietf:params:qlog:events:loglevel-14";
pub const FILE_SCHEMA_SEQ: &str = "urn:ietf:params:qlog:file:sequential";
pub const FILE_SCHEMA_CONTAINED: &str = "urn:ietf:params:qlog:file:contained";

const FLUSH_AT: usize = 64 * 1024;

/// Output compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    #[cfg(feature = "gzip")]
    Gzip,
    #[cfg(feature = "zstd")]
    Zstd,
}

/// What goes into the header.
#[derive(Debug, Clone)]
pub struct StreamerConfig {
    pub serialization: Serialization,
    pub title: Option<String>,
    pub description: Option<String>,
    /// `client`, `server`, `network` or `unknown`.
    pub vantage_point: String,
    pub vantage_point_name: Option<String>,
    /// The connection (`common_fields.group_id`).
    pub group_id: Option<String>,
    pub event_schemas: Vec<String>,
    /// Also write `qlog_version: "0.3"` and `qlog_format`, which qvis requires.
    pub qvis_fields: bool,
    /// Milliseconds since the Unix epoch that event time 0 stands for (`reference_time.epoch`); `None`:
    /// a monotonic clock with an unknown epoch.
    pub epoch_ms: Option<f64>,
    pub compression: Compression,
}

impl Default for StreamerConfig {
    fn default() -> Self {
        StreamerConfig {
            serialization: Serialization::Seq,
            title: None,
            description: None,
            vantage_point: "unknown".into(),
            vantage_point_name: None,
            group_id: None,
            event_schemas: vec![QUIC_SCHEMA.into(), HTTP3_SCHEMA.into(), LOGLEVEL_SCHEMA.into()],
            qvis_fields: false,
            epoch_ms: None,
            compression: Compression::None,
        }
    }
}

enum Sink<W: Write> {
    Plain(W),
    /// Whole buffers go to a writer thread (see [`Streamer::background`]).
    Background(BackgroundWriter<W>),
    #[cfg(feature = "gzip")]
    Gzip(flate2::write::GzEncoder<W>),
    #[cfg(feature = "zstd")]
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Sink<W> {
    /// Writes out `buf` and leaves it empty (for a writer thread: swapped for an empty one, not copied).
    fn take(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(buf)?,
            Sink::Background(w) => return w.hand_over(buf),
            #[cfg(feature = "gzip")]
            Sink::Gzip(w) => w.write_all(buf)?,
            #[cfg(feature = "zstd")]
            Sink::Zstd(w) => w.write_all(buf)?,
        }
        buf.clear();
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Background(w) => w.sync(),
            #[cfg(feature = "gzip")]
            Sink::Gzip(w) => w.flush(),
            #[cfg(feature = "zstd")]
            Sink::Zstd(w) => w.flush(),
        }
    }

    fn finish(self) -> std::io::Result<W> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Background(w) => w.finish(),
            #[cfg(feature = "gzip")]
            Sink::Gzip(w) => w.finish(),
            #[cfg(feature = "zstd")]
            Sink::Zstd(w) => w.finish(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Events,
    Frames { first: bool },
    Finished,
}

/// A buffered qlog writer. See the module docs.
pub struct Streamer<W: Write> {
    sink: Option<Sink<W>>,
    buf: Vec<u8>,
    config: StreamerConfig,
    state: State,
    events: u64,
    start: Instant,
}

impl<W: Write> Streamer<W> {
    pub fn new(out: W, config: StreamerConfig) -> Result<Streamer<W>> {
        let sink = match config.compression {
            Compression::None => Sink::Plain(out),
            #[cfg(feature = "gzip")]
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(out, flate2::Compression::fast())),
            #[cfg(feature = "zstd")]
            Compression::Zstd => Sink::Zstd(zstd::stream::write::Encoder::new(out, 3)?),
        };
        Ok(Streamer::with_sink(sink, config))
    }

    fn with_sink(sink: Sink<W>, config: StreamerConfig) -> Streamer<W> {
        Streamer {
            sink: Some(sink),
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            config,
            state: State::Ready,
            events: 0,
            start: Instant::now(),
        }
    }

    /// Like [`Streamer::new`], with the writes to `out` on their own thread ([`BackgroundWriter`]): the
    /// caller's thread formats events and hands each filled buffer over whole. Compression would run on
    /// the caller's thread before the hand-off, so for it pass a `BackgroundWriter` to [`Streamer::new`].
    pub fn background(out: W, config: StreamerConfig) -> Result<Streamer<W>>
    where
        W: Send + 'static,
    {
        if config.compression != Compression::None {
            return Err(QlogError::State("Streamer::background writes uncompressed output"));
        }
        Ok(Streamer::with_sink(Sink::Background(BackgroundWriter::spawn(out)?), config))
    }

    /// Writes the header. Event times given to [`Streamer::add_event_now`] count from here.
    pub fn start_log(&mut self) -> Result<()> {
        if self.state != State::Ready {
            return Err(QlogError::State("start_log called twice"));
        }
        self.start = Instant::now();
        let header = header_json(&self.config);
        match self.config.serialization {
            Serialization::Seq => {
                self.buf.push(crate::RS);
                self.buf.extend_from_slice(header.as_bytes());
                self.buf.push(b'\n');
            }
            Serialization::Contained => {
                // The header object is written open: its last trace's `events` array receives the events.
                let open = header.strip_suffix("}]}").unwrap_or(&header);
                self.buf.extend_from_slice(open.as_bytes());
                self.buf.extend_from_slice(b",\"events\":[");
            }
        }
        self.state = State::Events;
        self.maybe_flush()
    }

    /// Milliseconds since `start_log`.
    pub fn elapsed_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }

    /// Adds one typed event at `time_ms`.
    pub fn add_event(&mut self, time_ms: f64, data: &EventData) -> Result<()> {
        // The hot events by hand, each name and key one constant literal.
        let name_and_data: &[u8] = match data {
            EventData::PacketSent(_) => b",\"name\":\"quic:packet_sent\",\"data\":",
            EventData::PacketReceived(_) => b",\"name\":\"quic:packet_received\",\"data\":",
            EventData::RecoveryMetricsUpdated(_) => b",\"name\":\"quic:recovery_metrics_updated\",\"data\":",
            _ => return self.add_event_json(time_ms, data.name(), data, None),
        };
        self.begin_event()?;
        self.buf.extend_from_slice(b"{\"time\":");
        write_f64(&mut self.buf, time_ms);
        self.buf.extend_from_slice(name_and_data);
        match data {
            EventData::PacketSent(p) | EventData::PacketReceived(p) => crate::fastjson::packet(&mut self.buf, p),
            EventData::RecoveryMetricsUpdated(m) => crate::fastjson::recovery_metrics(&mut self.buf, m),
            _ => {}
        }
        self.buf.push(b'}');
        self.end_event()
    }

    /// Adds one typed event, timed now.
    pub fn add_event_now(&mut self, data: &EventData) -> Result<()> {
        let t = self.elapsed_ms();
        self.add_event(t, data)
    }

    /// Adds an event with any serialisable data (extension events) and an optional `group_id`.
    pub fn add_event_json<D: Serialize + ?Sized>(
        &mut self,
        time_ms: f64,
        name: &str,
        data: &D,
        group_id: Option<&str>,
    ) -> Result<()> {
        self.begin_event()?;
        self.buf.extend_from_slice(b"{\"time\":");
        write_f64(&mut self.buf, time_ms);
        self.buf.extend_from_slice(b",\"name\":");
        crate::fastjson::str(&mut self.buf, name);
        self.buf.extend_from_slice(b",\"data\":");
        serde_json::to_writer(&mut self.buf, data).map_err(QlogError::Serialize)?;
        if let Some(g) = group_id {
            self.buf.extend_from_slice(b",\"group_id\":");
            crate::fastjson::str(&mut self.buf, g);
        }
        self.buf.push(b'}');
        self.end_event()
    }

    /// Copies an event read by [`crate::Reader`] exactly as it was written.
    pub fn add_raw_event(&mut self, event: &Event<'_>) -> Result<()> {
        self.begin_event()?;
        self.buf.extend_from_slice(event.raw.as_bytes());
        self.end_event()
    }

    /// Frame mode: writes a `quic:packet_sent` or `quic:packet_received` event up to its frames.
    pub fn start_packet(
        &mut self,
        time_ms: f64,
        sent: bool,
        header: &PacketHeader,
        raw: Option<&RawInfo>,
    ) -> Result<()> {
        self.begin_event()?;
        self.buf.extend_from_slice(b"{\"time\":");
        write_f64(&mut self.buf, time_ms);
        let name: &[u8] = if sent { b"quic:packet_sent" } else { b"quic:packet_received" };
        self.buf.extend_from_slice(b",\"name\":\"");
        self.buf.extend_from_slice(name);
        self.buf.extend_from_slice(b"\",\"data\":{\"header\":");
        crate::fastjson::header(&mut self.buf, header);
        if let Some(raw) = raw {
            self.buf.extend_from_slice(b",\"raw\":");
            crate::fastjson::raw(&mut self.buf, raw);
        }
        self.buf.extend_from_slice(b",\"frames\":[");
        self.state = State::Frames { first: true };
        Ok(())
    }

    /// Frame mode: one more frame of the open packet event.
    pub fn add_frame(&mut self, frame: &QuicFrame) -> Result<()> {
        let State::Frames { first } = self.state else {
            return Err(QlogError::State("add_frame outside start_packet/finish_frames"));
        };
        if !first {
            self.buf.push(b',');
        }
        crate::fastjson::frame(&mut self.buf, frame);
        self.state = State::Frames { first: false };
        Ok(())
    }

    /// Frame mode: closes the open packet event.
    pub fn finish_frames(&mut self) -> Result<()> {
        if !matches!(self.state, State::Frames { .. }) {
            return Err(QlogError::State("finish_frames without start_packet"));
        }
        self.buf.extend_from_slice(b"]}}");
        self.state = State::Events;
        self.end_event()
    }

    fn begin_event(&mut self) -> Result<()> {
        match self.state {
            State::Events => {}
            State::Ready => return Err(QlogError::State("add an event after start_log")),
            State::Frames { .. } => return Err(QlogError::State("finish_frames before the next event")),
            State::Finished => return Err(QlogError::State("the log is finished")),
        }
        match self.config.serialization {
            Serialization::Seq => self.buf.push(crate::RS),
            Serialization::Contained if self.events > 0 => self.buf.push(b','),
            Serialization::Contained => {}
        }
        Ok(())
    }

    fn end_event(&mut self) -> Result<()> {
        if self.config.serialization == Serialization::Seq {
            self.buf.push(b'\n');
        }
        self.events += 1;
        self.maybe_flush()
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<()> {
        match &mut self.sink {
            Some(sink) if !self.buf.is_empty() => sink.take(&mut self.buf)?,
            _ => self.buf.clear(),
        }
        Ok(())
    }

    /// Writes what is buffered and flushes the output (and the compressor's block).
    pub fn flush(&mut self) -> Result<()> {
        self.write_out()?;
        if let Some(sink) = &mut self.sink {
            sink.flush()?;
        }
        Ok(())
    }

    /// Events written so far.
    pub fn event_count(&self) -> u64 {
        self.events
    }

    /// Closes the log (contained JSON needs its closing brackets), flushes, and returns the output.
    pub fn finish_log(mut self) -> Result<W> {
        if let State::Frames { .. } = self.state {
            self.finish_frames()?;
        }
        if self.config.serialization == Serialization::Contained && self.state == State::Events {
            self.buf.extend_from_slice(b"]}]}");
        }
        self.state = State::Finished;
        self.write_out()?;
        let sink = self.sink.take().ok_or(QlogError::State("the log is finished"))?;
        Ok(sink.finish()?)
    }
}

impl<W: Write> Drop for Streamer<W> {
    fn drop(&mut self) {
        // Best effort: whatever is buffered reaches the output even without finish_log.
        if self.sink.is_some() {
            let _ = self.flush();
        }
    }
}

fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        crate::fastjson::f64(buf, v);
    } else {
        buf.push(b'0');
    }
}

/// The header JSON (for contained JSON: with one trace whose events are to be appended).
pub fn header_json(c: &StreamerConfig) -> String {
    use serde_json::{json, Map, Value};
    let seq = c.serialization == Serialization::Seq;
    let mut top = Map::new();
    top.insert("file_schema".into(), json!(if seq { FILE_SCHEMA_SEQ } else { FILE_SCHEMA_CONTAINED }));
    top.insert("serialization_format".into(), json!(c.serialization.media_type()));
    if c.qvis_fields {
        top.insert("qlog_version".into(), json!("0.3"));
        top.insert("qlog_format".into(), json!(if seq { "JSON-SEQ" } else { "JSON" }));
    }
    if let Some(t) = &c.title {
        top.insert("title".into(), json!(t));
    }
    if let Some(d) = &c.description {
        top.insert("description".into(), json!(d));
    }
    let mut vp = Map::new();
    if let Some(n) = &c.vantage_point_name {
        vp.insert("name".into(), json!(n));
    }
    vp.insert("type".into(), json!(c.vantage_point));
    let mut common = Map::new();
    if let Some(g) = &c.group_id {
        common.insert("group_id".into(), json!(g));
    }
    // Without a wall-clock anchor, times count from an unknown moment on a monotonic clock.
    let reference = match c.epoch_ms {
        Some(ms) => json!({"clock_type": "system", "epoch": rfc3339(ms)}),
        None => json!({"clock_type": "monotonic", "epoch": "unknown"}),
    };
    common.insert("reference_time".into(), reference);
    common.insert("time_format".into(), json!("relative_to_epoch"));
    let mut trace = Map::new();
    if let Some(t) = &c.title {
        trace.insert("title".into(), json!(t));
    }
    trace.insert("vantage_point".into(), Value::Object(vp));
    trace.insert("common_fields".into(), Value::Object(common));
    trace.insert("event_schemas".into(), json!(c.event_schemas));
    // Key order as in the spec's examples (serde_json's map is sorted unless `preserve_order`).
    let mut out = String::from("{");
    let order = ["file_schema", "serialization_format", "qlog_version", "qlog_format", "title", "description"];
    for (i, key) in order.iter().filter(|k| top.contains_key(**k)).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{}:{}", json!(key), top[*key]));
    }
    let mut trace_text = String::from("{");
    for (i, key) in ["title", "vantage_point", "common_fields", "event_schemas"]
        .iter()
        .filter(|k| trace.contains_key(**k))
        .enumerate()
    {
        if i > 0 {
            trace_text.push(',');
        }
        trace_text.push_str(&format!("{}:{}", json!(key), trace[*key]));
    }
    trace_text.push('}');
    if seq {
        out.push_str(&format!(",\"trace\":{trace_text}}}"));
    } else {
        out.push_str(&format!(",\"traces\":[{trace_text}]}}"));
    }
    out
}

/// Milliseconds since the epoch as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(ms: f64) -> String {
    let total_ms = ms.max(0.0).round() as i64;
    let (secs, millis) = (total_ms.div_euclid(1000), total_ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_the_reader() {
        let ms = 1_727_784_000_123.0;
        assert_eq!(rfc3339(ms), "2024-10-01T12:00:00.123Z");
        assert_eq!(crate::header::rfc3339_ms(&rfc3339(ms)), Some(ms));
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn background_write_errors_reach_the_caller() {
        let mut s = Streamer::background(Failing, StreamerConfig::default()).unwrap();
        s.start_log().unwrap();
        let log = EventData::Log(crate::LogLevel::Info, crate::LogMessage { code: None, message: "x".repeat(1000) });
        // The first hand-over fails on the thread; a later one or the finish reports it.
        let mut result = Ok(());
        for i in 0..1000 {
            result = result.and_then(|_| s.add_event(f64::from(i), &log));
        }
        let finished = s.finish_log().map(|_| ());
        let err = result.and(finished).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        #[cfg(feature = "gzip")]
        {
            let gzip = StreamerConfig { compression: Compression::Gzip, ..StreamerConfig::default() };
            assert!(matches!(Streamer::background(Vec::new(), gzip), Err(QlogError::State(_))));
        }
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let mut s = Streamer::new(Vec::new(), StreamerConfig::default()).unwrap();
        assert!(s.add_frame(&QuicFrame::Ping).is_err());
        let log = EventData::Log(crate::LogLevel::Info, crate::LogMessage { code: None, message: "hi".into() });
        assert!(s.add_event(0.0, &log).is_err());
        s.start_log().unwrap();
        s.add_event(0.0, &log).unwrap();
        let out = s.finish_log().unwrap();
        assert!(String::from_utf8(out).unwrap().contains("\"name\":\"loglevel:info\""));
    }
}
