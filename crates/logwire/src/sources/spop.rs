//! The SPOP source: logwire's SPOA agent, recording into the store.

use logwire_model::{now_ns, Attrs, Level};
use logwire_spop::handler::Notify;
use logwire_spop::record::{connection_record, notify_records, Outcome, Timing};
use logwire_spop::runtime::agent::{CloseReason, ConnInfo, Observer};
use logwire_spop::Action;
use logwire_store::StoreHandle;

/// What the SPOP source stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordMode {
    /// A span per NOTIFY, an event per message, connection events.
    All,
    /// Only the message events (with their actions).
    Messages,
    /// Nothing: the agent only answers.
    None,
}

/// Turns what the agent sees into records and queues them without ever waiting.
pub struct StoreObserver {
    pub store: StoreHandle,
    pub mode: RecordMode,
}

impl Observer for StoreObserver {
    fn on_hello(&self, conn: &ConnInfo) {
        let mut attrs = Attrs::new();
        attrs.insert("peer".into(), conn.peer.to_string().into());
        attrs.insert("healthcheck".into(), conn.healthcheck.into());
        if let Some(c) = conn.announced {
            attrs.insert("haproxy_capabilities".into(), c.to_string().into());
        }
        if let Some(n) = conn.negotiated {
            attrs.insert("max_frame_size".into(), n.max_frame_size.into());
            attrs.insert("capabilities".into(), n.capabilities.to_string().into());
        }
        self.store.try_send_one(connection_record(
            &conn.origin(),
            conn.id,
            now_ns(),
            "spop:hello",
            Level::Debug,
            attrs,
        ));
    }

    fn on_processed(&self, conn: &ConnInfo, notify: &Notify, actions: &[Action], outcome: Outcome, timing: Timing) {
        let with_span = self.mode == RecordMode::All;
        self.store.try_send(notify_records(&conn.origin(), conn.id, notify, actions, outcome, timing, with_span));
    }

    fn on_aborted(&self, conn: &ConnInfo, stream_id: u64, frame_id: u64) {
        let mut attrs = Attrs::new();
        attrs.insert("stream_id".into(), stream_id.into());
        attrs.insert("frame_id".into(), frame_id.into());
        self.store.try_send_one(connection_record(
            &conn.origin(),
            conn.id,
            now_ns(),
            "spop:aborted",
            Level::Warn,
            attrs,
        ));
    }

    fn on_closed(&self, conn: &ConnInfo, reason: &CloseReason) {
        let mut attrs = Attrs::new();
        attrs.insert("peer".into(), conn.peer.to_string().into());
        let (level, what) = match reason {
            CloseReason::PeerClosed => (Level::Debug, "peer closed".to_string()),
            CloseReason::Shutdown => (Level::Debug, "shutdown".to_string()),
            CloseReason::PeerDisconnect { status, message } => {
                attrs.insert("status_code".into(), status.code().into());
                let advice = status.advice().map(|a| format!(" ({a})")).unwrap_or_default();
                (
                    if status.code() == 0 { Level::Debug } else { Level::Warn },
                    format!("HAPROXY-DISCONNECT {status}: {message}{advice}"),
                )
            }
            CloseReason::ProtocolError { status, reason } => {
                attrs.insert("status_code".into(), status.code().into());
                (Level::Error, format!("sent AGENT-DISCONNECT {status}: {reason}"))
            }
            CloseReason::Io(e) => (Level::Warn, format!("I/O error: {e}")),
        };
        let rec = connection_record(&conn.origin(), conn.id, now_ns(), "spop:closed", level, attrs).with_body(what);
        self.store.try_send_one(rec);
    }
}
