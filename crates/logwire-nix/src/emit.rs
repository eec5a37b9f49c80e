//! The emit side: a daemon-side logger that writes the logging channel the way Nix's `TunnelLogger`
//! (`daemon.cc`) does for a client of any version.
//!
//! - < 1.20: an activity becomes `STDERR_NEXT "<text>...\n"`, only if the text is non-empty and its
//!   level is within the client's verbosity; STOP and RESULT are dropped.
//! - < 1.26: an error is `what()` (the "error: " prefix, continuation lines indented) plus an exit status.
//! - STDERR_NEXT is filtered by the client's verbosity (SetOptions) in every version.

use crate::logger::{ActivityResult, ErrorMessage, Message, StartActivity, Verbosity};
use crate::version::ProtocolVersion;

/// An error as the daemon knows it, before it is shaped for a client version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    pub level: Verbosity,
    /// The message without the "error: " prefix (`info().msg`).
    pub message: Vec<u8>,
    pub traces: Vec<Vec<u8>>,
    /// Sent to clients older than 1.26 (100 for a failed build, 1 otherwise).
    pub exit_status: u64,
}

/// `ex.what()` as Nix 2.8 renders an error without position or traces: the red "error:" prefix and
/// every following line indented to align under the message.
pub fn render_what(message: &[u8]) -> Vec<u8> {
    const PREFIX: &[u8] = b"\x1b[31;1merror:\x1b[0m ";
    const INDENT: &[u8] = b"\n       ";
    let mut out = PREFIX.to_vec();
    for (i, line) in message.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(INDENT);
        }
        out.extend_from_slice(line);
    }
    out
}

/// Writes logger messages for one client, applying the version gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelLogger {
    /// The version the gates apply to (Nix 2.8 uses the client's; newer Nix the negotiated one).
    pub client_version: ProtocolVersion,
    /// The client's verbosity from SetOptions (Error until then, as in Nix).
    pub verbosity: Verbosity,
}

impl TunnelLogger {
    pub fn new(client_version: ProtocolVersion, verbosity: Verbosity) -> Self {
        TunnelLogger { client_version, verbosity }
    }

    fn within_verbosity(&self, level: Verbosity) -> bool {
        level.to_wire() <= self.verbosity.to_wire()
    }

    /// `log(lvl, s)`: STDERR_NEXT with a trailing newline, if the level passes the client's verbosity.
    pub fn log(&self, out: &mut Vec<u8>, level: Verbosity, text: &[u8]) {
        if !self.within_verbosity(level) {
            return;
        }
        let mut line = text.to_vec();
        line.push(b'\n');
        Message::Next(line).encode(out);
    }

    pub fn start_activity(&self, out: &mut Vec<u8>, start: &StartActivity) {
        if self.client_version.at_least(20) {
            Message::StartActivity(start.clone()).encode(out);
        } else if !start.text.is_empty() {
            let mut text = start.text.clone();
            text.extend_from_slice(b"...");
            self.log(out, start.level, &text);
        }
    }

    pub fn stop_activity(&self, out: &mut Vec<u8>, id: u64) {
        if self.client_version.at_least(20) {
            Message::StopActivity { id }.encode(out);
        }
    }

    pub fn result(&self, out: &mut Vec<u8>, result: &ActivityResult) {
        if self.client_version.at_least(20) {
            Message::Result(result.clone()).encode(out);
        }
    }

    /// STDERR_WRITE (dump sinks).
    pub fn write(&self, out: &mut Vec<u8>, data: &[u8]) {
        Message::Write(data.to_vec()).encode(out);
    }

    /// STDERR_READ: ask the client for up to `desired_len` bytes.
    pub fn read(&self, out: &mut Vec<u8>, desired_len: u64) {
        Message::Read { desired_len }.encode(out);
    }

    /// STDERR_LAST: the op succeeded; its reply follows.
    pub fn last(&self, out: &mut Vec<u8>) {
        Message::Last.encode(out);
    }

    /// STDERR_ERROR in the form the client understands.
    pub fn error(&self, out: &mut Vec<u8>, error: &ErrorReport) {
        let message = if self.client_version.at_least(26) {
            ErrorMessage::Structured {
                level: error.level,
                name: b"Error".to_vec(),
                message: error.message.clone(),
                traces: error.traces.clone(),
            }
        } else {
            ErrorMessage::Legacy { message: render_what(&error.message), exit_status: error.exit_status }
        };
        Message::Error(message).encode(out);
    }

    /// Re-emits a decoded message for this client: the inverse of decoding for a stream the daemon
    /// wrote for the same version.
    pub fn emit(&self, out: &mut Vec<u8>, message: &Message) {
        match message {
            Message::StartActivity(start) => self.start_activity(out, start),
            Message::StopActivity { id } => self.stop_activity(out, *id),
            Message::Result(result) => self.result(out, result),
            // NEXT was already filtered and newline-terminated by the daemon that wrote it.
            other => other.encode(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logger::{ActivityType, Field, ResultType};

    fn build_activity(text: &[u8], level: Verbosity) -> StartActivity {
        StartActivity {
            id: 5,
            level,
            activity_type: ActivityType::Build,
            text: text.to_vec(),
            fields: vec![
                Field::String(b"/nix/store/x.drv".to_vec()),
                Field::String(vec![]),
                Field::Int(1),
                Field::Int(1),
            ],
            parent: 0,
        }
    }

    #[test]
    fn old_clients_get_activities_as_next_and_no_results() {
        let logger = TunnelLogger::new(ProtocolVersion::new(1, 19), Verbosity::Info);
        let mut out = Vec::new();
        logger.start_activity(&mut out, &build_activity(b"building 'x'", Verbosity::Info));
        logger.start_activity(&mut out, &build_activity(b"", Verbosity::Error));
        logger.start_activity(&mut out, &build_activity(b"too chatty", Verbosity::Debug));
        logger.result(&mut out, &ActivityResult { id: 5, result_type: ResultType::BuildLogLine, fields: vec![] });
        logger.stop_activity(&mut out, 5);
        let mut expected = Vec::new();
        Message::Next(b"building 'x'...\n".to_vec()).encode(&mut expected);
        assert_eq!(out, expected);
    }

    #[test]
    fn errors_follow_the_1_26_gate() {
        let report = ErrorReport {
            level: Verbosity::Error,
            message: b"builder failed;\nlast 1 log lines:\n> x".to_vec(),
            traces: vec![],
            exit_status: 100,
        };
        let mut old = Vec::new();
        TunnelLogger::new(ProtocolVersion::new(1, 25), Verbosity::Info).error(&mut old, &report);
        let mut expected = Vec::new();
        Message::Error(ErrorMessage::Legacy {
            message: b"\x1b[31;1merror:\x1b[0m builder failed;\n       last 1 log lines:\n       > x".to_vec(),
            exit_status: 100,
        })
        .encode(&mut expected);
        assert_eq!(old, expected);

        let mut new = Vec::new();
        TunnelLogger::new(ProtocolVersion::new(1, 26), Verbosity::Info).error(&mut new, &report);
        assert_eq!(&new[8..16], &5u64.to_le_bytes()); // the "Error" type string
    }
}
