//! HVT, "Scalable Vision Transformers with Hierarchical Pooling" (Pan et al.,
//! ICCV 2021), exact to the official code (MonashAI/HVT `models.py`; spec in
//! docs and ../shared/kin/hvt.md). A DeiT without class token whose token
//! sequence is max-pooled in 1-D (kernel `pool_kernel_size`, stride 2, no
//! padding, floor: trailing tokens no window covers are dropped) after block
//! 0 and every `pool_block_width` blocks, each pool followed by that block's
//! own `pos_embed`; the head reads the mean of all tokens after the final norm.
//!
//! ```text
//! img -> im2col -> patch_embed.proj -> + pos_embed -> [B, N, C]
//!   -> block i (timm Block, qkv bias, LN eps 1e-6);
//!      if i % pool_block_width == 0: max_pool1d(k, 2) over tokens -> + blocks.i.pos_embed
//!   -> norm -> mean over tokens -> head -> [B, classes]
//! ```
//!
//! `model_args` are the keys of the official config/*.json files.

use crate::{arch_common, arch_square_image_fields};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::models::args::{self, ArgRules};
use crate::models::blocks::{linear, norm, patch_embed, vit_block, BlockSpec};
use crate::models::common::{DataConfig, IMAGENET_MEAN, IMAGENET_STD};
use crate::models::family::ModelConfig;
use crate::models::family::{Arch, Family};
use crate::models::init;
use crate::ops::{PoolMode, PosMode, TokenPoolKind};
use crate::rng::Rng;
use crate::weights::Weights;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The registry entry.
pub static FAMILY: Family = Family {
    name: "hvt",
    about: "HVT (hierarchical 1-D max pooling of tokens, no class token), official MonashAI/HVT",
    presets: || PRESETS.iter().map(|p| p.0.to_string()).collect(),
    preset,
    base: |name| (name == "hvt").then(|| ModelConfig::new(name, HvtConfig::ti_1(), data(224))),
    infer,
};

/// The official config/*.json keys (serde names) plus what the official code hard-codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HvtConfig {
    /// Input side in pixels (the official model asserts a square input).
    pub input_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Width of one head; the token width is `num_heads * head_dim`.
    pub head_dim: usize,
    /// Transformer blocks.
    pub num_blocks: usize,
    /// Max-pool kernel over tokens.
    pub pool_kernel_size: usize,
    /// Read and written for fidelity, but ignored as the official code
    /// ignores it: the pooling stride is always 2.
    pub pool_stride: usize,
    /// Block `i` pools when `i % pool_block_width == 0`.
    pub pool_block_width: usize,
    /// Classes of the head (config.json's `num_classes`; not an official config key).
    pub num_classes: usize,
    /// Input channels (pretrained_cfg's input_size; the official code uses 3).
    pub in_chans: usize,
}

const RULES: ArgRules = ArgRules {
    family: "HVT",
    internal: &["num_classes", "in_chans"],
    read_only: &[],
    // The official config files' training-only keys.
    ignored: |k, _| matches!(k, "model" | "batch_size" | "exp_name" | "num_workers" | "weight_decay"),
};

/// Every preset: (name, heads, pool_block_width), from the official config/*.json
/// (hvt_s_4 is `scale-hvt-ti-4.json`).
const PRESETS: [(&str, usize, usize); 5] =
    [("hvt_ti_1", 3, 12), ("hvt_s_1", 6, 12), ("hvt_s_2", 6, 6), ("hvt_s_3", 6, 4), ("hvt_s_4", 6, 3)];

/// The official eval transform: Resize(int(256 / 224 * size)) bicubic, center crop, ImageNet mean / std.
fn data(size: usize) -> DataConfig {
    DataConfig::rgb(size, 0.875, IMAGENET_MEAN, IMAGENET_STD)
}

fn preset(name: &str) -> Option<ModelConfig> {
    let &(_, heads, width) = PRESETS.iter().find(|p| p.0 == name)?;
    Some(ModelConfig::new(name, HvtConfig { num_heads: heads, pool_block_width: width, ..HvtConfig::ti_1() }, data(224)))
}

impl HvtConfig {
    /// HVT-Ti-1 (`config/hvt-ti-1.json`) with ImageNet's 1000 classes.
    pub fn ti_1() -> Self {
        HvtConfig {
            input_size: 224,
            patch_size: 16,
            num_heads: 3,
            head_dim: 64,
            num_blocks: 12,
            pool_kernel_size: 3,
            pool_stride: 2,
            pool_block_width: 12,
            num_classes: 1000,
            in_chans: 3,
        }
    }
    /// Token width C.
    pub fn embed_dim(&self) -> usize {
        self.num_heads * self.head_dim
    }
    /// Patch tokens before any pooling.
    pub fn num_patches(&self) -> usize {
        let g = self.input_size / self.patch_size.max(1);
        g * g
    }
    /// Whether block `i` pools (after its MLP).
    pub fn pools_after(&self, i: usize) -> bool {
        i.is_multiple_of(self.pool_block_width.max(1))
    }
    /// The token count each block outputs, in block order.
    pub fn token_counts(&self) -> Result<Vec<usize>> {
        let (k, mut n) = (self.pool_kernel_size, self.num_patches());
        let mut out = Vec::with_capacity(self.num_blocks);
        for i in 0..self.num_blocks {
            if self.pools_after(i) {
                if n < k {
                    return Err(Error::Config(format!("HVT block {i}: {n} tokens are fewer than pool_kernel_size {k}")));
                }
                n = (n - k) / 2 + 1;
            }
            out.push(n);
        }
        Ok(out)
    }
}

impl Arch for HvtConfig {
    fn family(&self) -> &'static Family {
        &FAMILY
    }
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.num_heads == 0 || self.head_dim == 0 || self.num_blocks == 0 || self.pool_kernel_size == 0 {
            return bad("HVT: num_heads, head_dim, num_blocks and pool_kernel_size must be positive".into());
        }
        if self.pool_block_width == 0 {
            return bad("HVT: pool_block_width must be positive (block i pools when i % pool_block_width == 0)".into());
        }
        if self.patch_size == 0 || self.input_size < self.patch_size {
            return bad(format!("HVT: input_size {} is smaller than patch_size {}", self.input_size, self.patch_size));
        }
        if self.pool_stride != 2 {
            log::warn!("HVT: pool_stride {} is ignored, as in the official code (the stride is always 2)", self.pool_stride);
        }
        self.token_counts().map(|_| ())
    }
    fn build(&self, batch: usize) -> Result<Graph> {
        self.validate()?;
        let (c, p, cin, s) = (self.embed_dim(), self.patch_size, self.in_chans, self.input_size);
        let counts = self.token_counts()?;
        let np = self.num_patches();
        let mut g = Graph::new();
        g.scope("patch_embed");
        let (_, x) = patch_embed(&mut g, batch, cin, [s, s], p, c, true)?;
        let pos = g.param_view("pos_embed", &[1, np, c], &[np, c]);
        let mut x = g.tokens(x, None, Some(pos), PosMode::PatchesOnly)?;
        let spec = BlockSpec { dim: c, heads: self.num_heads, hidden: 4 * c, qkv_bias: true, proj_bias: true, layer_scale: false, eps: 1e-6 };
        for (i, &n) in counts.iter().enumerate() {
            let pre = format!("blocks.{i}");
            g.scope(pre.clone());
            x = vit_block(&mut g, x, &pre, &spec)?;
            if self.pools_after(i) {
                x = g.token_pool(x, TokenPoolKind::Max, self.pool_kernel_size, 2)?;
                let pos = g.param_view(&format!("{pre}.pos_embed"), &[1, n, c], &[n, c]);
                x = g.tokens(x, None, Some(pos), PosMode::PatchesOnly)?;
            }
        }
        g.scope("head");
        let x = norm(&mut g, x, "norm", c, 1e-6)?;
        let f = g.pool(x, PoolMode::Avg(0))?;
        let out = if self.num_classes > 0 { linear(&mut g, f, "head", self.num_classes, c, true)? } else { f };
        g.output(out);
        Ok(g)
    }
    arch_square_image_fields!(input_size);
    fn num_features(&self) -> usize {
        self.embed_dim()
    }
    fn read_args(&mut self, a: &Map<String, Value>) -> Result<()> {
        args::read(self, a, &RULES)
    }
    fn write_args(&self, preset: Option<&dyn Arch>) -> Map<String, Value> {
        match preset.and_then(|p| p.as_any().downcast_ref::<HvtConfig>()) {
            Some(base) => args::write(self, base, &[], &RULES),
            None => args::write(self, self, &["input_size", "patch_size", "num_heads", "head_dim", "num_blocks", "pool_kernel_size", "pool_stride", "pool_block_width"], &RULES),
        }
    }
    fn classifier(&self) -> Vec<&'static str> {
        vec!["head"]
    }
    /// The official `HVT.no_weight_decay`: every name containing `pos_embed`.
    fn no_weight_decay(&self, name: &str) -> bool {
        name.contains("pos_embed")
    }
    /// pos_embeds and Linear weights trunc_normal(0.02), zero biases, LayerNorm (1, 0), the patch conv PyTorch's default.
    fn init(&self, name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32> {
        init::timm_vit(name, shape, None, rng)
    }
    fn summary(&self) -> Vec<(String, String)> {
        let counts = self.token_counts().unwrap_or_default();
        let pools: Vec<String> = (0..self.num_blocks).filter(|&i| self.pools_after(i)).map(|i| format!("{i} (-> {})", counts.get(i).copied().unwrap_or(0))).collect();
        vec![
            (
                "hvt".into(),
                format!(
                    "patch {} embed_dim {} depth {} heads {} (head_dim {}) mlp {} tokens {}",
                    self.patch_size,
                    self.embed_dim(),
                    self.num_blocks,
                    self.num_heads,
                    self.head_dim,
                    4 * self.embed_dim(),
                    self.num_patches()
                ),
            ),
            ("pooling".into(), format!("max k{} s2 after blocks {}", self.pool_kernel_size, pools.join(", "))),
        ]
    }
    arch_common!();
}

/// HVT tensors: a ViT without class token whose pooling blocks carry their own
/// `pos_embed`. Head count is not stored: head_dim 64 is assumed, as in every
/// released HVT; the kernel follows from the first two token counts.
fn infer(w: &Weights) -> Option<Result<ModelConfig>> {
    let n1 = w.shape("blocks.0.pos_embed")?.get(1).copied()?;
    Some((|| {
        let shape = |n: &str| w.shape(n).map(|s| s.to_vec()).ok_or_else(|| Error::Config(format!("HVT checkpoint without {n}")));
        let pw = shape("patch_embed.proj.weight")?;
        let n0 = shape("pos_embed")?.get(1).copied().unwrap_or(0);
        let (dim, cin, p) = (pw[0], pw.get(1).copied().unwrap_or(3), pw.get(2).copied().unwrap_or(0));
        let depth = (0..).take_while(|i| w.shape(&format!("blocks.{i}.norm1.weight")).is_some()).count();
        let width = (1..depth).find(|i| w.shape(&format!("blocks.{i}.pos_embed")).is_some()).unwrap_or(depth.max(1));
        let side = (0..=n0).find(|g| g * g >= n0).unwrap_or(0);
        if dim % 64 != 0 || side * side != n0 || n0 + 2 < 2 * n1 {
            return Err(Error::Config("cannot infer this HVT's heads or grid; pass --arch or use a config.json".into()));
        }
        let classes = w.shape("head.weight").and_then(|s| s.first().copied()).unwrap_or(0);
        let base = HvtConfig {
            input_size: side * p,
            patch_size: p,
            num_heads: dim / 64,
            head_dim: 64,
            num_blocks: depth,
            pool_kernel_size: 3,
            pool_stride: 2,
            pool_block_width: width,
            num_classes: classes,
            in_chans: cin,
        };
        // n1 = floor((n0 - k) / 2) + 1 leaves two kernels possible; the later stages' pos_embed
        // lengths decide between them, and the released models' 3 wins a remaining tie.
        let k_hi = n0 + 2 - 2 * n1;
        let fits = |k: usize| {
            let c = HvtConfig { pool_kernel_size: k, ..base.clone() };
            let counts = c.token_counts().unwrap_or_default();
            counts.len() == depth
                && (0..depth).filter(|&i| c.pools_after(i)).all(|i| w.shape(&format!("blocks.{i}.pos_embed")).and_then(|s| s.get(1).copied()) == Some(counts[i]))
        };
        let mut ks: Vec<usize> = [k_hi, k_hi.saturating_sub(1)].into_iter().filter(|&k| k > 0 && fits(k)).collect();
        ks.sort_by_key(|&k| k != 3);
        let k = *ks.first().ok_or_else(|| Error::Config("cannot infer this HVT's pooling kernel from its pos_embed shapes; pass --arch or use a config.json".into()))?;
        let cfg = HvtConfig { pool_kernel_size: k, ..base };
        let mut data = data(side * p);
        data.input_size[0] = cin;
        log::warn!("no config: inferred an HVT with {} heads (head_dim 64)", dim / 64);
        Ok(ModelConfig::new("hvt", cfg, data))
    })())
}
