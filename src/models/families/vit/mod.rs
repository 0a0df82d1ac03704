//! timm's VisionTransformer and DeiT's VisionTransformerDistilled: config,
//! presets (timm's `vit_*`, `deit_*`, `deit3_*` names), `model_args`, init
//! and the registry entry. The graph is in `graph.rs`, shape inference for
//! bare checkpoints in `infer.rs`.

mod graph;
mod infer;

use crate::{arch_common, arch_image_fields};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::models::args::{self, ArgRules};
use crate::models::common::{DataConfig, GlobalPool, IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN};
use crate::models::family::ModelConfig;
use crate::models::family::{Arch, Family};
use crate::models::init;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The registry entry.
pub static FAMILY: Family = Family {
    name: "vit",
    about: "timm VisionTransformer / DeiT / DeiT III (class, distillation and register tokens, layer scale)",
    presets: preset_names,
    preset,
    base,
    infer: infer::infer,
};

/// timm's VisionTransformer (and VisionTransformerDistilled) options; the
/// serde names are timm's keyword arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VitConfig {
    /// Input image (height, width) in pixels.
    #[serde(with = "args::pair")]
    pub img_size: [usize; 2],
    /// Side of the square patches, in pixels (the patch conv's kernel and stride).
    #[serde(deserialize_with = "args::square")]
    pub patch_size: usize,
    /// Input image channels (3 for RGB, 1 for grayscale).
    pub in_chans: usize,
    /// Classes of the head; 0: no head, the graph outputs pooled features.
    pub num_classes: usize,
    /// Token width C.
    pub embed_dim: usize,
    /// Number of transformer blocks.
    pub depth: usize,
    /// Attention heads H per block (head dim D = embed_dim / num_heads).
    pub num_heads: usize,
    /// MLP hidden width as a multiple of `embed_dim`.
    pub mlp_ratio: f64,
    /// Bias on the attention's qkv projection.
    pub qkv_bias: bool,
    /// Bias on the attention output projection and the MLP's two linears.
    pub proj_bias: bool,
    /// Layer scale init value; `Some` means ls1.gamma / ls2.gamma exist.
    #[serde(deserialize_with = "args::zero_is_none")]
    pub init_values: Option<f64>,
    /// A learned class token (`cls_token`) is prepended to the patches.
    pub class_token: bool,
    /// Number of register tokens (`reg_token [1, R, C]`) after cls / dist.
    pub reg_tokens: usize,
    /// `pos_embed` covers the patches only; prefix tokens get none.
    pub no_embed_class: bool,
    /// A learned position embedding is added (timm's `pos_embed='learn'`;
    /// false for `'none'`).
    #[serde(with = "args::learn")]
    pub pos_embed: bool,
    /// How the head pools the tokens.
    pub global_pool: GlobalPool,
    /// `None`: timm's default (on for avg/max pooling).
    pub fc_norm: Option<bool>,
    /// A final LayerNorm: `norm` before pooling, or `fc_norm` after it when
    /// fc_norm is in use.
    pub final_norm: bool,
    /// A LayerNorm (`norm_pre`) after the position embedding, and no bias on
    /// the patch projection (CLIP-style).
    pub pre_norm: bool,
    /// Avg / max pooling also covers the prefix tokens.
    pub pool_include_prefix: bool,
    /// DeiT distilled: dist_token and head_dist (a class in timm, not an argument).
    pub distilled: bool,
    /// LayerNorm epsilon (1e-6, timm's ViT default; not a `model_args` key).
    pub norm_eps: f32,
}

const RULES: ArgRules = ArgRules { family: "ViT", internal: &["norm_eps"], read_only: &["distilled"], ignored };

/// Options that change nothing at inference with a fixed input size, or hold the only value vitrine runs.
fn ignored(k: &str, v: &Value) -> bool {
    match k {
        "dynamic_img_size" | "dynamic_img_pad" | "drop_rate" | "pos_drop_rate" | "patch_drop_rate" | "proj_drop_rate"
        | "attn_drop_rate" | "drop_path_rate" | "weight_init" | "fix_init" | "strict_img_size" => true,
        "qk_norm" | "scale_attn_norm" | "scale_mlp_norm" => v == &json!(false),
        "act_layer" => v.as_str() == Some("gelu"),
        _ => false,
    }
}

impl VitConfig {
    /// timm's VisionTransformer defaults (ViT-B/16 at 224).
    pub fn timm_defaults() -> Self {
        VitConfig {
            img_size: [224, 224],
            patch_size: 16,
            in_chans: 3,
            num_classes: 1000,
            embed_dim: 768,
            depth: 12,
            num_heads: 12,
            mlp_ratio: 4.0,
            qkv_bias: true,
            proj_bias: true,
            init_values: None,
            class_token: true,
            reg_tokens: 0,
            pos_embed: true,
            no_embed_class: false,
            global_pool: GlobalPool::Token,
            fc_norm: None,
            final_norm: true,
            pre_norm: false,
            pool_include_prefix: false,
            distilled: false,
            norm_eps: 1e-6,
        }
    }
    /// Tokens before the patches: cls, dist, reg.
    pub fn num_prefix_tokens(&self) -> usize {
        self.class_token as usize + self.distilled as usize + self.reg_tokens
    }
    /// Patch grid (rows, columns): `img_size / patch_size`, rounded down.
    pub fn grid(&self) -> [usize; 2] {
        [self.img_size[0] / self.patch_size.max(1), self.img_size[1] / self.patch_size.max(1)]
    }
    /// Number of patch tokens: rows * columns of the grid.
    pub fn num_patches(&self) -> usize {
        self.grid()[0] * self.grid()[1]
    }
    /// Head dim D: `embed_dim / num_heads`.
    pub fn head_dim(&self) -> usize {
        self.embed_dim / self.num_heads.max(1)
    }
    /// MLP hidden width: `embed_dim * mlp_ratio`, truncated as timm does.
    pub fn mlp_hidden(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio) as usize
    }
    /// Whether the final norm is `fc_norm` after pooling (instead of `norm`
    /// before it): `fc_norm` if set, else on for avg / max / avgmax pooling.
    pub fn use_fc_norm(&self) -> bool {
        self.fc_norm.unwrap_or(matches!(self.global_pool, GlobalPool::Avg | GlobalPool::Max | GlobalPool::AvgMax))
    }
}

impl Arch for VitConfig {
    fn family(&self) -> &'static Family {
        &FAMILY
    }
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return bad(format!("embed_dim {} is not divisible by num_heads {}", self.embed_dim, self.num_heads));
        }
        if self.patch_size == 0 || self.img_size[0] < self.patch_size || self.img_size[1] < self.patch_size {
            return bad(format!("img_size {:?} is smaller than patch_size {}", self.img_size, self.patch_size));
        }
        if self.global_pool == GlobalPool::Token && !self.class_token {
            return bad("global_pool 'token' needs class_token".into());
        }
        if self.distilled && !self.class_token {
            return bad("a distilled model needs class_token".into());
        }
        if self.depth == 0 || self.embed_dim == 0 || self.mlp_hidden() == 0 {
            return bad("depth, embed_dim and mlp width must be positive".into());
        }
        Ok(())
    }
    fn build(&self, batch: usize) -> Result<Graph> {
        graph::build(self, batch)
    }
    arch_image_fields!();
    fn num_features(&self) -> usize {
        self.embed_dim
    }
    fn global_pool(&self) -> Option<GlobalPool> {
        Some(self.global_pool)
    }
    fn read_args(&mut self, a: &Map<String, Value>) -> Result<()> {
        args::read(self, a, &RULES)
    }
    fn write_args(&self, preset: Option<&dyn Arch>) -> Map<String, Value> {
        match preset.and_then(|p| p.as_any().downcast_ref::<VitConfig>()) {
            Some(base) => args::write(self, base, &[], &RULES),
            // No preset: every argument, except those timm's class defaults already give.
            None => {
                let always = [
                    "img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias",
                    "init_values", "class_token", "reg_tokens", "no_embed_class", "pos_embed", "global_pool", "pre_norm",
                ];
                args::write(self, &Self::timm_defaults(), &always, &RULES)
            }
        }
    }
    fn classifier(&self) -> Vec<&'static str> {
        if self.distilled {
            vec!["head", "head_dist"]
        } else {
            vec!["head"]
        }
    }
    fn no_weight_decay(&self, name: &str) -> bool {
        ["pos_embed", "cls_token", "reg_token", "dist_token"].contains(&name)
    }
    fn init(&self, name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32> {
        init::timm_vit(name, shape, self.init_values, rng)
    }
    fn summary(&self) -> Vec<(String, String)> {
        vec![
            (
                "vit".into(),
                format!(
                    "patch {} embed_dim {} depth {} heads {} (head_dim {}) mlp {} tokens {} ({} prefix)",
                    self.patch_size,
                    self.embed_dim,
                    self.depth,
                    self.num_heads,
                    self.head_dim(),
                    self.mlp_hidden(),
                    self.num_patches() + self.num_prefix_tokens(),
                    self.num_prefix_tokens()
                ),
            ),
            (
                "options".into(),
                format!(
                    "qkv_bias {} layer_scale {} class_token {} reg_tokens {} no_embed_class {} pool {:?} fc_norm {} pre_norm {} distilled {}",
                    self.qkv_bias,
                    self.init_values.is_some(),
                    self.class_token,
                    self.reg_tokens,
                    self.no_embed_class,
                    self.global_pool,
                    self.use_fc_norm(),
                    self.pre_norm,
                    self.distilled
                ),
            ),
        ]
    }
    arch_common!();
}

/// Every ViT / DeiT preset name (timm's).
pub fn preset_names() -> Vec<String> {
    let mut v = Vec::new();
    for (size, ps) in [("tiny", &[16][..]), ("small", &[16, 32][..]), ("base", &[16, 32][..]), ("large", &[16, 32][..])] {
        for &p in ps {
            for res in [224, 384] {
                if !(size == "large" && p == 32 && res == 224) {
                    v.push(format!("vit_{size}_patch{p}_{res}"));
                }
            }
        }
    }
    for size in ["tiny", "small", "base"] {
        v.push(format!("deit_{size}_patch16_224"));
        v.push(format!("deit_{size}_distilled_patch16_224"));
    }
    v.push("deit_base_patch16_384".into());
    v.push("deit_base_distilled_patch16_384".into());
    for size in ["small", "base", "large"] {
        v.push(format!("deit3_{size}_patch16_224"));
        v.push(format!("deit3_{size}_patch16_384"));
    }
    v
}

/// The config of a ViT / DeiT preset name.
fn preset(name: &str) -> Option<ModelConfig> {
    if !preset_names().iter().any(|n| n == name) {
        return None;
    }
    let parts: Vec<&str> = name.split('_').collect();
    let patch: usize = parts.iter().find_map(|p| p.strip_prefix("patch"))?.parse().ok()?;
    let res: usize = parts.last()?.parse().ok()?;
    let (dim, depth, heads) = match parts[1] {
        "tiny" => (192, 12, 3),
        "small" => (384, 12, 6),
        "base" => (768, 12, 12),
        _ => (1024, 24, 16),
    };
    let mut vit = VitConfig { patch_size: patch, embed_dim: dim, depth, num_heads: heads, ..VitConfig::timm_defaults() };
    vit.img_size = [res, res];
    vit.distilled = parts.contains(&"distilled");
    let crop = if res == 384 { 1.0 } else { 0.9 };
    let data = match parts[0] {
        "vit" => DataConfig::rgb(res, crop, INCEPTION_MEAN, INCEPTION_MEAN),
        "deit" => DataConfig::rgb(res, crop, IMAGENET_MEAN, IMAGENET_STD),
        _ => {
            vit.no_embed_class = true;
            vit.init_values = Some(1e-6);
            DataConfig::rgb(res, if res == 384 { 1.0 } else { 0.875 }, IMAGENET_MEAN, IMAGENET_STD)
        }
    };
    Some(ModelConfig::new(name, vit, data))
}

/// Unknown `vit_*` / `deit*` names start from ViT-B/16 (config.json's model_args describe the rest).
fn base(name: &str) -> Option<ModelConfig> {
    if !(name == "vit" || name.starts_with("vit_") || name.starts_with("deit")) {
        return None;
    }
    let vit = VitConfig { distilled: name.contains("distilled"), ..VitConfig::timm_defaults() };
    Some(ModelConfig::new(name, vit, DataConfig::rgb(224, 0.9, INCEPTION_MEAN, INCEPTION_MEAN)))
}
