//! Model configs: typed data with named presets (timm's model names), and
//! parsing of `config.json` in the Hugging Face hub layout that timm writes.
//!
//! Resolution follows timm's `_parse_model_cfg` + `create_model`: start from
//! the preset named by `architecture`, apply the `pretrained_cfg`
//! (preprocessing, `num_classes`, `input_size`) and the top-level
//! `num_classes`, then `model_args` (which win, as timm's keyword arguments
//! do), then `label_names`. The top-level `global_pool` is not read (timm
//! does not read it either).

use super::swin::{PerStage, SwinConfig};
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};

/// Eval preprocessing, as timm's pretrained_cfg describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DataConfig {
    /// Channels, height, width of the model input.
    pub input_size: [usize; 3],
    /// `bicubic`, `bilinear` or `nearest`.
    pub interpolation: String,
    /// Fraction of the resized image the center crop keeps: the shorter side
    /// is resized to `floor(size / crop_pct)` before cropping to `size`.
    pub crop_pct: f64,
    /// `center` (resize shorter side, center crop) or `squash` (resize both sides).
    pub crop_mode: String,
    /// Per-channel mean subtracted from pixels scaled to [0, 1] (one-channel
    /// models use the first value).
    pub mean: [f32; 3],
    /// Per-channel standard deviation the centred pixels are divided by.
    pub std: [f32; 3],
}

/// Head pooling (timm `global_pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum GlobalPool {
    /// `token`: the class token's features (needs `class_token`).
    Token,
    /// `avg`: mean over tokens (patch tokens only unless `pool_include_prefix`).
    Avg,
    /// `max`: maximum over tokens, per channel.
    Max,
    /// `avgmax`: `0.5 * (max + avg)`.
    AvgMax,
}

/// timm's VisionTransformer (and VisionTransformerDistilled) options.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VitConfig {
    /// Input image (height, width) in pixels.
    pub img_size: [usize; 2],
    /// Side of the square patches, in pixels (the patch conv's kernel and stride).
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
    pub init_values: Option<f64>,
    /// A learned class token (`cls_token`) is prepended to the patches.
    pub class_token: bool,
    /// Number of register tokens (`reg_token [1, R, C]`) after cls / dist.
    pub reg_tokens: usize,
    /// A learned position embedding is added (timm's `pos_embed='learn'`;
    /// false for `'none'`).
    pub pos_embed: bool,
    /// `pos_embed` covers the patches only; prefix tokens get none.
    pub no_embed_class: bool,
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
    /// DeiT distilled: dist_token and head_dist.
    pub distilled: bool,
    /// LayerNorm epsilon (1e-6, timm's ViT default; not a `model_args` key).
    pub norm_eps: f32,
}

impl VitConfig {
    /// Tokens before the patches: cls, dist, reg.
    pub fn num_prefix_tokens(&self) -> usize {
        self.class_token as usize + self.distilled as usize + self.reg_tokens
    }
    /// Patch grid (rows, columns): `img_size / patch_size`, rounded down.
    pub fn grid(&self) -> [usize; 2] {
        [self.img_size[0] / self.patch_size, self.img_size[1] / self.patch_size]
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

    /// Rejects configs timm would reject or vitrine cannot run.
    pub fn validate(&self) -> Result<()> {
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
}

/// The network: one of the model families vitrine builds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Net {
    /// timm's VisionTransformer / DeiT.
    Vit(VitConfig),
    /// timm's SwinTransformer (v1).
    Swin(SwinConfig),
}

/// A resolved model: architecture family + preprocessing + labels.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelConfig {
    /// timm architecture name (`vit_base_patch16_224`, ...).
    pub architecture: String,
    /// The family and its options.
    pub net: Net,
    /// Eval preprocessing (timm's `pretrained_cfg`).
    pub data: DataConfig,
    /// Class names, from config.json `label_names` or built in for ImageNet-1k.
    #[serde(skip)]
    pub labels: Option<Vec<String>>,
}

impl ModelConfig {
    /// Classes of the head (0: a feature extractor without head).
    pub fn num_classes(&self) -> usize {
        match &self.net {
            Net::Vit(v) => v.num_classes,
            Net::Swin(s) => s.num_classes,
        }
    }
    /// Sets the head's class count; labels are left as they are.
    pub fn set_num_classes(&mut self, n: usize) {
        match &mut self.net {
            Net::Vit(v) => v.num_classes = n,
            Net::Swin(s) => s.num_classes = n,
        }
    }
    /// Input channels and image size.
    pub fn input(&self) -> (usize, [usize; 2]) {
        match &self.net {
            Net::Vit(v) => (v.in_chans, v.img_size),
            Net::Swin(s) => (s.in_chans, s.img_size),
        }
    }
    /// Width of the pooled features the head reads.
    pub fn num_features(&self) -> usize {
        match &self.net {
            Net::Vit(v) => v.embed_dim,
            Net::Swin(s) => s.num_features(),
        }
    }
    /// Layer-scale init value (ViT's `init_values`; none for Swin).
    pub fn init_values(&self) -> Option<f64> {
        match &self.net {
            Net::Vit(v) => v.init_values,
            Net::Swin(_) => None,
        }
    }
    /// The head's pooling.
    pub fn global_pool(&self) -> GlobalPool {
        match &self.net {
            Net::Vit(v) => v.global_pool,
            Net::Swin(s) => s.global_pool,
        }
    }
    /// The ViT options, for ViT models.
    pub fn vit(&self) -> Option<&VitConfig> {
        match &self.net {
            Net::Vit(v) => Some(v),
            Net::Swin(_) => None,
        }
    }
    /// Applies timm `model_args` to whichever family this is.
    pub fn apply_model_args(&mut self, args: &Map<String, Value>) -> Result<()> {
        match &mut self.net {
            Net::Vit(v) => apply_model_args(v, args)?,
            Net::Swin(s) => apply_swin_args(s, args)?,
        }
        let (c, [h, w]) = self.input();
        self.data.input_size = [c, h, w];
        Ok(())
    }
}

const INCEPTION_MEAN: [f32; 3] = [0.5, 0.5, 0.5];
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

fn vit_base(patch: usize, dim: usize, depth: usize, heads: usize) -> VitConfig {
    VitConfig {
        img_size: [224, 224],
        patch_size: patch,
        in_chans: 3,
        num_classes: 1000,
        embed_dim: dim,
        depth,
        num_heads: heads,
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

fn data(size: usize, crop_pct: f64, mean: [f32; 3], std: [f32; 3]) -> DataConfig {
    DataConfig { input_size: [3, size, size], interpolation: "bicubic".into(), crop_pct, crop_mode: "center".into(), mean, std }
}

/// Every preset name vitrine knows (timm's names).
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
    for name in SWIN_PRESETS {
        v.push(name.to_string());
    }
    v
}

const SWIN_PRESETS: [&str; 9] = [
    "swin_tiny_patch4_window7_224",
    "swin_small_patch4_window7_224",
    "swin_base_patch4_window7_224",
    "swin_base_patch4_window12_384",
    "swin_large_patch4_window7_224",
    "swin_large_patch4_window12_384",
    "swin_s3_tiny_224",
    "swin_s3_small_224",
    "swin_s3_base_224",
];

/// timm's `swin_*` model functions.
fn swin_preset(name: &str) -> Option<ModelConfig> {
    if !SWIN_PRESETS.contains(&name) {
        return None;
    }
    let w = |v: &[usize]| PerStage::Each(v.iter().map(|&x| [x, x]).collect());
    let (dim, depths, heads, window): (usize, Vec<usize>, Vec<usize>, PerStage<[usize; 2]>) = match name {
        // AutoFormerV2 (S3) searched per-stage windows, on SwinTransformer.
        "swin_s3_tiny_224" => (96, vec![2, 2, 6, 2], vec![3, 6, 12, 24], w(&[7, 7, 14, 7])),
        "swin_s3_small_224" => (96, vec![2, 2, 18, 2], vec![3, 6, 12, 24], w(&[14, 14, 14, 7])),
        "swin_s3_base_224" => (96, vec![2, 2, 30, 2], vec![3, 6, 12, 24], w(&[7, 7, 14, 7])),
        _ => {
            let window = if name.contains("window12") { 12 } else { 7 };
            let (dim, depths, heads) = match name.split('_').nth(1)? {
                "tiny" => (96, vec![2, 2, 6, 2], vec![3, 6, 12, 24]),
                "small" => (96, vec![2, 2, 18, 2], vec![3, 6, 12, 24]),
                "base" => (128, vec![2, 2, 18, 2], vec![4, 8, 16, 32]),
                _ => (192, vec![2, 2, 18, 2], vec![6, 12, 24, 48]),
            };
            (dim, depths, heads, PerStage::All([window, window]))
        }
    };
    let res = if name.ends_with("_384") { 384 } else { 224 };
    let swin = SwinConfig {
        img_size: [res, res],
        patch_size: 4,
        in_chans: 3,
        num_classes: 1000,
        embed_dim: PerStage::All(dim),
        depths,
        num_heads: heads,
        head_dim: PerStage::All(None),
        window_size: window,
        mlp_ratio: PerStage::All(4.0),
        qkv_bias: true,
        always_partition: false,
        ape: false,
        patch_norm: true,
        global_pool: GlobalPool::Avg,
        norm_eps: 1e-5,
    };
    let crop = if res == 384 { 1.0 } else { 0.9 };
    Some(ModelConfig {
        architecture: name.to_string(),
        net: Net::Swin(swin),
        data: data(res, crop, IMAGENET_MEAN, IMAGENET_STD),
        labels: None,
    })
}

/// The config of a stock timm model name.
pub fn preset(name: &str) -> Result<ModelConfig> {
    let unknown = || Error::Config(format!("unknown architecture {name:?}; known: {}", preset_names().join(", ")));
    if !preset_names().iter().any(|n| n == name) {
        return Err(unknown());
    }
    if let Some(cfg) = swin_preset(name) {
        return finish(cfg);
    }
    let parts: Vec<&str> = name.split('_').collect();
    let family = parts[0];
    let size = parts[1];
    let distilled = parts.contains(&"distilled");
    let patch: usize = parts.iter().find_map(|p| p.strip_prefix("patch")).and_then(|p| p.parse().ok()).ok_or_else(unknown)?;
    let res: usize = parts.last().and_then(|p| p.parse().ok()).ok_or_else(unknown)?;
    let (dim, depth, heads) = match size {
        "tiny" => (192, 12, 3),
        "small" => (384, 12, 6),
        "base" => (768, 12, 12),
        "large" => (1024, 24, 16),
        _ => return Err(unknown()),
    };
    let mut vit = vit_base(patch, dim, depth, heads);
    vit.img_size = [res, res];
    vit.distilled = distilled;
    let crop = if res == 384 { 1.0 } else { 0.9 };
    let data = match family {
        "vit" => data(res, crop, INCEPTION_MEAN, INCEPTION_MEAN),
        "deit" => data(res, crop, IMAGENET_MEAN, IMAGENET_STD),
        "deit3" => {
            vit.no_embed_class = true;
            vit.init_values = Some(1e-6);
            data(res, if res == 384 { 1.0 } else { 0.875 }, IMAGENET_MEAN, IMAGENET_STD)
        }
        _ => return Err(unknown()),
    };
    finish(ModelConfig { architecture: name.to_string(), net: Net::Vit(vit), data, labels: None })
}

/// ImageNet-1k class names, in timm's class index order.
pub fn imagenet_labels() -> Vec<String> {
    include_str!("../data/imagenet1k_labels.txt").lines().map(|s| s.to_string()).collect()
}

fn as_usize(k: &str, v: &Value) -> Result<usize> {
    v.as_u64().map(|x| x as usize).ok_or_else(|| Error::Config(format!("{k} must be a non-negative integer, got {v}")))
}
fn as_bool(k: &str, v: &Value) -> Result<bool> {
    v.as_bool().ok_or_else(|| Error::Config(format!("{k} must be true or false, got {v}")))
}
fn as_f64(k: &str, v: &Value) -> Result<f64> {
    v.as_f64().ok_or_else(|| Error::Config(format!("{k} must be a number, got {v}")))
}
fn as_pair(k: &str, v: &Value) -> Result<[usize; 2]> {
    match v {
        Value::Array(a) if a.len() == 2 => Ok([as_usize(k, &a[0])?, as_usize(k, &a[1])?]),
        _ => as_usize(k, v).map(|x| [x, x]),
    }
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

fn square_patch(k: &str, v: &Value) -> Result<usize> {
    let p = as_pair(k, v)?;
    if p[0] != p[1] {
        return Err(Error::Config(format!("non-square patch_size {p:?} is not supported")));
    }
    Ok(p[0])
}

fn parse_pool(v: &Value) -> Result<GlobalPool> {
    match v.as_str() {
        Some("token") => Ok(GlobalPool::Token),
        Some("avg") => Ok(GlobalPool::Avg),
        Some("max") => Ok(GlobalPool::Max),
        Some("avgmax") => Ok(GlobalPool::AvgMax),
        _ => Err(Error::Config(format!("global_pool {v} is not supported (token, avg, max, avgmax)"))),
    }
}

/// Applies timm `model_args` (VisionTransformer keyword arguments).
pub fn apply_model_args(vit: &mut VitConfig, args: &Map<String, Value>) -> Result<()> {
    for (k, v) in args {
        match k.as_str() {
            "img_size" => vit.img_size = as_pair(k, v)?,
            "patch_size" => vit.patch_size = square_patch(k, v)?,
            "in_chans" => vit.in_chans = as_usize(k, v)?,
            "num_classes" => vit.num_classes = as_usize(k, v)?,
            "embed_dim" => vit.embed_dim = as_usize(k, v)?,
            "depth" => vit.depth = as_usize(k, v)?,
            "num_heads" => vit.num_heads = as_usize(k, v)?,
            "mlp_ratio" => vit.mlp_ratio = as_f64(k, v)?,
            "qkv_bias" => vit.qkv_bias = as_bool(k, v)?,
            "proj_bias" => vit.proj_bias = as_bool(k, v)?,
            "init_values" => vit.init_values = if v.is_null() || v.as_f64() == Some(0.0) { None } else { Some(as_f64(k, v)?) },
            "class_token" => vit.class_token = as_bool(k, v)?,
            "reg_tokens" => vit.reg_tokens = as_usize(k, v)?,
            "no_embed_class" => vit.no_embed_class = as_bool(k, v)?,
            "pos_embed" => match v.as_str() {
                Some("learn") => vit.pos_embed = true,
                Some("none") | Some("") => vit.pos_embed = false,
                _ => return Err(Error::Config(format!("pos_embed {v} is not supported (learn, none)"))),
            },
            "global_pool" => vit.global_pool = parse_pool(v)?,
            "fc_norm" => vit.fc_norm = if v.is_null() { None } else { Some(as_bool(k, v)?) },
            "final_norm" => vit.final_norm = as_bool(k, v)?,
            "pre_norm" => vit.pre_norm = as_bool(k, v)?,
            "pool_include_prefix" => vit.pool_include_prefix = as_bool(k, v)?,
            "distilled" => vit.distilled = as_bool(k, v)?,
            // Options that change nothing at inference with a fixed input size.
            "dynamic_img_size" | "dynamic_img_pad" | "drop_rate" | "pos_drop_rate" | "patch_drop_rate" | "proj_drop_rate"
            | "attn_drop_rate" | "drop_path_rate" | "weight_init" | "fix_init" | "strict_img_size" => {}
            "qk_norm" | "scale_attn_norm" | "scale_mlp_norm" if v == &json!(false) => {}
            "act_layer" if v.as_str() == Some("gelu") => {}
            other => return Err(Error::Config(format!("model_args.{other} = {v} is not supported by vitrine"))),
        }
    }
    Ok(())
}

fn as_pair_list(k: &str, v: &Value) -> Result<PerStage<[usize; 2]>> {
    // timm's resolve_stage_window_sizes: an int or a pair of ints is every stage's;
    // otherwise one int or pair per stage.
    match v {
        Value::Array(a) if a.len() == 2 && a.iter().all(|x| x.is_u64()) => Ok(PerStage::All(as_pair(k, v)?)),
        Value::Array(a) => Ok(PerStage::Each(a.iter().map(|x| as_pair(k, x)).collect::<Result<_>>()?)),
        _ => Ok(PerStage::All(as_pair(k, v)?)),
    }
}

fn per_stage<T>(k: &str, v: &Value, one: impl Fn(&str, &Value) -> Result<T>) -> Result<PerStage<T>> {
    match v {
        Value::Array(a) => Ok(PerStage::Each(a.iter().map(|x| one(k, x)).collect::<Result<_>>()?)),
        _ => Ok(PerStage::All(one(k, v)?)),
    }
}

fn usize_list(k: &str, v: &Value) -> Result<Vec<usize>> {
    match v {
        Value::Array(a) => a.iter().map(|x| as_usize(k, x)).collect(),
        _ => Err(Error::Config(format!("{k} must be a list of integers, got {v}"))),
    }
}

/// Applies timm `model_args` (SwinTransformer keyword arguments).
pub fn apply_swin_args(s: &mut SwinConfig, args: &Map<String, Value>) -> Result<()> {
    for (k, v) in args {
        match k.as_str() {
            "img_size" => s.img_size = as_pair(k, v)?,
            "patch_size" => s.patch_size = square_patch(k, v)?,
            "in_chans" => s.in_chans = as_usize(k, v)?,
            "num_classes" => s.num_classes = as_usize(k, v)?,
            "embed_dim" => s.embed_dim = per_stage(k, v, as_usize)?,
            "depths" => s.depths = usize_list(k, v)?,
            "num_heads" => s.num_heads = usize_list(k, v)?,
            "head_dim" => s.head_dim = per_stage(k, v, |k, x| if x.is_null() { Ok(None) } else { as_usize(k, x).map(Some) })?,
            "window_size" => s.window_size = as_pair_list(k, v)?,
            "mlp_ratio" => s.mlp_ratio = per_stage(k, v, as_f64)?,
            "qkv_bias" => s.qkv_bias = as_bool(k, v)?,
            "always_partition" => s.always_partition = as_bool(k, v)?,
            "ape" => s.ape = as_bool(k, v)?,
            "patch_norm" => s.patch_norm = as_bool(k, v)?,
            "global_pool" => s.global_pool = parse_pool(v)?,
            // Options that change nothing at inference with a fixed input size.
            "drop_rate" | "proj_drop_rate" | "attn_drop_rate" | "drop_path_rate" | "weight_init" | "strict_img_size"
            | "dynamic_img_size" => {}
            "norm_layer" if v.as_str() == Some("layernorm") => {}
            other => return Err(Error::Config(format!("model_args.{other} = {v} is not supported by vitrine for Swin"))),
        }
    }
    Ok(())
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
                    return Err(Error::Config(format!("interpolation {v} is not supported (bicubic, bilinear, nearest)")));
                }
                cfg.data.interpolation = s.to_string();
            }
            "crop_pct" => cfg.data.crop_pct = as_f64(k, v)?,
            "crop_mode" => {
                let s = v.as_str().unwrap_or_default();
                if !["center", "squash"].contains(&s) {
                    return Err(Error::Config(format!("crop_mode {v} is not supported (center, squash)")));
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
    // Unknown names are fine when model_args describe the whole model.
    let has_args = obj.get("model_args").is_some();
    let mut cfg = match preset(arch) {
        Ok(c) => c,
        // Swin V2 (`swinv2_*`) is another class in timm: not taken for v1.
        Err(_) if has_args && arch.starts_with("swin_") => {
            let mut c = preset("swin_tiny_patch4_window7_224")?;
            c.architecture = arch.to_string();
            c
        }
        Err(e) if !has_args || !(arch.starts_with("vit_") || arch.starts_with("deit")) => return Err(e),
        Err(_) => {
            let mut c = preset("vit_base_patch16_224")?;
            c.architecture = arch.to_string();
            if let Net::Vit(v) = &mut c.net {
                v.distilled = arch.contains("distilled");
            }
            c
        }
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
    match &mut cfg.net {
        Net::Vit(v) => (v.in_chans, v.img_size) = (c, [h, w]),
        Net::Swin(s) => (s.in_chans, s.img_size) = (c, [h, w]),
    }
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
    if let Some(l) = obj.get("label_names") {
        cfg.labels = Some(labels_of(l)?);
    }
    finish(cfg)
}

/// Checks the config and settles the labels against the class count.
pub fn finish(mut cfg: ModelConfig) -> Result<ModelConfig> {
    match &cfg.net {
        Net::Vit(v) => v.validate()?,
        Net::Swin(s) => s.validate()?,
    }
    let (in_chans, _) = cfg.input();
    if ![1, 3].contains(&in_chans) {
        return Err(Error::Config(format!("in_chans {in_chans} is not supported (1 or 3)")));
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
