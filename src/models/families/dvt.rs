//! DVT, "Not All Images are Worth 16x16 Words: Dynamic Transformers for
//! Efficient Image Recognition" (Wang et al., NeurIPS 2021), exact to the
//! official code (blackfeather-wang/Dynamic-Vision-Transformer
//! `models/t2t_vit.py`, `models_deit.py`; spec in ../shared/kin/dvt.md). Three
//! complete ViTs ("exits") of growing token count (7x7, 10x10, 14x14) run in
//! sequence on the same image; an image stops at the first exit whose
//! max softmax reaches that exit's threshold. Later exits reuse the earlier
//! one's last pre-norm tokens (feature reuse) and every block's pre-softmax
//! attention logits (relation reuse).
//!
//! ```text
//! exit e (stage attr less_less_token / less_token / normal_token):
//!   tokens: T2T soft splits (first unfold 14/8/3, 11/6/5 or 7/4/2, Performer token layers)
//!           or a DeiT patch conv (k32, k23 s23 p3, k16) -> [cls ; tokens] + pos_embed
//!   relation reuse (e > 0): A = cat(rels of exit e-1)          [B, H*D, n, n]
//!     -> 1x1 conv 3HD, GELU, 1x1 conv HD (per query/key pair) -> resample query and key
//!        axes to the new grid (cls row / column kept) -> chunk per block -> R_i
//!   block i: a = q k^T * scale (+ R_i); rel_i = a; x = x + proj(softmax(a) v)
//!            h = [x ; resample(feature_resuse_mlp_i(F))]   (F: exit e-1's last block
//!                output before its norm; LN, C -> 128 -> 48 GELU MLP, cls row zero)
//!            x = x + fc2(gelu(fc1(norm2(h))))               (norm2, fc1: C + 48 wide)
//!   -> norm -> x[:, 0] -> head
//! resample: nearest upsample of the grid to 14x14 (into a 10x10 exit) or 20x20
//!   (otherwise), then adaptive average pooling to the exit's grid (the official sizes).
//! ```
//!
//! Each exit is its own graph ([`Arch::build_exit`](crate::models::family::Arch::build_exit)): inputs the image and the
//! previous exit's carried tensors (F, then every block's relations), outputs
//! the logits then what the next exit carries. The classifier runs exit 0 for
//! the batch, reads back the logits, and runs the next exit only for the images
//! below their threshold, their carried rows copied on the GPU into a smaller
//! batch (`classify.rs`). [`Arch::build`](crate::models::family::Arch::build) chains every exit in one graph
//! (outputs: the logits of each exit, the last exit's last): training sums the
//! three cross-entropies through it, as the official main.py does.

use crate::arch_common;
use crate::error::{Error, Result};
use crate::graph::{Graph, TensorId};
use crate::models::blocks::{linear, linear_params, norm};
use crate::models::common::{DataConfig, IMAGENET_MEAN, IMAGENET_STD};
use crate::models::family::{Arch, CustomTraining, Exits, Family, LossOptions, ModelConfig};
use crate::models::families::t2t::{sinusoid, T2tConfig};
use crate::models::init;
use crate::ops::{Act, PoolMode, PosMode, ResampleDims, UnfoldInput};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The registry entry.
pub static FAMILY: Family = Family {
    name: "dvt",
    about: "DVT (early-exit cascade of three ViTs with feature and relation reuse), official blackfeather-wang/Dynamic-Vision-Transformer",
    presets: || PRESETS.iter().map(|p| p.to_string()).collect(),
    preset,
    base: |name| (name == "dvt").then(|| ModelConfig::new(name, DvtConfig::t2t(256, 12, 4, 2.0), data())),
    infer: |w| {
        w.shape("less_less_token.head.weight").map(|_| {
            Err(Error::Config("this looks like a DVT checkpoint: pass --arch (e.g. dvt_t2t_vit_12) or use a hub folder with config.json".into()))
        })
    },
};

const PRESETS: [&str; 3] = ["dvt_t2t_vit_12", "dvt_t2t_vit_14", "dvt_deit_small"];

/// The stages' attribute names in the official wrapper, exit by exit.
pub const STAGE_ATTRS: [&str; 3] = ["less_less_token", "less_token", "normal_token"];
/// The token grid side of each exit (the official code hard-codes them for 224 inputs).
const GRIDS: [usize; 3] = [7, 10, 14];
/// Width of the reused features (hard-coded in the official blocks).
const REUSE_CH: usize = 48;
/// Hidden width of the feature-reuse MLP.
const REUSE_HIDDEN: usize = 128;

/// inference.py's eval transform: Resize(256, bicubic), CenterCrop(224), ImageNet mean / std.
fn data() -> DataConfig {
    DataConfig::rgb(224, 0.875, IMAGENET_MEAN, IMAGENET_STD)
}

fn preset(name: &str) -> Option<ModelConfig> {
    let cfg = match name {
        "dvt_t2t_vit_12" => DvtConfig::t2t(256, 12, 4, 2.0),
        "dvt_t2t_vit_14" => DvtConfig::t2t(384, 14, 6, 3.0),
        "dvt_deit_small" => DvtConfig::deit(384, 12, 6, 4.0),
        _ => return None,
    };
    Some(ModelConfig::new(name, cfg, data()))
}

fn default_true() -> bool {
    true
}
fn default_eps() -> f64 {
    1e-5
}

/// One exit: the official stage constructor's keyword arguments (`T2T_ViT` for T2T
/// stages, the vendored timm `VisionTransformer` for DeiT ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DvtStage {
    /// `"t2t"` or `"deit"` (optional: `tokens_type` marks a T2T stage, `patch_size` a DeiT one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<String>,
    /// Input side (224: the official grids are hard-coded for it).
    pub img_size: usize,
    /// T2T stages: `performer_less_less_token`, `performer_less_token` or `performer`
    /// (the first soft split); absent for DeiT stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_type: Option<String>,
    /// DeiT stages: the patch conv's kernel and stride (32, 23, 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_size: Option<usize>,
    /// DeiT stages: the patch conv's padding (3 for the 10x10 exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_padding: Option<usize>,
    /// Input channels.
    pub in_chans: usize,
    /// Classes of the head.
    pub num_classes: usize,
    /// Token width C.
    pub embed_dim: usize,
    /// Blocks.
    pub depth: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// MLP hidden width as a multiple of C.
    pub mlp_ratio: f64,
    /// Bias on qkv (T2T: false, DeiT: true).
    pub qkv_bias: bool,
    /// Score scale; `None`: head_dim^-0.5 (every released model).
    #[serde(default)]
    pub qk_scale: Option<f64>,
    /// T2T stages: width of the tokens-to-token layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_dim: Option<usize>,
    /// LayerNorm epsilon (T2T 1e-5, DeiT 1e-6).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Reuse the previous exit's features (false for the first exit).
    #[serde(default = "default_true")]
    pub feature_reuse: bool,
    /// Reuse the previous exit's attention logits (false for the first exit).
    #[serde(default = "default_true")]
    pub relation_reuse: bool,
}

/// The DVT config: its exits and their thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DvtConfig {
    /// The exits, first to last.
    pub stages: Vec<DvtStage>,
    /// Max-softmax thresholds of every exit but the last (config.json's top-level
    /// `exit_thresholds`); empty: every image runs to the last exit.
    pub exit_thresholds: Vec<f32>,
    /// Each exit's multiply-adds for one image, counted once from its graph.
    #[serde(skip)]
    macs: std::sync::OnceLock<Vec<u64>>,
}

/// What a stage's graph carries to the next: the last block's output before the
/// final norm `[B, 1 + N, C]` and every block's logits `[B * H, 1 + N, 1 + N]`.
struct Carried {
    features: TensorId,
    relations: Vec<TensorId>,
}

impl DvtConfig {
    fn t2t(c: usize, depth: usize, heads: usize, mlp: f64) -> Self {
        let types = ["performer_less_less_token", "performer_less_token", "performer"];
        Self::of_stages(c, depth, heads, mlp, |e, st| DvtStage { backbone: Some("t2t".into()), tokens_type: Some(types[e].into()), token_dim: Some(64), ..st })
    }

    fn deit(c: usize, depth: usize, heads: usize, mlp: f64) -> Self {
        let convs = [(32, 0), (23, 3), (16, 0)];
        Self::of_stages(c, depth, heads, mlp, |e, st| DvtStage {
            backbone: Some("deit".into()),
            patch_size: Some(convs[e].0),
            patch_padding: Some(convs[e].1),
            qkv_bias: true,
            eps: 1e-6,
            ..st
        })
    }

    /// Three exits of one width at 224 with 1000 classes, each finished by `stage`.
    fn of_stages(c: usize, depth: usize, heads: usize, mlp: f64, stage: impl Fn(usize, DvtStage) -> DvtStage) -> Self {
        let stages = (0..3)
            .map(|e| {
                let base = DvtStage {
                    backbone: None,
                    img_size: 224,
                    tokens_type: None,
                    patch_size: None,
                    patch_padding: None,
                    in_chans: 3,
                    num_classes: 1000,
                    embed_dim: c,
                    depth,
                    num_heads: heads,
                    mlp_ratio: mlp,
                    qkv_bias: false,
                    qk_scale: None,
                    token_dim: None,
                    eps: 1e-5,
                    feature_reuse: e > 0,
                    relation_reuse: e > 0,
                };
                stage(e, base)
            })
            .collect();
        DvtConfig { stages, exit_thresholds: Vec::new(), macs: Default::default() }
    }

    /// The grid side of exit `e`'s tokens, from its tokenizer.
    fn grid(&self, e: usize) -> usize {
        let st = &self.stages[e];
        let split = |s: usize, k: usize, stride: usize, p: usize| (s + 2 * p).saturating_sub(k) / stride.max(1) + 1;
        match (&st.tokens_type, st.patch_size) {
            (Some(t), _) => {
                let (k, s, p) = first_unfold(t).unwrap_or((7, 4, 2));
                let a = split(st.img_size, k, s, p);
                let b = split(a, 3, 2, 1);
                split(b, 3, 2, 1)
            }
            (None, Some(k)) => split(st.img_size, k, k, st.patch_padding.unwrap_or(0)),
            (None, None) => 0,
        }
    }

    /// The T2T module of a T2T stage, for its token layers.
    fn t2t_of(st: &DvtStage) -> T2tConfig {
        T2tConfig {
            img_size: st.img_size,
            tokens_type: "performer".into(),
            in_chans: st.in_chans,
            num_classes: st.num_classes,
            embed_dim: st.embed_dim,
            depth: st.depth,
            num_heads: st.num_heads,
            mlp_ratio: st.mlp_ratio,
            qkv_bias: st.qkv_bias,
            qk_scale: st.qk_scale,
            token_dim: st.token_dim.unwrap_or(64),
        }
    }

    /// Exit `e`'s tokens `[B, 1 + N, C]` (class token first, position embedding added).
    fn tokenize(&self, g: &mut Graph, e: usize, img: TensorId) -> Result<TensorId> {
        let st = &self.stages[e];
        let pre = STAGE_ATTRS[e];
        let (c, cin, s) = (st.embed_dim, st.in_chans, st.img_size);
        let x = match (&st.tokens_type, st.patch_size) {
            (Some(t), _) => {
                let (k, stride, p) = first_unfold(t).ok_or_else(|| Error::Unsupported(format!("DVT stage {e}: tokens_type {t:?} is not supported")))?;
                let t2t = Self::t2t_of(st);
                let td = t2t.token_dim;
                let split = |n: usize, k: usize, st: usize, p: usize| (n + 2 * p).saturating_sub(k) / st + 1;
                let g1 = split(s, k, stride, p);
                let g2 = split(g1, 3, 2, 1);
                g.scope(format!("{pre}.tokens_to_token"));
                let x = g.unfold(img, UnfoldInput::Image, [s, s], k, stride, p)?;
                let x = t2t.token_layer(g, x, &format!("{pre}.tokens_to_token.attention1"), cin * k * k)?;
                let x = g.unfold(x, UnfoldInput::Tokens, [g1, g1], 3, 2, 1)?;
                let x = t2t.token_layer(g, x, &format!("{pre}.tokens_to_token.attention2"), td * 9)?;
                let x = g.unfold(x, UnfoldInput::Tokens, [g2, g2], 3, 2, 1)?;
                linear(g, x, &format!("{pre}.tokens_to_token.project"), c, td * 9, true)?
            }
            (None, Some(k)) => {
                g.scope(format!("{pre}.patch_embed"));
                let cols = g.unfold(img, UnfoldInput::Image, [s, s], k, k, st.patch_padding.unwrap_or(0))?;
                let w = g.param_view(&format!("{pre}.patch_embed.proj.weight"), &[c, cin, k, k], &[c, cin * k * k]);
                let b = g.param(&format!("{pre}.patch_embed.proj.bias"), &[c]);
                g.linear(cols, w, Some(b))?
            }
            (None, None) => return Err(Error::Config(format!("DVT stage {e} has neither tokens_type (T2T) nor patch_size (DeiT)"))),
        };
        let n = self.grid(e) * self.grid(e);
        let cls = g.param_view(&format!("{pre}.cls_token"), &[1, 1, c], &[1, c]);
        let pos = g.param_view(&format!("{pre}.pos_embed"), &[1, n + 1, c], &[n + 1, c]);
        g.tokens(x, Some(cls), Some(pos), PosMode::All)
    }

    /// The nearest-upsampled side the official code resamples through into exit `e`.
    fn up(&self, e: usize) -> usize {
        let s = self.grid(e);
        if s * s == 100 {
            14
        } else {
            20
        }
    }

    /// Exit `e`'s relation-reuse terms, one `[B * H, 1 + N, 1 + N]` per block, from the
    /// previous exit's block logits.
    fn reused_relations(&self, g: &mut Graph, e: usize, prev: &[TensorId]) -> Result<Vec<TensorId>> {
        let (st, ps) = (&self.stages[e], &self.stages[e - 1]);
        let pre = format!("{}.relation_reuse_conv", STAGE_ATTRS[e]);
        let (hp, hd) = (ps.num_heads, ps.num_heads * ps.depth);
        let (sp, s) = (self.grid(e - 1), self.grid(e));
        let (n, nn) = (1 + sp * sp, 1 + s * s);
        let batch = g.shape(prev[0])[0] / hp;
        g.scope(pre.clone());
        // cat(rels) with the channels last, [B, n * n, H * D] (channel i * H + h is block i,
        // head h): each block's logits transposed to [B, n * n, H], joined pairwise.
        let mut parts: Vec<TensorId> = prev.iter().map(|&r| g.transpose_shaped(r, [batch, hp, n * n], &[batch, n * n, hp])).collect::<Result<_>>()?;
        while parts.len() > 1 {
            parts = parts.chunks(2).map(|p| if let [a, b] = p { g.concat_last(*a, *b) } else { Ok(p[0]) }).collect::<Result<_>>()?;
        }
        let a = parts.pop().ok_or_else(|| Error::Config(format!("DVT stage {e}: the previous stage has no blocks")))?;
        // The two 1x1 convs: an MLP over the channels of every (query, key) pair.
        let w0 = g.param_view(&format!("{pre}.0.weight"), &[3 * hd, hd, 1, 1], &[3 * hd, hd]);
        let b0 = g.param(&format!("{pre}.0.bias"), &[3 * hd]);
        let h = g.linear_fused(a, w0, Some(b0), Act::Gelu, None, None)?;
        // Stored as a conv [HD, 3HD, 1, 1]: the same values as [HD, 3HD].
        let w2 = g.param_view(&format!("{pre}.2.weight"), &[hd, 3 * hd, 1, 1], &[hd, 3 * hd]);
        let b2 = g.param(&format!("{pre}.2.bias"), &[hd]);
        let a = g.linear(h, w2, Some(b2))?; // [B, n * n, HD]
        // Chunk per block while the grid is small, then resample the query and key axes of
        // each chunk straight into the [B * H, N, N] layout the block's scores have.
        let up = self.up(e);
        let h = st.num_heads;
        let q = ResampleDims { outer: batch * h, inner: n, s_in: sp, up, s_out: s, keep_cls: true };
        let k = ResampleDims { outer: batch * h * nn, inner: 1, s_in: sp, up, s_out: s, keep_cls: true };
        (0..st.depth)
            .map(|i| {
                let part = g.slice_last(a, i * h, h)?;
                let part = g.transpose_shaped(part, [batch, n * n, h], &[batch * h, n, n])?;
                let part = g.token_resample(part, q, &[batch * h, nn, n])?;
                g.token_resample(part, k, &[batch * h, nn, nn])
            })
            .collect()
    }

    /// Exit `e` from its image input and the previous exit's carried tensors: (logits, carried).
    fn stage(&self, g: &mut Graph, e: usize, img: TensorId, prev: Option<&Carried>) -> Result<(TensorId, Carried)> {
        let st = &self.stages[e];
        let pre = STAGE_ATTRS[e];
        let c = st.embed_dim;
        let eps = st.eps as f32;
        let mut x = self.tokenize(g, e, img)?;
        let batch = g.shape(x)[0];
        let rin = match (st.relation_reuse, prev) {
            (true, Some(p)) => Some(self.reused_relations(g, e, &p.relations)?),
            _ => None,
        };
        let feat_in = prev.filter(|_| st.feature_reuse).map(|p| p.features);
        let hidden = (c as f64 * st.mlp_ratio) as usize;
        let (s, nn) = (self.grid(e), 1 + self.grid(e) * self.grid(e));
        let mut rels = Vec::with_capacity(st.depth);
        for i in 0..st.depth {
            let bp = format!("{pre}.blocks.{i}");
            g.scope(bp.clone());
            let h = norm(g, x, &format!("{bp}.norm1"), c, eps)?;
            let (w, b) = linear_params(g, &format!("{bp}.attn.qkv"), 3 * c, c, st.qkv_bias);
            let qkv = g.linear(h, w, b)?;
            let (a, rel) = g.attention_relation(qkv, st.num_heads, rin.as_ref().map(|r| r[i]))?;
            rels.push(rel);
            let (w, b) = linear_params(g, &format!("{bp}.attn.proj"), c, c, true);
            x = g.linear_fused(a, w, b, Act::None, None, Some(x))?;
            let (h, width) = match feat_in {
                Some(f) => {
                    let fp = format!("{bp}.feature_resuse_mlp");
                    let cp = g.shape(f)[2];
                    let sp = self.grid(e - 1);
                    let r = norm(g, f, &format!("{fp}.0"), cp, eps)?;
                    let (w, b) = linear_params(g, &format!("{fp}.1.fc1"), REUSE_HIDDEN, cp, true);
                    let r = g.linear_fused(r, w, b, Act::Gelu, None, None)?;
                    let r = linear(g, r, &format!("{fp}.1.fc2"), REUSE_CH, REUSE_HIDDEN, true)?;
                    let dims = ResampleDims { outer: batch, inner: REUSE_CH, s_in: sp, up: self.up(e), s_out: s, keep_cls: false };
                    let r = g.token_resample(r, dims, &[batch, nn, REUSE_CH])?;
                    (g.concat_last(x, r)?, c + REUSE_CH)
                }
                None => (x, c),
            };
            let h = norm(g, h, &format!("{bp}.norm2"), width, eps)?;
            let (w, b) = linear_params(g, &format!("{bp}.mlp.fc1"), hidden, width, true);
            let h = g.linear_fused(h, w, b, Act::Gelu, None, None)?;
            let (w, b) = linear_params(g, &format!("{bp}.mlp.fc2"), c, hidden, true);
            x = g.linear_fused(h, w, b, Act::None, None, Some(x))?;
        }
        g.scope(format!("{pre}.head"));
        let y = norm(g, x, &format!("{pre}.norm"), c, eps)?;
        let f = g.pool(y, PoolMode::Token(0))?;
        let logits = if st.num_classes > 0 { linear(g, f, &format!("{pre}.head"), st.num_classes, c, true)? } else { f };
        Ok((logits, Carried { features: x, relations: rels }))
    }

    /// The carried tensors' shapes that exit `e` (> 0) reads: F, then one per block of exit e - 1.
    fn carried_shapes(&self, e: usize, batch: usize) -> Vec<Vec<usize>> {
        let ps = &self.stages[e - 1];
        let n = 1 + self.grid(e - 1) * self.grid(e - 1);
        let mut v = vec![vec![batch, n, ps.embed_dim]];
        v.extend((0..ps.depth).map(|_| vec![batch * ps.num_heads, n, n]));
        v
    }

    /// Multiply-adds of exit `e` alone for one image (every linear and batched matmul,
    /// as PyTorch's FlopCounter counts them: not softmax, norms or resampling).
    pub fn stage_macs(&self, e: usize) -> Result<u64> {
        let g = self.build_exit(e, 1)?;
        Ok(g.nodes.iter().map(|n| n.op.macs(&g)).sum())
    }
}

/// The first soft split (kernel, stride, padding) of a T2T stage's tokens_type.
fn first_unfold(tokens_type: &str) -> Option<(usize, usize, usize)> {
    match tokens_type {
        "performer_less_less_token" => Some((14, 8, 3)),
        "performer_less_token" => Some((11, 6, 5)),
        "performer" => Some((7, 4, 2)),
        _ => None,
    }
}

impl Arch for DvtConfig {
    fn family(&self) -> &'static Family {
        &FAMILY
    }
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.stages.len() != 3 {
            return bad(format!("DVT needs 3 stages (the official exits), got {}", self.stages.len()));
        }
        for (e, st) in self.stages.iter().enumerate() {
            if st.img_size != 224 {
                return bad(format!("DVT stage {e}: img_size {} is not supported (the official resampling sizes only fit 224)", st.img_size));
            }
            if st.num_heads == 0 || st.depth == 0 || st.embed_dim == 0 || !st.embed_dim.is_multiple_of(st.num_heads) {
                return bad(format!("DVT stage {e}: embed_dim {} must divide into num_heads {}; depth must be positive", st.embed_dim, st.num_heads));
            }
            if (st.embed_dim as f64 * st.mlp_ratio) as usize == 0 {
                return bad(format!("DVT stage {e}: mlp width must be positive"));
            }
            match (st.backbone.as_deref(), &st.tokens_type, st.patch_size) {
                (None | Some("t2t"), Some(_), None) | (None | Some("deit"), None, Some(_)) => {}
                (b, _, _) => return bad(format!("DVT stage {e}: backbone {b:?} does not match its keys (t2t: tokens_type, deit: patch_size)")),
            }
            match (&st.tokens_type, st.patch_size) {
                (Some(t), None) if first_unfold(t).is_some() => {
                    if st.token_dim.unwrap_or(0) < 2 {
                        return bad(format!("DVT stage {e}: token_dim must be at least 2 (the Performer needs token_dim / 2 random features)"));
                    }
                }
                (Some(t), None) => return bad(format!("DVT stage {e}: tokens_type {t:?} is not supported (performer_less_less_token, performer_less_token, performer)")),
                (None, Some(p)) if p > 0 => {}
                _ => return bad(format!("DVT stage {e}: give tokens_type (a T2T stage) or patch_size (a DeiT stage), not both")),
            }
            if self.grid(e) != GRIDS[e] {
                return bad(format!("DVT stage {e}: its tokenizer makes a {0}x{0} grid; the official exits are 7x7, 10x10, 14x14", self.grid(e)));
            }
            if let Some(q) = st.qk_scale {
                if (q - (st.embed_dim as f64 / st.num_heads as f64).powf(-0.5)).abs() > 1e-12 {
                    return bad(format!("DVT stage {e}: qk_scale {q} other than head_dim^-0.5 is not supported"));
                }
            }
            if st.num_classes != self.stages[0].num_classes {
                return bad(format!("DVT stage {e}: num_classes {} differs from stage 0's {}", st.num_classes, self.stages[0].num_classes));
            }
            if e == 0 && (st.feature_reuse || st.relation_reuse) {
                return bad("DVT stage 0 cannot reuse features or relations (there is no earlier exit)".into());
            }
            if e > 0 {
                let p = &self.stages[e - 1];
                if st.feature_reuse && p.embed_dim != st.embed_dim {
                    return bad(format!("DVT stage {e}: feature reuse needs the previous stage's embed_dim ({}), got {}", p.embed_dim, st.embed_dim));
                }
                if st.relation_reuse && p.num_heads * p.depth != st.num_heads * st.depth {
                    return bad(format!(
                        "DVT stage {e}: relation reuse needs num_heads x depth equal to the previous stage's ({} x {}), got {} x {}",
                        p.num_heads, p.depth, st.num_heads, st.depth
                    ));
                }
                if !st.feature_reuse && !st.relation_reuse {
                    log::debug!("DVT stage {e} reuses nothing");
                }
            }
        }
        if self.exit_thresholds.len() > self.stages.len() - 1 || self.exit_thresholds.iter().any(|t| t.is_nan()) {
            return bad(format!("exit_thresholds {:?}: give one number per exit but the last ({})", self.exit_thresholds, self.stages.len() - 1));
        }
        Ok(())
    }
    fn build(&self, batch: usize) -> Result<Graph> {
        self.validate()?;
        let mut g = Graph::new();
        let st = &self.stages[0];
        let img = g.input(&[batch, st.in_chans, st.img_size, st.img_size]);
        let mut prev: Option<Carried> = None;
        let mut logits = Vec::new();
        for e in 0..self.stages.len() {
            let (l, carried) = self.stage(&mut g, e, img, prev.as_ref())?;
            logits.push(l);
            prev = Some(carried);
        }
        for l in logits {
            g.output(l);
        }
        Ok(g)
    }
    fn exits(&self) -> Option<Exits> {
        let n = self.stages.len();
        let mut thresholds = self.exit_thresholds.clone();
        thresholds.resize(n.saturating_sub(1), f32::INFINITY);
        let macs = self.macs.get_or_init(|| (0..n).map(|e| self.stage_macs(e).unwrap_or(0)).collect());
        let gflops = macs.iter().scan(0u64, |t, m| {
            *t += m;
            Some(*t as f64 / 1e9)
        }).collect();
        Some(Exits { thresholds, gflops })
    }
    fn set_exit_thresholds(&mut self, t: &[f32]) -> Result<()> {
        let want = self.stages.len().saturating_sub(1);
        if t.len() != want || t.iter().any(|v| v.is_nan()) {
            return Err(Error::Config(format!("exit thresholds {t:?}: give {want} numbers, one per exit but the last")));
        }
        self.exit_thresholds = t.to_vec();
        Ok(())
    }
    fn build_exit(&self, e: usize, batch: usize) -> Result<Graph> {
        self.validate()?;
        if e >= self.stages.len() {
            return Err(Error::Config(format!("DVT has {} exits, not {}", self.stages.len(), e + 1)));
        }
        let mut g = Graph::new();
        let st = &self.stages[e];
        let img = g.input(&[batch, st.in_chans, st.img_size, st.img_size]);
        let prev = if e > 0 {
            let shapes = self.carried_shapes(e, batch);
            let features = g.input(&shapes[0]);
            let relations = shapes[1..].iter().map(|s| g.input(s)).collect();
            Some(Carried { features, relations })
        } else {
            None
        };
        let (logits, carried) = self.stage(&mut g, e, img, prev.as_ref())?;
        g.output(logits);
        if e + 1 < self.stages.len() {
            g.output(carried.features);
            for r in carried.relations {
                g.output(r);
            }
        }
        Ok(g)
    }
    fn num_classes(&self) -> usize {
        self.stages.first().map_or(0, |s| s.num_classes)
    }
    fn set_num_classes(&mut self, n: usize) {
        self.macs = Default::default();
        self.stages.iter_mut().for_each(|s| s.num_classes = n);
    }
    fn input(&self) -> (usize, [usize; 2]) {
        self.stages.first().map_or((3, [224, 224]), |s| (s.in_chans, [s.img_size, s.img_size]))
    }
    fn set_input(&mut self, chans: usize, size: [usize; 2]) {
        self.macs = Default::default();
        for s in &mut self.stages {
            s.in_chans = chans;
            s.img_size = if size[0] == size[1] { size[0] } else { 0 };
        }
    }
    fn num_features(&self) -> usize {
        self.stages.last().map_or(0, |s| s.embed_dim)
    }
    /// `model_args` = `{"stages": [...]}`: one object per exit, each the official stage
    /// constructor's keyword arguments (dropout rates accepted and ignored).
    fn read_args(&mut self, a: &Map<String, Value>) -> Result<()> {
        for (k, v) in a {
            match k.as_str() {
                "stages" => {
                    let list = v.as_array().ok_or_else(|| Error::Config("model_args.stages must be a list of stage objects".into()))?;
                    let mut stages = Vec::with_capacity(list.len());
                    for (e, s) in list.iter().enumerate() {
                        let mut obj = s.as_object().cloned().ok_or_else(|| Error::Config(format!("model_args.stages[{e}] must be an object")))?;
                        obj.retain(|k, _| !matches!(k.as_str(), "drop_rate" | "attn_drop_rate" | "drop_path_rate"));
                        stages.push(
                            serde_json::from_value::<DvtStage>(Value::Object(obj)).map_err(|err| Error::Config(format!("model_args.stages[{e}]: {err}")))?,
                        );
                    }
                    self.stages = stages;
                    self.macs = Default::default();
                }
                other => return Err(Error::Unsupported(format!("model_args.{other} is not supported by vitrine for DVT (only \"stages\")"))),
            }
        }
        Ok(())
    }
    fn write_args(&self, _preset: Option<&dyn Arch>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("stages".into(), serde_json::to_value(&self.stages).unwrap_or(Value::Null));
        m
    }
    fn classifier(&self) -> Vec<&'static str> {
        STAGE_ATTRS.iter().map(|s| match *s {
            "less_less_token" => "less_less_token.head",
            "less_token" => "less_token.head",
            _ => "normal_token.head",
        }).collect()
    }
    fn first_conv(&self) -> &'static str {
        if self.stages.first().is_some_and(|s| s.tokens_type.is_some()) {
            "less_less_token.tokens_to_token.project"
        } else {
            "less_less_token.patch_embed.proj"
        }
    }
    /// The official optimizer is built on the wrapper, which has no `no_weight_decay`:
    /// only 1-d tensors and biases are excluded (cls_token decays).
    fn no_weight_decay(&self, _name: &str) -> bool {
        false
    }
    /// T2T stages: the sinusoid pos_embed and the Performers' `w` (requires_grad False).
    fn frozen(&self, name: &str) -> bool {
        let Some((stage, rest)) = name.split_once('.') else { return false };
        let Some(e) = STAGE_ATTRS.iter().position(|s| *s == stage) else { return false };
        self.stages.get(e).is_some_and(|st| st.tokens_type.is_some())
            && (rest == "pos_embed" || (rest.starts_with("tokens_to_token.attention") && rest.ends_with(".w")))
    }
    fn init(&self, name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32> {
        let (stage, rest) = name.split_once('.').unwrap_or(("", name));
        let t2t = STAGE_ATTRS.iter().position(|s| *s == stage).and_then(|e| self.stages.get(e)).is_some_and(|s| s.tokens_type.is_some());
        if t2t && rest == "pos_embed" {
            return sinusoid(shape.get(1).copied().unwrap_or(0), shape.get(2).copied().unwrap_or(0));
        }
        if let (true, &[m, d]) = (self.frozen(name), shape) {
            return init::orthogonal(m, d, (m as f64).sqrt(), rng);
        }
        if rest == "cls_token" || rest == "pos_embed" {
            return init::trunc_normal(shape.iter().product(), 0.02, rng);
        }
        let rest = rest.strip_prefix("patch_embed.").map(|r| format!("patch_embed.{r}")).unwrap_or(rest.to_string());
        init::timm_vit(&rest, shape, None, rng)
    }
    fn custom_training(&self, batch: usize, loss: &LossOptions) -> Option<Result<CustomTraining>> {
        Some((|| {
            let mut g = self.build(batch)?;
            let logits: Vec<TensorId> = g.outputs.clone();
            let target = g.input(&[batch]);
            let mut total = None;
            for &l in &logits {
                let ce = g.cross_entropy_mean(l, target, loss.smoothing)?;
                total = Some(match total {
                    None => ce,
                    Some(t) => g.add_scale(t, ce, 1.0)?,
                });
            }
            let loss = total.ok_or_else(|| Error::Config("DVT has no exits".into()))?;
            let last = *logits.last().ok_or_else(|| Error::Config("DVT has no exits".into()))?;
            g.outputs.clear(); // the trainer adds its own (the loss times the batch, the logits)
            Ok(CustomTraining { g, loss, logits: last, noise: Vec::new(), teacher: None })
        })())
    }
    /// `exit`: the 0-based exit that answered; `exit_logits`: the logits of every exit
    /// computed for the image; `exit_gflops`: the cumulative GFLOPs (multiply-adds) of the
    /// exits run; `exit_costs`: each exit's cumulative GFLOPs. The extra outputs are the cascade's (`classify.rs`): the exit per image,
    /// then each exit's logits (NaN rows where an image did not run it).
    fn explain(&self, extra: &[Vec<f32>], batch: usize) -> Vec<Map<String, Value>> {
        let mut out = vec![Map::new(); batch];
        let n = self.stages.len();
        if extra.len() != n + 1 {
            return out;
        }
        let gflops = self.exits().map(|x| x.gflops).unwrap_or_default();
        let k = self.num_classes().max(1);
        for (b, obj) in out.iter_mut().enumerate() {
            let Some(&ex) = extra[0].get(b) else { continue };
            let ex = ex as usize;
            let rows: Vec<Value> = (0..=ex.min(n - 1)).map(|e| Value::from(extra[1 + e].get(b * k..(b + 1) * k).unwrap_or(&[]).to_vec())).collect();
            obj.insert("exit".into(), Value::from(ex));
            obj.insert("exit_logits".into(), Value::Array(rows));
            if let Some(f) = gflops.get(ex) {
                obj.insert("exit_gflops".into(), Value::from(*f));
            }
            obj.insert("exit_costs".into(), Value::from(gflops.clone()));
        }
        out
    }
    fn summary(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        let gflops = self.exits().map(|x| x.gflops).unwrap_or_default();
        for (e, st) in self.stages.iter().enumerate() {
            let s = self.grid(e);
            let tok = match (&st.tokens_type, st.patch_size) {
                (Some(t), _) => format!("T2T {t}, token_dim {}", st.token_dim.unwrap_or(0)),
                (None, Some(p)) => format!("DeiT patch conv {p}, padding {}", st.patch_padding.unwrap_or(0)),
                _ => "?".into(),
            };
            let reuse = match (st.feature_reuse, st.relation_reuse) {
                (true, true) => ", reuses features and relations",
                (true, false) => ", reuses features",
                (false, true) => ", reuses relations",
                _ => "",
            };
            v.push((
                format!("exit {e}"),
                format!(
                    "{s}x{s} tokens ({tok}), embed_dim {} depth {} heads {}{reuse}; {:.3} GFLOPs to here{}",
                    st.embed_dim,
                    st.depth,
                    st.num_heads,
                    gflops.get(e).copied().unwrap_or(0.0),
                    match self.exit_thresholds.get(e) {
                        Some(t) => format!(", exits at max softmax >= {t}"),
                        None if e + 1 < self.stages.len() => ", no threshold (never exits here)".into(),
                        None => String::new(),
                    }
                ),
            ));
        }
        v
    }
    arch_common!();
}
