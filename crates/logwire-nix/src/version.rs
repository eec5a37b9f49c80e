//! Protocol versions: `major << 8 | minor`, compared on the minor number within major 1.

use std::fmt;

/// A worker-protocol version as sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion(pub u64);

impl ProtocolVersion {
    /// Oldest client Nix 2.8's daemon accepts.
    pub const MINIMUM: ProtocolVersion = ProtocolVersion::new(1, 10);
    /// Debian 12's nix-bin 2.8.0.
    pub const NIX_2_8: ProtocolVersion = ProtocolVersion::new(1, 34);
    /// Newest upstream (2.24+), with the feature exchange.
    pub const LATEST: ProtocolVersion = ProtocolVersion::new(1, 38);

    pub const fn new(major: u8, minor: u8) -> Self {
        ProtocolVersion(((major as u64) << 8) | minor as u64)
    }

    pub fn major(self) -> u64 {
        (self.0 >> 8) & 0xff
    }

    pub fn minor(self) -> u64 {
        self.0 & 0xff
    }

    /// `GET_PROTOCOL_MINOR(v) >= minor`, the form every gate in `daemon.cc` takes.
    pub fn at_least(self, minor: u64) -> bool {
        self.minor() >= minor
    }

    /// The version both sides use: `min(client, daemon)`.
    pub fn negotiate(client: ProtocolVersion, daemon: ProtocolVersion) -> ProtocolVersion {
        client.min(daemon)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major(), self.minor())
    }
}
