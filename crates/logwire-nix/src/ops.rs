//! Op framing: the shape of every client request and daemon reply real clients use, protocol 1.10–1.38
//! (`daemon.cc performOp`, `remote-store.cc`, `worker-protocol.cc` at 2.8.0 and HEAD).
//!
//! A request is the op word and its arguments, possibly followed by a *tail* that is streamed rather
//! than buffered: framed data (AddToStore ≥ 1.25, AddMultipleToStore, AddToStoreNar ≥ 1.23, AddBuildLog)
//! or a raw NAR (AddToStore < 1.25, AddToStoreNar < 1.21). A reply follows STDERR_LAST (never
//! STDERR_ERROR); NarFromPath's reply is a raw NAR tail.
//!
//! Some ops move their data inside the log block instead: the daemon asks for it with STDERR_READ and the
//! client answers each request with a string on c2s (ImportPaths, AddToStoreNar at 1.21–1.22), or it
//! sends it out with STDERR_WRITE (ExportPath). Their requests and replies are plain; the observer skips
//! the READ answers.
//!
//! Lists are walked through a [`ListMemo`] ([`Request::decode_with`], [`Reply::decode_with`]), so a
//! caller retrying a parse as a long request or reply arrives walks each list once in all.

use crate::error::DecodeError;
use crate::logger::Verbosity;
use crate::version::ProtocolVersion;
use crate::wire::{ListMemo, Reader};

macro_rules! ops {
    ($($variant:ident = $value:expr),* $(,)?) => {
        /// A worker op code; codes without a name are kept as `Unknown`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op {
            $($variant,)*
            Unknown(u64),
        }

        impl Op {
            pub fn from_wire(value: u64) -> Op {
                match value {
                    $($value => Op::$variant,)*
                    other => Op::Unknown(other),
                }
            }

            pub fn to_wire(self) -> u64 {
                match self {
                    $(Op::$variant => $value,)*
                    Op::Unknown(other) => other,
                }
            }

            pub fn name(self) -> String {
                match self {
                    $(Op::$variant => stringify!($variant).to_string(),)*
                    Op::Unknown(other) => format!("Op{other}"),
                }
            }
        }
    };
}

ops! {
    IsValidPath = 1,
    HasSubstitutes = 3,
    QueryPathHash = 4,
    QueryReferences = 5,
    QueryReferrers = 6,
    AddToStore = 7,
    AddTextToStore = 8,
    BuildPaths = 9,
    EnsurePath = 10,
    AddTempRoot = 11,
    AddIndirectRoot = 12,
    SyncWithGC = 13,
    FindRoots = 14,
    ExportPath = 16,
    QueryDeriver = 18,
    SetOptions = 19,
    CollectGarbage = 20,
    QuerySubstitutablePathInfo = 21,
    QueryDerivationOutputs = 22,
    QueryAllValidPaths = 23,
    QueryPathInfo = 26,
    ImportPaths = 27,
    QueryDerivationOutputNames = 28,
    QueryPathFromHashPart = 29,
    QuerySubstitutablePathInfos = 30,
    QueryValidPaths = 31,
    QuerySubstitutablePaths = 32,
    QueryValidDerivers = 33,
    OptimiseStore = 34,
    VerifyStore = 35,
    BuildDerivation = 36,
    AddSignatures = 37,
    NarFromPath = 38,
    AddToStoreNar = 39,
    QueryMissing = 40,
    QueryDerivationOutputMap = 41,
    RegisterDrvOutput = 42,
    QueryRealisation = 43,
    AddMultipleToStore = 44,
    AddBuildLog = 45,
    BuildPathsWithResults = 46,
    AddPermRoot = 47,
}

/// What follows a request or reply and is streamed instead of buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    None,
    Framed,
    Nar,
}

/// A decoded request: the op, the store paths or targets it is about, and its tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    /// The paths, derived paths or name the op is about (first few only for long lists).
    pub targets: Vec<Vec<u8>>,
    /// Total number of targets (lists may be longer than `targets`).
    pub target_count: u64,
    /// SetOptions: the client's verbosity, which filters STDERR_NEXT.
    pub verbosity: Option<Verbosity>,
    pub tail: Tail,
}

/// Most targets kept per request (the count is still reported).
const KEPT_TARGETS: usize = 16;

/// Why a request cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    Decode(DecodeError),
    /// An op code logwire does not know, or one it knows but cannot frame at this version.
    Unframed {
        op: Op,
        version: ProtocolVersion,
    },
}

impl From<DecodeError> for FrameError {
    fn from(e: DecodeError) -> Self {
        FrameError::Decode(e)
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Decode(e) => e.fmt(f),
            FrameError::Unframed { op, version } => write!(f, "cannot frame op {} at protocol {version}", op.name()),
        }
    }
}

impl Request {
    fn new(op: Op) -> Self {
        Request { op, targets: Vec::new(), target_count: 0, verbosity: None, tail: Tail::None }
    }

    fn one(mut self, target: &[u8]) -> Self {
        self.targets.push(target.to_vec());
        self.target_count = 1;
        self
    }

    /// A list of targets: the first [`KEPT_TARGETS`] kept, all counted; each element is `item` followed
    /// by `extra` more strings.
    fn list_of(mut self, r: &mut Reader<'_>, memo: &mut ListMemo, extra: usize) -> Result<Self, DecodeError> {
        let targets = &mut self.targets;
        self.target_count = memo.list(r, KEPT_TARGETS as u64, |r, i| {
            let item = r.bytes()?;
            for _ in 0..extra {
                r.bytes()?;
            }
            if (i as usize) < KEPT_TARGETS {
                targets.push(item.to_vec());
            }
            Ok(())
        })?;
        Ok(self)
    }

    fn list(self, r: &mut Reader<'_>, memo: &mut ListMemo) -> Result<Self, DecodeError> {
        self.list_of(r, memo, 0)
    }

    /// Decodes a request, op word included; `version` is the negotiated version.
    pub fn decode(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Request, FrameError> {
        Request::decode_with(r, version, &mut ListMemo::default())
    }

    /// [`Request::decode`] for a caller that retries as the request arrives: `memo` (the same one for
    /// every attempt over the same bytes) lets each attempt jump over the list elements walked before.
    pub fn decode_with(
        r: &mut Reader<'_>,
        version: ProtocolVersion,
        memo: &mut ListMemo,
    ) -> Result<Request, FrameError> {
        let op = Op::from_wire(r.u64()?);
        let v = |minor| version.at_least(minor);
        let req = Request::new(op);
        Ok(match op {
            Op::IsValidPath
            | Op::HasSubstitutes
            | Op::QueryPathHash
            | Op::QueryReferences
            | Op::QueryReferrers
            | Op::QueryDeriver
            | Op::QueryDerivationOutputs
            | Op::QueryDerivationOutputNames
            | Op::QueryValidDerivers
            | Op::QueryPathFromHashPart
            | Op::EnsurePath
            | Op::AddTempRoot
            | Op::AddIndirectRoot
            | Op::QuerySubstitutablePathInfo
            | Op::QueryPathInfo
            | Op::QueryDerivationOutputMap
            | Op::QueryRealisation
            | Op::NarFromPath => req.one(r.bytes()?),
            Op::SyncWithGC | Op::FindRoots | Op::QueryAllValidPaths | Op::OptimiseStore | Op::ImportPaths => req,
            Op::ExportPath => {
                let req = req.one(r.bytes()?);
                r.u64()?; // sign (obsolete)
                req
            }
            Op::SetOptions => {
                let mut req = req;
                let _keep_failed = r.u64()?;
                let _keep_going = r.u64()?;
                let _try_fallback = r.u64()?;
                req.verbosity = Some(Verbosity::from_wire(r.u64()?));
                // maxBuildJobs, maxSilentTime, useBuildHook, verboseBuild, logType, printBuildTrace,
                // buildCores, useSubstitutes.
                for _ in 0..8 {
                    r.u64()?;
                }
                if v(12) {
                    memo.skip_bytes_map(r)?;
                }
                req
            }
            Op::AddToStore => {
                let name = r.bytes()?;
                let mut req = req.one(name);
                if v(25) {
                    let _content_address_method = r.bytes()?;
                    memo.skip_bytes_list(r)?;
                    r.bool()?;
                    req.tail = Tail::Framed;
                } else {
                    let _fixed = r.u64()?;
                    let _recursive = r.u64()?;
                    let _hash_algo = r.bytes()?;
                    req.tail = Tail::Nar;
                }
                req
            }
            Op::AddTextToStore => {
                let req = req.one(r.bytes()?);
                r.bytes()?;
                memo.skip_bytes_list(r)?;
                req
            }
            Op::BuildPaths => {
                let req = req.list(r, memo)?;
                if v(15) {
                    r.u64()?;
                }
                req
            }
            Op::BuildPathsWithResults => {
                let req = req.list(r, memo)?;
                r.u64()?;
                req
            }
            Op::BuildDerivation => {
                let req = req.one(r.bytes()?);
                skip_basic_derivation(r, memo)?;
                r.u64()?;
                req
            }
            Op::CollectGarbage => {
                r.u64()?;
                let req = req.list(r, memo)?;
                for _ in 0..5 {
                    r.u64()?;
                }
                req
            }
            // ≥ 1.22: a map of path → content address.
            Op::QuerySubstitutablePathInfos => req.list_of(r, memo, usize::from(v(22)))?,
            Op::QueryValidPaths => {
                let req = req.list(r, memo)?;
                if v(27) {
                    r.bool()?;
                }
                req
            }
            Op::QuerySubstitutablePaths | Op::QueryMissing => req.list(r, memo)?,
            Op::VerifyStore => {
                r.bool()?;
                r.bool()?;
                req
            }
            Op::AddSignatures => {
                let req = req.one(r.bytes()?);
                memo.skip_bytes_list(r)?;
                req
            }
            // The NAR follows framed (≥ 1.23), comes through STDERR_READ answers (1.21–1.22), or follows raw.
            Op::AddToStoreNar => {
                let mut req = req.one(r.bytes()?);
                skip_unkeyed_path_info(r, version, memo)?;
                r.bool()?; // repair
                r.bool()?; // dontCheckSigs
                req.tail = if v(23) {
                    Tail::Framed
                } else if v(21) {
                    Tail::None
                } else {
                    Tail::Nar
                };
                req
            }
            Op::RegisterDrvOutput => {
                let req = req.one(r.bytes()?);
                if !v(31) {
                    r.bytes()?;
                }
                req
            }
            Op::AddMultipleToStore => {
                let mut req = req;
                r.bool()?;
                r.bool()?;
                req.tail = Tail::Framed;
                req
            }
            Op::AddBuildLog => {
                let mut req = req.one(r.bytes()?);
                req.tail = Tail::Framed;
                req
            }
            Op::AddPermRoot => {
                let req = req.one(r.bytes()?);
                r.bytes()?;
                req
            }
            Op::Unknown(_) => return Err(FrameError::Unframed { op, version }),
        })
    }
}

/// A decoded reply (after STDERR_LAST).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The single integer some ops return (1 for success, or a boolean).
    pub value: Option<u64>,
    /// BuildPathsWithResults / BuildDerivation outcomes (the first few of a long list).
    pub build_results: Vec<BuildResult>,
    /// BuildPathsWithResults: how many outcomes the reply held.
    pub build_result_count: u64,
    /// NarFromPath: a raw NAR follows.
    pub nar_follows: bool,
}

/// `BuildResult` as far as logwire records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    pub path: Vec<u8>,
    pub status: u64,
    pub error_msg: Vec<u8>,
    pub times_built: u64,
    pub start_time: u64,
    pub stop_time: u64,
}

impl BuildResult {
    /// Status names from `BuildResult::Status` (realised: 0–3, failures above).
    pub fn status_name(&self) -> &'static str {
        match self.status {
            0 => "Built",
            1 => "Substituted",
            2 => "AlreadyValid",
            3 => "PermanentFailure",
            4 => "InputRejected",
            5 => "OutputRejected",
            6 => "TransientFailure",
            7 => "CachedFailure",
            8 => "TimedOut",
            9 => "MiscFailure",
            10 => "DependencyFailed",
            11 => "LogLimitExceeded",
            12 => "NotDeterministic",
            13 => "ResolvesToAlreadyValid",
            14 => "NoSubstituters",
            _ => "Unknown",
        }
    }
}

impl Reply {
    /// Decodes the reply to `op` at the negotiated `version`.
    pub fn decode(op: Op, r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Reply, FrameError> {
        Reply::decode_with(op, r, version, &mut ListMemo::default())
    }

    /// [`Reply::decode`] for a caller that retries as the reply arrives (see [`Request::decode_with`]).
    pub fn decode_with(
        op: Op,
        r: &mut Reader<'_>,
        version: ProtocolVersion,
        memo: &mut ListMemo,
    ) -> Result<Reply, FrameError> {
        let v = |minor| version.at_least(minor);
        let mut reply = Reply::default();
        match op {
            Op::SetOptions | Op::AddToStoreNar | Op::AddMultipleToStore | Op::RegisterDrvOutput => {}
            Op::IsValidPath
            | Op::HasSubstitutes
            | Op::BuildPaths
            | Op::EnsurePath
            | Op::AddTempRoot
            | Op::AddIndirectRoot
            | Op::SyncWithGC
            | Op::OptimiseStore
            | Op::VerifyStore
            | Op::AddSignatures
            | Op::AddBuildLog
            | Op::ExportPath => reply.value = Some(r.u64()?),
            Op::QueryPathHash | Op::QueryDeriver | Op::QueryPathFromHashPart | Op::AddTextToStore | Op::AddPermRoot => {
                r.bytes()?;
            }
            Op::QueryReferences
            | Op::QueryReferrers
            | Op::QueryDerivationOutputs
            | Op::QueryDerivationOutputNames
            | Op::QueryValidDerivers
            | Op::QueryAllValidPaths
            | Op::QueryValidPaths
            | Op::QuerySubstitutablePaths
            | Op::QueryRealisation
            | Op::ImportPaths => {
                memo.skip_bytes_list(r)?;
            }
            Op::FindRoots | Op::QueryDerivationOutputMap => {
                memo.skip_bytes_map(r)?;
            }
            Op::AddToStore => {
                if v(25) {
                    r.bytes()?; // path
                    skip_unkeyed_path_info(r, version, memo)?;
                } else {
                    r.bytes()?;
                }
            }
            Op::QueryPathInfo => {
                let valid = if v(17) { r.bool()? } else { true };
                reply.value = Some(u64::from(valid));
                if valid {
                    skip_unkeyed_path_info(r, version, memo)?;
                }
            }
            Op::QuerySubstitutablePathInfo => {
                let found = r.bool()?;
                reply.value = Some(u64::from(found));
                if found {
                    r.bytes()?;
                    r.skip_bytes_list()?;
                    r.u64()?;
                    r.u64()?;
                }
            }
            Op::QuerySubstitutablePathInfos => {
                memo.list(r, 0, |r, _| {
                    r.bytes()?;
                    r.bytes()?;
                    r.skip_bytes_list()?;
                    r.u64()?;
                    r.u64().map(|_| ())
                })?;
            }
            Op::CollectGarbage => {
                memo.skip_bytes_list(r)?;
                r.u64()?;
                r.u64()?;
            }
            Op::QueryMissing => {
                memo.skip_bytes_list(r)?;
                memo.skip_bytes_list(r)?;
                memo.skip_bytes_list(r)?;
                r.u64()?;
                r.u64()?;
            }
            Op::BuildDerivation => reply.build_results.push(decode_build_result(r, version, Vec::new())?),
            Op::BuildPathsWithResults => {
                let results = &mut reply.build_results;
                reply.build_result_count = memo.list(r, KEPT_TARGETS as u64, |r, i| {
                    let path = r.bytes()?;
                    let result = decode_build_result(r, version, Vec::new())?;
                    if (i as usize) < KEPT_TARGETS {
                        results.push(BuildResult { path: path.to_vec(), ..result });
                    }
                    Ok(())
                })?;
            }
            Op::NarFromPath => reply.nar_follows = true,
            Op::Unknown(_) => return Err(FrameError::Unframed { op, version }),
        }
        Ok(reply)
    }
}

fn decode_build_result(
    r: &mut Reader<'_>,
    version: ProtocolVersion,
    path: Vec<u8>,
) -> Result<BuildResult, DecodeError> {
    let status = r.u64()?;
    let error_msg = r.bytes_vec()?;
    let mut result = BuildResult { path, status, error_msg, times_built: 0, start_time: 0, stop_time: 0 };
    if version.at_least(29) {
        result.times_built = r.u64()?;
        r.u64()?; // isNonDeterministic
        result.start_time = r.u64()?;
        result.stop_time = r.u64()?;
    }
    if version.at_least(37) {
        // cpuUser, cpuSystem: std::optional<microseconds>.
        for _ in 0..2 {
            match r.u64()? {
                0 => {}
                1 => {
                    r.u64()?;
                }
                other => return Err(DecodeError::BadOptional(other)),
            }
        }
    }
    if version.at_least(28) {
        r.skip_bytes_map()?; // DrvOutput → Realisation JSON
    }
    Ok(result)
}

/// `UnkeyedValidPathInfo`: deriver, narHash, references, registrationTime, narSize, and ≥ 1.16
/// ultimate, sigs, ca.
fn skip_unkeyed_path_info(
    r: &mut Reader<'_>,
    version: ProtocolVersion,
    memo: &mut ListMemo,
) -> Result<(), DecodeError> {
    r.bytes()?;
    r.bytes()?;
    memo.skip_bytes_list(r)?;
    r.u64()?;
    r.u64()?;
    if version.at_least(16) {
        r.bool()?;
        memo.skip_bytes_list(r)?;
        r.bytes()?;
    }
    Ok(())
}

/// `BasicDerivation`: outputs (name, path, hashAlgo, hash), inputSrcs, platform, builder, args, env.
fn skip_basic_derivation(r: &mut Reader<'_>, memo: &mut ListMemo) -> Result<(), DecodeError> {
    memo.list(r, 0, |r, _| {
        for _ in 0..4 {
            r.bytes()?;
        }
        Ok(())
    })?;
    memo.skip_bytes_list(r)?;
    r.bytes()?;
    r.bytes()?;
    memo.skip_bytes_list(r)?;
    memo.skip_bytes_map(r)?;
    Ok(())
}
