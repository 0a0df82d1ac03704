//! T2T-ViT, "Tokens-to-Token ViT" (Yuan et al., ICCV 2021), exact to the
//! official code (yitu-opensource/T2T-ViT `models/t2t_vit.py`; spec in
//! ../shared/kin/t2t.md). The tokens-to-token stem re-structures the image
//! with three soft splits (unfold 7/4/2, then 3/2/1 twice, features in
//! C x k x k order) with a token layer after the first two, then projects to
//! `embed_dim`; a class token, the stored sinusoid `pos_embed` (frozen: read
//! from the checkpoint, never trained), and DeiT blocks without qkv bias and
//! with LayerNorm eps 1e-5 follow.
//!
//! ```text
//! img -> unfold(7, 4, 2) -> token layer 1 (-> token_dim) -> unfold(3, 2, 1) -> token layer 2
//!     -> unfold(3, 2, 1) -> project -> [cls ; tokens] + pos_embed -> depth x block -> norm -> cls -> head
//! token transformer (`tokens_type = "transformer"`, the t2t_vit_t_* models): one head,
//!   v + proj(softmax(q k^T * dim^-0.5) v) with dim the layer's input width, then + mlp(norm2(.))
//! token performer (`tokens_type = "performer"`, the t2t_vit_* models): k, q, v = split(kqv(norm1(x)));
//!   phi(z) = exp(z w^T - |z|^2 / 2) / sqrt(m) with the frozen w [m, token_dim], m = token_dim / 2;
//!   y = phi(q) (v^T phi(k))^T / (phi(q) . sum_t phi(k) + 1e-8); v + proj(y), then + mlp(norm2(.))
//! ```
//!
//! The Performer is linear attention: `phi(k)` is summed over the tokens
//! before it meets `phi(q)`, so the cost grows with T, not T^2. It is built
//! from batched matmuls and the row ops `row_dot`, `prm_exp`, `div_row`, so
//! its backward is autodiff's; `w` is frozen (stored in the checkpoint, never
//! regenerated or trained). The official layers' hard-coded dropout 0.1 is not
//! applied in training (vitrine has no dropout); the fixtures set it to 0.

use crate::{arch_common, arch_square_image_fields};
use crate::error::{Error, Result};
use crate::graph::{Graph, TensorId};
use crate::models::args::{self, ArgRules};
use crate::models::blocks::{linear, linear_params, norm, vit_block, BlockSpec};
use crate::models::common::{DataConfig, IMAGENET_MEAN, IMAGENET_STD};
use crate::models::family::{Arch, Family, ModelConfig};
use crate::models::init;
use crate::ops::{Act, PoolMode, PosMode, UnfoldInput};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The registry entry.
pub static FAMILY: Family = Family {
    name: "t2t_vit",
    about: "T2T-ViT (tokens-to-token stem), official yitu-opensource/T2T-ViT; Performer and token-transformer models",
    presets: || PRESETS.iter().map(|p| p.0.to_string()).collect(),
    preset,
    base: |name| (name == "t2t_vit").then(|| ModelConfig::new(name, T2tConfig::t_14(), data(224))),
    infer: |w| {
        w.shape("tokens_to_token.project.weight").map(|_| {
            Err(Error::Config("this looks like a T2T-ViT checkpoint: pass --arch (e.g. t2t_vit_t_14) or use a hub folder with config.json".into()))
        })
    },
};

/// The official `T2T_ViT` keyword arguments (serde names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct T2tConfig {
    /// Input side in pixels (a multiple of 16: the official pos_embed has `(img_size / 16)^2 + 1` rows).
    pub img_size: usize,
    /// `performer` (t2t_vit_*) or `transformer` (t2t_vit_t_*).
    pub tokens_type: String,
    /// Input image channels.
    pub in_chans: usize,
    /// Classes of the head.
    pub num_classes: usize,
    /// Token width C of the backbone.
    pub embed_dim: usize,
    /// Backbone blocks.
    pub depth: usize,
    /// Backbone attention heads.
    pub num_heads: usize,
    /// Backbone MLP hidden width as a multiple of `embed_dim`.
    pub mlp_ratio: f64,
    /// Bias on the backbone's qkv projection (false in every released model).
    pub qkv_bias: bool,
    /// Backbone score scale; `None`: head_dim^-0.5 (what the released weights use).
    pub qk_scale: Option<f64>,
    /// Width of the tokens-to-token layers.
    pub token_dim: usize,
}

const RULES: ArgRules = ArgRules {
    family: "T2T-ViT",
    internal: &[],
    read_only: &[],
    ignored: |k, _| matches!(k, "drop_rate" | "attn_drop_rate" | "drop_path_rate"),
};

/// (name, embed_dim, depth, heads, mlp_ratio): the official factories; `t2t_vit_t_*` use
/// token transformers, the others Performers.
const PRESETS: [(&str, usize, usize, usize, f64); 9] = [
    ("t2t_vit_7", 256, 7, 4, 2.0),
    ("t2t_vit_10", 256, 10, 4, 2.0),
    ("t2t_vit_12", 256, 12, 4, 2.0),
    ("t2t_vit_14", 384, 14, 6, 3.0),
    ("t2t_vit_19", 448, 19, 7, 3.0),
    ("t2t_vit_24", 512, 24, 8, 3.0),
    ("t2t_vit_t_14", 384, 14, 6, 3.0),
    ("t2t_vit_t_19", 448, 19, 7, 3.0),
    ("t2t_vit_t_24", 512, 24, 8, 3.0),
];

/// The official `_cfg`: crop 0.9, bicubic, ImageNet mean / std.
fn data(size: usize) -> DataConfig {
    DataConfig::rgb(size, 0.9, IMAGENET_MEAN, IMAGENET_STD)
}

fn preset(name: &str) -> Option<ModelConfig> {
    let &(_, embed_dim, depth, num_heads, mlp_ratio) = PRESETS.iter().find(|p| p.0 == name)?;
    let tokens_type = if name.starts_with("t2t_vit_t_") { "transformer" } else { "performer" }.into();
    Some(ModelConfig::new(name, T2tConfig { embed_dim, depth, num_heads, mlp_ratio, tokens_type, ..T2tConfig::t_14() }, data(224)))
}

impl T2tConfig {
    /// T2T-ViT_t-14 with ImageNet's 1000 classes.
    pub fn t_14() -> Self {
        T2tConfig {
            img_size: 224,
            tokens_type: "transformer".into(),
            in_chans: 3,
            num_classes: 1000,
            embed_dim: 384,
            depth: 14,
            num_heads: 6,
            mlp_ratio: 3.0,
            qkv_bias: false,
            qk_scale: None,
            token_dim: 64,
        }
    }
    /// The grid side after each soft split: `floor((s + 2p - k) / stride) + 1`.
    pub fn grids(&self) -> [usize; 3] {
        let split = |s: usize, k: usize, st: usize, p: usize| (s + 2 * p).saturating_sub(k) / st + 1;
        let a = split(self.img_size, 7, 4, 2);
        let b = split(a, 3, 2, 1);
        [a, b, split(b, 3, 2, 1)]
    }

    /// One token transformer: `x [B, L, dim] -> [B, L, token_dim]`.
    fn token_transformer(&self, g: &mut Graph, x: TensorId, pre: &str, dim: usize) -> Result<TensorId> {
        let td = self.token_dim;
        let h = norm(g, x, &format!("{pre}.norm1"), dim, 1e-5)?;
        let (w, b) = linear_params(g, &format!("{pre}.attn.qkv"), 3 * td, dim, false);
        let qkv = g.linear(h, w, b)?;
        let a = g.attention_scaled(qkv, 1, None, Some((dim as f32).powf(-0.5)))?;
        let v = g.slice_last(qkv, 2 * td, td)?;
        // The value is the residual: the layer changes the width.
        let (w, b) = linear_params(g, &format!("{pre}.attn.proj"), td, td, true);
        let x = g.linear_fused(a, w, b, Act::None, None, Some(v))?;
        let h = norm(g, x, &format!("{pre}.norm2"), td, 1e-5)?;
        let (w, b) = linear_params(g, &format!("{pre}.mlp.fc1"), td, td, true);
        let h = g.linear_fused(h, w, b, Act::Gelu, None, None)?;
        let (w, b) = linear_params(g, &format!("{pre}.mlp.fc2"), td, td, true);
        g.linear_fused(h, w, b, Act::None, None, Some(x))
    }

    /// One token performer (official `Token_performer`, kernel_ratio 0.5):
    /// `x [B, L, dim] -> [B, L, token_dim]`.
    fn token_performer(&self, g: &mut Graph, x: TensorId, pre: &str, dim: usize) -> Result<TensorId> {
        let (td, m) = (self.token_dim, self.performer_features());
        let batch = g.shape(x)[0];
        let tokens = g.shape(x)[1];
        let h = norm(g, x, &format!("{pre}.norm1"), dim, 1e-5)?;
        let (w, b) = linear_params(g, &format!("{pre}.kqv"), 3 * td, dim, true);
        let kqv = g.linear(h, w, b)?;
        let [k, q, v] = g.split_last(kqv, &[td, td, td])?[..] else {
            return Err(Error::shape("token_performer", "kqv must split in three"));
        };
        let wr = g.param(&format!("{pre}.w"), &[m, td]);
        let alpha = 1.0 / (m as f32).sqrt();
        let phi = |g: &mut Graph, z: TensorId| -> Result<TensorId> {
            let wz = g.linear(z, wr, None)?;
            let sq = g.row_dot(z, z)?;
            g.prm_exp(wz, sq, alpha)
        };
        let kp = phi(g, k)?;
        let qp = phi(g, q)?;
        // D = qp . sum_t kp, as a batched matmul with a row of ones: [B, T, 1].
        let kp_t = g.transpose(kp)?;
        let ones = g.fill(&[batch, 1, tokens], 1.0)?;
        let kp_sum = g.bmm(ones, kp_t)?;
        let d = g.bmm(qp, kp_sum)?;
        // kptv = v^T kp [B, td, m]; y = qp kptv^T / (D + 1e-8).
        let v_t = g.transpose(v)?;
        let kptv = g.bmm(v_t, kp_t)?;
        let y = g.bmm(qp, kptv)?;
        let y = g.div_row(y, d, 1e-8)?;
        let (w, b) = linear_params(g, &format!("{pre}.proj"), td, td, true);
        let x = g.linear_fused(y, w, b, Act::None, None, Some(v))?;
        let h = norm(g, x, &format!("{pre}.norm2"), td, 1e-5)?;
        let (w, b) = linear_params(g, &format!("{pre}.mlp.0"), td, td, true);
        let h = g.linear_fused(h, w, b, Act::Gelu, None, None)?;
        let (w, b) = linear_params(g, &format!("{pre}.mlp.2"), td, td, true);
        g.linear_fused(h, w, b, Act::None, None, Some(x))
    }

    /// The Performer's random features m: `int(token_dim * 0.5)`.
    pub fn performer_features(&self) -> usize {
        self.token_dim / 2
    }

    /// The token layer of the configured type.
    pub(crate) fn token_layer(&self, g: &mut Graph, x: TensorId, pre: &str, dim: usize) -> Result<TensorId> {
        if self.tokens_type == "performer" {
            self.token_performer(g, x, pre, dim)
        } else {
            self.token_transformer(g, x, pre, dim)
        }
    }
}

impl Arch for T2tConfig {
    fn family(&self) -> &'static Family {
        &FAMILY
    }
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        match self.tokens_type.as_str() {
            "transformer" => {}
            "performer" if self.performer_features() > 0 => {}
            "performer" => return bad(format!("T2T-ViT token_dim {} is too small for a Performer (it needs token_dim / 2 >= 1 random features)", self.token_dim)),
            other => return bad(format!("T2T-ViT tokens_type {other:?} is not supported (performer or transformer)")),
        }
        if self.img_size == 0 || !self.img_size.is_multiple_of(16) {
            return bad(format!("T2T-ViT img_size {} must be a positive multiple of 16 (the official pos_embed has (img_size / 16)^2 + 1 rows)", self.img_size));
        }
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) || self.depth == 0 || self.token_dim == 0 {
            return bad(format!("T2T-ViT embed_dim {} must divide into num_heads {}; depth and token_dim must be positive", self.embed_dim, self.num_heads));
        }
        if (self.embed_dim as f64 * self.mlp_ratio) as usize == 0 {
            return bad("T2T-ViT mlp width must be positive".into());
        }
        Ok(())
    }
    fn build(&self, batch: usize) -> Result<Graph> {
        self.validate()?;
        let (c, cin, td, s) = (self.embed_dim, self.in_chans, self.token_dim, self.img_size);
        let [g1, g2, g3] = self.grids();
        let mut g = Graph::new();
        g.scope("tokens_to_token");
        let img = g.input(&[batch, cin, s, s]);
        let x = g.unfold(img, UnfoldInput::Image, [s, s], 7, 4, 2)?;
        let x = self.token_layer(&mut g, x, "tokens_to_token.attention1", cin * 49)?;
        let x = g.unfold(x, UnfoldInput::Tokens, [g1, g1], 3, 2, 1)?;
        let x = self.token_layer(&mut g, x, "tokens_to_token.attention2", td * 9)?;
        let x = g.unfold(x, UnfoldInput::Tokens, [g2, g2], 3, 2, 1)?;
        let x = linear(&mut g, x, "tokens_to_token.project", c, td * 9, true)?;
        let n = g3 * g3;
        let cls = g.param_view("cls_token", &[1, 1, c], &[1, c]);
        let pos = g.param_view("pos_embed", &[1, n + 1, c], &[n + 1, c]);
        let mut x = g.tokens(x, Some(cls), Some(pos), PosMode::All)?;
        let hidden = (c as f64 * self.mlp_ratio) as usize;
        let spec = BlockSpec { dim: c, heads: self.num_heads, hidden, qkv_bias: self.qkv_bias, proj_bias: true, layer_scale: false, eps: 1e-5 };
        if let Some(q) = self.qk_scale {
            // The blocks' attention reads head_dim^-0.5; another scale is not built yet.
            if (q - (c as f64 / self.num_heads as f64).powf(-0.5)).abs() > 1e-12 {
                return Err(Error::Unsupported(format!("T2T-ViT qk_scale {q} other than head_dim^-0.5 is not supported")));
            }
        }
        for i in 0..self.depth {
            let pre = format!("blocks.{i}");
            g.scope(pre.clone());
            x = vit_block(&mut g, x, &pre, &spec)?;
        }
        g.scope("head");
        let x = norm(&mut g, x, "norm", c, 1e-5)?;
        let f = g.pool(x, PoolMode::Token(0))?;
        let out = if self.num_classes > 0 { linear(&mut g, f, "head", self.num_classes, c, true)? } else { f };
        g.output(out);
        Ok(g)
    }
    arch_square_image_fields!(img_size);
    fn num_features(&self) -> usize {
        self.embed_dim
    }
    fn read_args(&mut self, a: &Map<String, Value>) -> Result<()> {
        args::read(self, a, &RULES)
    }
    fn write_args(&self, preset: Option<&dyn Arch>) -> Map<String, Value> {
        let base = preset.and_then(|p| p.as_any().downcast_ref::<T2tConfig>());
        let always: &[&str] = if base.is_some() { &[] } else { &["img_size", "tokens_type", "embed_dim", "depth", "num_heads", "mlp_ratio", "token_dim"] };
        args::write(self, base.unwrap_or(&Self::t_14()), always, &RULES)
    }
    fn classifier(&self) -> Vec<&'static str> {
        vec!["head"]
    }
    /// The official `no_weight_decay`: `{'cls_token'}` (pos_embed is frozen).
    fn no_weight_decay(&self, name: &str) -> bool {
        name == "cls_token"
    }
    /// The sinusoid pos_embed and the Performers' random projections `w` are constants of the
    /// official model (`requires_grad=False`).
    fn frozen(&self, name: &str) -> bool {
        name == "pos_embed" || (name.starts_with("tokens_to_token.attention") && name.ends_with(".w"))
    }
    fn first_conv(&self) -> &'static str {
        "tokens_to_token.project"
    }
    /// Linear weights and cls_token trunc_normal(0.02), zero biases, LayerNorm (1, 0),
    /// pos_embed the official sinusoid table, a Performer's `w` orthogonal times sqrt(m).
    fn init(&self, name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32> {
        if name == "pos_embed" {
            return sinusoid(shape.get(1).copied().unwrap_or(0), shape.get(2).copied().unwrap_or(0));
        }
        if name == "cls_token" {
            return init::trunc_normal(shape.iter().product(), 0.02, rng);
        }
        if let (true, &[m, d]) = (self.frozen(name), shape) {
            // The Performer's w: orthogonal_(randn(m, d)) * sqrt(m).
            return init::orthogonal(m, d, (m as f64).sqrt(), rng);
        }
        init::timm_vit(name, shape, None, rng)
    }
    fn summary(&self) -> Vec<(String, String)> {
        let [a, b, c] = self.grids();
        vec![
            (
                "t2t".into(),
                format!(
                    "{} token layers{}, token_dim {}: {} -> {} -> {} tokens ({a}x{a} -> {b}x{b} -> {c}x{c})",
                    self.tokens_type,
                    if self.tokens_type == "performer" { format!(" ({} random features, w frozen)", self.performer_features()) } else { String::new() },
                    self.token_dim,
                    a * a,
                    b * b,
                    c * c
                ),
            ),
            (
                "vit".into(),
                format!("embed_dim {} depth {} heads {} mlp {} tokens {}", self.embed_dim, self.depth, self.num_heads, (self.embed_dim as f64 * self.mlp_ratio) as usize, c * c + 1),
            ),
        ]
    }
    arch_common!();
}

/// The official `get_sinusoid_encoding(n_position, d_hid)`: angle `pos / 10000^(2 (j / 2) / d)`,
/// sin on even columns, cos on odd ones (computed in f64, stored as f32).
pub fn sinusoid(n: usize, d: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * d);
    for pos in 0..n {
        for j in 0..d {
            let angle = pos as f64 / 10000f64.powf(2.0 * (j / 2) as f64 / d as f64);
            out.push(if j % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    out
}
