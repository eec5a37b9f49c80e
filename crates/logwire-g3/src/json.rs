//! A JSON object read with its keys in order (CEE bodies), without turning on serde_json's
//! `preserve_order` for the whole workspace.

use crate::schema::WireValue;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// Most keys accepted in one CEE object.
pub const MAX_KEYS: usize = 4096;

pub(crate) struct OrderedObject(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if out.len() >= MAX_KEYS {
                        return Err(serde::de::Error::custom("too many keys"));
                    }
                    out.push((k, v));
                }
                Ok(OrderedObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The wire view of a JSON value (strings borrowed).
pub(crate) fn wire_of(v: &Value) -> WireValue<'_> {
    match v {
        Value::Null => WireValue::Null,
        Value::Bool(b) => WireValue::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                WireValue::UInt(u)
            } else if let Some(i) = n.as_i64() {
                WireValue::Int(i)
            } else {
                WireValue::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => WireValue::Str(std::borrow::Cow::Borrowed(s)),
        Value::Array(_) | Value::Object(_) => WireValue::Null,
    }
}
