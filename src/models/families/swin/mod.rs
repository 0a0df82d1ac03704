//! timm's SwinTransformer (v1): config, stages, presets (timm's `swin_*`
//! names), `model_args`, init and the registry entry; the graph is in
//! `graph.rs`, on the same ops as ViT plus the window ops. Parameter names are timm's checkpoint names (current layout:
//! `layers.N.downsample` at the start of stage N > 0, classifier `head.fc`).
//!
//! ```text
//! img -> im2col -> patch_embed.proj -> patch_embed.norm? (+ absolute_pos_embed?) -> [B, H*W, C0]
//! stage i: (i > 0: 2x2 merge -> downsample.norm -> downsample.reduction)
//!   blocks j: x = x + reverse(proj(window_attn(qkv(partition(norm1(x))))))   (shift on odd j)
//!             x = x + fc2(gelu(fc1(norm2(x))))
//! -> norm -> pool (avg | max | avgmax) -> head.fc -> [B, classes]
//! ```

mod graph;
mod presets;

use presets::{preset, preset_names};

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::models::args::{self, ArgRules};
use crate::models::common::{DataConfig, GlobalPool, IMAGENET_MEAN, IMAGENET_STD};
use crate::models::family::ModelConfig;
use crate::models::family::{Arch, Family};
use crate::models::init;
use crate::rng::Rng;
use crate::{arch_common, arch_image_fields};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A value given once for all stages or once per stage (timm's `to_ntuple`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// timm's `SwinTransformer` keyword arguments (the serde names are timm's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwinConfig {
    /// Input image (height, width) in pixels.
    #[serde(with = "args::pair")]
    pub img_size: [usize; 2],
    /// Side of the square patches, in pixels (4 in every stock Swin).
    #[serde(deserialize_with = "args::square")]
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
    #[serde(deserialize_with = "window_sizes")]
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
    pub fn check(&self) -> Result<()> {
        self.stages()?;
        if self.global_pool == GlobalPool::Token {
            return Err(Error::Config("global_pool 'token' needs a class token; Swin pools avg, max or avgmax".into()));
        }
        Ok(())
    }
}

/// The registry entry.
pub static FAMILY: Family = Family {
    name: "swin",
    about: "timm SwinTransformer v1 (shifted windows, patch merging, relative position bias)",
    presets: preset_names,
    preset,
    base,
    infer,
};

const RULES: ArgRules = ArgRules { family: "Swin", internal: &["norm_eps"], read_only: &[], ignored };

/// Options that change nothing at inference with a fixed input size, or hold the only value vitrine runs.
fn ignored(k: &str, v: &Value) -> bool {
    match k {
        "drop_rate" | "proj_drop_rate" | "attn_drop_rate" | "drop_path_rate" | "weight_init" | "strict_img_size" | "dynamic_img_size" => {
            true
        }
        "norm_layer" => v.as_str() == Some("layernorm"),
        _ => false,
    }
}

/// timm's `resolve_stage_window_sizes`: an int or a pair of ints is every
/// stage's; otherwise one int or pair per stage.
fn window_sizes<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<PerStage<[usize; 2]>, D::Error> {
    let v = Value::deserialize(d)?;
    let pair = |x: &Value| args::as_pair("window_size", x).map_err(|e| serde::de::Error::custom(e.to_string()));
    match &v {
        Value::Array(a) if a.len() == 2 && a.iter().all(|x| x.is_u64()) => Ok(PerStage::All(pair(&v)?)),
        Value::Array(a) => Ok(PerStage::Each(a.iter().map(pair).collect::<std::result::Result<_, _>>()?)),
        _ => Ok(PerStage::All(pair(&v)?)),
    }
}

impl SwinConfig {
    /// Swin-T at 224 (timm's `swin_tiny_patch4_window7_224`).
    pub fn tiny() -> Self {
        SwinConfig {
            img_size: [224, 224],
            patch_size: 4,
            in_chans: 3,
            num_classes: 1000,
            embed_dim: PerStage::All(96),
            depths: vec![2, 2, 6, 2],
            num_heads: vec![3, 6, 12, 24],
            head_dim: PerStage::All(None),
            window_size: PerStage::All([7, 7]),
            mlp_ratio: PerStage::All(4.0),
            qkv_bias: true,
            always_partition: false,
            ape: false,
            patch_norm: true,
            global_pool: GlobalPool::Avg,
            norm_eps: 1e-5,
        }
    }
}

impl Arch for SwinConfig {
    fn family(&self) -> &'static Family {
        &FAMILY
    }
    fn validate(&self) -> Result<()> {
        self.check()
    }
    fn build(&self, batch: usize) -> Result<Graph> {
        graph::build(self, batch)
    }
    arch_image_fields!();
    fn num_features(&self) -> usize {
        SwinConfig::num_features(self)
    }
    fn global_pool(&self) -> Option<GlobalPool> {
        Some(self.global_pool)
    }
    fn read_args(&mut self, a: &Map<String, Value>) -> Result<()> {
        args::read(self, a, &RULES)
    }
    /// Every argument (timm accepts the full set), `ape` and `patch_norm` only
    /// where they differ from timm's fixed behaviour (timm has neither).
    fn write_args(&self, _preset: Option<&dyn Arch>) -> Map<String, Value> {
        let always = [
            "img_size",
            "patch_size",
            "in_chans",
            "num_classes",
            "embed_dim",
            "depths",
            "num_heads",
            "head_dim",
            "window_size",
            "mlp_ratio",
            "qkv_bias",
            "always_partition",
            "global_pool",
        ];
        args::write(self, &Self::tiny(), &always, &RULES)
    }
    fn classifier(&self) -> Vec<&'static str> {
        vec!["head.fc"]
    }
    fn no_weight_decay(&self, name: &str) -> bool {
        name == "absolute_pos_embed" || name.ends_with("relative_position_bias_table")
    }
    fn init(&self, name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32> {
        init::timm_vit(name, shape, None, rng)
    }
    /// timm's `checkpoint_filter_fn`: the original repository's (and timm's
    /// former) layout keeps each stage's patch merging at the end of the stage
    /// (`layers.N.downsample`, now the start of stage N + 1) and the classifier
    /// as `head`; its files also store `relative_position_index` and `attn_mask`.
    fn remap(&self, w: &mut crate::weights::Weights) {
        // Only the original layout merges after stage 0 or calls the classifier `head`.
        let old = w.tensors.contains_key("head.weight") || w.tensors.keys().any(|k| k.starts_with("layers.0.downsample."));
        let tensors = std::mem::take(&mut w.tensors);
        for (name, t) in tensors {
            if name.contains("relative_position_index") || name.contains("attn_mask") {
                continue;
            }
            let name = if old { old_swin_name(&name) } else { name };
            w.tensors.insert(name, t);
        }
    }
    fn summary(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, st) in self.stages().unwrap_or_default().iter().enumerate() {
            let wins: Vec<String> = (0..st.depth.min(2))
                .map(|j| {
                    let (w, sh) = st.block_window(j, self.always_partition);
                    format!("{}x{} shift {}x{}", w[0], w[1], sh[0], sh[1])
                })
                .collect();
            out.push((
                format!("stage {i}"),
                format!(
                    "{}x{} tokens, dim {} depth {} heads {} (head_dim {}) mlp {} windows {}",
                    st.res[0],
                    st.res[1],
                    st.dim,
                    st.depth,
                    st.heads,
                    st.head_dim,
                    st.mlp_hidden(),
                    wins.join(" / ")
                ),
            ));
        }
        out.push((
            "options".into(),
            format!(
                "patch {} qkv_bias {} ape {} patch_norm {} always_partition {} pool {:?}",
                self.patch_size, self.qkv_bias, self.ape, self.patch_norm, self.always_partition, self.global_pool
            ),
        ));
        out
    }
    arch_common!();
}

/// The current name of a tensor in the original layout.
fn old_swin_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("head.") {
        return format!("head.fc.{rest}");
    }
    let stage = name
        .strip_prefix("layers.")
        .and_then(|r| r.split_once(".downsample."))
        .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)));
    match stage {
        Some((n, rest)) => format!("layers.{}.downsample.{rest}", n + 1),
        None => name.to_string(),
    }
}

/// Unknown `swin_*` names (v1 checkpoints with model_args) start from Swin-T;
/// Swin V2 (`swinv2_*`) is another class in timm and is not taken.
fn base(name: &str) -> Option<ModelConfig> {
    if !(name == "swin" || name.starts_with("swin_")) {
        return None;
    }
    Some(ModelConfig::new(name, SwinConfig::tiny(), DataConfig::rgb(224, 0.9, IMAGENET_MEAN, IMAGENET_STD)))
}

/// A Swin checkpoint cannot be resolved from its tensors alone.
fn infer(w: &crate::weights::Weights) -> Option<Result<ModelConfig>> {
    w.shape("layers.0.blocks.0.norm1.weight").map(|_| {
        Err(Error::Config(
            "this looks like a Swin checkpoint: its window and image size are not stored in the weights; pass --arch (e.g. swin_tiny_patch4_window7_224) or use a hub folder with config.json".into(),
        ))
    })
}
