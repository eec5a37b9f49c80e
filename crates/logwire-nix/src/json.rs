//! `--log-format internal-json`: the `@nix {…}` lines Nix writes to stderr (`logging.cc` JSONLogger).
//!
//! The reader tolerates what varies between versions: `fields` is omitted when empty, `parent` exists
//! only since 2.18, errors add `raw_msg`/`line`/`column`/`file`/`trace`, Determinate adds `payload`.
//! The writer reproduces Nix's bytes: keys sorted (nlohmann `std::map`), no spaces, the same escapes.

use serde_json::Value;
use thiserror::Error;

use crate::logger::{Field, Message};

pub const PREFIX: &str = "@nix ";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsonError {
    #[error("line does not start with \"@nix \"")]
    NoPrefix,
    #[error("invalid JSON: {0}")]
    Syntax(String),
    #[error("missing or mistyped key {0:?}")]
    Key(&'static str),
    #[error("unknown action {0:?}")]
    Action(String),
    #[error("field is neither an integer nor a string")]
    Field,
}

/// A field value as JSON carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonField {
    Int(u64),
    String(String),
}

/// Error details of a `msg` event produced from an exception.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonErrorInfo {
    pub raw_msg: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub file: Option<String>,
    /// With `--show-trace`: kept as JSON.
    pub trace: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JsonEvent {
    Start { id: u64, level: u64, activity_type: u64, text: String, fields: Vec<JsonField>, parent: Option<u64> },
    Stop { id: u64 },
    Result { id: u64, result_type: u64, fields: Vec<JsonField>, payload: Option<Value> },
    Msg { level: u64, msg: String, error: Option<JsonErrorInfo> },
}

impl JsonEvent {
    /// Parses one `@nix {…}` line (without its newline).
    pub fn parse_line(line: &str) -> Result<JsonEvent, JsonError> {
        let body = line.strip_prefix(PREFIX).ok_or(JsonError::NoPrefix)?;
        let value: Value = serde_json::from_str(body).map_err(|e| JsonError::Syntax(e.to_string()))?;
        JsonEvent::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<JsonEvent, JsonError> {
        let int = |key: &'static str| value.get(key).and_then(Value::as_u64).ok_or(JsonError::Key(key));
        let string =
            |key: &'static str| value.get(key).and_then(Value::as_str).map(str::to_string).ok_or(JsonError::Key(key));
        let fields = || -> Result<Vec<JsonField>, JsonError> {
            match value.get("fields") {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(JsonField::String(s.clone())),
                        other => other.as_u64().map(JsonField::Int).ok_or(JsonError::Field),
                    })
                    .collect(),
                Some(_) => Err(JsonError::Key("fields")),
            }
        };
        let action = value.get("action").and_then(Value::as_str).ok_or(JsonError::Key("action"))?;
        Ok(match action {
            "start" => JsonEvent::Start {
                id: int("id")?,
                level: int("level")?,
                activity_type: int("type")?,
                text: string("text")?,
                fields: fields()?,
                parent: value.get("parent").and_then(Value::as_u64),
            },
            "stop" => JsonEvent::Stop { id: int("id")? },
            "result" => JsonEvent::Result {
                id: int("id")?,
                result_type: int("type")?,
                fields: fields()?,
                payload: value.get("payload").cloned(),
            },
            "msg" => {
                let error = match value.get("raw_msg") {
                    Some(Value::String(raw)) => Some(JsonErrorInfo {
                        raw_msg: raw.clone(),
                        line: value.get("line").and_then(Value::as_u64),
                        column: value.get("column").and_then(Value::as_u64),
                        file: value.get("file").and_then(Value::as_str).map(str::to_string),
                        trace: value.get("trace").cloned(),
                    }),
                    _ => None,
                };
                JsonEvent::Msg { level: int("level")?, msg: string("msg")?, error }
            }
            other => return Err(JsonError::Action(other.to_string())),
        })
    }

    /// Writes the line as Nix does, `@nix ` included, without the newline.
    pub fn write_line(&self, out: &mut String) {
        out.push_str(PREFIX);
        let mut obj = ObjectWriter::new(out);
        // Keys are written in sorted order, as nlohmann's std::map does.
        match self {
            JsonEvent::Start { id, level, activity_type, text, fields, parent } => {
                obj.key("action").string("start");
                if !fields.is_empty() {
                    obj.key("fields").fields(fields);
                }
                obj.key("id").int(*id);
                obj.key("level").int(*level);
                if let Some(parent) = parent {
                    obj.key("parent").int(*parent);
                }
                obj.key("text").string(text);
                obj.key("type").int(*activity_type);
            }
            JsonEvent::Stop { id } => {
                obj.key("action").string("stop");
                obj.key("id").int(*id);
            }
            JsonEvent::Result { id, result_type, fields, payload } => {
                obj.key("action").string("result");
                if !fields.is_empty() {
                    obj.key("fields").fields(fields);
                }
                obj.key("id").int(*id);
                if let Some(payload) = payload {
                    obj.key("payload").value(payload);
                }
                obj.key("type").int(*result_type);
            }
            JsonEvent::Msg { level, msg, error } => {
                obj.key("action").string("msg");
                if let Some(error) = error {
                    obj.key("column").opt_int(error.column);
                    match &error.file {
                        Some(file) => obj.key("file").string(file),
                        None => obj.key("file").null(),
                    };
                }
                obj.key("level").int(*level);
                if let Some(error) = error {
                    obj.key("line").opt_int(error.line);
                }
                obj.key("msg").string(msg);
                if let Some(error) = error {
                    obj.key("raw_msg").string(&error.raw_msg);
                    if let Some(trace) = &error.trace {
                        obj.key("trace").value(trace);
                    }
                }
            }
        }
        obj.finish();
    }

    /// The JSON form of a wire message, as a client re-renders the daemon's messages. `with_parent`:
    /// Nix ≥ 2.18 writes `parent`, 2.8 does not. Messages without a JSON form (READ, WRITE, LAST) and
    /// NEXT/ERROR (whose JSON level is the client's choice) give `None`. Bytes become text lossily, as
    /// Nix's JSON logger does.
    pub fn from_message(message: &Message, with_parent: bool) -> Option<JsonEvent> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let fields = |fields: &[Field]| {
            fields
                .iter()
                .map(|f| match f {
                    Field::Int(v) => JsonField::Int(*v),
                    Field::String(s) => JsonField::String(text(s)),
                })
                .collect()
        };
        Some(match message {
            Message::StartActivity(start) => JsonEvent::Start {
                id: start.id,
                level: start.level.to_wire(),
                activity_type: start.activity_type.to_wire(),
                text: text(&start.text),
                fields: fields(&start.fields),
                parent: with_parent.then_some(start.parent),
            },
            Message::StopActivity { id } => JsonEvent::Stop { id: *id },
            Message::Result(result) => JsonEvent::Result {
                id: result.id,
                result_type: result.result_type.to_wire(),
                fields: fields(&result.fields),
                payload: None,
            },
            _ => return None,
        })
    }

    pub fn to_line(&self) -> String {
        let mut out = String::new();
        self.write_line(&mut out);
        out
    }
}

/// Writes one JSON object, keys in the order given.
struct ObjectWriter<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        ObjectWriter { out, first: true }
    }

    fn key(&mut self, key: &str) -> &mut Self {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_string(self.out, key);
        self.out.push(':');
        self
    }

    fn string(&mut self, s: &str) -> &mut Self {
        write_string(self.out, s);
        self
    }

    fn int(&mut self, v: u64) -> &mut Self {
        self.out.push_str(&v.to_string());
        self
    }

    fn null(&mut self) -> &mut Self {
        self.out.push_str("null");
        self
    }

    fn opt_int(&mut self, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    fn fields(&mut self, fields: &[JsonField]) -> &mut Self {
        self.out.push('[');
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            match field {
                JsonField::Int(v) => self.out.push_str(&v.to_string()),
                JsonField::String(s) => write_string(self.out, s),
            }
        }
        self.out.push(']');
        self
    }

    fn value(&mut self, value: &Value) -> &mut Self {
        write_value(self.out, value);
        self
    }

    fn finish(self) {
        self.out.push('}');
    }
}

/// Any JSON value with object keys sorted, independent of serde_json's map ordering feature.
fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_value(out, v);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::String(s) => write_string(out, s),
        other => out.push_str(&other.to_string()),
    }
}

/// nlohmann's escaping with `ensure_ascii = false`: `"` `\\` `\b` `\f` `\n` `\r` `\t`, other control
/// characters as lowercase `\u00xx`, everything else verbatim.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_tolerates_missing_fields_and_parent() {
        let event = JsonEvent::parse_line(r#"@nix {"action":"start","id":1,"level":0,"text":"","type":102}"#).unwrap();
        assert_eq!(
            event,
            JsonEvent::Start { id: 1, level: 0, activity_type: 102, text: String::new(), fields: vec![], parent: None }
        );
        let event =
            JsonEvent::parse_line(r#"@nix {"action":"start","id":1,"level":0,"parent":7,"text":"","type":102}"#)
                .unwrap();
        assert!(matches!(event, JsonEvent::Start { parent: Some(7), .. }));
        assert_eq!(event.to_line(), r#"@nix {"action":"start","id":1,"level":0,"parent":7,"text":"","type":102}"#);
    }

    #[test]
    fn reader_rejects_garbage_with_typed_errors() {
        assert_eq!(JsonEvent::parse_line("nix {}"), Err(JsonError::NoPrefix));
        assert!(matches!(JsonEvent::parse_line("@nix {"), Err(JsonError::Syntax(_))));
        assert_eq!(JsonEvent::parse_line(r#"@nix {"action":"dance"}"#), Err(JsonError::Action("dance".into())));
        assert_eq!(JsonEvent::parse_line(r#"@nix {"action":"stop"}"#), Err(JsonError::Key("id")));
    }

    #[test]
    fn writer_escapes_like_nlohmann() {
        let event = JsonEvent::Msg { level: 0, msg: "a\"b\\c\u{1b}\u{7f}\té".into(), error: None };
        assert_eq!(event.to_line(), "@nix {\"action\":\"msg\",\"level\":0,\"msg\":\"a\\\"b\\\\c\\u001b\u{7f}\\té\"}");
    }
}
