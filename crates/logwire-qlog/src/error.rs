//! Typed errors. A damaged record is not an error of the whole file: the reader reports it as a
//! [`crate::Damage`] and goes on at the next record separator.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum QlogError {
    #[error("empty input: no qlog header")]
    Empty,
    #[error("not qlog: the first byte is {0:#04x}, expected 0x1e (JSON-SEQ) or '{{' (contained JSON)")]
    NotQlog(u8),
    #[error("the header is not valid JSON: {0}")]
    HeaderJson(#[source] serde_json::Error),
    #[error("the header is not a JSON object")]
    HeaderNotObject,
    #[error("contained JSON is invalid at line {line}, column {column}: {source}")]
    Contained {
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("contained JSON has no `traces` array")]
    NoTraces,
    #[error("input is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("cannot decompress: {0}")]
    Decompress(#[source] std::io::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("writer misuse: {0}")]
    State(&'static str),
    #[error("cannot serialise: {0}")]
    Serialize(#[source] serde_json::Error),
}

pub type Result<T> = std::result::Result<T, QlogError>;
