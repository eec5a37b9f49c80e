//! What `logwire qlog summary|check|convert|plot` compute, over a [`Reader`]'s events.

use crate::events::EventKind;
use crate::header::{Header, Serialization, Trace, Version};
use crate::reader::{Damage, Event, Reader};
use crate::writer::{Streamer, StreamerConfig};
use crate::Result;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Per-connection numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionSummary {
    pub group: String,
    pub vantage_point: Option<String>,
    pub events: u64,
    pub first_ms: f64,
    pub last_ms: f64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub packets_lost: u64,
    pub min_rtt_ms: Option<f64>,
    pub smoothed_rtt_ms: Option<f64>,
    pub cwnd_min: Option<u64>,
    pub cwnd_max: Option<u64>,
    pub streams: BTreeSet<u64>,
    pub http_requests: u64,
}

impl ConnectionSummary {
    pub fn duration_ms(&self) -> f64 {
        (self.last_ms - self.first_ms).max(0.0)
    }
}

/// A whole file's summary.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub version: Version,
    pub serialization: Serialization,
    pub events: u64,
    pub by_name: BTreeMap<String, u64>,
    pub connections: Vec<ConnectionSummary>,
    pub damage: Vec<Damage>,
}

fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    crate::number::lenient_u64(cur)
}

fn f64_at(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(crate::number::lenient_f64)
}

fn is_request_headers(frame: &Value) -> bool {
    frame.get("frame_type").and_then(Value::as_str) == Some("headers")
        && frame
            .get("headers")
            .and_then(Value::as_array)
            .is_some_and(|h| h.iter().any(|f| f.get("name").and_then(Value::as_str) == Some(":method")))
}

/// Summarises every connection of a file.
pub fn summarise(input: &[u8]) -> Result<FileSummary> {
    let mut reader = Reader::new(input)?;
    let mut conns: BTreeMap<String, ConnectionSummary> = BTreeMap::new();
    let mut by_name = BTreeMap::new();
    let mut damage = Vec::new();
    let mut events = 0;
    let mut order = Vec::new();
    while let Some(item) = reader.next() {
        let e = match item {
            Ok(e) => e,
            Err(d) => {
                damage.push(d);
                continue;
            }
        };
        events += 1;
        *by_name.entry(e.name.to_string()).or_insert(0) += 1;
        let trace = &reader.traces[e.trace];
        let group = crate::record::trace_id(&e, trace, "trace");
        let c = conns.entry(group.clone()).or_insert_with(|| {
            order.push(group.clone());
            ConnectionSummary {
                group: group.clone(),
                vantage_point: trace.vantage_point_type().map(str::to_string),
                first_ms: e.time_ms,
                last_ms: e.time_ms,
                ..Default::default()
            }
        });
        add_event(c, &e, trace);
    }
    let connections = order.iter().filter_map(|g| conns.remove(g)).collect();
    Ok(FileSummary {
        version: reader.header.version.clone(),
        serialization: reader.header.serialization,
        events,
        by_name,
        connections,
        damage,
    })
}

fn add_event(c: &mut ConnectionSummary, e: &Event<'_>, trace: &Trace) {
    c.events += 1;
    c.first_ms = c.first_ms.min(e.time_ms);
    c.last_ms = c.last_ms.max(e.time_ms);
    let kind = EventKind::from_name(&e.name);
    let interesting = matches!(
        kind,
        Some(
            EventKind::PacketSent
                | EventKind::PacketReceived
                | EventKind::PacketLost
                | EventKind::RecoveryMetricsUpdated
                | EventKind::Http3FrameCreated
                | EventKind::Http3FrameParsed
        )
    );
    if !interesting {
        return;
    }
    let data = e.data(trace);
    let client = trace.vantage_point_type() == Some("client");
    match kind {
        Some(EventKind::PacketSent) | Some(EventKind::PacketReceived) => {
            let len = u64_at(&data, &["raw", "length"]).unwrap_or(0);
            if kind == Some(EventKind::PacketSent) {
                c.packets_sent += 1;
                c.bytes_sent += len;
            } else {
                c.packets_received += 1;
                c.bytes_received += len;
            }
            for f in data.get("frames").and_then(Value::as_array).into_iter().flatten() {
                if f.get("frame_type").and_then(Value::as_str) == Some("stream") {
                    if let Some(id) = u64_at(f, &["stream_id"]) {
                        c.streams.insert(id);
                    }
                }
            }
        }
        Some(EventKind::PacketLost) => c.packets_lost += 1,
        Some(EventKind::RecoveryMetricsUpdated) => {
            if let Some(rtt) = f64_at(&data, "min_rtt").or_else(|| f64_at(&data, "latest_rtt")) {
                if rtt > 0.0 {
                    c.min_rtt_ms = Some(c.min_rtt_ms.map_or(rtt, |m| m.min(rtt)));
                }
            }
            if let Some(s) = f64_at(&data, "smoothed_rtt") {
                c.smoothed_rtt_ms = Some(s);
            }
            if let Some(w) = u64_at(&data, &["congestion_window"]) {
                c.cwnd_min = Some(c.cwnd_min.map_or(w, |m| m.min(w)));
                c.cwnd_max = Some(c.cwnd_max.map_or(w, |m| m.max(w)));
            }
        }
        Some(EventKind::Http3FrameCreated) | Some(EventKind::Http3FrameParsed) => {
            if let Some(id) = u64_at(&data, &["stream_id"]) {
                c.streams.insert(id);
            }
            // A request is a HEADERS frame with :method, counted where it is sent (client) or received
            // (server), so each request counts once per trace.
            let counts = (kind == Some(EventKind::Http3FrameCreated)) == client || trace.vantage_point_type().is_none();
            if counts && data.get("frame").is_some_and(is_request_headers) {
                c.http_requests += 1;
            }
        }
        _ => {}
    }
}

/// Human-readable summary.
pub fn render_summary(name: &str, s: &FileSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{name}: qlog {} ({}), {} events, {} connection(s){}",
        s.version.as_str(),
        if s.serialization == Serialization::Seq { "JSON-SEQ" } else { "contained JSON" },
        s.events,
        s.connections.len(),
        if s.damage.is_empty() { String::new() } else { format!(", {} damaged record(s)", s.damage.len()) }
    );
    for c in &s.connections {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3} ms"));
        let _ = writeln!(
            out,
            "  connection {} ({}): {:.3} ms, {} events\n    sent {} packets / {} bytes; received {} packets / {} bytes; lost {}\n    min RTT {}, smoothed RTT {}; cwnd {}\n    streams {}; HTTP requests {}",
            c.group,
            c.vantage_point.as_deref().unwrap_or("unknown"),
            c.duration_ms(),
            c.events,
            c.packets_sent,
            c.bytes_sent,
            c.packets_received,
            c.bytes_received,
            c.packets_lost,
            opt(c.min_rtt_ms),
            opt(c.smoothed_rtt_ms),
            match (c.cwnd_min, c.cwnd_max) {
                (Some(a), Some(b)) => format!("{a}..{b} bytes"),
                _ => "-".into(),
            },
            c.streams.len(),
            c.http_requests
        );
    }
    for d in &s.damage {
        let _ = writeln!(out, "  {d}");
    }
    out
}

/// One problem found by [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The record (JSON-SEQ: 0 is the header; contained JSON: index in the trace), `None` for the file.
    pub record: Option<usize>,
    pub error: bool,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = if self.error { "error" } else { "warning" };
        match self.record {
            Some(r) => write!(f, "record {r}: {level}: {}", self.message),
            None => write!(f, "file: {level}: {}", self.message),
        }
    }
}

fn schema_has_suffix(uri: &str) -> bool {
    uri.rsplit_once('-').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Spec problems against the newest drafts, each with its record number.
pub fn check(input: &[u8]) -> Result<Vec<Problem>> {
    let reader = Reader::new(input)?;
    let mut out = Vec::new();
    let file = |error: bool, message: String| Problem { record: None, error, message };
    let h: &Header = &reader.header;
    let seq = h.serialization == Serialization::Seq;
    if h.version != Version::Newest {
        out.push(file(
            false,
            format!(
                "qlog_version {}: an old layout; the newest drafts use file_schema (main-schema-09+)",
                h.version.as_str()
            ),
        ));
    } else {
        let want = if seq { crate::MEDIA_TYPE_JSON_SEQ } else { crate::MEDIA_TYPE_JSON };
        match h.fields.get("serialization_format").and_then(Value::as_str) {
            Some(f) if f == want => {}
            Some(f) => {
                out.push(file(true, format!("serialization_format is {f:?}; the spec's media type is {want:?}")))
            }
            None => out.push(file(true, "serialization_format is missing".into())),
        }
        if let Some(s) = h.fields.get("file_schema").and_then(Value::as_str) {
            let want = if seq { crate::writer::FILE_SCHEMA_SEQ } else { crate::writer::FILE_SCHEMA_CONTAINED };
            if s != want {
                out.push(file(true, format!("file_schema is {s:?}; expected {want:?}")));
            }
        }
        if h.dual {
            out.push(file(false, "header carries both the newest and the 0.3 fields (quic-go style)".into()));
        }
    }
    let mut schemas: Vec<String> = Vec::new();
    for (i, t) in reader.traces.iter().enumerate() {
        match t.fields.get("event_schemas").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => {
                for s in a.iter().filter_map(Value::as_str) {
                    if !schema_has_suffix(s) {
                        out.push(file(true, format!("trace {i}: event schema {s:?} lacks the -<draft> suffix")));
                    }
                    schemas.push(s.to_string());
                }
            }
            _ if h.version == Version::Newest => {
                out.push(file(true, format!("trace {i}: event_schemas is missing or empty (at least one required)")))
            }
            _ => {}
        }
    }
    let mut last_time: Vec<f64> = vec![f64::NEG_INFINITY; reader.traces.len()];
    let mut warned_names = BTreeSet::new();
    for item in reader {
        let e = match item {
            Ok(e) => e,
            Err(d) => {
                out.push(Problem { record: Some(d.record), error: true, message: d.to_string() });
                continue;
            }
        };
        let rec = Some(e.record);
        if e.original_name != e.name && warned_names.insert(e.original_name.to_string()) {
            out.push(Problem {
                record: rec,
                error: false,
                message: format!("event name {} is {} in the newest drafts (first use)", e.original_name, e.name),
            });
        }
        let namespace = e.name.split(':').next().unwrap_or("");
        let declared = schemas.iter().any(|s| s.rsplit(':').next().is_some_and(|tail| tail.starts_with(namespace)));
        if EventKind::from_name(&e.name).is_none() && !declared && warned_names.insert(format!("unknown {}", e.name)) {
            out.push(Problem {
                record: rec,
                error: false,
                message: format!("event {} is in no known or declared schema (first use)", e.name),
            });
        }
        if e.data_raw.is_none() {
            out.push(Problem { record: rec, error: true, message: format!("{}: no data", e.name) });
        }
        if let Some(last) = last_time.get_mut(e.trace) {
            if e.time_ms < *last {
                out.push(Problem {
                    record: rec,
                    error: false,
                    message: format!(
                        "time goes backwards ({} ms after {} ms); events SHOULD be ascending",
                        e.time_ms, last
                    ),
                });
            }
            *last = e.time_ms;
        }
        if let Some(text) = e.data_raw {
            for (old, new) in [("\"packet_size\"", "raw.length"), ("\"owner\"", "initiator")] {
                if text.contains(old) {
                    out.push(Problem {
                        record: rec,
                        error: false,
                        message: format!("{}: field {} is {new} in the newest drafts", e.name, old.trim_matches('"')),
                    });
                }
            }
            if big_number_unquoted(text) {
                out.push(Problem {
                    record: rec,
                    error: false,
                    message: format!(
                        "{}: an integer above 2^53 is a JSON number (I-JSON: write it as a string)",
                        e.name
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// Whether the JSON text has an unquoted integer above 2^53 (unsafe for many JSON parsers).
fn big_number_unquoted(text: &str) -> bool {
    let b = text.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            c if !in_str && c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let frac = i < b.len() && matches!(b[i], b'.' | b'e' | b'E');
                if !frac && text[start..i].parse::<u128>().is_ok_and(|n| n > (1u128 << 53)) {
                    return true;
                }
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Target layout of [`convert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The newest drafts' names and header.
    Newest,
    /// The newest header plus `qlog_version`/`qlog_format`, and 0.3 event names, which qvis displays.
    Qvis,
}

/// The 0.3 name qvis knows for a newest-draft name.
pub fn legacy_name(name: &str) -> String {
    let Some((ns, event)) = name.split_once(':') else { return name.to_string() };
    match ns {
        "quic" => {
            let (cat, ev) = match event {
                "recovery_metrics_updated" => ("recovery", "metrics_updated"),
                "recovery_parameters_set" => ("recovery", "parameters_set"),
                "timer_updated" => ("recovery", "loss_timer_updated"),
                "packet_lost" | "congestion_state_updated" | "marked_for_retransmit" | "ecn_state_updated" => {
                    ("recovery", event)
                }
                "key_updated" => ("security", "key_updated"),
                "key_discarded" => ("security", "key_retired"),
                "tuple_assigned" => ("connectivity", "path_assigned"),
                "server_listening"
                | "connection_started"
                | "connection_closed"
                | "connection_id_updated"
                | "spin_bit_updated"
                | "connection_state_updated"
                | "mtu_updated" => ("connectivity", event),
                "udp_datagrams_sent" => ("transport", "datagrams_sent"),
                "udp_datagrams_received" => ("transport", "datagrams_received"),
                "udp_datagram_dropped" => ("transport", "datagram_dropped"),
                "stream_data_moved" => ("transport", "data_moved"),
                _ => ("transport", event),
            };
            format!("{cat}:{ev}")
        }
        "http3" => format!("http:{event}"),
        _ => name.to_string(),
    }
}

/// Rewrites a file in the newest layout (or qvis's), JSON-SEQ or contained JSON. Every trace goes into
/// one trace, each event carrying its connection's `group_id`. Returns the output and the damage skipped.
pub fn convert(input: &[u8], to: Serialization, layout: Layout) -> Result<(Vec<u8>, Vec<Damage>)> {
    let mut reader = Reader::new(input)?;
    let first = reader.traces.first();
    let config = StreamerConfig {
        serialization: to,
        title: reader.header.title().map(str::to_string),
        vantage_point: first.and_then(|t| t.vantage_point_type()).unwrap_or("unknown").to_string(),
        group_id: None,
        qvis_fields: layout == Layout::Qvis,
        // Absolute times are relative to 1970; relative ones keep their reference (unknown stays unknown).
        epoch_ms: first.and_then(|t| match t.time.format {
            crate::TimeFormat::Absolute => Some(0.0),
            _ => t.time.reference_epoch_ms,
        }),
        ..StreamerConfig::default()
    };
    let mut w = Streamer::new(Vec::with_capacity(input.len()), config)?;
    w.start_log()?;
    let mut damage = Vec::new();
    while let Some(item) = reader.next() {
        match item {
            Ok(e) => {
                let trace = &reader.traces[e.trace];
                let mut data = e.data(trace);
                let name = match layout {
                    Layout::Newest => e.name.to_string(),
                    Layout::Qvis => {
                        if let Some(obj) = data.as_object_mut() {
                            if let Some(v) = obj.remove("initiator") {
                                obj.insert("owner".into(), v);
                            }
                        }
                        legacy_name(&e.name)
                    }
                };
                w.add_event_json(e.time_ms, &name, &data, e.group(trace))?;
            }
            Err(d) => damage.push(d),
        }
    }
    Ok((w.finish_log()?, damage))
}

/// One drawn series: its points, colour and label.
type Line<'a> = (&'a Vec<(f64, f64)>, &'static str, &'static str);

/// Renders cwnd, bytes in flight and RTT over time, with packet-loss marks, as an SVG.
/// `connection` picks one connection by group id (default: the first one with metrics).
pub fn plot_svg(input: &[u8], connection: Option<&str>, title: &str) -> Result<String> {
    #[derive(Default)]
    struct Series {
        cwnd: Vec<(f64, f64)>,
        inflight: Vec<(f64, f64)>,
        srtt: Vec<(f64, f64)>,
        min_rtt: Vec<(f64, f64)>,
        latest_rtt: Vec<(f64, f64)>,
        lost: Vec<f64>,
    }
    let mut reader = Reader::new(input)?;
    let mut per: BTreeMap<String, Series> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    while let Some(item) = reader.next() {
        let Ok(e) = item else { continue };
        let kind = EventKind::from_name(&e.name);
        if !matches!(kind, Some(EventKind::RecoveryMetricsUpdated) | Some(EventKind::PacketLost)) {
            continue;
        }
        let trace = &reader.traces[e.trace];
        let group = crate::record::trace_id(&e, trace, "trace");
        if connection.is_some_and(|c| c != group) {
            continue;
        }
        if !per.contains_key(&group) {
            order.push(group.clone());
        }
        let s = per.entry(group).or_default();
        let t = e.time_ms;
        if kind == Some(EventKind::PacketLost) {
            s.lost.push(t);
            continue;
        }
        let d = e.data(trace);
        let push = |v: &mut Vec<(f64, f64)>, x: Option<f64>| {
            if let Some(x) = x {
                v.push((t, x));
            }
        };
        push(&mut s.cwnd, f64_at(&d, "congestion_window"));
        push(&mut s.inflight, f64_at(&d, "bytes_in_flight"));
        push(&mut s.srtt, f64_at(&d, "smoothed_rtt"));
        push(&mut s.min_rtt, f64_at(&d, "min_rtt"));
        push(&mut s.latest_rtt, f64_at(&d, "latest_rtt"));
    }
    let group = order.first().cloned().unwrap_or_default();
    let s = per.remove(&group).unwrap_or_default();

    let all_t = s.cwnd.iter().chain(&s.inflight).chain(&s.srtt).map(|p| p.0).chain(s.lost.iter().copied());
    let (t0, t1) = all_t.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| (a.min(t), b.max(t)));
    let (t0, t1) = if t0.is_finite() { (t0, if t1 > t0 { t1 } else { t0 + 1.0 }) } else { (0.0, 1.0) };
    let (w, h, left, right, top) = (960.0, 620.0, 90.0, 30.0, 60.0);
    let panel_h = 220.0;
    let panels = [(top, "bytes"), (top + panel_h + 70.0, "ms")];
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="28" font-size="16" font-weight="bold">{}</text>
<text x="{left}" y="46" fill="#555">connection {} · {} loss mark(s)</text>
"##,
        xml(title),
        xml(&group),
        s.lost.len()
    );
    let x_of = |t: f64| left + (t - t0) / (t1 - t0) * (w - left - right);
    let series_sets: [Vec<Line>; 2] = [
        vec![(&s.cwnd, "#1f77b4", "congestion window"), (&s.inflight, "#2ca02c", "bytes in flight")],
        vec![
            (&s.srtt, "#ff7f0e", "smoothed RTT"),
            (&s.min_rtt, "#9467bd", "min RTT"),
            (&s.latest_rtt, "#8c564b", "latest RTT"),
        ],
    ];
    for ((y0, unit), series) in panels.iter().zip(series_sets.iter()) {
        let max = series.iter().flat_map(|(v, _, _)| v.iter().map(|p| p.1)).fold(0.0f64, f64::max);
        let max = if max > 0.0 { max * 1.1 } else { 1.0 };
        let y_of = |v: f64| y0 + panel_h - v / max * panel_h;
        let _ = writeln!(
            svg,
            r##"<rect x="{left}" y="{y0}" width="{}" height="{panel_h}" fill="none" stroke="#999"/>"##,
            w - left - right
        );
        for i in 0..=4 {
            let v = max * f64::from(i) / 4.0;
            let y = y_of(v);
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                w - right,
                left - 6.0,
                y + 4.0,
                axis_label(v, unit)
            );
        }
        for i in 0..=5 {
            let t = t0 + (t1 - t0) * f64::from(i) / 5.0;
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{:.1} ms</text>"##,
                x_of(t),
                y0 + panel_h + 16.0,
                t - t0
            );
        }
        for t in &s.lost {
            let x = x_of(*t);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{y0}" y2="{:.1}" stroke="#d62728" stroke-dasharray="3,3"/><text x="{x:.1}" y="{:.1}" fill="#d62728" text-anchor="middle">✕</text>"##,
                y0 + panel_h,
                y0 - 3.0
            );
        }
        let mut legend_x = left;
        for (points, color, label) in series {
            if points.is_empty() {
                continue;
            }
            // Step lines: a metric keeps its value until the next update.
            let mut d = String::new();
            for (i, (t, v)) in points.iter().enumerate() {
                let (x, y) = (x_of(*t), y_of(*v));
                if i == 0 {
                    let _ = write!(d, "M{x:.1},{y:.1}");
                } else {
                    let _ = write!(d, " H{x:.1} V{y:.1}");
                }
            }
            let _ = write!(d, " H{:.1}", x_of(t1));
            let _ = writeln!(svg, r##"<path d="{d}" fill="none" stroke="{color}" stroke-width="1.5"/>"##);
            let _ = writeln!(
                svg,
                r##"<rect x="{legend_x}" y="{:.1}" width="12" height="3" fill="{color}"/><text x="{:.1}" y="{:.1}">{label}</text>"##,
                y0 + panel_h + 32.0,
                legend_x + 16.0,
                y0 + panel_h + 37.0
            );
            legend_x += 170.0;
        }
        if !s.lost.is_empty() {
            let _ = writeln!(
                svg,
                r##"<text x="{legend_x}" y="{:.1}" fill="#d62728">✕ packet lost</text>"##,
                y0 + panel_h + 37.0
            );
        }
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

fn axis_label(v: f64, unit: &str) -> String {
    match unit {
        "bytes" if v >= 1e6 => format!("{:.1} MB", v / 1e6),
        "bytes" if v >= 1e3 => format!("{:.0} kB", v / 1e3),
        "bytes" => format!("{v:.0} B"),
        _ => format!("{v:.1} ms"),
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_numbers() {
        assert!(big_number_unquoted(r#"{"ssthresh":18446744073709551615}"#));
        assert!(!big_number_unquoted(r#"{"ssthresh":"18446744073709551615","x":12}"#));
        assert!(!big_number_unquoted(r#"{"t":1.8446744073709551615}"#));
    }

    #[test]
    fn legacy_names_invert_normalisation() {
        for n in ["transport:packet_sent", "recovery:metrics_updated", "security:key_retired", "http:frame_parsed"] {
            assert_eq!(legacy_name(&crate::normalise::event_name(n, true)), n);
        }
    }
}
