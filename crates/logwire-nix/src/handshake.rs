//! The handshake, both sides (`worker-protocol-connection.cc`, `daemon.cc@2.8.0 processConnection`).
//!
//! It comes in two halves per direction because Nix 2.8's client waits for the daemon's magic and
//! version before sending its own version, and everything after the versions depends on the negotiated
//! version:
//! - client → daemon: [`encode_client_magic`], then [`ClientHello::encode_version`], then (after the
//!   daemon's version is known) [`ClientHello::encode_rest`]: features (≥ 1.38), CPU affinity (≥ 1.14),
//!   reserveSpace (≥ 1.11);
//! - daemon → client: [`DaemonHello::encode_version`] (magic 2 + version), then [`DaemonHello::encode_rest`]:
//!   features (≥ 1.38), nixVersion (≥ 1.33), trusted flag (≥ 1.35). The startup log block follows.

use crate::error::DecodeError;
use crate::version::ProtocolVersion;
use crate::wire::{put_bool, put_bytes, put_bytes_list, put_u64, Reader};

pub const WORKER_MAGIC_1: u64 = 0x6e69_7863;
pub const WORKER_MAGIC_2: u64 = 0x6478_696f;

/// `Serialise<std::optional<TrustedFlag>>`: 0 unknown, 1 trusted, 2 not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedFlag {
    Unknown,
    Trusted,
    NotTrusted,
    Other(u64),
}

impl TrustedFlag {
    pub fn from_wire(value: u64) -> Self {
        match value {
            0 => TrustedFlag::Unknown,
            1 => TrustedFlag::Trusted,
            2 => TrustedFlag::NotTrusted,
            other => TrustedFlag::Other(other),
        }
    }

    pub fn to_wire(self) -> u64 {
        match self {
            TrustedFlag::Unknown => 0,
            TrustedFlag::Trusted => 1,
            TrustedFlag::NotTrusted => 2,
            TrustedFlag::Other(v) => v,
        }
    }
}

/// What the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    pub version: ProtocolVersion,
    /// ≥ 1.38: the client's feature set.
    pub features: Vec<Vec<u8>>,
    /// ≥ 1.14: `Some(cpu)` when the client asked to be pinned (obsolete; Nix sends 0 = none).
    pub cpu_affinity: Option<u64>,
    /// ≥ 1.11: reserveSpace (obsolete; always false).
    pub reserve_space: bool,
}

impl ClientHello {
    pub fn new(version: ProtocolVersion) -> Self {
        ClientHello { version, features: Vec::new(), cpu_affinity: None, reserve_space: false }
    }

    /// Client version (after the magic).
    pub fn encode_version(&self, out: &mut Vec<u8>) {
        put_u64(out, self.version.0);
    }

    /// Everything after the version, for the negotiated version.
    pub fn encode_rest(&self, negotiated: ProtocolVersion, out: &mut Vec<u8>) {
        if negotiated.at_least(38) {
            put_bytes_list(out, &self.features);
        }
        if negotiated.at_least(14) {
            match self.cpu_affinity {
                Some(cpu) => {
                    put_u64(out, 1);
                    put_u64(out, cpu);
                }
                None => put_u64(out, 0),
            }
        }
        if negotiated.at_least(11) {
            put_bool(out, self.reserve_space);
        }
    }

    /// Decodes the client's magic and version (16 bytes).
    pub fn decode_version(r: &mut Reader<'_>) -> Result<ProtocolVersion, DecodeError> {
        magic_and_version(r, WORKER_MAGIC_1)
    }

    /// Decodes what follows the version, for the negotiated version.
    pub fn decode_rest(
        version: ProtocolVersion,
        negotiated: ProtocolVersion,
        r: &mut Reader<'_>,
    ) -> Result<Self, DecodeError> {
        let mut hello = ClientHello::new(version);
        if negotiated.at_least(38) {
            hello.features = r.bytes_list()?;
        }
        if negotiated.at_least(14) && r.u64()? != 0 {
            hello.cpu_affinity = Some(r.u64()?);
        }
        if negotiated.at_least(11) {
            hello.reserve_space = r.u64()? != 0;
        }
        Ok(hello)
    }
}

/// A side's magic number then its protocol version, which must be 1.x and at least the minimum.
fn magic_and_version(r: &mut Reader<'_>, magic: u64) -> Result<ProtocolVersion, DecodeError> {
    expect_magic(r, magic)?;
    let version = ProtocolVersion(r.u64()?);
    if version.major() != 1 || version < ProtocolVersion::MINIMUM {
        return Err(DecodeError::UnsupportedVersion(version.0));
    }
    Ok(version)
}

/// What the daemon sends before its startup log block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonHello {
    pub version: ProtocolVersion,
    /// ≥ 1.38: the daemon's feature set.
    pub features: Vec<Vec<u8>>,
    /// ≥ 1.33: e.g. `2.8.0`.
    pub nix_version: Vec<u8>,
    /// ≥ 1.35.
    pub trusted: TrustedFlag,
}

impl DaemonHello {
    pub fn new(version: ProtocolVersion, nix_version: &[u8]) -> Self {
        DaemonHello { version, features: Vec::new(), nix_version: nix_version.to_vec(), trusted: TrustedFlag::Unknown }
    }

    /// Magic 2 and the daemon version (16 bytes).
    pub fn encode_version(&self, out: &mut Vec<u8>) {
        put_u64(out, WORKER_MAGIC_2);
        put_u64(out, self.version.0);
    }

    pub fn encode_rest(&self, negotiated: ProtocolVersion, out: &mut Vec<u8>) {
        if negotiated.at_least(38) {
            put_bytes_list(out, &self.features);
        }
        if negotiated.at_least(33) {
            put_bytes(out, &self.nix_version);
        }
        if negotiated.at_least(35) {
            put_u64(out, self.trusted.to_wire());
        }
    }

    pub fn decode_version(r: &mut Reader<'_>) -> Result<ProtocolVersion, DecodeError> {
        magic_and_version(r, WORKER_MAGIC_2)
    }

    pub fn decode_rest(
        version: ProtocolVersion,
        negotiated: ProtocolVersion,
        r: &mut Reader<'_>,
    ) -> Result<Self, DecodeError> {
        let mut hello = DaemonHello::new(version, b"");
        if negotiated.at_least(38) {
            hello.features = r.bytes_list()?;
        }
        if negotiated.at_least(33) {
            hello.nix_version = r.bytes_capped(4096)?.to_vec();
        }
        if negotiated.at_least(35) {
            hello.trusted = TrustedFlag::from_wire(r.u64()?);
        }
        Ok(hello)
    }
}

/// The first client word.
pub fn encode_client_magic(out: &mut Vec<u8>) {
    put_u64(out, WORKER_MAGIC_1);
}

/// The features both sides support (≥ 1.38): the intersection, in the client's order.
pub fn common_features(client: &[Vec<u8>], daemon: &[Vec<u8>]) -> Vec<Vec<u8>> {
    client.iter().filter(|f| daemon.contains(f)).cloned().collect()
}

fn expect_magic(r: &mut Reader<'_>, expected: u64) -> Result<(), DecodeError> {
    let found = r.u64()?;
    if found != expected {
        return Err(DecodeError::BadMagic { found, expected });
    }
    Ok(())
}
