//! The event model of the newest drafts: every event name typed ([`EventKind`]), and typed data for every
//! QUIC and HTTP/3 event ([`EventData`]; the less frequent ones in `events_more`, each keeping the fields
//! it does not name). Extension events (iroh, mvfst), `qpack:`, `simulation:`, `http:capsule_*`, and data
//! that does not fit its type are [`EventData::Other`], keeping their JSON as is.

pub use crate::events_more::*;
use crate::number::opt_u64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use smallvec::SmallVec;

macro_rules! event_kinds {
    ($($variant:ident = $name:literal,)*) => {
        /// Every event of main-schema-14 / quic-events-13 / h3-events-13 / loglevel, plus the legacy
        /// QPACK events real stacks still write (0.3 `qpack:`), by their newest names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind { $($variant,)* }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $name,)* }
            }

            /// The kind of a normalised name; `None` for extension events.
            pub fn from_name(name: &str) -> Option<EventKind> {
                match name { $($name => Some(EventKind::$variant),)* _ => None }
            }
        }
    };
}

event_kinds! {
    ServerListening = "quic:server_listening",
    ConnectionStarted = "quic:connection_started",
    ConnectionClosed = "quic:connection_closed",
    ConnectionIdUpdated = "quic:connection_id_updated",
    SpinBitUpdated = "quic:spin_bit_updated",
    ConnectionStateUpdated = "quic:connection_state_updated",
    TupleAssigned = "quic:tuple_assigned",
    MtuUpdated = "quic:mtu_updated",
    VersionInformation = "quic:version_information",
    AlpnInformation = "quic:alpn_information",
    ParametersSet = "quic:parameters_set",
    ParametersRestored = "quic:parameters_restored",
    PacketSent = "quic:packet_sent",
    PacketReceived = "quic:packet_received",
    PacketDropped = "quic:packet_dropped",
    PacketBuffered = "quic:packet_buffered",
    PacketsAcked = "quic:packets_acked",
    UdpDatagramsSent = "quic:udp_datagrams_sent",
    UdpDatagramsReceived = "quic:udp_datagrams_received",
    UdpDatagramDropped = "quic:udp_datagram_dropped",
    StreamStateUpdated = "quic:stream_state_updated",
    FramesCreated = "quic:frames_created",
    FramesParsed = "quic:frames_parsed",
    StreamDataMoved = "quic:stream_data_moved",
    DatagramDataMoved = "quic:datagram_data_moved",
    MigrationStateUpdated = "quic:migration_state_updated",
    KeyUpdated = "quic:key_updated",
    KeyDiscarded = "quic:key_discarded",
    RecoveryParametersSet = "quic:recovery_parameters_set",
    RecoveryMetricsUpdated = "quic:recovery_metrics_updated",
    CongestionStateUpdated = "quic:congestion_state_updated",
    TimerUpdated = "quic:timer_updated",
    PacketLost = "quic:packet_lost",
    MarkedForRetransmit = "quic:marked_for_retransmit",
    EcnStateUpdated = "quic:ecn_state_updated",
    Http3ParametersSet = "http3:parameters_set",
    Http3ParametersRestored = "http3:parameters_restored",
    Http3StreamTypeSet = "http3:stream_type_set",
    Http3PriorityUpdated = "http3:priority_updated",
    Http3FrameCreated = "http3:frame_created",
    Http3FrameParsed = "http3:frame_parsed",
    Http3DatagramCreated = "http3:datagram_created",
    Http3DatagramParsed = "http3:datagram_parsed",
    Http3PushResolved = "http3:push_resolved",
    HttpCapsuleCreated = "http:capsule_created",
    HttpCapsuleParsed = "http:capsule_parsed",
    LogError = "loglevel:error",
    LogWarning = "loglevel:warning",
    LogInfo = "loglevel:info",
    LogDebug = "loglevel:debug",
    LogVerbose = "loglevel:verbose",
    SimulationScenario = "simulation:scenario",
    SimulationMarker = "simulation:marker",
    QpackStateUpdated = "qpack:state_updated",
    QpackStreamStateUpdated = "qpack:stream_state_updated",
    QpackDynamicTableUpdated = "qpack:dynamic_table_updated",
    QpackHeadersEncoded = "qpack:headers_encoded",
    QpackHeadersDecoded = "qpack:headers_decoded",
    QpackInstructionCreated = "qpack:instruction_created",
    QpackInstructionParsed = "qpack:instruction_parsed",
}

/// `initial`, `handshake`, `0RTT`, `1RTT`, … (quic-events `PacketType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PacketType {
    #[serde(rename = "initial")]
    Initial,
    #[serde(rename = "handshake")]
    Handshake,
    #[serde(rename = "0RTT")]
    ZeroRtt,
    #[serde(rename = "1RTT")]
    OneRtt,
    #[serde(rename = "retry")]
    Retry,
    #[serde(rename = "version_negotiation")]
    VersionNegotiation,
    #[serde(rename = "stateless_reset")]
    StatelessReset,
    #[serde(other, rename = "unknown")]
    Unknown,
}

/// `PacketHeader` (quic-events-13: flags split into `spin_bit`, `key_phase_bit`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacketHeader {
    pub packet_type: PacketType,
    #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub packet_number: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spin_bit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_phase_bit: Option<bool>,
}

/// `RawInfo`: lengths and optionally the bytes (hex).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RawInfo {
    #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub payload_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// An ACK frame's ranges: up to two are kept inline (no allocation), as most ACK frames carry.
pub type AckRanges = SmallVec<[AckRange; 2]>;

/// A packet's frames: up to two are kept inline (no allocation), as most packets carry.
pub type Frames = SmallVec<[QuicFrame; 2]>;

/// A closed range of packet numbers; written `[n]` for one packet, `[a,b]` otherwise, read in both forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckRange(pub u64, pub u64);

impl Serialize for AckRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == self.1 {
            [self.0].serialize(s)
        } else {
            [self.0, self.1].serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for AckRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<Value> = Vec::deserialize(d)?;
        let n = |i: usize| v.get(i).and_then(crate::number::lenient_u64);
        match (v.len(), n(0), n(1)) {
            (1, Some(a), _) => Ok(AckRange(a, a)),
            (2, Some(a), Some(b)) => Ok(AckRange(a, b)),
            _ => Err(serde::de::Error::custom("an ack range is [n] or [a,b]")),
        }
    }
}

/// QUIC frames (quic-events `QuicFrame`); fields not listed here stay in the event's raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "frame_type", rename_all = "snake_case")]
pub enum QuicFrame {
    Padding {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<RawInfo>,
    },
    Ping,
    Ack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack_delay: Option<f64>,
        #[serde(default)]
        acked_ranges: AckRanges,
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        ect1: Option<u64>,
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        ect0: Option<u64>,
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        ce: Option<u64>,
    },
    ResetStream {
        #[serde(deserialize_with = "req_u64")]
        stream_id: u64,
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        final_size: Option<u64>,
    },
    StopSending {
        #[serde(deserialize_with = "req_u64")]
        stream_id: u64,
    },
    Crypto {
        #[serde(deserialize_with = "req_u64")]
        offset: u64,
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        length: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<RawInfo>,
    },
    NewToken {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Value>,
    },
    Stream {
        #[serde(deserialize_with = "req_u64")]
        stream_id: u64,
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fin: Option<bool>,
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        length: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<RawInfo>,
    },
    MaxData {
        #[serde(deserialize_with = "req_u64")]
        maximum: u64,
    },
    MaxStreamData {
        #[serde(deserialize_with = "req_u64")]
        stream_id: u64,
        #[serde(deserialize_with = "req_u64")]
        maximum: u64,
    },
    MaxStreams {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream_type: Option<String>,
        #[serde(deserialize_with = "req_u64")]
        maximum: u64,
    },
    DataBlocked {
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    StreamDataBlocked {
        #[serde(deserialize_with = "req_u64")]
        stream_id: u64,
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    NewConnectionId {
        #[serde(deserialize_with = "req_u64")]
        sequence_number: u64,
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        retire_prior_to: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection_id: Option<String>,
    },
    RetireConnectionId {
        #[serde(deserialize_with = "req_u64")]
        sequence_number: u64,
    },
    PathChallenge {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
    },
    PathResponse {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
    },
    ConnectionClose {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_space: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    HandshakeDone,
    Datagram {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<RawInfo>,
    },
    /// Frame types this model does not type (extension frames: ack_frequency, mvfst's knob, …).
    #[serde(other)]
    Unknown,
}

fn req_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    opt_u64(d)?.ok_or_else(|| serde::de::Error::custom("a uint64 is required"))
}

/// `quic:packet_sent` and `quic:packet_received`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacketEvent {
    pub header: PacketHeader,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<Frames>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// `quic:packet_lost` / `quic:packet_dropped`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacketLossEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<PacketHeader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// `quic:recovery_metrics_updated`: RTTs in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rtt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothed_rtt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_rtt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_variance: Option<f64>,
    #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub pto_count: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub congestion_window: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub bytes_in_flight: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub ssthresh: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub packets_in_flight: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing_rate: Option<f64>,
}

/// HTTP/3 frames (h3-events `HTTP3Frame`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "frame_type", rename_all = "snake_case")]
pub enum Http3Frame {
    Data {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<RawInfo>,
    },
    Headers {
        #[serde(default)]
        headers: Vec<HttpField>,
    },
    Settings {
        #[serde(default)]
        settings: Vec<Value>,
    },
    Goaway {
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    PushPromise {
        #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
        push_id: Option<u64>,
        #[serde(default)]
        headers: Vec<HttpField>,
    },
    CancelPush,
    MaxPushId,
    PriorityUpdate,
    Reserved,
    #[serde(other)]
    Unknown,
}

/// One header field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpField {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// `http3:frame_created` / `http3:frame_parsed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Http3FrameEvent {
    #[serde(deserialize_with = "req_u64")]
    pub stream_id: u64,
    #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    pub frame: Http3Frame,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawInfo>,
}

/// `loglevel:*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogMessage {
    #[serde(default, deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub code: Option<u64>,
    pub message: String,
}

/// An event's data: typed for the events below, the JSON as is for every other event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    PacketSent(PacketEvent),
    PacketReceived(PacketEvent),
    PacketLost(PacketLossEvent),
    PacketDropped(PacketLossEvent),
    RecoveryMetricsUpdated(RecoveryMetrics),
    Http3FrameCreated(Http3FrameEvent),
    Http3FrameParsed(Http3FrameEvent),
    Log(LogLevel, LogMessage),
    ServerListening(ServerListening),
    ConnectionStarted(ConnectionStarted),
    ConnectionClosed(ConnectionClosed),
    ConnectionIdUpdated(ConnectionIdUpdated),
    SpinBitUpdated(SpinBitUpdated),
    TupleAssigned(TupleAssigned),
    MtuUpdated(MtuUpdated),
    PacketBuffered(PacketBuffered),
    PacketsAcked(PacketsAcked),
    /// `quic:connection_state_updated`, `quic:congestion_state_updated`, `quic:ecn_state_updated`,
    /// `quic:migration_state_updated`: which one is [`EventData::name`].
    StateUpdated(StateKind, StateUpdated),
    VersionInformation(VersionInformation),
    AlpnInformation(AlpnInformation),
    ParametersSet(TransportParameters),
    ParametersRestored(TransportParameters),
    UdpDatagramsSent(UdpDatagrams),
    UdpDatagramsReceived(UdpDatagrams),
    UdpDatagramDropped(UdpDatagramDropped),
    StreamStateUpdated(StreamStateUpdated),
    FramesCreated(FramesProcessed),
    FramesParsed(FramesProcessed),
    StreamDataMoved(StreamDataMoved),
    DatagramDataMoved(DatagramDataMoved),
    KeyUpdated(KeyEvent),
    KeyDiscarded(KeyEvent),
    RecoveryParametersSet(RecoveryParameters),
    TimerUpdated(TimerUpdated),
    MarkedForRetransmit(MarkedForRetransmit),
    Http3ParametersSet(Http3Parameters),
    Http3ParametersRestored(Http3Parameters),
    Http3StreamTypeSet(Http3StreamTypeSet),
    Http3PriorityUpdated(Http3PriorityUpdated),
    Http3DatagramCreated(Http3Datagram),
    Http3DatagramParsed(Http3Datagram),
    Http3PushResolved(Http3PushResolved),
    /// Any other event by its normalised name, data as written (normalised).
    Other {
        name: String,
        data: Map<String, Value>,
    },
}

/// The state-change events that share [`StateUpdated`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    Connection,
    Congestion,
    Ecn,
    Migration,
}

impl StateKind {
    fn name(self) -> &'static str {
        match self {
            StateKind::Connection => "quic:connection_state_updated",
            StateKind::Congestion => "quic:congestion_state_updated",
            StateKind::Ecn => "quic:ecn_state_updated",
            StateKind::Migration => "quic:migration_state_updated",
        }
    }
}

/// The five `loglevel:` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warning,
    Info,
    Debug,
    Verbose,
}

impl LogLevel {
    fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "loglevel:error",
            LogLevel::Warning => "loglevel:warning",
            LogLevel::Info => "loglevel:info",
            LogLevel::Debug => "loglevel:debug",
            LogLevel::Verbose => "loglevel:verbose",
        }
    }
}

impl EventData {
    /// The typed event for a normalised name and normalised data; what does not fit its type stays
    /// [`EventData::Other`], so nothing is lost.
    pub fn from_parts(name: &str, data: Value) -> EventData {
        fn typed<T: serde::de::DeserializeOwned>(data: &Value) -> Option<T> {
            T::deserialize(data).ok()
        }
        let level = |l| typed(&data).map(|m| EventData::Log(l, m));
        let state = |k| typed(&data).map(|m| EventData::StateUpdated(k, m));
        let t = match name {
            "quic:packet_sent" => typed(&data).map(EventData::PacketSent),
            "quic:packet_received" => typed(&data).map(EventData::PacketReceived),
            "quic:packet_lost" => typed(&data).map(EventData::PacketLost),
            "quic:packet_dropped" => typed(&data).map(EventData::PacketDropped),
            "quic:recovery_metrics_updated" => typed(&data).map(EventData::RecoveryMetricsUpdated),
            "http3:frame_created" => typed(&data).map(EventData::Http3FrameCreated),
            "http3:frame_parsed" => typed(&data).map(EventData::Http3FrameParsed),
            "loglevel:error" => level(LogLevel::Error),
            "loglevel:warning" => level(LogLevel::Warning),
            "loglevel:info" => level(LogLevel::Info),
            "loglevel:debug" => level(LogLevel::Debug),
            "loglevel:verbose" => level(LogLevel::Verbose),
            "quic:server_listening" => typed(&data).map(EventData::ServerListening),
            "quic:connection_id_updated" => typed(&data).map(EventData::ConnectionIdUpdated),
            "quic:spin_bit_updated" => typed(&data).map(EventData::SpinBitUpdated),
            "quic:tuple_assigned" => typed(&data).map(EventData::TupleAssigned),
            "quic:mtu_updated" => typed(&data).map(EventData::MtuUpdated),
            "quic:packet_buffered" => typed(&data).map(EventData::PacketBuffered),
            "quic:packets_acked" => typed(&data).map(EventData::PacketsAcked),
            "quic:connection_started" => typed(&data).map(EventData::ConnectionStarted),
            "quic:connection_closed" => typed(&data).map(EventData::ConnectionClosed),
            "quic:connection_state_updated" => state(StateKind::Connection),
            "quic:congestion_state_updated" => state(StateKind::Congestion),
            "quic:ecn_state_updated" => state(StateKind::Ecn),
            "quic:migration_state_updated" => state(StateKind::Migration),
            "quic:version_information" => typed(&data).map(EventData::VersionInformation),
            "quic:alpn_information" => typed(&data).map(EventData::AlpnInformation),
            "quic:parameters_set" => typed(&data).map(EventData::ParametersSet),
            "quic:parameters_restored" => typed(&data).map(EventData::ParametersRestored),
            "quic:udp_datagrams_sent" => typed(&data).map(EventData::UdpDatagramsSent),
            "quic:udp_datagrams_received" => typed(&data).map(EventData::UdpDatagramsReceived),
            "quic:udp_datagram_dropped" => typed(&data).map(EventData::UdpDatagramDropped),
            "quic:stream_state_updated" => typed(&data).map(EventData::StreamStateUpdated),
            "quic:frames_created" => typed(&data).map(EventData::FramesCreated),
            "quic:frames_parsed" => typed(&data).map(EventData::FramesParsed),
            "quic:stream_data_moved" => typed(&data).map(EventData::StreamDataMoved),
            "quic:datagram_data_moved" => typed(&data).map(EventData::DatagramDataMoved),
            "quic:key_updated" => typed(&data).map(EventData::KeyUpdated),
            "quic:key_discarded" => typed(&data).map(EventData::KeyDiscarded),
            "quic:recovery_parameters_set" => typed(&data).map(EventData::RecoveryParametersSet),
            "quic:timer_updated" => typed(&data).map(EventData::TimerUpdated),
            "quic:marked_for_retransmit" => typed(&data).map(EventData::MarkedForRetransmit),
            "http3:parameters_set" => typed(&data).map(EventData::Http3ParametersSet),
            "http3:parameters_restored" => typed(&data).map(EventData::Http3ParametersRestored),
            "http3:stream_type_set" => typed(&data).map(EventData::Http3StreamTypeSet),
            "http3:priority_updated" => typed(&data).map(EventData::Http3PriorityUpdated),
            "http3:datagram_created" => typed(&data).map(EventData::Http3DatagramCreated),
            "http3:datagram_parsed" => typed(&data).map(EventData::Http3DatagramParsed),
            "http3:push_resolved" => typed(&data).map(EventData::Http3PushResolved),
            _ => None,
        };
        t.unwrap_or_else(|| EventData::Other {
            name: name.to_string(),
            data: match data {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        })
    }

    pub fn name(&self) -> &str {
        match self {
            EventData::PacketSent(_) => "quic:packet_sent",
            EventData::PacketReceived(_) => "quic:packet_received",
            EventData::PacketLost(_) => "quic:packet_lost",
            EventData::PacketDropped(_) => "quic:packet_dropped",
            EventData::RecoveryMetricsUpdated(_) => "quic:recovery_metrics_updated",
            EventData::Http3FrameCreated(_) => "http3:frame_created",
            EventData::Http3FrameParsed(_) => "http3:frame_parsed",
            EventData::Log(l, _) => l.name(),
            EventData::ServerListening(_) => "quic:server_listening",
            EventData::ConnectionIdUpdated(_) => "quic:connection_id_updated",
            EventData::SpinBitUpdated(_) => "quic:spin_bit_updated",
            EventData::TupleAssigned(_) => "quic:tuple_assigned",
            EventData::MtuUpdated(_) => "quic:mtu_updated",
            EventData::PacketBuffered(_) => "quic:packet_buffered",
            EventData::PacketsAcked(_) => "quic:packets_acked",
            EventData::ConnectionStarted(_) => "quic:connection_started",
            EventData::ConnectionClosed(_) => "quic:connection_closed",
            EventData::StateUpdated(k, _) => k.name(),
            EventData::VersionInformation(_) => "quic:version_information",
            EventData::AlpnInformation(_) => "quic:alpn_information",
            EventData::ParametersSet(_) => "quic:parameters_set",
            EventData::ParametersRestored(_) => "quic:parameters_restored",
            EventData::UdpDatagramsSent(_) => "quic:udp_datagrams_sent",
            EventData::UdpDatagramsReceived(_) => "quic:udp_datagrams_received",
            EventData::UdpDatagramDropped(_) => "quic:udp_datagram_dropped",
            EventData::StreamStateUpdated(_) => "quic:stream_state_updated",
            EventData::FramesCreated(_) => "quic:frames_created",
            EventData::FramesParsed(_) => "quic:frames_parsed",
            EventData::StreamDataMoved(_) => "quic:stream_data_moved",
            EventData::DatagramDataMoved(_) => "quic:datagram_data_moved",
            EventData::KeyUpdated(_) => "quic:key_updated",
            EventData::KeyDiscarded(_) => "quic:key_discarded",
            EventData::RecoveryParametersSet(_) => "quic:recovery_parameters_set",
            EventData::TimerUpdated(_) => "quic:timer_updated",
            EventData::MarkedForRetransmit(_) => "quic:marked_for_retransmit",
            EventData::Http3ParametersSet(_) => "http3:parameters_set",
            EventData::Http3ParametersRestored(_) => "http3:parameters_restored",
            EventData::Http3StreamTypeSet(_) => "http3:stream_type_set",
            EventData::Http3PriorityUpdated(_) => "http3:priority_updated",
            EventData::Http3DatagramCreated(_) => "http3:datagram_created",
            EventData::Http3DatagramParsed(_) => "http3:datagram_parsed",
            EventData::Http3PushResolved(_) => "http3:push_resolved",
            EventData::Other { name, .. } => name,
        }
    }

    pub fn kind(&self) -> Option<EventKind> {
        EventKind::from_name(self.name())
    }
}

/// Serialises only the `data` object.
impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EventData::PacketSent(d) | EventData::PacketReceived(d) => d.serialize(s),
            EventData::PacketLost(d) | EventData::PacketDropped(d) => d.serialize(s),
            EventData::RecoveryMetricsUpdated(d) => d.serialize(s),
            EventData::Http3FrameCreated(d) | EventData::Http3FrameParsed(d) => d.serialize(s),
            EventData::Log(_, d) => d.serialize(s),
            EventData::ServerListening(d) => d.serialize(s),
            EventData::ConnectionIdUpdated(d) => d.serialize(s),
            EventData::SpinBitUpdated(d) => d.serialize(s),
            EventData::TupleAssigned(d) => d.serialize(s),
            EventData::MtuUpdated(d) => d.serialize(s),
            EventData::PacketBuffered(d) => d.serialize(s),
            EventData::PacketsAcked(d) => d.serialize(s),
            EventData::ConnectionStarted(d) => d.serialize(s),
            EventData::ConnectionClosed(d) => d.serialize(s),
            EventData::StateUpdated(_, d) => d.serialize(s),
            EventData::VersionInformation(d) => d.serialize(s),
            EventData::AlpnInformation(d) => d.serialize(s),
            EventData::ParametersSet(d) | EventData::ParametersRestored(d) => d.serialize(s),
            EventData::UdpDatagramsSent(d) | EventData::UdpDatagramsReceived(d) => d.serialize(s),
            EventData::UdpDatagramDropped(d) => d.serialize(s),
            EventData::StreamStateUpdated(d) => d.serialize(s),
            EventData::FramesCreated(d) | EventData::FramesParsed(d) => d.serialize(s),
            EventData::StreamDataMoved(d) => d.serialize(s),
            EventData::DatagramDataMoved(d) => d.serialize(s),
            EventData::KeyUpdated(d) | EventData::KeyDiscarded(d) => d.serialize(s),
            EventData::RecoveryParametersSet(d) => d.serialize(s),
            EventData::TimerUpdated(d) => d.serialize(s),
            EventData::MarkedForRetransmit(d) => d.serialize(s),
            EventData::Http3ParametersSet(d) | EventData::Http3ParametersRestored(d) => d.serialize(s),
            EventData::Http3StreamTypeSet(d) => d.serialize(s),
            EventData::Http3PriorityUpdated(d) => d.serialize(s),
            EventData::Http3DatagramCreated(d) | EventData::Http3DatagramParsed(d) => d.serialize(s),
            EventData::Http3PushResolved(d) => d.serialize(s),
            EventData::Other { data, .. } => data.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ack_ranges_both_forms() {
        let f: QuicFrame = serde_json::from_value(json!({"frame_type":"ack","acked_ranges":[[3],[5,9]]})).unwrap();
        match &f {
            QuicFrame::Ack { acked_ranges, .. } => {
                assert_eq!(acked_ranges.as_slice(), &[AckRange(3, 3), AckRange(5, 9)])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(serde_json::to_value(&f).unwrap()["acked_ranges"], json!([[3], [5, 9]]));
    }

    #[test]
    fn kinds_round_trip_and_extensions_are_other() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.as_str()), Some(*k));
        }
        let e = EventData::from_parts("iroh:path_opened", json!({"x": 1}));
        assert_eq!(e.name(), "iroh:path_opened");
        assert_eq!(serde_json::to_value(&e).unwrap(), json!({"x": 1}));
    }

    #[test]
    fn uint64_strings_in_typed_data() {
        let d = EventData::from_parts("quic:recovery_metrics_updated", json!({"ssthresh": "18446744073709551615"}));
        assert!(matches!(d, EventData::RecoveryMetricsUpdated(RecoveryMetrics { ssthresh: Some(u64::MAX), .. })));
    }
}
