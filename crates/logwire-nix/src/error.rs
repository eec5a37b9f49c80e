//! The one decoding error type.

use thiserror::Error;

/// Why bytes could not be decoded. [`DecodeError::Incomplete`] is not a failure: more bytes are needed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("need more bytes ({needed} in total)")]
    Incomplete { needed: usize },
    #[error("string of {len} bytes exceeds the cap of {cap}")]
    StringTooLong { len: u64, cap: u64 },
    #[error("list of {len} elements exceeds the cap of {cap}")]
    ListTooLong { len: u64, cap: u64 },
    #[error("non-zero padding after a string of {len} bytes")]
    NonZeroPadding { len: u64 },
    #[error("boolean word is {0}, not 0 or 1")]
    BadBool(u64),
    #[error("bad magic number {found:#x}, expected {expected:#x}")]
    BadMagic { found: u64, expected: u64 },
    #[error("protocol version {0:#x} is not 1.x or is older than 1.10")]
    UnsupportedVersion(u64),
    #[error("unknown stderr message tag {0:#x}")]
    UnknownMessage(u64),
    #[error("unsupported field type {0:#x}")]
    UnknownFieldKind(u64),
    #[error("error type is not \"Error\"")]
    BadErrorType,
    #[error("error position present (havePos = {0}); Nix never sends one")]
    ErrorPosition(u64),
    #[error("optional tag {0} is not 0 or 1")]
    BadOptional(u64),
    #[error("malformed NAR: {0}")]
    Nar(&'static str),
}

impl DecodeError {
    pub fn is_incomplete(&self) -> bool {
        matches!(self, DecodeError::Incomplete { .. })
    }
}
