//! A ViT config from a bare checkpoint's tensor shapes (no config.json, no
//! `--arch`). The head count is not stored in weights: head_dim 64 is
//! assumed, as in every stock ViT / DeiT; preprocessing is timm's ViT default.

use super::{preset, VitConfig};
use crate::error::{Error, Result};
use crate::models::common::GlobalPool;
use crate::models::family::ModelConfig;
use crate::weights::Weights;

/// `None` unless the tensors are a ViT's (`patch_embed.proj.weight` and `blocks.0.*`).
pub fn infer(w: &Weights) -> Option<Result<ModelConfig>> {
    if w.shape("patch_embed.proj.weight").is_none() || w.shape("blocks.0.norm1.weight").is_none() {
        return None;
    }
    Some(resolve(w))
}

fn resolve(w: &Weights) -> Result<ModelConfig> {
    let need = |n: &str| {
        w.shape(n)
            .map(|s| s.to_vec())
            .ok_or_else(|| Error::Config(format!("cannot infer the architecture: no tensor {n}; pass --arch with a preset name")))
    };
    let pw = need("patch_embed.proj.weight")?;
    let [dim, cin, p, p2] = pw.as_slice() else {
        return Err(Error::Config(format!("patch_embed.proj.weight has shape {pw:?}, expected [D, C, P, P]")));
    };
    if p != p2 {
        return Err(Error::Unsupported("non-square patches are not supported".into()));
    }
    let depth = (0..).take_while(|i| w.shape(&format!("blocks.{i}.norm1.weight")).is_some()).count();
    let fc1 = need("blocks.0.mlp.fc1.weight")?;
    if dim % 64 != 0 {
        return Err(Error::Config(format!("cannot infer num_heads for embed_dim {dim}; pass --arch or use a config.json")));
    }
    let mut v = VitConfig { embed_dim: *dim, in_chans: *cin, patch_size: *p, depth, num_heads: dim / 64, ..VitConfig::timm_defaults() };
    v.mlp_ratio = fc1.first().copied().unwrap_or(0) as f64 / *dim as f64;
    v.qkv_bias = w.shape("blocks.0.attn.qkv.bias").is_some();
    v.proj_bias = w.shape("blocks.0.attn.proj.bias").is_some();
    v.init_values = w.shape("blocks.0.ls1.gamma").map(|_| 1.0);
    v.class_token = w.shape("cls_token").is_some();
    v.distilled = w.shape("dist_token").is_some();
    v.reg_tokens = w.shape("reg_token").and_then(|s| s.get(1).copied()).unwrap_or(0);
    v.pre_norm = w.shape("norm_pre.weight").is_some();
    v.num_classes = w.shape("head.weight").and_then(|s| s.first().copied()).unwrap_or(0);
    let has_fc_norm = w.shape("fc_norm.weight").is_some();
    v.fc_norm = Some(has_fc_norm);
    v.final_norm = has_fc_norm || w.shape("norm.weight").is_some();
    if has_fc_norm || !v.class_token {
        v.global_pool = GlobalPool::Avg;
    }
    let npre = v.num_prefix_tokens();
    let len = w.shape("pos_embed").and_then(|s| s.get(1).copied());
    v.pos_embed = len.is_some();
    let square = |n: usize| (1..=n).find(|g| g * g >= n).filter(|g| g * g == n);
    let grid = match len {
        Some(l) if l >= npre && square(l - npre).is_some() => square(l - npre),
        Some(l) => {
            v.no_embed_class = true;
            square(l)
        }
        None => None,
    }
    .ok_or_else(|| Error::Config("cannot infer the image size from pos_embed; pass --arch".into()))?;
    v.img_size = [grid * p, grid * p];
    let mut cfg = preset("vit_base_patch16_224").ok_or_else(|| Error::Config("no vit_base_patch16_224 preset".into()))?;
    cfg.data.input_size = [*cin, grid * p, grid * p];
    let mut cfg = ModelConfig::new("vit", v, cfg.data);
    cfg.labels = None;
    log::warn!("no config: inferred {} heads (head_dim 64) and timm's default ViT preprocessing", dim / 64);
    Ok(cfg)
}
