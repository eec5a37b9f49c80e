//! KV lists, NOTIFY messages and ACK actions (SPOE.txt §3.2.4–3.2.5, §3.4).

use crate::data::{put_bytes, Reader, TypedData};
use crate::error::DecodeError;
use crate::varint;
use bytes::{BufMut, Bytes};

/// One named value of a KV list or a message argument. Names are bytes (HAProxy does not promise UTF-8)
/// and may be empty: HAProxy 2.6 sends unnamed args when `args` has no `name=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arg {
    pub name: Bytes,
    pub value: TypedData,
}

impl Arg {
    pub fn new(name: impl Into<Bytes>, value: TypedData) -> Self {
        Arg { name: name.into(), value }
    }

    /// The name as text (lossy for non-UTF-8 names).
    pub fn name_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }

    fn encoded_len(&self) -> usize {
        varint::encoded_len(self.name.len() as u64) + self.name.len() + self.value.encoded_len()
    }

    fn encode(&self, out: &mut impl BufMut) {
        put_bytes(&self.name, out);
        self.value.encode(out);
    }

    #[inline]
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name = r.bytes("name")?;
        let value = r.typed()?;
        Ok(Arg { name, value })
    }
}

/// A KV list: items until the end of the payload (HELLO and DISCONNECT payloads).
pub fn decode_kv_list(buf: Bytes) -> Result<Vec<Arg>, DecodeError> {
    let mut r = Reader::new(&buf);
    let mut items = Vec::new();
    while r.has_remaining() {
        items.push(Arg::read(&mut r)?);
    }
    Ok(items)
}

/// Appends a KV list.
pub fn encode_kv_list(items: &[Arg], out: &mut impl BufMut) {
    for item in items {
        item.encode(out);
    }
}

/// One SPOE message of a NOTIFY: a name and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    pub name: Bytes,
    pub args: Vec<Arg>,
}

impl Message {
    pub fn new(name: impl Into<Bytes>, args: Vec<Arg>) -> Self {
        Message { name: name.into(), args }
    }

    /// The name as text (lossy for non-UTF-8 names).
    pub fn name_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }

    /// The first argument with this name.
    pub fn arg(&self, name: &str) -> Option<&TypedData> {
        self.args.iter().find(|a| a.name == name.as_bytes()).map(|a| &a.value)
    }

    pub fn encoded_len(&self) -> usize {
        varint::encoded_len(self.name.len() as u64)
            + self.name.len()
            + 1
            + self.args.iter().map(Arg::encoded_len).sum::<usize>()
    }

    /// Appends the message. At most 255 args fit the one-byte count; the rest are not sent.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_bytes(&self.name, out);
        let n = self.args.len().min(255);
        out.put_u8(n as u8);
        for arg in &self.args[..n] {
            arg.encode(out);
        }
    }
}

/// Decodes a LIST-OF-MESSAGES (a NOTIFY payload).
pub fn decode_messages(buf: Bytes) -> Result<Vec<Message>, DecodeError> {
    let mut r = Reader::new(&buf);
    let mut messages = Vec::new();
    while r.has_remaining() {
        let name = r.bytes("message name")?;
        let nb_args = r.u8("nb-args")? as usize;
        // Each arg takes at least 2 bytes, so this bound keeps a hostile count from over-allocating.
        let mut args = Vec::with_capacity(nb_args.min(r.remaining() / 2));
        for _ in 0..nb_args {
            args.push(Arg::read(&mut r)?);
        }
        messages.push(Message { name, args });
    }
    Ok(messages)
}

/// Appends a LIST-OF-MESSAGES.
pub fn encode_messages(messages: &[Message], out: &mut impl BufMut) {
    for m in messages {
        m.encode(out);
    }
}

/// Variable scope of set-var/unset-var.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Proc,
    Sess,
    Txn,
    Req,
    Res,
}

impl Scope {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Scope::Proc,
            1 => Scope::Sess,
            2 => Scope::Txn,
            3 => Scope::Req,
            4 => Scope::Res,
            _ => return None,
        })
    }

    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Proc => "proc",
            Scope::Sess => "sess",
            Scope::Txn => "txn",
            Scope::Req => "req",
            Scope::Res => "res",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Scope::Proc, Scope::Sess, Scope::Txn, Scope::Req, Scope::Res]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown variable scope {s:?} (expected proc, sess, txn, req or res)"))
    }
}

/// An action in an ACK.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    SetVar { scope: Scope, name: Bytes, value: TypedData },
    UnsetVar { scope: Scope, name: Bytes },
}

const ACTION_SET_VAR: u8 = 1;
const ACTION_UNSET_VAR: u8 = 2;

impl Action {
    pub fn set_var(scope: Scope, name: impl Into<Bytes>, value: TypedData) -> Self {
        Action::SetVar { scope, name: name.into(), value }
    }

    pub fn unset_var(scope: Scope, name: impl Into<Bytes>) -> Self {
        Action::UnsetVar { scope, name: name.into() }
    }

    pub fn encoded_len(&self) -> usize {
        match self {
            Action::SetVar { name, value, .. } => {
                3 + varint::encoded_len(name.len() as u64) + name.len() + value.encoded_len()
            }
            Action::UnsetVar { name, .. } => 3 + varint::encoded_len(name.len() as u64) + name.len(),
        }
    }

    pub fn encode(&self, out: &mut impl BufMut) {
        match self {
            Action::SetVar { scope, name, value } => {
                out.put_slice(&[ACTION_SET_VAR, 3, scope.as_u8()]);
                put_bytes(name, out);
                value.encode(out);
            }
            Action::UnsetVar { scope, name } => {
                out.put_slice(&[ACTION_UNSET_VAR, 2, scope.as_u8()]);
                put_bytes(name, out);
            }
        }
    }
}

/// Decodes a LIST-OF-ACTIONS (an ACK payload).
pub fn decode_actions(buf: Bytes) -> Result<Vec<Action>, DecodeError> {
    let mut r = Reader::new(&buf);
    let mut actions = Vec::new();
    while r.has_remaining() {
        if r.remaining() < 3 {
            return Err(DecodeError::UnexpectedEnd("action"));
        }
        let kind = r.u8("action")?;
        let nb_args = r.u8("action")?;
        let scope = Scope::from_u8(r.u8("action")?).ok_or(DecodeError::Invalid("unknown variable scope"))?;
        let name = r.bytes("variable name")?;
        actions.push(match (kind, nb_args) {
            (ACTION_SET_VAR, 3) => Action::SetVar { scope, name, value: r.typed()? },
            (ACTION_UNSET_VAR, 2) => Action::UnsetVar { scope, name },
            _ => return Err(DecodeError::Invalid("unknown action or wrong number of action args")),
        });
    }
    Ok(actions)
}

/// Appends a LIST-OF-ACTIONS.
pub fn encode_actions(actions: &[Action], out: &mut impl BufMut) {
    for a in actions {
        a.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tests::arb_typed;
    use proptest::prelude::*;

    fn arb_name() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Bytes::from)
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        (arb_name(), proptest::collection::vec((arb_name(), arb_typed()), 0..8))
            .prop_map(|(name, args)| Message { name, args: args.into_iter().map(|(n, v)| Arg::new(n, v)).collect() })
    }

    fn arb_scope() -> impl Strategy<Value = Scope> {
        (0u8..5).prop_map(|v| Scope::from_u8(v).unwrap())
    }

    fn arb_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (arb_scope(), arb_name(), arb_typed()).prop_map(|(scope, name, value)| Action::SetVar {
                scope,
                name,
                value
            }),
            (arb_scope(), arb_name()).prop_map(|(scope, name)| Action::UnsetVar { scope, name }),
        ]
    }

    #[test]
    fn set_var_layout_matches_the_notes() {
        let mut out = Vec::new();
        Action::set_var(Scope::Txn, "score", TypedData::Uint32(42)).encode(&mut out);
        assert_eq!(out, [0x01, 0x03, 0x02, 0x05, b's', b'c', b'o', b'r', b'e', 0x03, 0x2a]);
    }

    #[test]
    fn hostile_nb_args_does_not_allocate_or_panic() {
        let mut b = Vec::new();
        put_bytes(b"m", &mut b);
        b.push(255);
        assert!(decode_messages(Bytes::from(b)).is_err());
    }

    proptest! {
        #[test]
        fn messages_round_trip(ms in proptest::collection::vec(arb_message(), 0..5)) {
            let mut out = Vec::new();
            encode_messages(&ms, &mut out);
            prop_assert_eq!(out.len(), ms.iter().map(Message::encoded_len).sum::<usize>());
            prop_assert_eq!(decode_messages(Bytes::from(out)).unwrap(), ms);
        }

        #[test]
        fn actions_round_trip(acts in proptest::collection::vec(arb_action(), 0..5)) {
            let mut out = Vec::new();
            encode_actions(&acts, &mut out);
            prop_assert_eq!(out.len(), acts.iter().map(Action::encoded_len).sum::<usize>());
            prop_assert_eq!(decode_actions(Bytes::from(out)).unwrap(), acts);
        }

        #[test]
        fn decoders_never_panic(bytes: Vec<u8>) {
            let _ = decode_messages(Bytes::from(bytes.clone()));
            let _ = decode_actions(Bytes::from(bytes.clone()));
            let _ = decode_kv_list(Bytes::from(bytes));
        }
    }
}
