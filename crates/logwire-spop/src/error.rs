//! Decoding errors, each mapped to the SPOP status code the spec prescribes for it.

use crate::status::StatusCode;

/// Why bytes from a peer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of data while reading {0}")]
    UnexpectedEnd(&'static str),
    #[error("varint longer than 64 bits")]
    VarintOverflow,
    #[error("unknown typed-data type {0}")]
    UnknownDataType(u8),
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLong { what: &'static str, len: u64, max: u64 },
    #[error("integer {value} out of range for {what}")]
    IntOutOfRange { what: &'static str, value: u64 },
    #[error("invalid frame: {0}")]
    Invalid(&'static str),
}

impl DecodeError {
    /// The DISCONNECT status code an agent answers this error with.
    pub fn status(&self) -> StatusCode {
        match self {
            DecodeError::TooLong { what: "frame", .. } => StatusCode::TooBig,
            _ => StatusCode::Invalid,
        }
    }
}
