//! A CEE body (one JSON object) read straight into wire pairs, keys in order: strings are borrowed from
//! the text when they hold no escapes, numbers and booleans stay scalars, and only nested arrays/objects
//! become `serde_json::Value`s. Building a `Value` per field first (and then borrowing from it) cost an
//! allocation per key and per string twice over (CEE decode 355 k/s → see `benches/parse.rs`).

use crate::schema::WireValue;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Most keys accepted in one CEE object.
pub const MAX_KEYS: usize = 4096;

/// One field's value: a scalar in wire form, or a nested array/object kept as JSON.
pub(crate) enum CeeValue<'a> {
    Wire(WireValue<'a>),
    Nested(Value),
}

pub(crate) struct CeeObject<'a>(pub Vec<(Cow<'a, str>, CeeValue<'a>)>);

/// A string borrowed from the input when it can be.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for CeeValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CeeValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<CeeValue<'de>, E> {
                Ok(CeeValue::Wire(WireValue::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<CeeValue<'de>, E> {
                Ok(CeeValue::Wire(if v >= 0 { WireValue::UInt(v as u64) } else { WireValue::Int(v) }))
            }
            fn visit_u64<E>(self, v: u64) -> Result<CeeValue<'de>, E> {
                Ok(CeeValue::Wire(WireValue::UInt(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<CeeValue<'de>, E> {
                Ok(CeeValue::Wire(WireValue::Float(v)))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<CeeValue<'de>, E> {
                Ok(CeeValue::Wire(WireValue::Str(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<CeeValue<'de>, E> {
                Ok(CeeValue::Wire(WireValue::Str(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E>(self, v: String) -> Result<CeeValue<'de>, E> {
                Ok(CeeValue::Wire(WireValue::Str(Cow::Owned(v))))
            }
            fn visit_unit<E>(self) -> Result<CeeValue<'de>, E> {
                Ok(CeeValue::Wire(WireValue::Null))
            }
            fn visit_none<E>(self) -> Result<CeeValue<'de>, E> {
                Ok(CeeValue::Wire(WireValue::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<CeeValue<'de>, A::Error> {
                Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(CeeValue::Nested)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CeeValue<'de>, A::Error> {
                Value::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(CeeValue::Nested)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for CeeObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CeeObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CeeObject<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).clamp(32, 64));
                while let Some((Text(k), v)) = map.next_entry::<Text<'de>, CeeValue<'de>>()? {
                    if out.len() >= MAX_KEYS {
                        return Err(serde::de::Error::custom("too many keys"));
                    }
                    out.push((k, v));
                }
                Ok(CeeObject(out))
            }
        }
        d.deserialize_map(V)
    }
}
