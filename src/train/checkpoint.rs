//! Checkpoints in the Hugging Face hub layout timm reads and writes
//! (`config.json` + `model.safetensors`, timm's tensor names), plus the
//! training state `--resume` needs (`optimizer.safetensors`,
//! `train_state.json`). Every file is written atomically (temp file in the
//! same folder, fsync, rename), and all of one checkpoint's files carry its
//! step number, so a checkpoint interrupted half-way is detected, not loaded.

use crate::error::{Error, Result};
use crate::models::config::{preset, GlobalPool, ModelConfig, Net, VitConfig};
use crate::models::swin::SwinConfig;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// timm's `global_pool` string.
pub fn pool_name(p: GlobalPool) -> &'static str {
    match p {
        GlobalPool::Token => "token",
        GlobalPool::Avg => "avg",
        GlobalPool::Max => "max",
        GlobalPool::AvgMax => "avgmax",
    }
}

/// `config.json` as timm's `save_for_hf` writes it: architecture,
/// `model_args` (the keyword arguments that differ from the architecture's
/// defaults), `pretrained_cfg` (preprocessing) and `label_names`.
pub fn hub_config(cfg: &ModelConfig) -> Value {
    let (args, classifier) = match &cfg.net {
        Net::Vit(v) => {
            let base = preset(&cfg.architecture).ok().and_then(|p| p.vit().cloned());
            (vit_model_args(v, base.as_ref()), if v.distilled { json!(["head", "head_dist"]) } else { json!("head") })
        }
        Net::Swin(s) => (swin_model_args(s), json!("head.fc")),
    };
    let n = cfg.num_classes();
    let d = &cfg.data;
    // timm's transforms broadcast mean / std against the channels: one value per channel.
    // f32 values written as their shortest decimal (0.485, not 0.48500001430511475).
    let short = |v: &[f32]| json!(v.iter().map(|x| format!("{x}").parse::<f64>().unwrap_or(*x as f64)).collect::<Vec<_>>());
    let chans = if d.input_size[0] == 1 { 1 } else { 3 };
    let (mean, std) = (short(&d.mean[..chans]), short(&d.std[..chans]));
    let mut out = json!({
        "architecture": cfg.architecture,
        "num_classes": n,
        "num_features": cfg.num_features(),
        "global_pool": pool_name(cfg.global_pool()),
        "model_args": args,
        "pretrained_cfg": {
            "input_size": d.input_size,
            "interpolation": d.interpolation,
            "crop_pct": d.crop_pct,
            "crop_mode": d.crop_mode,
            "mean": mean,
            "std": std,
            "num_classes": n,
            "first_conv": "patch_embed.proj",
            "classifier": classifier,
        },
    });
    if let (Some(labels), Some(o)) = (&cfg.labels, out.as_object_mut()) {
        if n != 1000 {
            o.insert("label_names".into(), json!(labels));
        }
    }
    out
}

/// ViT keyword arguments that differ from the preset's.
fn vit_model_args(v: &VitConfig, b: Option<&VitConfig>) -> Map<String, Value> {
    let mut args = Map::new();
    let mut put = |k: &str, val: Value, same: bool| {
        if !same {
            args.insert(k.to_string(), val);
        }
    };
    let img = if v.img_size[0] == v.img_size[1] { json!(v.img_size[0]) } else { json!(v.img_size) };
    put("img_size", img, b.is_some_and(|b| b.img_size == v.img_size));
    put("patch_size", json!(v.patch_size), b.is_some_and(|b| b.patch_size == v.patch_size));
    put("in_chans", json!(v.in_chans), b.is_some_and(|b| b.in_chans == v.in_chans));
    put("num_classes", json!(v.num_classes), b.is_some_and(|b| b.num_classes == v.num_classes));
    put("embed_dim", json!(v.embed_dim), b.is_some_and(|b| b.embed_dim == v.embed_dim));
    put("depth", json!(v.depth), b.is_some_and(|b| b.depth == v.depth));
    put("num_heads", json!(v.num_heads), b.is_some_and(|b| b.num_heads == v.num_heads));
    put("mlp_ratio", json!(v.mlp_ratio), b.is_some_and(|b| b.mlp_ratio == v.mlp_ratio));
    put("qkv_bias", json!(v.qkv_bias), b.is_some_and(|b| b.qkv_bias == v.qkv_bias));
    put("proj_bias", json!(v.proj_bias), b.map_or(v.proj_bias, |b| b.proj_bias == v.proj_bias));
    put("init_values", json!(v.init_values), b.is_some_and(|b| b.init_values == v.init_values));
    put("class_token", json!(v.class_token), b.is_some_and(|b| b.class_token == v.class_token));
    put("reg_tokens", json!(v.reg_tokens), b.is_some_and(|b| b.reg_tokens == v.reg_tokens));
    put("no_embed_class", json!(v.no_embed_class), b.is_some_and(|b| b.no_embed_class == v.no_embed_class));
    put("pos_embed", json!(if v.pos_embed { "learn" } else { "none" }), b.is_some_and(|b| b.pos_embed == v.pos_embed));
    put("global_pool", json!(pool_name(v.global_pool)), b.is_some_and(|b| b.global_pool == v.global_pool));
    put("fc_norm", json!(v.fc_norm), b.map_or(v.fc_norm.is_none(), |b| b.fc_norm == v.fc_norm));
    put("final_norm", json!(v.final_norm), b.map_or(v.final_norm, |b| b.final_norm == v.final_norm));
    put("pre_norm", json!(v.pre_norm), b.is_some_and(|b| b.pre_norm == v.pre_norm));
    put(
        "pool_include_prefix",
        json!(v.pool_include_prefix),
        b.map_or(!v.pool_include_prefix, |b| b.pool_include_prefix == v.pool_include_prefix),
    );
    args
}

/// Swin's keyword arguments, all of them (timm accepts the full set; `ape`
/// and `patch_norm` only when they differ from timm's fixed behaviour).
fn swin_model_args(s: &SwinConfig) -> Map<String, Value> {
    let img = if s.img_size[0] == s.img_size[1] { json!(s.img_size[0]) } else { json!(s.img_size) };
    let mut args = Map::new();
    for (k, v) in [
        ("img_size", img),
        ("patch_size", json!(s.patch_size)),
        ("in_chans", json!(s.in_chans)),
        ("num_classes", json!(s.num_classes)),
        ("embed_dim", json!(s.embed_dim)),
        ("depths", json!(s.depths)),
        ("num_heads", json!(s.num_heads)),
        ("head_dim", json!(s.head_dim)),
        ("window_size", json!(s.window_size)),
        ("mlp_ratio", json!(s.mlp_ratio)),
        ("qkv_bias", json!(s.qkv_bias)),
        ("always_partition", json!(s.always_partition)),
        ("global_pool", json!(pool_name(s.global_pool))),
    ] {
        args.insert(k.into(), v);
    }
    if s.ape {
        args.insert("ape".into(), json!(true));
    }
    if !s.patch_norm {
        args.insert("patch_norm".into(), json!(false));
    }
    args
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })?;
    // Make the rename durable too (best effort: not every platform allows it).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Serialises f32 tensors (name, shape, values) as safetensors with string metadata.
pub fn safetensors_bytes(tensors: &[(String, Vec<usize>, Vec<f32>)], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(n, s, v)| (n.clone(), s.clone(), bytemuck::cast_slice(v).to_vec())).collect();
    let views = bytes
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Input(format!("tensor {n}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Input(format!("cannot serialise tensors: {e}")))
}

/// The string metadata of a safetensors file (`__metadata__`), if any.
pub fn safetensors_metadata(bytes: &[u8], origin: &str) -> Result<HashMap<String, String>> {
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| Error::Safetensors { path: origin.to_string(), msg: e.to_string() })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Writes a model in the hub layout: `config.json` and `model.safetensors`
/// (F32, timm names; `metadata` goes into the safetensors header).
pub fn save_model(
    dir: &Path,
    cfg: &ModelConfig,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut meta = metadata;
    meta.insert("format".into(), "pt".into());
    write_atomic(&dir.join("model.safetensors"), &safetensors_bytes(tensors, meta)?)?;
    let text = serde_json::to_string_pretty(&hub_config(cfg)).map_err(|e| Error::Input(e.to_string()))?;
    write_atomic(&dir.join("config.json"), text.as_bytes())
}
