//! Typed data for the QUIC and HTTP/3 events beyond packets, recovery metrics and HTTP/3 frames
//! (quic-events-13, h3-events-13). Every struct keeps the fields it does not name in `extra`, so an
//! event read and written again loses nothing (extension fields of iroh or mvfst included); nested
//! structures the drafts leave open (tuples, preferred addresses, frame lists) stay JSON.

use crate::events::RawInfo;
use crate::number::opt_u64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Declares a struct of optional fields plus `extra`. `name: type = "opt_u64"` reads a lenient uint64
/// (a number or a string).
macro_rules! event_struct {
    ($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty $(= $with:literal)?,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none" $(, deserialize_with = $with)?)]
                pub $field: Option<$ty>,
            )*
            /// Fields this type does not name, as written.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }
    };
}

event_struct!(
    /// `quic:connection_started`.
    ConnectionStarted {
        local: Value,
        remote: Value,
    }
);

event_struct!(
    /// `quic:connection_closed`.
    ConnectionClosed {
        initiator: String,
        connection_error: Value,
        application_error: Value,
        error_code: u64 = "opt_u64",
        internal_code: u64 = "opt_u64",
        reason: String,
        trigger: String,
    }
);

event_struct!(
    /// `quic:version_information`.
    VersionInformation {
        server_versions: Vec<String>,
        client_versions: Vec<String>,
        chosen_version: String,
    }
);

event_struct!(
    /// `quic:alpn_information` (ALPN identifiers as strings or `{byte_value, string_value}`).
    AlpnInformation {
        server_alpns: Vec<Value>,
        client_alpns: Vec<Value>,
        chosen_alpn: Value,
    }
);

event_struct!(
    /// `quic:parameters_set` and `quic:parameters_restored` (the transport parameters).
    TransportParameters {
        initiator: String,
        resumption_allowed: bool,
        early_data_enabled: bool,
        tls_cipher: String,
        original_destination_connection_id: String,
        initial_source_connection_id: String,
        retry_source_connection_id: String,
        stateless_reset_token: String,
        disable_active_migration: bool,
        max_idle_timeout: u64 = "opt_u64",
        max_udp_payload_size: u64 = "opt_u64",
        ack_delay_exponent: u64 = "opt_u64",
        max_ack_delay: u64 = "opt_u64",
        active_connection_id_limit: u64 = "opt_u64",
        initial_max_data: u64 = "opt_u64",
        initial_max_stream_data_bidi_local: u64 = "opt_u64",
        initial_max_stream_data_bidi_remote: u64 = "opt_u64",
        initial_max_stream_data_uni: u64 = "opt_u64",
        initial_max_streams_bidi: u64 = "opt_u64",
        initial_max_streams_uni: u64 = "opt_u64",
        preferred_address: Value,
        max_datagram_frame_size: u64 = "opt_u64",
        grease_quic_bit: bool,
    }
);

event_struct!(
    /// `quic:udp_datagrams_sent` / `quic:udp_datagrams_received`.
    UdpDatagrams {
        count: u64 = "opt_u64",
        raw: Vec<RawInfo>,
        ecn: Vec<String>,
        datagram_ids: Vec<Value>,
    }
);

event_struct!(
    /// `quic:udp_datagram_dropped`.
    UdpDatagramDropped {
        raw: RawInfo,
    }
);

event_struct!(
    /// `quic:stream_state_updated`.
    StreamStateUpdated {
        stream_id: u64 = "opt_u64",
        stream_type: String,
        old: String,
        new: String,
        stream_side: String,
        trigger: String,
    }
);

event_struct!(
    /// `quic:frames_created` / `quic:frames_parsed` (the frames as written: extension frames included).
    FramesProcessed {
        frames: Vec<Value>,
        packet_numbers: Vec<Value>,
    }
);

event_struct!(
    /// `quic:stream_data_moved` (0.3 `transport:data_moved`).
    StreamDataMoved {
        stream_id: u64 = "opt_u64",
        offset: u64 = "opt_u64",
        raw: RawInfo,
        from: String,
        to: String,
        additional_info: String,
    }
);

event_struct!(
    /// `quic:datagram_data_moved`.
    DatagramDataMoved {
        raw: RawInfo,
        from: String,
        to: String,
    }
);

event_struct!(
    /// `quic:key_updated` / `quic:key_discarded` (0.3 `security:key_retired`).
    KeyEvent {
        key_type: String,
        old: String,
        new: String,
        key: String,
        key_phase: u64 = "opt_u64",
        trigger: String,
    }
);

event_struct!(
    /// `quic:recovery_parameters_set`.
    RecoveryParameters {
        reordering_threshold: u64 = "opt_u64",
        time_threshold: f64,
        timer_granularity: u64 = "opt_u64",
        initial_rtt: f64,
        max_datagram_size: u64 = "opt_u64",
        initial_congestion_window: u64 = "opt_u64",
        minimum_congestion_window: u64 = "opt_u64",
        loss_reduction_factor: f64,
        persistent_congestion_threshold: u64 = "opt_u64",
    }
);

event_struct!(
    /// `quic:congestion_state_updated`, `quic:ecn_state_updated`, `quic:connection_state_updated`,
    /// `quic:migration_state_updated`: a state change.
    StateUpdated {
        old: String,
        new: String,
        trigger: String,
    }
);

event_struct!(
    /// `quic:timer_updated` (0.3 `recovery:loss_timer_updated`).
    TimerUpdated {
        timer_type: String,
        timer_id: u64 = "opt_u64",
        packet_number_space: String,
        event_type: String,
        delta: f64,
    }
);

event_struct!(
    /// `quic:marked_for_retransmit`.
    MarkedForRetransmit {
        frames: Vec<Value>,
    }
);

event_struct!(
    /// `http3:parameters_set` / `http3:parameters_restored` (0.3 `http:parameters_set`).
    Http3Parameters {
        initiator: String,
        max_field_section_size: u64 = "opt_u64",
        max_table_capacity: u64 = "opt_u64",
        blocked_streams_count: u64 = "opt_u64",
        enable_connect_protocol: bool,
        h3_datagram: bool,
        waits_for_settings: bool,
    }
);

event_struct!(
    /// `http3:stream_type_set`.
    Http3StreamTypeSet {
        initiator: String,
        stream_id: u64 = "opt_u64",
        stream_type: String,
        stream_type_bytes: u64 = "opt_u64",
        associated_push_id: u64 = "opt_u64",
    }
);

event_struct!(
    /// `http3:priority_updated`.
    Http3PriorityUpdated {
        stream_id: u64 = "opt_u64",
        push_id: u64 = "opt_u64",
        old: String,
        new: String,
    }
);

event_struct!(
    /// `http3:datagram_created` / `http3:datagram_parsed`.
    Http3Datagram {
        quarter_stream_id: u64 = "opt_u64",
        datagram: Value,
        raw: RawInfo,
    }
);

event_struct!(
    /// `http3:push_resolved`.
    Http3PushResolved {
        push_id: u64 = "opt_u64",
        stream_id: u64 = "opt_u64",
        decision: String,
    }
);

event_struct!(
    /// `quic:server_listening`.
    ServerListening {
        ip_v4: String,
        ip_v6: String,
        port_v4: u64 = "opt_u64",
        port_v6: u64 = "opt_u64",
        retry_required: bool,
    }
);

event_struct!(
    /// `quic:connection_id_updated`.
    ConnectionIdUpdated {
        initiator: String,
        old: String,
        new: String,
    }
);

event_struct!(
    /// `quic:spin_bit_updated`.
    SpinBitUpdated {
        state: bool,
    }
);

event_struct!(
    /// `quic:tuple_assigned` (0.3 `connectivity:path_assigned`).
    TupleAssigned {
        tuple_id: String,
        tuple_remote: Value,
        tuple_local: Value,
    }
);

event_struct!(
    /// `quic:mtu_updated`.
    MtuUpdated {
        old: u64 = "opt_u64",
        new: u64 = "opt_u64",
        done: bool,
    }
);

event_struct!(
    /// `quic:packet_buffered` (the header kept as written).
    PacketBuffered {
        header: Value,
        raw: RawInfo,
        datagram_id: u64 = "opt_u64",
        trigger: String,
    }
);

event_struct!(
    /// `quic:packets_acked`.
    PacketsAcked {
        packet_number_space: String,
        packet_numbers: Vec<Value>,
    }
);
