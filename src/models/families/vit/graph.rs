//! The ViT / DeiT forward graph. Parameter names are timm's checkpoint names.
//!
//! ```text
//! img [B, Cin, H, W] -> im2col -> patch_embed.proj -> [B, NP, C]
//!   -> [cls, dist, reg ; patches] + pos_embed -> [B, T, C] -> norm_pre?
//!   -> depth x (x + ls1 * attn(norm1(x)); x + ls2 * mlp(norm2(x)))
//!   -> norm? -> pool (token | avg | max | avgmax) -> fc_norm? -> head -> [B, classes]
//! ```

use super::VitConfig;
use crate::error::Result;
use crate::graph::{Graph, TensorId};
use crate::models::blocks::{global_pool, linear, norm, patch_embed, vit_block, BlockSpec};
use crate::models::family::Arch;
use crate::ops::{PoolMode, PosMode};

/// Builds the forward graph for a batch of `batch` images; the one output is
/// the logits `[B, num_classes]` (pooled features when num_classes is 0).
pub fn build(cfg: &VitConfig, batch: usize) -> Result<Graph> {
    cfg.validate()?;
    let mut g = Graph::new();
    let (c, p, cin) = (cfg.embed_dim, cfg.patch_size, cfg.in_chans);
    let eps = cfg.norm_eps;
    let np = cfg.num_patches();
    let npre = cfg.num_prefix_tokens();

    g.scope("patch_embed");
    let (_, x) = patch_embed(&mut g, batch, cin, cfg.img_size, p, c, !cfg.pre_norm)?;
    let mut parts = Vec::new();
    if cfg.class_token {
        parts.push(("cls_token".to_string(), vec![1, 1, c]));
    }
    if cfg.distilled {
        parts.push(("dist_token".to_string(), vec![1, 1, c]));
    }
    if cfg.reg_tokens > 0 {
        parts.push(("reg_token".to_string(), vec![1, cfg.reg_tokens, c]));
    }
    let prefix = (npre > 0).then(|| g.param_concat(parts, &[npre, c]));
    let (mode, pos) = if !cfg.pos_embed {
        (PosMode::None, None)
    } else {
        let len = if cfg.no_embed_class { np } else { np + npre };
        let mode = if cfg.no_embed_class { PosMode::PatchesOnly } else { PosMode::All };
        (mode, Some(g.param_view("pos_embed", &[1, len, c], &[len, c])))
    };
    let mut x = g.tokens(x, prefix, pos, mode)?;
    if cfg.pre_norm {
        x = norm(&mut g, x, "norm_pre", c, eps)?;
    }

    let spec = BlockSpec {
        dim: c,
        heads: cfg.num_heads,
        hidden: cfg.mlp_hidden(),
        qkv_bias: cfg.qkv_bias,
        proj_bias: cfg.proj_bias,
        layer_scale: cfg.init_values.is_some(),
        eps,
    };
    for i in 0..cfg.depth {
        let pre = format!("blocks.{i}");
        g.scope(pre.clone());
        x = vit_block(&mut g, x, &pre, &spec)?;
    }

    let out = head(&mut g, x, cfg)?;
    g.output(out);
    Ok(g)
}

/// The final norm, the pooling and the classifier(s): `x [B, T, C]` -> logits `[B, K]`
/// (pooled features `[B, C]` without a head).
fn head(g: &mut Graph, x: TensorId, cfg: &VitConfig) -> Result<TensorId> {
    let (c, eps, npre) = (cfg.embed_dim, cfg.norm_eps, cfg.num_prefix_tokens());
    let mut x = x;
    g.scope("head");
    let fc_norm = cfg.use_fc_norm();
    if cfg.final_norm && !fc_norm {
        x = norm(g, x, "norm", c, eps)?;
    }
    let k = cfg.num_classes;
    Ok(if cfg.distilled {
        let a = g.pool(x, PoolMode::Token(0))?;
        let d = g.pool(x, PoolMode::Token(1))?;
        if k > 0 {
            let a = linear(g, a, "head", k, c, true)?;
            let d = linear(g, d, "head_dist", k, c, true)?;
            g.add_scale(a, d, 0.5)?
        } else {
            g.add_scale(a, d, 0.5)?
        }
    } else {
        let start = if cfg.pool_include_prefix { 0 } else { npre };
        let mut f = match global_pool(g, x, cfg.global_pool, start)? {
            Some(f) => f,
            None => g.pool(x, PoolMode::Token(0))?,
        };
        if cfg.final_norm && fc_norm {
            f = norm(g, f, "fc_norm", c, eps)?;
        }
        if k > 0 {
            linear(g, f, "head", k, c, true)?
        } else {
            f
        }
    })
}
