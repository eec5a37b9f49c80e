//! Lenient numbers: qlog allows uint64 as JSON strings (I-JSON) and real files carry values above 2^53
//! (quinn's `ssthresh` = u64::MAX), integer or float times, and times as strings (picoquic).

use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;
use std::fmt;

/// A number written as a JSON number or a JSON string.
pub fn lenient_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A uint64 written as a JSON number or a JSON string, exact above 2^53.
pub fn lenient_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
        }
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A time: int, float or string; deserialised without building a `Value`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LenientF64(pub f64);

impl<'de> serde::Deserialize<'de> for LenientF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientF64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or a number in a string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LenientF64, E> {
                Ok(LenientF64(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LenientF64, E> {
                Ok(LenientF64(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LenientF64, E> {
                Ok(LenientF64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientF64, E> {
                v.trim().parse().map(LenientF64).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// `#[serde(deserialize_with = "…")]` for `Option<u64>` fields written as numbers or strings.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a uint64 as a number or a string")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v).map(Some).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64 {
                Ok(Some(v as u64))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.trim().parse().map(Some).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint64_as_string_and_above_2_pow_53() {
        assert_eq!(lenient_u64(&serde_json::json!("18446744073709551615")), Some(u64::MAX));
        let big: Value = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(lenient_u64(&big), Some(u64::MAX));
        assert_eq!(lenient_f64(&serde_json::json!("1.5")), Some(1.5));
        let t: LenientF64 = serde_json::from_str("\"12\"").unwrap();
        assert_eq!(t.0, 12.0);
    }
}
