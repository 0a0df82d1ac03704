//! timm's SwinTransformer (v1) as a graph, on the same ops as ViT plus the
//! window ops. Parameter names are timm's checkpoint names (current layout:
//! `layers.N.downsample` at the start of stage N > 0, classifier `head.fc`).
//!
//! ```text
//! img -> im2col -> patch_embed.proj -> patch_embed.norm? (+ absolute_pos_embed?) -> [B, H*W, C0]
//! stage i: (i > 0: 2x2 merge -> downsample.norm -> downsample.reduction)
//!   blocks j: x = x + reverse(proj(window_attn(qkv(partition(norm1(x))))))   (shift on odd j)
//!             x = x + fc2(gelu(fc1(norm2(x))))
//! -> norm -> pool (avg | max | avgmax) -> head.fc -> [B, classes]
//! ```

use super::config::GlobalPool;
use super::{global_pool, linear_params, norm};
use crate::error::{Error, Result};
use crate::graph::{Graph, TensorId};
use crate::ops::{Act, AttnBias, PosMode, WindowGeom};

/// A value given once for all stages or once per stage (timm's `to_ntuple`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum PerStage<T> {
    /// One value for every stage.
    All(T),
    /// One value per stage, in stage order.
    Each(Vec<T>),
}

impl<T: Clone> PerStage<T> {
    fn get(&self, i: usize) -> Option<T> {
        match self {
            PerStage::All(v) => Some(v.clone()),
            PerStage::Each(v) => v.get(i).cloned(),
        }
    }
    fn len_ok(&self, n: usize) -> bool {
        match self {
            PerStage::All(_) => true,
            PerStage::Each(v) => v.len() == n,
        }
    }
}

/// timm's `SwinTransformer` keyword arguments.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SwinConfig {
    /// Input image (height, width) in pixels.
    pub img_size: [usize; 2],
    /// Side of the square patches, in pixels (4 in every stock Swin).
    pub patch_size: usize,
    /// Input image channels (3 for RGB, 1 for grayscale).
    pub in_chans: usize,
    /// Classes of the head (`head.fc`); 0: no head, the graph outputs pooled features.
    pub num_classes: usize,
    /// An int is the first stage's width, doubled per stage; a list gives each stage's.
    pub embed_dim: PerStage<usize>,
    /// Blocks per stage; its length is the number of stages.
    pub depths: Vec<usize>,
    /// Attention heads H per stage (same length as `depths`).
    pub num_heads: Vec<usize>,
    /// `None`: dim / heads.
    pub head_dim: PerStage<Option<usize>>,
    /// (h, w) per stage (an int or one pair in timm's args means every stage).
    pub window_size: PerStage<[usize; 2]>,
    /// MLP hidden width as a multiple of the stage's width.
    pub mlp_ratio: PerStage<f64>,
    /// Bias on the attention's qkv projection.
    pub qkv_bias: bool,
    /// Always use the configured window and shift, even where the feature map
    /// is no larger than the window (timm's `always_partition`; by default
    /// such a window shrinks to the map and does not shift).
    pub always_partition: bool,
    /// Original Swin's absolute position embedding (`absolute_pos_embed [1, H*W, C0]`); not in timm.
    pub ape: bool,
    /// LayerNorm after the patch embedding (timm always has it).
    pub patch_norm: bool,
    /// How the head pools the tokens (avg, max or avgmax; Swin has no class token).
    pub global_pool: GlobalPool,
    /// LayerNorm epsilon (1e-5, timm's Swin default; not a `model_args` key).
    pub norm_eps: f32,
}

/// One stage, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Token width C of the stage.
    pub dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads H.
    pub heads: usize,
    /// Head dim D (attention width is `heads * head_dim`, which may differ from `dim`).
    pub head_dim: usize,
    /// Feature map (height, width) in tokens that the blocks see.
    pub res: [usize; 2],
    /// Configured window (height, width) in tokens, before [`Stage::block_window`] shrinks it.
    pub window: [usize; 2],
    /// MLP hidden width as a multiple of `dim`.
    pub mlp_ratio: f64,
}

impl Stage {
    /// Window and shift of block `j` (timm's `_calc_window_shift`: a window
    /// no smaller than the map shrinks to it and does not shift).
    pub fn block_window(&self, j: usize, always_partition: bool) -> ([usize; 2], [usize; 2]) {
        let target_shift = if j % 2 == 1 { [self.window[0] / 2, self.window[1] / 2] } else { [0, 0] };
        if always_partition {
            return (self.window, target_shift);
        }
        let mut win = [0; 2];
        let mut shift = [0; 2];
        for d in 0..2 {
            win[d] = if self.res[d] <= self.window[d] { self.res[d] } else { self.window[d] };
            shift[d] = if self.res[d] <= win[d] { 0 } else { target_shift[d] };
        }
        (win, shift)
    }
    /// MLP hidden width: `dim * mlp_ratio`, truncated as timm does.
    pub fn mlp_hidden(&self) -> usize {
        (self.dim as f64 * self.mlp_ratio) as usize
    }
}

impl SwinConfig {
    /// Patch grid (rows, columns) of the first stage: `img_size / patch_size`, rounded down.
    pub fn grid(&self) -> [usize; 2] {
        [self.img_size[0] / self.patch_size.max(1), self.img_size[1] / self.patch_size.max(1)]
    }

    /// Every stage's sizes, checked.
    pub fn stages(&self) -> Result<Vec<Stage>> {
        let bad = |m: String| Err(Error::Config(m));
        let n = self.depths.len();
        if n == 0 || self.num_heads.len() != n {
            return bad(format!("depths {:?} and num_heads {:?} must list the same stages", self.depths, self.num_heads));
        }
        for (what, ok) in [
            ("embed_dim", self.embed_dim.len_ok(n)),
            ("head_dim", self.head_dim.len_ok(n)),
            ("window_size", self.window_size.len_ok(n)),
            ("mlp_ratio", self.mlp_ratio.len_ok(n)),
        ] {
            if !ok {
                return bad(format!("{what} must give one value or one per stage ({n})"));
            }
        }
        if self.patch_size == 0 || self.img_size[0] < self.patch_size || self.img_size[1] < self.patch_size {
            return bad(format!("img_size {:?} is smaller than patch_size {}", self.img_size, self.patch_size));
        }
        let mut res = self.grid();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let dim = match &self.embed_dim {
                PerStage::All(e) => e << i,
                PerStage::Each(v) => v[i],
            };
            if i > 0 {
                res = [res[0].div_ceil(2), res[1].div_ceil(2)];
            }
            let heads = self.num_heads[i];
            if heads == 0 || dim == 0 || self.depths[i] == 0 {
                return bad(format!("stage {i}: embed_dim {dim}, num_heads {heads} and depth {} must be positive", self.depths[i]));
            }
            let head_dim = match self.head_dim.get(i).flatten() {
                Some(d) => d,
                None if dim % heads == 0 => dim / heads,
                None => return bad(format!("stage {i}: embed_dim {dim} is not divisible by num_heads {heads}")),
            };
            let window = self.window_size.get(i).unwrap_or([7, 7]);
            let mlp_ratio = self.mlp_ratio.get(i).unwrap_or(4.0);
            if window[0] == 0 || window[1] == 0 || head_dim == 0 || (dim as f64 * mlp_ratio) as usize == 0 {
                return bad(format!("stage {i}: window_size, head_dim and mlp width must be positive"));
            }
            out.push(Stage { dim, depth: self.depths[i], heads, head_dim, res, window, mlp_ratio });
        }
        Ok(out)
    }

    /// Width of the pooled features (the last stage's).
    pub fn num_features(&self) -> usize {
        self.stages().ok().and_then(|s| s.last().map(|s| s.dim)).unwrap_or(0)
    }

    /// Rejects configs timm would reject or vitrine cannot run (stage lists of
    /// different lengths, non-positive sizes, token pooling) with [`Error::Config`].
    pub fn validate(&self) -> Result<()> {
        self.stages()?;
        if self.global_pool == GlobalPool::Token {
            return Err(Error::Config("global_pool 'token' needs a class token; Swin pools avg, max or avgmax".into()));
        }
        Ok(())
    }
}

fn linear(g: &mut Graph, x: TensorId, name: &str, out: usize, inp: usize, bias: bool) -> Result<TensorId> {
    let (w, b) = linear_params(g, name, out, inp, bias);
    g.linear(x, w, b)
}

/// Builds the forward graph for `batch` images; the output is the logits
/// `[B, num_classes]` (pooled features when num_classes is 0).
pub fn build(cfg: &SwinConfig, batch: usize) -> Result<Graph> {
    cfg.validate()?;
    let stages = cfg.stages()?;
    let eps = cfg.norm_eps;
    let mut g = Graph::new();
    let (p, cin) = (cfg.patch_size, cfg.in_chans);
    let c0 = stages[0].dim;
    let [gh, gw] = cfg.grid();

    g.scope("patch_embed");
    let img = g.input(&[batch, cin, cfg.img_size[0], cfg.img_size[1]]);
    let cols = g.im2col(img, p)?;
    let w = g.param_view("patch_embed.proj.weight", &[c0, cin, p, p], &[c0, cin * p * p]);
    let b = g.param("patch_embed.proj.bias", &[c0]);
    let mut x = g.linear(cols, w, Some(b))?;
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
