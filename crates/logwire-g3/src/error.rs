//! Every way a g3proxy log can fail to decode. Listeners count these and log them with the peer's
//! address; none of them stops a listener.

/// Why bytes did not decode into a [`crate::G3Log`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record is {len} bytes, above the limit of {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("record is not UTF-8 text")]
    NotUtf8,
    #[error("syslog header: {0}")]
    Header(&'static str),
    #[error("RFC 5424 structured data at byte {at}: {what}")]
    StructuredData { at: usize, what: &'static str },
    #[error("CEE JSON body: {0}")]
    Cee(String),
    #[error("RFC 3164 key=value body at byte {at}: {what}")]
    Text { at: usize, what: &'static str },
    #[error("RFC 6587 frame: {0}")]
    Framing(&'static str),
    #[error("msgpack: {0}")]
    Msgpack(&'static str),
    #[error("fluentd forward: {0}")]
    Forward(String),
    #[error("gzip entries: {0}")]
    Gzip(String),
    #[error("not a g3proxy log: no log_type field")]
    NotG3,
}
