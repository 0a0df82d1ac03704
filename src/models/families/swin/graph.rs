//! The Swin forward graph (see the family's module docs for the layout).

use super::{Stage, SwinConfig};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::models::blocks::{global_pool, linear, linear_params, norm, patch_embed};
use crate::ops::{Act, AttnBias, PosMode, WindowGeom};

/// Builds the forward graph for `batch` images; the output is the logits
/// `[B, num_classes]` (pooled features when num_classes is 0).
pub fn build(cfg: &SwinConfig, batch: usize) -> Result<Graph> {
    cfg.check()?;
    let stages = cfg.stages()?;
    let eps = cfg.norm_eps;
    let mut g = Graph::new();
    let (p, cin) = (cfg.patch_size, cfg.in_chans);
    let c0 = stages[0].dim;
    let [gh, gw] = cfg.grid();

    g.scope("patch_embed");
    let (_, mut x) = patch_embed(&mut g, batch, cin, cfg.img_size, p, c0, true)?;
    if cfg.patch_norm {
        x = norm(&mut g, x, "patch_embed.norm", c0, eps)?;
    }
    if cfg.ape {
        let pos = g.param_view("absolute_pos_embed", &[1, gh * gw, c0], &[gh * gw, c0]);
        x = g.tokens(x, None, Some(pos), PosMode::PatchesOnly)?;
    }

    let mut prev: Option<&Stage> = None;
    for (i, st) in stages.iter().enumerate() {
        let c = st.dim;
        if let Some(pv) = prev {
            let pre = format!("layers.{i}.downsample");
            g.scope(pre.clone());
            let m = g.patch_merge(x, batch, pv.res[0], pv.res[1])?;
            let m = norm(&mut g, m, &format!("{pre}.norm"), 4 * pv.dim, eps)?;
            x = linear(&mut g, m, &format!("{pre}.reduction"), c, 4 * pv.dim, false)?;
        }
        let attn_dim = st.heads * st.head_dim;
        for j in 0..st.depth {
            let pre = format!("layers.{i}.blocks.{j}");
            g.scope(pre.clone());
            let (win, shift) = st.block_window(j, cfg.always_partition);
            let geom = WindowGeom { b: batch, h: st.res[0], w: st.res[1], c, wh: win[0], ww: win[1], sh: shift[0], sw: shift[1] };
            let h = norm(&mut g, x, &format!("{pre}.norm1"), c, eps)?;
            let xw = g.window_partition(h, geom)?;
            let qkv = linear(&mut g, xw, &format!("{pre}.attn.qkv"), 3 * attn_dim, c, cfg.qkv_bias)?;
            let table = g.param(&format!("{pre}.attn.relative_position_bias_table"), &[(2 * win[0] - 1) * (2 * win[1] - 1), st.heads]);
            let bias = g.rel_pos_bias(table, win[0], win[1])?;
            let a = g.attention_biased(qkv, st.heads, Some(AttnBias { bias, heads: st.heads, mask: geom.mask() }))?;
            let o = linear(&mut g, a, &format!("{pre}.attn.proj"), c, attn_dim, true)?;
            x = g.window_reverse(o, Some(x), geom)?;
            let h = norm(&mut g, x, &format!("{pre}.norm2"), c, eps)?;
            let hidden = st.mlp_hidden();
            let (w1, b1) = linear_params(&mut g, &format!("{pre}.mlp.fc1"), hidden, c, true);
            let h = g.linear_fused(h, w1, b1, Act::Gelu, None, None)?;
            let (w2, b2) = linear_params(&mut g, &format!("{pre}.mlp.fc2"), c, hidden, true);
            x = g.linear_fused(h, w2, b2, Act::None, None, Some(x))?;
        }
        prev = Some(st);
    }

    g.scope("head");
    let nf = stages.last().map(|s| s.dim).unwrap_or(c0);
    x = norm(&mut g, x, "norm", nf, eps)?;
    let f = global_pool(&mut g, x, cfg.global_pool, 0)?.ok_or_else(|| Error::Config("Swin has no class token to pool".into()))?;
    let out = if cfg.num_classes > 0 { linear(&mut g, f, "head.fc", cfg.num_classes, nf, true)? } else { f };
    g.output(out);
    Ok(g)
}
