//! The daemon → client logging channel: the 8 `STDERR_*` messages (`daemon.cc` TunnelLogger,
//! `worker-protocol-connection.cc processStderr`), their open enums and typed field views.
//!
//! [`Message::decode`] and [`Message::encode`] are exact inverses for every variant, so a capture
//! re-encodes byte for byte. Version handling on the emit side (what a daemon must send to an old
//! client) is in [`crate::emit`].

use crate::error::DecodeError;
use crate::version::ProtocolVersion;
use crate::wire::{put_bytes, put_u64, Limits, Reader};

pub const STDERR_NEXT: u64 = 0x6f6c_6d67;
pub const STDERR_READ: u64 = 0x6461_7461;
pub const STDERR_WRITE: u64 = 0x6461_7416;
pub const STDERR_LAST: u64 = 0x616c_7473;
pub const STDERR_ERROR: u64 = 0x6378_7470;
pub const STDERR_START_ACTIVITY: u64 = 0x5354_5254;
pub const STDERR_STOP_ACTIVITY: u64 = 0x5354_4f50;
pub const STDERR_RESULT: u64 = 0x5253_4c54;

/// Declares an open enum: known values get names, anything else is kept as `Unknown(value)`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this version of logwire has no name for, kept as sent.
            Unknown(u64),
        }

        impl $name {
            pub fn from_wire(value: u64) -> Self {
                match value {
                    $($value => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }

            pub fn to_wire(self) -> u64 {
                match self {
                    $($name::$variant => $value,)*
                    $name::Unknown(other) => other,
                }
            }

            /// The name Nix uses in its source, or `None` for unknown values.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $($name::$variant => Some(stringify!($variant)),)*
                    $name::Unknown(_) => None,
                }
            }
        }
    };
}

open_enum!(
    /// `Verbosity` (`logging.hh`).
    Verbosity {
        Error = 0,
        Warn = 1,
        Notice = 2,
        Info = 3,
        Talkative = 4,
        Chatty = 5,
        Debug = 6,
        Vomit = 7,
    }
);

open_enum!(
    /// `ActivityType` (`logging.hh`). 2.8 knows 0 and 100–111; 112 arrived in 2.20, 113 in 2026.
    ActivityType {
        /// `actUnknown`: an activity without a type (e.g. "querying info about missing paths").
        Untyped = 0,
        CopyPath = 100,
        FileTransfer = 101,
        Realise = 102,
        CopyPaths = 103,
        Builds = 104,
        Build = 105,
        OptimiseStore = 106,
        VerifyPaths = 107,
        Substitute = 108,
        QueryPathInfo = 109,
        PostBuildHook = 110,
        BuildWaiting = 111,
        FetchTree = 112,
        FetchToStore = 113,
    }
);

open_enum!(
    /// `ResultType` (`logging.hh`). 108 arrived in 2.20. 109 is FetchToStore upstream but HashMismatch in
    /// Determinate Nix, and 110 is Determinate's BuildResult: both are named after their upstream/first
    /// meaning, and [`ResultView`] only claims them when the fields fit.
    ResultType {
        FileLinked = 100,
        BuildLogLine = 101,
        UntrustedPath = 102,
        CorruptedPath = 103,
        SetPhase = 104,
        Progress = 105,
        SetExpected = 106,
        PostBuildLogLine = 107,
        FetchStatus = 108,
        FetchToStore = 109,
        BuildResult = 110,
    }
);

impl ActivityType {
    /// Display name: Nix's, with `Untyped` shown as `Unknown` (type 0 is called actUnknown).
    pub fn label(self) -> String {
        match self {
            ActivityType::Untyped => "Unknown".to_string(),
            other => other.name().map_or_else(|| format!("type{}", other.to_wire()), str::to_string),
        }
    }
}

impl ResultType {
    pub fn label(self) -> String {
        self.name().map_or_else(|| format!("type{}", self.to_wire()), str::to_string)
    }
}

/// One activity/result field: kind 0 = Int, kind 1 = String.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Int(u64),
    String(Vec<u8>),
}

impl Field {
    pub fn as_int(&self) -> Option<u64> {
        match self {
            Field::Int(v) => Some(*v),
            Field::String(_) => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Field::String(s) => Some(s),
            Field::Int(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartActivity {
    pub id: u64,
    pub level: Verbosity,
    pub activity_type: ActivityType,
    pub text: Vec<u8>,
    pub fields: Vec<Field>,
    /// 0 = none (top-level daemon activities always have 0).
    pub parent: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityResult {
    pub id: u64,
    pub result_type: ResultType,
    pub fields: Vec<Field>,
}

/// STDERR_ERROR, in the form the negotiated version prescribes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorMessage {
    /// < 1.26: `what()` (with the "error: " prefix and indentation) and an exit status (100 for build
    /// failures).
    Legacy { message: Vec<u8>, exit_status: u64 },
    /// ≥ 1.26: `"Error"`, level, name (always "Error"), message, havePos = 0, traces (havePos = 0, hint).
    Structured { level: Verbosity, name: Vec<u8>, message: Vec<u8>, traces: Vec<Vec<u8>> },
}

impl ErrorMessage {
    pub fn message(&self) -> &[u8] {
        match self {
            ErrorMessage::Legacy { message, .. } | ErrorMessage::Structured { message, .. } => message,
        }
    }
}

/// One message of the logging channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Text (the daemon appends `\n`); no level on the wire.
    Next(Vec<u8>),
    /// The daemon asks the client for up to `desired_len` bytes; the answer is a string on c2s.
    Read {
        desired_len: u64,
    },
    Write(Vec<u8>),
    /// End of the log block; the op's reply follows.
    Last,
    /// End of the log block; no reply follows.
    Error(ErrorMessage),
    StartActivity(StartActivity),
    StopActivity {
        id: u64,
    },
    Result(ActivityResult),
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Next(_) => "NEXT",
            Message::Read { .. } => "READ",
            Message::Write(_) => "WRITE",
            Message::Last => "LAST",
            Message::Error(_) => "ERROR",
            Message::StartActivity(_) => "START_ACTIVITY",
            Message::StopActivity { .. } => "STOP_ACTIVITY",
            Message::Result(_) => "RESULT",
        }
    }

    /// Whether this message ends the log block.
    pub fn ends_block(&self) -> bool {
        matches!(self, Message::Last | Message::Error(_))
    }

    /// Decodes one message; `version` is the negotiated version (it decides the error form).
    pub fn decode(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Message, DecodeError> {
        // One pass, copying as it goes (cheaper than MessageRef::decode + to_owned, which validates
        // fields before copying them).
        let tag = r.u64()?;
        Ok(match tag {
            STDERR_START_ACTIVITY => {
                let id = r.u64()?;
                let level = Verbosity::from_wire(r.u64()?);
                let activity_type = ActivityType::from_wire(r.u64()?);
                let text = r.bytes_vec()?;
                let fields = decode_fields(r)?;
                let parent = r.u64()?;
                Message::StartActivity(StartActivity { id, level, activity_type, text, fields, parent })
            }
            STDERR_RESULT => {
                let id = r.u64()?;
                let result_type = ResultType::from_wire(r.u64()?);
                let fields = decode_fields(r)?;
                Message::Result(ActivityResult { id, result_type, fields })
            }
            STDERR_NEXT => Message::Next(r.bytes_vec()?),
            STDERR_READ => Message::Read { desired_len: r.u64()? },
            STDERR_WRITE => Message::Write(r.bytes_vec()?),
            STDERR_LAST => Message::Last,
            STDERR_ERROR => Message::Error(decode_error(r, version)?),
            STDERR_STOP_ACTIVITY => Message::StopActivity { id: r.u64()? },
            other => return Err(DecodeError::UnknownMessage(other)),
        })
    }

    /// A borrowed view of this message (an error is cloned; errors are rare).
    pub fn as_ref(&self) -> MessageRef<'_> {
        match self {
            Message::Next(text) => MessageRef::Next(text),
            Message::Read { desired_len } => MessageRef::Read { desired_len: *desired_len },
            Message::Write(data) => MessageRef::Write(data),
            Message::Last => MessageRef::Last,
            Message::Error(error) => MessageRef::Error(error.clone()),
            Message::StartActivity(start) => MessageRef::StartActivity {
                id: start.id,
                level: start.level,
                activity_type: start.activity_type,
                text: &start.text,
                fields: FieldsRef::owned(&start.fields),
                parent: start.parent,
            },
            Message::StopActivity { id } => MessageRef::StopActivity { id: *id },
            Message::Result(result) => MessageRef::Result {
                id: result.id,
                result_type: result.result_type,
                fields: FieldsRef::owned(&result.fields),
            },
        }
    }

    /// Encodes exactly this message (no version adaptation; see [`crate::emit::TunnelLogger`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Next(text) => {
                put_u64(out, STDERR_NEXT);
                put_bytes(out, text);
            }
            Message::Read { desired_len } => {
                put_u64(out, STDERR_READ);
                put_u64(out, *desired_len);
            }
            Message::Write(data) => {
                put_u64(out, STDERR_WRITE);
                put_bytes(out, data);
            }
            Message::Last => put_u64(out, STDERR_LAST),
            Message::Error(error) => {
                put_u64(out, STDERR_ERROR);
                match error {
                    ErrorMessage::Legacy { message, exit_status } => {
                        put_bytes(out, message);
                        put_u64(out, *exit_status);
                    }
                    ErrorMessage::Structured { level, name, message, traces } => {
                        put_bytes(out, b"Error");
                        put_u64(out, level.to_wire());
                        put_bytes(out, name);
                        put_bytes(out, message);
                        put_u64(out, 0);
                        put_u64(out, traces.len() as u64);
                        for hint in traces {
                            put_u64(out, 0);
                            put_bytes(out, hint);
                        }
                    }
                }
            }
            Message::StartActivity(start) => {
                put_u64(out, STDERR_START_ACTIVITY);
                put_u64(out, start.id);
                put_u64(out, start.level.to_wire());
                put_u64(out, start.activity_type.to_wire());
                put_bytes(out, &start.text);
                encode_fields(out, &start.fields);
                put_u64(out, start.parent);
            }
            Message::StopActivity { id } => {
                put_u64(out, STDERR_STOP_ACTIVITY);
                put_u64(out, *id);
            }
            Message::Result(result) => {
                put_u64(out, STDERR_RESULT);
                put_u64(out, result.id);
                put_u64(out, result.result_type.to_wire());
                encode_fields(out, &result.fields);
            }
        }
    }
}

fn decode_error(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<ErrorMessage, DecodeError> {
    if !version.at_least(26) {
        let message = r.bytes_vec()?;
        let exit_status = r.u64()?;
        return Ok(ErrorMessage::Legacy { message, exit_status });
    }
    if r.bytes_capped(64)? != b"Error" {
        return Err(DecodeError::BadErrorType);
    }
    let level = Verbosity::from_wire(r.u64()?);
    let name = r.bytes_capped(4096)?.to_vec();
    let message = r.bytes_vec()?;
    let have_pos = r.u64()?;
    if have_pos != 0 {
        return Err(DecodeError::ErrorPosition(have_pos));
    }
    let count = r.count()?;
    let mut traces = Vec::new();
    for _ in 0..count {
        let have_pos = r.u64()?;
        if have_pos != 0 {
            return Err(DecodeError::ErrorPosition(have_pos));
        }
        traces.push(r.bytes_vec()?);
    }
    Ok(ErrorMessage::Structured { level, name, message, traces })
}

fn decode_fields(r: &mut Reader<'_>) -> Result<Vec<Field>, DecodeError> {
    let count = r.count()?;
    // Each field takes at least 16 bytes: a count the input cannot hold is refused before allocating.
    r.ensure(count.saturating_mul(16))?;
    let mut fields = Vec::with_capacity(count as usize);
    for _ in 0..count {
        fields.push(match r.u64()? {
            0 => Field::Int(r.u64()?),
            1 => Field::String(r.bytes_vec()?),
            other => return Err(DecodeError::UnknownFieldKind(other)),
        });
    }
    Ok(fields)
}

fn encode_fields(out: &mut Vec<u8>, fields: &[Field]) {
    put_u64(out, fields.len() as u64);
    for field in fields {
        match field {
            Field::Int(v) => {
                put_u64(out, 0);
                put_u64(out, *v);
            }
            Field::String(s) => {
                put_u64(out, 1);
                put_bytes(out, s);
            }
        }
    }
}

/// One field, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRef<'a> {
    Int(u64),
    String(&'a [u8]),
}

/// A validated field list, borrowed from the input and decoded lazily (no allocation), or borrowed
/// from an owned [`Message`] (see [`Message::as_ref`]).
#[derive(Debug, Clone, Copy)]
pub struct FieldsRef<'a> {
    inner: FieldsInner<'a>,
}

#[derive(Debug, Clone, Copy)]
enum FieldsInner<'a> {
    /// `raw` was validated against the decoder's limits; iteration only walks it.
    Wire {
        count: u64,
        raw: &'a [u8],
    },
    Owned(&'a [Field]),
}

impl PartialEq for FieldsRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for FieldsRef<'_> {}

/// Iterator over a [`FieldsRef`].
#[derive(Debug, Clone)]
pub struct FieldsIter<'a> {
    inner: IterInner<'a>,
}

#[derive(Debug, Clone)]
enum IterInner<'a> {
    Wire { left: u64, reader: Reader<'a> },
    Owned(std::slice::Iter<'a, Field>),
}

impl<'a> Iterator for FieldsIter<'a> {
    type Item = FieldRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<FieldRef<'a>> {
        match &mut self.inner {
            IterInner::Wire { left, reader } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // Validated by `FieldsRef::decode`: only walk it (None on a short read cannot happen).
                let field = match reader.u64().ok() {
                    Some(0) => reader.u64().ok().map(FieldRef::Int),
                    Some(_) => reader.bytes_unchecked().map(FieldRef::String),
                    None => None,
                };
                if field.is_none() {
                    *left = 0;
                }
                field
            }
            IterInner::Owned(fields) => fields.next().map(|f| match f {
                Field::Int(v) => FieldRef::Int(*v),
                Field::String(s) => FieldRef::String(s),
            }),
        }
    }
}

impl<'a> FieldsRef<'a> {
    /// A view of owned fields.
    pub fn owned(fields: &'a [Field]) -> Self {
        FieldsRef { inner: FieldsInner::Owned(fields) }
    }

    pub fn len(&self) -> u64 {
        match self.inner {
            FieldsInner::Wire { count, .. } => count,
            FieldsInner::Owned(fields) => fields.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fields in order. The list was validated when decoded, so iteration yields all of them.
    #[inline]
    pub fn iter(&self) -> FieldsIter<'a> {
        FieldsIter {
            inner: match self.inner {
                FieldsInner::Wire { count, raw } => {
                    IterInner::Wire { left: count, reader: Reader::new(raw, Limits::UNBOUNDED) }
                }
                FieldsInner::Owned(fields) => IterInner::Owned(fields.iter()),
            },
        }
    }

    pub fn to_owned(&self) -> Vec<Field> {
        self.iter()
            .map(|f| match f {
                FieldRef::Int(v) => Field::Int(v),
                FieldRef::String(s) => Field::String(s.to_vec()),
            })
            .collect()
    }

    /// The first four fields (every typed view needs at most four), decoded once.
    fn first_four(&self) -> [Option<FieldRef<'a>>; 4] {
        let mut out = [None; 4];
        for (slot, field) in out.iter_mut().zip(self.iter()) {
            *slot = Some(field);
        }
        out
    }

    /// The fields as named values for an activity of `activity_type`, when the type is known and the
    /// fields have the expected shape.
    pub fn activity_view(&self, activity_type: ActivityType) -> Option<ActivityView<'a>> {
        let f = self.first_four();
        let s = |i: usize| match f[i] {
            Some(FieldRef::String(s)) => Some(s),
            _ => None,
        };
        let n = |i: usize| match f[i] {
            Some(FieldRef::Int(v)) => Some(v),
            _ => None,
        };
        Some(match activity_type {
            ActivityType::CopyPath => ActivityView::CopyPath { path: s(0)?, src_uri: s(1)?, dst_uri: s(2)? },
            ActivityType::FileTransfer => ActivityView::FileTransfer { uri: s(0)? },
            ActivityType::Build => {
                ActivityView::Build { drv_path: s(0)?, machine: s(1)?, round: n(2)?, nr_rounds: n(3)? }
            }
            ActivityType::Substitute => ActivityView::Substitute { path: s(0)?, substituter: s(1)? },
            ActivityType::QueryPathInfo => ActivityView::QueryPathInfo { path: s(0)?, cache_uri: s(1)? },
            ActivityType::PostBuildHook => ActivityView::PostBuildHook { drv_path: s(0)? },
            ActivityType::FetchToStore => ActivityView::FetchToStore { src_path: s(0)? },
            ActivityType::Unknown(_) => return None,
            _ if self.is_empty() => ActivityView::NoFields,
            _ => return None,
        })
    }

    /// The fields as named values for a result of `result_type`.
    pub fn result_view(&self, result_type: ResultType) -> Option<ResultView<'a>> {
        let f = self.first_four();
        let s = |i: usize| match f[i] {
            Some(FieldRef::String(s)) => Some(s),
            _ => None,
        };
        let n = |i: usize| match f[i] {
            Some(FieldRef::Int(v)) => Some(v),
            _ => None,
        };
        Some(match result_type {
            ResultType::FileLinked => ResultView::FileLinked { size: n(0)?, blocks: n(1)? },
            ResultType::BuildLogLine => ResultView::BuildLogLine { line: s(0)? },
            ResultType::UntrustedPath => ResultView::UntrustedPath { path: s(0)? },
            ResultType::CorruptedPath => ResultView::CorruptedPath { path: s(0)? },
            ResultType::SetPhase => ResultView::SetPhase { phase: s(0)? },
            ResultType::Progress => {
                ResultView::Progress { done: n(0)?, expected: n(1)?, running: n(2)?, failed: n(3)? }
            }
            ResultType::SetExpected => {
                ResultView::SetExpected { activity_type: ActivityType::from_wire(n(0)?), expected: n(1)? }
            }
            ResultType::PostBuildLogLine => ResultView::PostBuildLogLine { line: s(0)? },
            ResultType::FetchStatus => ResultView::FetchStatus { text: s(0)? },
            ResultType::FetchToStore if self.len() == 1 => ResultView::FetchToStore { store_path: s(0)? },
            _ => return None,
        })
    }

    // Always inlined: returned through memory, its parts cost store-forwarding stalls per message.
    #[inline(always)]
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = r.count()?;
        let start = r.remaining();
        let before = r.position();
        for _ in 0..count {
            match r.u64()? {
                0 => {
                    r.u64()?;
                }
                1 => {
                    r.bytes()?;
                }
                other => return Err(DecodeError::UnknownFieldKind(other)),
            }
        }
        Ok(FieldsRef { inner: FieldsInner::Wire { count, raw: &start[..r.position() - before] } })
    }
}

/// A message borrowing its strings from the input: the zero-allocation decode path (e.g. a log tail
/// that only looks at some messages). [`Message::decode`] is this plus copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageRef<'a> {
    Next(&'a [u8]),
    Read {
        desired_len: u64,
    },
    Write(&'a [u8]),
    Last,
    Error(ErrorMessage),
    StartActivity {
        id: u64,
        level: Verbosity,
        activity_type: ActivityType,
        text: &'a [u8],
        fields: FieldsRef<'a>,
        parent: u64,
    },
    StopActivity {
        id: u64,
    },
    Result {
        id: u64,
        result_type: ResultType,
        fields: FieldsRef<'a>,
    },
}

impl<'a> MessageRef<'a> {
    /// Decodes one message without copying its strings; `version` is the negotiated version.
    #[inline]
    pub fn decode(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<MessageRef<'a>, DecodeError> {
        let tag = r.u64()?;
        Ok(match tag {
            STDERR_NEXT => MessageRef::Next(r.bytes()?),
            STDERR_READ => MessageRef::Read { desired_len: r.u64()? },
            STDERR_WRITE => MessageRef::Write(r.bytes()?),
            STDERR_LAST => MessageRef::Last,
            STDERR_ERROR => MessageRef::Error(decode_error(r, version)?),
            STDERR_START_ACTIVITY => MessageRef::StartActivity {
                id: r.u64()?,
                level: Verbosity::from_wire(r.u64()?),
                activity_type: ActivityType::from_wire(r.u64()?),
                text: r.bytes()?,
                fields: FieldsRef::decode(r)?,
                parent: r.u64()?,
            },
            STDERR_STOP_ACTIVITY => MessageRef::StopActivity { id: r.u64()? },
            STDERR_RESULT => MessageRef::Result {
                id: r.u64()?,
                result_type: ResultType::from_wire(r.u64()?),
                fields: FieldsRef::decode(r)?,
            },
            other => return Err(DecodeError::UnknownMessage(other)),
        })
    }

    pub fn to_owned(&self) -> Message {
        match self {
            MessageRef::Next(t) => Message::Next(t.to_vec()),
            MessageRef::Read { desired_len } => Message::Read { desired_len: *desired_len },
            MessageRef::Write(d) => Message::Write(d.to_vec()),
            MessageRef::Last => Message::Last,
            MessageRef::Error(e) => Message::Error(e.clone()),
            MessageRef::StartActivity { id, level, activity_type, text, fields, parent } => {
                Message::StartActivity(StartActivity {
                    id: *id,
                    level: *level,
                    activity_type: *activity_type,
                    text: text.to_vec(),
                    fields: fields.to_owned(),
                    parent: *parent,
                })
            }
            MessageRef::StopActivity { id } => Message::StopActivity { id: *id },
            MessageRef::Result { id, result_type, fields } => {
                Message::Result(ActivityResult { id: *id, result_type: *result_type, fields: fields.to_owned() })
            }
        }
    }
}

/// Typed fields of known activity types (call sites in `derivation-building-goal.cc`, `substitution-goal.cc`,
/// `filetransfer.cc`, `store-api.cc`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityView<'a> {
    CopyPath {
        path: &'a [u8],
        src_uri: &'a [u8],
        dst_uri: &'a [u8],
    },
    FileTransfer {
        uri: &'a [u8],
    },
    /// `machine` is empty for a local build.
    Build {
        drv_path: &'a [u8],
        machine: &'a [u8],
        round: u64,
        nr_rounds: u64,
    },
    Substitute {
        path: &'a [u8],
        substituter: &'a [u8],
    },
    QueryPathInfo {
        path: &'a [u8],
        cache_uri: &'a [u8],
    },
    PostBuildHook {
        drv_path: &'a [u8],
    },
    FetchToStore {
        src_path: &'a [u8],
    },
    /// A known type that carries no fields (Realise, Builds, CopyPaths, BuildWaiting, …).
    NoFields,
}

impl StartActivity {
    /// The fields as named values, when the type is known and the fields have the expected shape.
    pub fn view(&self) -> Option<ActivityView<'_>> {
        FieldsRef::owned(&self.fields).activity_view(self.activity_type)
    }
}

/// Typed fields of known result types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultView<'a> {
    FileLinked {
        size: u64,
        blocks: u64,
    },
    BuildLogLine {
        line: &'a [u8],
    },
    UntrustedPath {
        path: &'a [u8],
    },
    CorruptedPath {
        path: &'a [u8],
    },
    SetPhase {
        phase: &'a [u8],
    },
    Progress {
        done: u64,
        expected: u64,
        running: u64,
        failed: u64,
    },
    SetExpected {
        activity_type: ActivityType,
        expected: u64,
    },
    PostBuildLogLine {
        line: &'a [u8],
    },
    FetchStatus {
        text: &'a [u8],
    },
    /// Upstream FetchToStore (109 with one string). Determinate's HashMismatch shares the number.
    FetchToStore {
        store_path: &'a [u8],
    },
}

impl ActivityResult {
    pub fn view(&self) -> Option<ResultView<'_>> {
        FieldsRef::owned(&self.fields).result_view(self.result_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: &Message, version: ProtocolVersion) {
        let mut out = Vec::new();
        message.encode(&mut out);
        let mut r = Reader::new(&out, Limits::default());
        assert_eq!(&Message::decode(&mut r, version).unwrap(), message);
        assert_eq!(r.position(), out.len());
        let mut r = Reader::new(&out, Limits::default());
        let borrowed = MessageRef::decode(&mut r, version).unwrap();
        assert_eq!(&borrowed.to_owned(), message);
        assert_eq!(borrowed, message.as_ref());
        assert_eq!(r.position(), out.len());
        for cut in 0..out.len() {
            let mut r = Reader::new(&out[..cut], Limits::default());
            assert!(Message::decode(&mut r, version).unwrap_err().is_incomplete(), "cut at {cut}");
            let mut r = Reader::new(&out[..cut], Limits::default());
            assert!(MessageRef::decode(&mut r, version).unwrap_err().is_incomplete(), "cut at {cut}");
        }
    }

    #[test]
    fn every_message_round_trips_and_reports_truncation() {
        let v = ProtocolVersion::NIX_2_8;
        round_trip(&Message::Next(b"hello\xff\n".to_vec()), v);
        round_trip(&Message::Read { desired_len: 65536 }, v);
        round_trip(&Message::Write(b"nar".to_vec()), v);
        round_trip(&Message::Last, v);
        round_trip(&Message::StopActivity { id: 7 }, v);
        round_trip(
            &Message::StartActivity(StartActivity {
                id: 1,
                level: Verbosity::Unknown(42),
                activity_type: ActivityType::Unknown(10113),
                text: b"x".to_vec(),
                fields: vec![Field::Int(3), Field::String(b"s".to_vec())],
                parent: 9,
            }),
            v,
        );
        round_trip(
            &Message::Result(ActivityResult { id: 1, result_type: ResultType::Unknown(10111), fields: vec![] }),
            v,
        );
        round_trip(
            &Message::Error(ErrorMessage::Structured {
                level: Verbosity::Error,
                name: b"Error".to_vec(),
                message: b"boom".to_vec(),
                traces: vec![b"while".to_vec()],
            }),
            v,
        );
        round_trip(
            &Message::Error(ErrorMessage::Legacy { message: b"old".to_vec(), exit_status: 100 }),
            ProtocolVersion::new(1, 25),
        );
    }

    #[test]
    fn open_enums_keep_fork_values() {
        for value in [109, 110, 113, 10109, 10113] {
            assert_eq!(ActivityType::from_wire(value).to_wire(), value);
            assert_eq!(ResultType::from_wire(value).to_wire(), value);
        }
        assert_eq!(ActivityType::from_wire(113), ActivityType::FetchToStore);
        assert_eq!(ResultType::from_wire(10109), ResultType::Unknown(10109));
    }

    #[test]
    fn unknown_field_kind_and_tag_are_errors() {
        let mut out = Vec::new();
        Message::Result(ActivityResult { id: 1, result_type: ResultType::Progress, fields: vec![Field::Int(1)] })
            .encode(&mut out);
        out[32] = 2; // the field kind word
        let mut r = Reader::new(&out, Limits::default());
        assert_eq!(Message::decode(&mut r, ProtocolVersion::NIX_2_8), Err(DecodeError::UnknownFieldKind(2)));
        let mut r = Reader::new(&[1, 0, 0, 0, 0, 0, 0, 0], Limits::default());
        assert_eq!(Message::decode(&mut r, ProtocolVersion::NIX_2_8), Err(DecodeError::UnknownMessage(1)));
    }
}
