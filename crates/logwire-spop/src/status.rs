//! DISCONNECT status codes (SPOE.txt §3.2.6; the same table in HAProxy 2.6 and ≥ 3.1).

use std::fmt;

/// A status code carried by HAPROXY-DISCONNECT / AGENT-DISCONNECT. Unknown codes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCode {
    Normal,
    Io,
    Timeout,
    TooBig,
    Invalid,
    NoVersion,
    NoFrameSize,
    NoCapabilities,
    BadVersion,
    BadFrameSize,
    FragNotSupported,
    InterlacedFrames,
    FrameIdNotFound,
    Resources,
    Unknown,
    Other(u32),
}

impl StatusCode {
    pub fn from_u32(code: u32) -> Self {
        match code {
            0 => Self::Normal,
            1 => Self::Io,
            2 => Self::Timeout,
            3 => Self::TooBig,
            4 => Self::Invalid,
            5 => Self::NoVersion,
            6 => Self::NoFrameSize,
            7 => Self::NoCapabilities,
            8 => Self::BadVersion,
            9 => Self::BadFrameSize,
            10 => Self::FragNotSupported,
            11 => Self::InterlacedFrames,
            12 => Self::FrameIdNotFound,
            13 => Self::Resources,
            99 => Self::Unknown,
            other => Self::Other(other),
        }
    }

    pub fn code(self) -> u32 {
        match self {
            Self::Normal => 0,
            Self::Io => 1,
            Self::Timeout => 2,
            Self::TooBig => 3,
            Self::Invalid => 4,
            Self::NoVersion => 5,
            Self::NoFrameSize => 6,
            Self::NoCapabilities => 7,
            Self::BadVersion => 8,
            Self::BadFrameSize => 9,
            Self::FragNotSupported => 10,
            Self::InterlacedFrames => 11,
            Self::FrameIdNotFound => 12,
            Self::Resources => 13,
            Self::Unknown => 99,
            Self::Other(c) => c,
        }
    }

    /// The message HAProxy itself uses for this code.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Io => "I/O error",
            Self::Timeout => "a timeout occurred",
            Self::TooBig => "frame is too big",
            Self::Invalid => "invalid frame received",
            Self::NoVersion => "version value not found",
            Self::NoFrameSize => "max-frame-size value not found",
            Self::NoCapabilities => "capabilities value not found",
            Self::BadVersion => "unsupported version",
            Self::BadFrameSize => "max-frame-size too big or too small",
            Self::FragNotSupported => "payload fragmentation is not supported",
            Self::InterlacedFrames => "invalid interlaced frames",
            Self::FrameIdNotFound => "frame-id not found",
            Self::Resources => "resource allocation error",
            Self::Unknown | Self::Other(_) => "an unknown error occurred",
        }
    }
}

impl StatusCode {
    /// What to change when a peer disconnects with this code, where there is a known remedy.
    pub fn advice(self) -> Option<&'static str> {
        Some(match self {
            Self::FragNotSupported => {
                "HAProxy <= 3.0 must fragment a NOTIFY larger than max-frame-size: let the agent announce \
                 `fragmentation` (logwire's default) or set `no option send-frag-payload` in spoe.conf"
            }
            Self::TooBig => "a frame exceeded the negotiated max-frame-size: raise `max-frame-size` in spoe.conf",
            Self::BadFrameSize => "max-frame-size must be at least 256 and at most HAProxy's (tune.bufsize - 4)",
            Self::BadVersion | Self::NoVersion => "both sides must speak SPOP version 2.0",
            _ => return None,
        })
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in (0..=13).chain([99, 100, 256]) {
            assert_eq!(StatusCode::from_u32(c).code(), c);
        }
        assert_eq!(StatusCode::from_u32(10), StatusCode::FragNotSupported);
    }
}
