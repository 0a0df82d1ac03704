//! Model configs: [`ModelConfig`] (a family's config behind [`Arch`](super::family::Arch), plus
//! preprocessing and labels), preset lookup across the registry, and parsing
//! of `config.json` in the Hugging Face hub layout that timm writes.
//!
//! Resolution follows timm's `_parse_model_cfg` + `create_model`: start from
//! the preset named by `architecture`, apply the `pretrained_cfg`
//! (preprocessing, `num_classes`, `input_size`) and the top-level
//! `num_classes`, then `model_args` (which win, as timm's keyword arguments
//! do), then `label_names`. The top-level `global_pool` is not read (timm
//! does not read it either).

use super::args::{as_f64, as_usize};
pub use super::common::{DataConfig, GlobalPool};
use super::families::FAMILIES;
pub use super::family::ModelConfig;
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// Every preset name vitrine knows, family by family (timm's names where timm has the model).
pub fn preset_names() -> Vec<String> {
    FAMILIES.iter().flat_map(|f| (f.presets)()).collect()
}

/// The config of a preset name.
pub fn preset(name: &str) -> Result<ModelConfig> {
    match FAMILIES.iter().find_map(|f| (f.preset)(name)) {
        Some(cfg) => finish(cfg),
        None => Err(Error::Config(format!("unknown architecture {name:?}; known: {}", preset_names().join(", ")))),
    }
}

/// ImageNet-1k class names, in timm's class index order.
pub fn imagenet_labels() -> Vec<String> {
    include_str!("../data/imagenet1k_labels.txt").lines().map(|s| s.to_string()).collect()
}

fn as_f32x3(k: &str, v: &Value) -> Result<[f32; 3]> {
    match v {
        Value::Array(a) if a.len() == 3 => Ok([as_f64(k, &a[0])? as f32, as_f64(k, &a[1])? as f32, as_f64(k, &a[2])? as f32]),
        Value::Array(a) if a.len() == 1 => {
            let x = as_f64(k, &a[0])? as f32;
            Ok([x, x, x])
        }
        _ => Err(Error::Config(format!("{k} must be a list of 3 numbers, got {v}"))),
    }
}

fn apply_pretrained_cfg(cfg: &mut ModelConfig, p: &Map<String, Value>) -> Result<()> {
    for (k, v) in p {
        match k.as_str() {
            "input_size" => match v {
                Value::Array(a) if a.len() == 3 => {
                    cfg.data.input_size = [as_usize(k, &a[0])?, as_usize(k, &a[1])?, as_usize(k, &a[2])?];
                }
                _ => return Err(Error::Config(format!("pretrained_cfg.input_size must be [C, H, W], got {v}"))),
            },
            "interpolation" => {
                let s = v.as_str().unwrap_or_default();
                if !["bicubic", "bilinear", "nearest"].contains(&s) {
                    return Err(Error::Unsupported(format!("interpolation {v} is not supported (bicubic, bilinear, nearest)")));
                }
                cfg.data.interpolation = s.to_string();
            }
            "crop_pct" => cfg.data.crop_pct = as_f64(k, v)?,
            "crop_mode" => {
                let s = v.as_str().unwrap_or_default();
                if !["center", "squash"].contains(&s) {
                    return Err(Error::Unsupported(format!("crop_mode {v} is not supported (center, squash)")));
                }
                cfg.data.crop_mode = s.to_string();
            }
            "mean" => cfg.data.mean = as_f32x3(k, v)?,
            "std" => cfg.data.std = as_f32x3(k, v)?,
            "num_classes" => cfg.set_num_classes(as_usize(k, v)?),
            "label_names" => cfg.labels = Some(labels_of(v)?),
            _ => {}
        }
    }
    Ok(())
}

fn labels_of(v: &Value) -> Result<Vec<String>> {
    v.as_array()
        .and_then(|a| a.iter().map(|s| s.as_str().map(|s| s.to_string())).collect::<Option<Vec<_>>>())
        .ok_or_else(|| Error::Config("label_names must be a list of strings".into()))
}

/// Resolves a hub-layout `config.json` (already parsed).
pub fn from_hub_json(v: &Value) -> Result<ModelConfig> {
    let obj = v.as_object().ok_or_else(|| Error::Config("config.json is not a JSON object".into()))?;
    let arch =
        obj.get("architecture").and_then(|a| a.as_str()).ok_or_else(|| Error::Config("config.json has no \"architecture\"".into()))?;
    // Unknown names are fine when model_args describe the whole model and a
    // family claims the name (`vit_*`, `deit*`, `swin_*`, a family's own name).
    let has_args = obj.get("model_args").is_some();
    let mut cfg = match preset(arch) {
        Ok(c) => c,
        Err(e) if !has_args => return Err(e),
        Err(e) => FAMILIES.iter().find_map(|f| (f.base)(arch)).ok_or(e)?,
    };
    cfg.labels = None;
    let empty = Map::new();
    let pretrained = match obj.get("pretrained_cfg") {
        Some(Value::Object(p)) => p,
        Some(_) => return Err(Error::Config("pretrained_cfg must be an object".into())),
        None => obj, // legacy single-dict layout
    };
    apply_pretrained_cfg(&mut cfg, pretrained)?;
    // timm: img_size / in_chans come from input_size for fixed-size models.
    let [c, h, w] = cfg.data.input_size;
    cfg.arch.set_input(c, [h, w]);
    // timm's _parse_model_cfg: the top-level num_classes goes into pretrained_cfg,
    // which model_args override; the top-level global_pool is informational only.
    if let Some(n) = obj.get("num_classes") {
        cfg.set_num_classes(as_usize("num_classes", n)?);
    }
    let args = match obj.get("model_args") {
        Some(Value::Object(a)) => a,
        Some(_) => return Err(Error::Config("model_args must be an object".into())),
        None => &empty,
    };
    cfg.apply_model_args(args)?;
    // DVT's cascades: one max-softmax threshold per exit but the last.
    if let Some(t) = obj.get("exit_thresholds") {
        let list = t.as_array().ok_or_else(|| Error::Config(format!("exit_thresholds must be a list of numbers, got {t}")))?;
        let t = list.iter().map(|v| as_f64("exit_thresholds", v).map(|x| x as f32)).collect::<Result<Vec<f32>>>()?;
        cfg.arch.set_exit_thresholds(&t)?;
    }
    if let Some(l) = obj.get("label_names") {
        cfg.labels = Some(labels_of(l)?);
    }
    finish(cfg)
}

/// Upper bounds of the config fields that size loops and allocations (every family's
/// keys; nested objects such as DVT's stages are walked): a config beyond them is
/// refused before anything is built. Far above every published model.
const SIZE_LIMITS: &[(&str, f64)] = &[
    ("depth", 1000.0),
    ("depths", 1000.0),
    ("num_blocks", 1000.0),
    ("embed_dim", 65536.0),
    ("num_heads", 4096.0),
    ("head_dim", 4096.0),
    ("token_dim", 65536.0),
    ("mlp_ratio", 64.0),
    ("num_classes", 1_000_000.0),
    ("img_size", 8192.0),
    ("input_size", 8192.0),
    ("patch_size", 1024.0),
    ("window_size", 1024.0),
    ("reg_tokens", 1024.0),
    ("pool_kernel_size", 1024.0),
];

/// Every number under a size key of `v` (a config's JSON) within its limit.
fn check_sizes(v: &Value, path: &str) -> Result<()> {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if let Some((_, max)) = SIZE_LIMITS.iter().find(|(n, _)| n == k) {
                    let nums: Vec<f64> = match x {
                        Value::Array(a) => a.iter().filter_map(Value::as_f64).collect(),
                        other => other.as_f64().into_iter().collect(),
                    };
                    if let Some(n) = nums.iter().find(|n| !n.is_finite() || **n > *max || **n < 0.0) {
                        return Err(Error::Config(format!("{path}.{k} = {n} is out of range (0 to {max})")));
                    }
                }
                check_sizes(x, &format!("{path}.{k}"))?;
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                check_sizes(x, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Checks the config and settles the labels against the class count.
pub fn finish(mut cfg: ModelConfig) -> Result<ModelConfig> {
    check_sizes(&cfg.arch.to_json(), "model_args")?;
    cfg.data.validate()?;
    cfg.arch.validate()?;
    let (in_chans, _) = cfg.input();
    if ![1, 3].contains(&in_chans) {
        return Err(Error::Unsupported(format!("in_chans {in_chans} is not supported (1 or 3)")));
    }
    let n = cfg.num_classes();
    match &cfg.labels {
        Some(l) if l.len() != n => {
            return Err(Error::Config(format!("{} label names for {n} classes", l.len())));
        }
        Some(_) => {}
        None if n == 1000 => cfg.labels = Some(imagenet_labels()),
        None => {}
    }
    Ok(cfg)
}
