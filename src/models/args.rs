//! `model_args` (a family constructor's keyword arguments in config.json)
//! read into and written from a family's config struct through serde: the
//! struct's serialised fields are the allow-list, every error names the key.
//!
//! A family config derives `Serialize` + `Deserialize`; fields whose JSON
//! form differs from the Rust type (timm's "an int or a pair", `"learn"` for
//! a bool) use the `with` / `deserialize_with` helpers here.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// What a family's `model_args` accept beyond its config's fields.
pub struct ArgRules {
    /// The family's name in messages (`ViT`, `Swin`, `HVT`).
    pub family: &'static str,
    /// Config fields that are not constructor arguments (never read, never written).
    pub internal: &'static [&'static str],
    /// Fields read but never written (vitrine-only switches the reference constructor lacks).
    pub read_only: &'static [&'static str],
    /// Keys accepted and ignored: they change nothing vitrine computes
    /// (dropout rates, init schemes) or hold the only value vitrine supports.
    pub ignored: fn(&str, &Value) -> bool,
}

/// Applies `args` to `cfg`: each key must be a field of the config (and not
/// internal) or one [`ArgRules::ignored`] accepts; a value of the wrong form
/// is an error naming the key and the value.
pub fn read<T: Serialize + DeserializeOwned>(cfg: &mut T, args: &Map<String, Value>, rules: &ArgRules) -> Result<()> {
    let mut obj = match serde_json::to_value(&*cfg) {
        Ok(Value::Object(o)) => o,
        _ => return Err(Error::Config(format!("{} config does not serialise to an object", rules.family))),
    };
    for (k, v) in args {
        if (rules.ignored)(k, v) {
            continue;
        }
        if !obj.contains_key(k) || rules.internal.contains(&k.as_str()) {
            return Err(Error::Unsupported(format!("model_args.{k} = {v} is not supported by vitrine for {}", rules.family)));
        }
        obj.insert(k.clone(), v.clone());
        if let Err(e) = serde_json::from_value::<T>(Value::Object(obj.clone())) {
            return Err(Error::Config(format!("model_args.{k} = {v}: {e}")));
        }
    }
    *cfg = serde_json::from_value(Value::Object(obj)).map_err(|e| Error::Config(format!("model_args: {e}")))?;
    Ok(())
}

/// The arguments that rebuild `cfg`: each field that differs from `base`'s
/// (the preset's, or the constructor's defaults) or is listed in `always`;
/// internal and read-only fields are left out.
pub fn write<T: Serialize>(cfg: &T, base: &T, always: &[&str], rules: &ArgRules) -> Map<String, Value> {
    let obj = |t: &T| match serde_json::to_value(t) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    let (mine, theirs) = (obj(cfg), obj(base));
    mine.into_iter()
        .filter(|(k, v)| {
            !rules.internal.contains(&k.as_str())
                && !rules.read_only.contains(&k.as_str())
                && (always.contains(&k.as_str()) || theirs.get(k) != Some(v))
        })
        .collect()
}

/// A non-negative integer, or a clear error naming `k`.
pub fn as_usize(k: &str, v: &Value) -> Result<usize> {
    v.as_u64().map(|x| x as usize).ok_or_else(|| Error::Config(format!("{k} must be a non-negative integer, got {v}")))
}
/// A number, or a clear error naming `k`.
pub fn as_f64(k: &str, v: &Value) -> Result<f64> {
    v.as_f64().ok_or_else(|| Error::Config(format!("{k} must be a number, got {v}")))
}
/// An int (both sides) or a pair of ints, as timm's `to_2tuple`.
pub fn as_pair(k: &str, v: &Value) -> Result<[usize; 2]> {
    match v {
        Value::Array(a) if a.len() == 2 => Ok([as_usize(k, &a[0])?, as_usize(k, &a[1])?]),
        _ => as_usize(k, v).map(|x| [x, x]),
    }
}

fn custom<E: serde::de::Error>(e: Error) -> E {
    E::custom(match e {
        Error::Config(m) => m,
        other => other.to_string(),
    })
}

/// `with` helpers for an `[h, w]` size written as an int when square.
pub mod pair {
    use super::*;
    /// Writes an int when both sides are equal, else the pair.
    pub fn serialize<S: Serializer>(v: &[usize; 2], s: S) -> std::result::Result<S::Ok, S::Error> {
        if v[0] == v[1] {
            v[0].serialize(s)
        } else {
            v.serialize(s)
        }
    }
    /// Reads an int or a pair of ints.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<[usize; 2], D::Error> {
        as_pair("size", &Value::deserialize(d)?).map_err(custom)
    }
}

/// `deserialize_with` for a square patch size given as an int or an equal pair.
pub fn square<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    let p = as_pair("patch_size", &Value::deserialize(d)?).map_err(custom)?;
    if p[0] != p[1] {
        return Err(serde::de::Error::custom(format!("non-square patch_size {p:?} is not supported")));
    }
    Ok(p[0])
}

/// `deserialize_with` for an optional value where `null` and `0` both mean none
/// (timm's `init_values`).
pub fn zero_is_none<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<f64>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() || v.as_f64() == Some(0.0) {
        return Ok(None);
    }
    as_f64("init_values", &v).map(Some).map_err(custom)
}

/// `with` helpers for timm's `pos_embed`: `"learn"` (true) or `"none"` / `""` (false).
pub mod learn {
    use super::*;
    /// Writes `"learn"` or `"none"`.
    pub fn serialize<S: Serializer>(v: &bool, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(if *v { "learn" } else { "none" })
    }
    /// Reads `"learn"`, `"none"` or `""`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
        match String::deserialize(d)?.as_str() {
            "learn" => Ok(true),
            "none" | "" => Ok(false),
            other => Err(serde::de::Error::custom(format!("pos_embed {other:?} is not supported (learn, none)"))),
        }
    }
}
