//! Old names and fields to the newest drafts (main-schema-14, quic-events-13, h3-events-13).
//!
//! Names: `transport:X`/`connectivity:X`/`security:X` → `quic:X`, `recovery:metrics_updated` →
//! `quic:recovery_metrics_updated`, `recovery:loss_timer_updated` → `quic:timer_updated`, `http:X`/`h3:X`
//! (before the newest layout) → `http3:X`, `generic:error` → `loglevel:error`, plus the renames inside
//! `quic:` (`datagrams_sent` → `udp_datagrams_sent`, `key_retired` → `key_discarded`, `path_assigned` →
//! `tuple_assigned`, `frames_processed` → `frames_parsed`, `data_moved` → `stream_data_moved`).
//! `qpack:` events (gone from the drafts, still written by neqo) keep their names.
//!
//! Fields: `owner` → `initiator`; `header.packet_size`/`header.length` → `raw.length`,
//! `header.payload_length` → `raw.payload_length`; aioquic's `cwnd` → `congestion_window`; RTTs in seconds
//! (quinn 0.11) → milliseconds.

use serde_json::{Map, Value};
use std::borrow::Cow;

/// The normalised name of an event written as `name` in a file whose names are old (`old_names`).
pub fn event_name(name: &str, old_names: bool) -> Cow<'_, str> {
    // The bulk of every file, already newest: skip the lookups.
    if matches!(name, "quic:packet_sent" | "quic:packet_received") {
        return Cow::Borrowed(name);
    }
    let Some((category, event)) = name.split_once(':') else {
        return Cow::Borrowed(name);
    };
    let quic = |e: &str| -> Cow<'static, str> { Cow::Owned(format!("quic:{}", quic_event(e))) };
    match category {
        "quic" => match quic_event(event) {
            e if e == event => Cow::Borrowed(name),
            e => Cow::Owned(format!("quic:{e}")),
        },
        "transport" | "connectivity" | "security" => quic(event),
        "recovery" => Cow::Owned(format!("quic:{}", recovery_event(event))),
        "h3" => Cow::Owned(format!("http3:{event}")),
        "http" if old_names && !event.starts_with("capsule_") => Cow::Owned(format!("http3:{event}")),
        "generic" => match event {
            "error" | "warning" | "info" | "debug" | "verbose" => Cow::Owned(format!("loglevel:{event}")),
            _ => Cow::Borrowed(name),
        },
        _ => Cow::Borrowed(name),
    }
}

/// Renames inside the QUIC schema over the drafts (and the 2019 draft-00/01 spellings).
fn quic_event(event: &str) -> &str {
    match event {
        "datagrams_sent" | "datagram_sent" => "udp_datagrams_sent",
        "datagrams_received" | "datagram_received" => "udp_datagrams_received",
        "datagram_dropped" => "udp_datagram_dropped",
        "key_retired" | "key_retire" => "key_discarded",
        "key_update" => "key_updated",
        "path_assigned" => "tuple_assigned",
        "frames_processed" => "frames_parsed",
        "data_moved" => "stream_data_moved",
        "loss_timer_updated" => "timer_updated",
        "spin_bit_update" => "spin_bit_updated",
        "connection_new" => "connection_started",
        "connection_state_update" => "connection_state_updated",
        "transport_parameters_update" | "parameters_update" => "parameters_set",
        other => other,
    }
}

fn recovery_event(event: &str) -> &str {
    match event {
        "metrics_updated" | "metric_update" | "metrics_update" => "recovery_metrics_updated",
        "parameters_set" => "recovery_parameters_set",
        "loss_timer_updated" | "loss_timer_set" | "loss_alarm_set" => "timer_updated",
        "congestion_state_update" => "congestion_state_updated",
        other => quic_event(other),
    }
}

/// Normalises an event's data in place to the newest field names and units.
pub fn event_data(name: &str, data: &mut Value, rtt_in_seconds: bool) {
    let Some(obj) = data.as_object_mut() else { return };
    rename(obj, "owner", "initiator");
    unwrap_token(obj);
    match name {
        "quic:packet_sent"
        | "quic:packet_received"
        | "quic:packet_lost"
        | "quic:packet_dropped"
        | "quic:packet_buffered" => {
            if let Some(Value::Array(frames)) = obj.get_mut("frames") {
                for frame in frames.iter_mut().filter_map(Value::as_object_mut) {
                    unwrap_token(frame);
                }
            }
            let mut moved = Map::new();
            if let Some(Value::Object(header)) = obj.get_mut("header") {
                for (old, new) in
                    [("packet_size", "length"), ("length", "length"), ("payload_length", "payload_length")]
                {
                    if let Some(v) = header.remove(old) {
                        moved.insert(new.to_string(), v);
                    }
                }
            }
            if !moved.is_empty() {
                let raw = obj.entry("raw").or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(raw) = raw {
                    for (k, v) in moved {
                        raw.entry(k).or_insert(v);
                    }
                }
            }
        }
        "quic:recovery_metrics_updated" => {
            rename(obj, "cwnd", "congestion_window");
            if rtt_in_seconds {
                for key in ["min_rtt", "smoothed_rtt", "latest_rtt", "rtt_variance"] {
                    if let Some(v) = obj.get_mut(key) {
                        if let Some(s) = v.as_f64() {
                            *v = serde_json::Number::from_f64(s * 1000.0).map(Value::Number).unwrap_or(Value::Null);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// The typed counterpart of [`event_data`]'s RTT scaling (seconds → ms, the same arithmetic).
pub(crate) fn rtt_seconds_to_ms(m: &mut crate::RecoveryMetrics) {
    for v in [&mut m.min_rtt, &mut m.smoothed_rtt, &mut m.latest_rtt, &mut m.rtt_variance] {
        // JSON has no infinity: the tree path turns an overflow into null, i.e. absent.
        *v = v.map(|s| s * 1000.0).filter(|ms| ms.is_finite());
    }
}

/// 0.3 wrote `stateless_reset_token` as `{"data": hex}` (ngtcp2); the newest drafts as the hex string.
fn unwrap_token(obj: &mut Map<String, Value>) {
    if let Some(token) = obj.get_mut("stateless_reset_token") {
        if let Some(Value::String(hex)) = token.as_object().filter(|t| t.len() == 1).and_then(|t| t.get("data")) {
            *token = Value::String(hex.clone());
        }
    }
}

fn rename(obj: &mut Map<String, Value>, old: &str, new: &str) {
    if !obj.contains_key(new) {
        if let Some(v) = obj.remove(old) {
            obj.insert(new.to_string(), v);
        }
    }
}

/// The RFC 9002 initial RTT written in seconds: quinn 0.11 logs `0.333` where every other stack logs 333.
pub(crate) fn looks_like_rtt_in_seconds(data: &Value) -> Option<bool> {
    let rtt = data.get("min_rtt").or_else(|| data.get("smoothed_rtt"))?.as_f64()?;
    Some(rtt > 0.0 && rtt < 1.0 && (rtt - 0.333).abs() < 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert_eq!(event_name("transport:packet_sent", true), "quic:packet_sent");
        assert_eq!(event_name("recovery:metrics_updated", true), "quic:recovery_metrics_updated");
        assert_eq!(event_name("recovery:loss_timer_updated", true), "quic:timer_updated");
        assert_eq!(event_name("recovery:packet_lost", true), "quic:packet_lost");
        assert_eq!(event_name("security:key_retired", true), "quic:key_discarded");
        assert_eq!(event_name("transport:datagrams_sent", true), "quic:udp_datagrams_sent");
        assert_eq!(event_name("quic:datagrams_received", false), "quic:udp_datagrams_received");
        assert_eq!(event_name("connectivity:path_assigned", true), "quic:tuple_assigned");
        assert_eq!(event_name("http:frame_parsed", true), "http3:frame_parsed");
        assert_eq!(event_name("h3:frame_parsed", true), "http3:frame_parsed");
        assert_eq!(event_name("http:capsule_parsed", false), "http:capsule_parsed");
        assert_eq!(event_name("qpack:instruction_parsed", true), "qpack:instruction_parsed");
        assert_eq!(event_name("iroh:multipath_x", false), "iroh:multipath_x");
        assert!(matches!(event_name("quic:packet_sent", false), Cow::Borrowed(_)));
    }

    #[test]
    fn fields() {
        let mut d = json!({"header": {"packet_type": "initial", "packet_size": 1200, "payload_length": 1180}});
        event_data("quic:packet_sent", &mut d, false);
        assert_eq!(d, json!({"header": {"packet_type": "initial"}, "raw": {"length": 1200, "payload_length": 1180}}));
        let mut d = json!({"owner": "local"});
        event_data("quic:parameters_set", &mut d, false);
        assert_eq!(d, json!({"initiator": "local"}));
        let mut d = json!({"min_rtt": 0.333, "cwnd": 10});
        event_data("quic:recovery_metrics_updated", &mut d, true);
        assert_eq!(d, json!({"min_rtt": 333.0, "congestion_window": 10}));
    }
}
