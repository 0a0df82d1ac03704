//! DynamicViT, "Efficient Vision Transformers with Dynamic Token
//! Sparsification" (Rao et al., NeurIPS 2021), inference exact to the official
//! code (raoyongming/DynamicViT `models/dyvit.py`, `VisionTransformerDiffPruning`
//! in eval mode; spec in ../shared/kin/dynamicvit.md). A DeiT whose patch
//! tokens are pruned before the blocks in `pruning_loc`: a small predictor
//! scores every remaining patch token, the `int(num_patches * token_ratio[p])`
//! best are gathered (per image, on the GPU, no readback), and the class token
//! always stays first.
//!
//! ```text
//! img -> im2col -> patch_embed.proj -> [cls ; patches] + pos_embed -> [B, 1 + N, C]
//!   before block i = pruning_loc[p]:
//!     h = gelu(in_conv.1(LN_1e-5(x[:, 1:])))                  score_predictor.p
//!     z = [h[.., :C/2] ; mean over tokens of h[.., C/2:]]
//!     s = log_softmax(out_conv.4(gelu(out_conv.2(gelu(out_conv.0(z))))))[.., 0]
//!     keep = top_k(s, int(N * token_ratio[p])) (descending)   -> an extra output [B, k] (u32)
//!     x = [x[:, 0] ; x[:, 1 + keep]]
//!   -> block i (DeiT block, LN eps 1e-6) ... -> norm -> x[:, 0] -> head
//! ```
//!
//! The official code hard-codes `init_n = 14 * 14`; vitrine counts the real
//! patches, which is the same at 196 and generalises elsewhere. Kept counts
//! are static, so every shape is; only which tokens are kept varies per
//! image. The graph's outputs are the kept indices of each stage (each into
//! the previous stage's tokens; [`Arch::explain`](crate::models::family::Arch::explain) maps them back to the patch
//! grid for `classify --json`'s `"kept_tokens"`), then the logits.
//!
//! Training follows the official train branch: every token kept, hard
//! Gumbel-softmax decisions (noise from the trainer's seeded RNG, or injected
//! by a test) with the straight-through gradient, `softmax_with_policy`
//! attention in every block after a predictor, and the four-term loss against
//! a frozen dense teacher (`DynVitConfig::training_graph`,
//! `DynVitConfig::teacher_graph`); cls_token and pos_embed frozen, the
//! backbone at 0.01 of the rate and frozen for 5 epochs by default.

use crate::arch_common;
use crate::error::{Error, Result};
use crate::graph::{f32_bits_as_u32, Graph, TensorId};
use crate::models::args::{self, ArgRules};
use crate::models::blocks::{linear, linear_params, norm, patch_embed, vit_block_policy, BlockSpec};
use crate::models::common::{DataConfig, IMAGENET_MEAN, IMAGENET_STD};
use crate::models::family::{Arch, CustomTraining, Family, LossOptions, ModelConfig};
use crate::models::init;
use crate::ops::{Act, PoolMode, PosMode};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which forward pass [`DynVitConfig`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Inference: tokens gathered after each predictor (the official eval branch).
    Prune,
    /// Training: every token kept, Gumbel decisions mask the attention (the train branch).
    Train,
    /// The dense teacher: no predictors, plain softmax.
    Teacher,
}

/// What a forward pass made.
struct Forward {
    image: TensorId,
    logits: TensorId,
    /// `norm(x)[:, 1:]` (Train and Teacher).
    features: Option<TensorId>,
    /// Per stage: kept indices `[B, k]` (u32, Prune) or hard decisions `[B, N, 1]` (Train).
    decisions: Vec<TensorId>,
    /// The Gumbel noise inputs `[B, N, 2]`, one per stage (Train).
    noise: Vec<TensorId>,
}

/// The loss weights of `DistillDiffPruningLoss_dynamic` as the official main.py sets them for DeiT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    /// Classification (label-smoothed cross-entropy).
    pub clf: f32,
    /// Keep-ratio MSE (divided by the number of stages).
    pub ratio: f32,
    /// Both distillation terms (KL to the teacher, token MSE).
    pub distill: f32,
    /// Label smoothing of the classification term.
    pub smoothing: f32,
}

impl Default for LossWeights {
    /// main.py: clf_weight 1.0, ratio_weight 2.0 (`--ratio_weight`), distill_weight 0.5, smoothing 0.1.
    fn default() -> Self {
        LossWeights { clf: 1.0, ratio: 2.0, distill: 0.5, smoothing: 0.1 }
    }
}

/// The training graph of [`DynVitConfig::training_graph`] and its named tensors.
/// Inputs in order: `image`, one Gumbel noise `[B, N, 2]` per stage, `target [B]`
/// (class indices as f32), `teacher_features [B, N, C]`, `teacher_logits [B, K]`
/// (the outputs of [`DynVitConfig::teacher_graph`], in its order).
pub struct Training {
    /// The graph (no outputs yet).
    pub g: Graph,
    /// The image input.
    pub image: TensorId,
    /// The labels.
    pub target: TensorId,
    /// The Gumbel noise inputs, one per stage.
    pub noise: Vec<TensorId>,
    /// The teacher's logits.
    pub teacher_logits: TensorId,
    /// The teacher's `norm(x)[:, 1:]`.
    pub teacher_features: TensorId,
    /// The total loss `[1]`.
    pub loss: TensorId,
    /// Its terms, unweighted: classification, ratio (summed over stages), KL, token MSE.
    pub terms: [TensorId; 4],
    /// The hard decisions of each stage `[B, N, 1]`.
    pub decisions: Vec<TensorId>,
    /// The student's logits.
    pub logits: TensorId,
}

/// The registry entry.
pub static FAMILY: Family = Family {
    name: "dynamicvit",
    about: "DynamicViT (per-image token pruning with learned predictors), official raoyongming/DynamicViT; inference",
    presets: || PRESETS.iter().map(|p| p.0.to_string()).collect(),
    preset,
    base: |name| (name == "dynamicvit").then(|| ModelConfig::new(name, DynVitConfig::deit_s(0.7), data(224))),
    infer: |w| {
        w.shape("score_predictor.0.in_conv.1.weight").map(|_| {
            Err(Error::Config("this looks like a DynamicViT checkpoint: pass --arch (e.g. dynamicvit_deit_s) or use a hub folder with config.json".into()))
        })
    },
};

/// The official `VisionTransformerDiffPruning` keyword arguments (serde names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynVitConfig {
    /// Input side in pixels.
    pub img_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Input image channels.
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
    /// Bias on qkv.
    pub qkv_bias: bool,
    /// Score scale; `None`: head_dim^-0.5 (the only value supported).
    pub qk_scale: Option<f64>,
    /// The blocks before which tokens are pruned (increasing).
    pub pruning_loc: Vec<usize>,
    /// Kept share of the original patch count at each pruning location.
    pub token_ratio: Vec<f64>,
    /// Training output of the official model (features for the teacher loss); no
    /// effect on inference.
    pub distill: bool,
}

const RULES: ArgRules = ArgRules {
    family: "DynamicViT",
    internal: &[],
    read_only: &[],
    ignored: |k, v| matches!(k, "drop_rate" | "attn_drop_rate" | "drop_path_rate") || (matches!(k, "representation_size" | "hybrid_backbone" | "norm_layer") && v.is_null()),
};

/// (name, embed_dim, heads): the released backbones (infer.py `--model deit-256 / deit-s / deit-b`),
/// all at keep ratio 0.7 (token_ratio [0.7, 0.49, 0.343]).
const PRESETS: [(&str, usize, usize); 3] = [("dynamicvit_deit_256", 256, 4), ("dynamicvit_deit_s", 384, 6), ("dynamicvit_deit_b", 768, 12)];

/// The official eval transform (datasets.py): Resize(int(224 / 0.875)) bicubic, center crop, ImageNet mean / std.
fn data(size: usize) -> DataConfig {
    DataConfig::rgb(size, 0.875, IMAGENET_MEAN, IMAGENET_STD)
}

fn preset(name: &str) -> Option<ModelConfig> {
    let &(_, embed_dim, num_heads) = PRESETS.iter().find(|p| p.0 == name)?;
    Some(ModelConfig::new(name, DynVitConfig { embed_dim, num_heads, ..DynVitConfig::deit_s(0.7) }, data(224)))
}

impl DynVitConfig {
    /// DynamicViT-DeiT-S with keep ratio `rho`: pruning before blocks 3, 6, 9 to
    /// `rho`, `rho^2`, `rho^3` of the patches (Python's float products, as main.py computes them).
    pub fn deit_s(rho: f64) -> Self {
        DynVitConfig {
            img_size: 224,
            patch_size: 16,
            in_chans: 3,
            num_classes: 1000,
            embed_dim: 384,
            depth: 12,
            num_heads: 6,
            mlp_ratio: 4.0,
            qkv_bias: true,
            qk_scale: None,
            pruning_loc: vec![3, 6, 9],
            token_ratio: vec![rho, rho * rho, rho * rho * rho],
            distill: true,
        }
    }
    /// Patch tokens of the unpruned image.
    pub fn num_patches(&self) -> usize {
        let g = self.img_size / self.patch_size.max(1);
        g * g
    }
    /// The predictor of pruning stage `stage` on the patch tokens `[B, N, C]` (with the
    /// previous decisions as the global mean's policy in training): keep / drop logits `[B, N, 2]`.
    fn predictor(&self, g: &mut Graph, patches: TensorId, stage: usize, policy: Option<TensorId>) -> Result<TensorId> {
        let c = self.embed_dim;
        let pre = format!("score_predictor.{stage}");
        g.scope(pre.clone());
        let h = norm(g, patches, &format!("{pre}.in_conv.0"), c, 1e-5)?;
        let (w, b) = linear_params(g, &format!("{pre}.in_conv.1"), c, c, true);
        let h = g.linear_fused(h, w, b, Act::Gelu, None, None)?;
        let z = g.local_global(h, policy)?;
        let (w, b) = linear_params(g, &format!("{pre}.out_conv.0"), c / 2, c, true);
        let z = g.linear_fused(z, w, b, Act::Gelu, None, None)?;
        let (w, b) = linear_params(g, &format!("{pre}.out_conv.2"), c / 4, c / 2, true);
        let z = g.linear_fused(z, w, b, Act::Gelu, None, None)?;
        linear(g, z, &format!("{pre}.out_conv.4"), 2, c / 4, true)
    }

    /// The forward pass in one of its three forms (see [`Mode`]).
    fn forward(&self, g: &mut Graph, batch: usize, mode: Mode) -> Result<Forward> {
        self.validate()?;
        let (c, p, cin, s) = (self.embed_dim, self.patch_size, self.in_chans, self.img_size);
        let np = self.num_patches();
        g.scope("patch_embed");
        let (image, x) = patch_embed(g, batch, cin, [s, s], p, c, true)?;
        let cls = g.param_view("cls_token", &[1, 1, c], &[1, c]);
        let pos = g.param_view("pos_embed", &[1, np + 1, c], &[np + 1, c]);
        let mut x = g.tokens(x, Some(cls), Some(pos), PosMode::All)?;
        let hidden = (c as f64 * self.mlp_ratio) as usize;
        let spec = BlockSpec { dim: c, heads: self.num_heads, hidden, qkv_bias: self.qkv_bias, proj_bias: true, layer_scale: false, eps: 1e-6 };
        let (kept, mut n) = (self.kept(), np);
        let (mut decisions, mut noise) = (Vec::with_capacity(kept.len()), Vec::new());
        // Training: the previous decisions [B, N, 1] and the attention policy [B, 1 + N].
        let (mut prev, mut policy): (Option<TensorId>, Option<TensorId>) = (None, None);
        for i in 0..self.depth {
            if let Some(stage) = self.pruning_loc.iter().position(|&l| l == i).filter(|_| mode != Mode::Teacher) {
                let patches = g.slice_tokens(x, 1, n)?;
                if mode == Mode::Prune {
                    let z = self.predictor(g, patches, stage, None)?;
                    let score = g.keep_score(z)?;
                    let (_, keep) = g.top_k(score, kept[stage])?;
                    x = g.gather_tokens_after(x, keep, 1)?;
                    decisions.push(keep);
                    n = kept[stage];
                } else {
                    let z = self.predictor(g, patches, stage, prev)?;
                    let gumbel = g.input(&[batch, np, 2]);
                    let mut hard = g.gumbel_keep(z, gumbel)?;
                    if let Some(p) = prev {
                        hard = g.mul(hard, p)?;
                    }
                    noise.push(gumbel);
                    decisions.push(hard);
                    policy = Some(g.policy_prefix(hard)?);
                    prev = Some(hard);
                }
            }
            let pre = format!("blocks.{i}");
            g.scope(pre.clone());
            x = vit_block_policy(g, x, &pre, &spec, policy)?;
        }
        g.scope("head");
        let x = norm(g, x, "norm", c, 1e-6)?;
        let f = g.pool(x, PoolMode::Token(0))?;
        let logits = if self.num_classes > 0 { linear(g, f, "head", self.num_classes, c, true)? } else { f };
        let features = if mode == Mode::Prune { None } else { Some(g.slice_tokens(x, 1, np)?) };
        Ok(Forward { image, logits, features, decisions, noise })
    }

    /// The dense teacher (the official `VisionTransformerTeacher`: the backbone without
    /// predictors, plain softmax): outputs `norm(x)[:, 1:]` `[B, N, C]`, then the logits.
    pub fn teacher_graph(&self, batch: usize) -> Result<Graph> {
        let mut g = Graph::new();
        let f = self.forward(&mut g, batch, Mode::Teacher)?;
        if let Some(feat) = f.features {
            g.output(feat);
        }
        g.output(f.logits);
        Ok(g)
    }

    /// The official training step's forward and loss (`DistillDiffPruningLoss_dynamic` with the
    /// DeiT settings of main.py) for a batch: every token kept, decisions by Gumbel-softmax on
    /// the graph's noise inputs, masked attention in every block after a predictor, and
    /// `loss = ce + ratio_weight * ratio / S + distill_weight * (kl + token)` (see [`Training`]).
    pub fn training_graph(&self, batch: usize, w: &LossWeights) -> Result<Training> {
        let mut g = Graph::new();
        let f = self.forward(&mut g, batch, Mode::Train)?;
        let (np, c, k) = (self.num_patches(), self.embed_dim, self.num_classes);
        g.scope("loss");
        let target = g.input(&[batch]);
        let teacher_features = g.input(&[batch, np, c]);
        let teacher_logits = g.input(&[batch, k]);
        let scalar = |g: &mut Graph, t: TensorId, alpha: f32| -> Result<TensorId> {
            let n = g.numel(t);
            let total = g.sum_rows_as(t, n, 1)?;
            g.scale(total, alpha)
        };
        let cls = g.cross_entropy_mean(f.logits, target, w.smoothing)?;
        // ratio: sum over stages of mean_b (mean_n keep - rho)^2.
        let mut ratio = None;
        for (&hard, &rho) in f.decisions.iter().zip(&self.token_ratio) {
            let km = g.pool(hard, PoolMode::Avg(0))?;
            let r = g.fill(&[batch, 1], -rho as f32)?;
            let d = g.add_scale(km, r, 1.0)?;
            let sq = g.mul(d, d)?;
            let term = scalar(&mut g, sq, 1.0 / batch as f32)?;
            ratio = Some(match ratio {
                Some(acc) => g.add_scale(acc, term, 1.0)?,
                None => term,
            });
        }
        let ratio = ratio.ok_or_else(|| Error::Config("DynamicViT training needs a pruning stage".into()))?;
        let kl_rows = g.kl_div(f.logits, teacher_logits)?;
        let kl = scalar(&mut g, kl_rows, 1.0 / batch as f32)?;
        // token: mean over the finally kept rows and all channels of (features - teacher's)^2.
        let feats = f.features.ok_or_else(|| Error::Config("training forward without features".into()))?;
        let last = *f.decisions.last().ok_or_else(|| Error::Config("DynamicViT training needs a pruning stage".into()))?;
        let mask = g.detach(last)?;
        let neg = g.scale(teacher_features, -1.0)?;
        let diff = g.add_scale(feats, neg, 1.0)?;
        let sq = g.row_dot(diff, diff)?;
        let masked = g.mul(sq, mask)?;
        let num = scalar(&mut g, masked, 1.0)?;
        let count = scalar(&mut g, mask, c as f32)?;
        let token = g.div_row(num, count, 1e-12)?;
        let stages = self.pruning_loc.len() as f32;
        let a = g.scale(ratio, w.ratio / stages)?;
        let d = g.add_scale(kl, token, w.distill)?;
        let clf = g.scale(cls, w.clf)?;
        let loss = g.add_scale(clf, a, 1.0)?;
        let loss = g.add_scale(loss, d, 1.0)?;
        Ok(Training {
            g,
            image: f.image,
            target,
            noise: f.noise,
            teacher_logits,
            teacher_features,
            loss,
            terms: [cls, ratio, kl, token],
            decisions: f.decisions,
            logits: f.logits,
        })
    }

    /// Patch tokens kept at each pruning location: `int(num_patches * ratio)`.
    pub fn kept(&self) -> Vec<usize> {
        self.token_ratio.iter().map(|r| (self.num_patches() as f64 * r) as usize).collect()
    }
}

impl Arch for DynVitConfig {
    fn family(&self) -> &'static Family {
        &FAMILY
    }
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.patch_size == 0 || self.img_size < self.patch_size || !self.img_size.is_multiple_of(self.patch_size) {
            return bad(format!("DynamicViT img_size {} must be a positive multiple of patch_size {}", self.img_size, self.patch_size));
        }
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) || self.depth == 0 || self.embed_dim < 4 {
            return bad(format!("DynamicViT embed_dim {} (at least 4) must divide into num_heads {}; depth must be positive", self.embed_dim, self.num_heads));
        }
        if let Some(q) = self.qk_scale {
            let want = ((self.embed_dim / self.num_heads) as f64).powf(-0.5);
            if (q - want).abs() > 1e-12 {
                return bad(format!("DynamicViT qk_scale {q} other than head_dim^-0.5 is not supported"));
            }
        }
        if self.pruning_loc.len() != self.token_ratio.len() || self.pruning_loc.is_empty() {
            return bad(format!(
                "DynamicViT needs one token_ratio per pruning location: pruning_loc {:?}, token_ratio {:?}",
                self.pruning_loc, self.token_ratio
            ));
        }
        if self.pruning_loc.windows(2).any(|w| w[0] >= w[1]) || self.pruning_loc.iter().any(|&l| l >= self.depth) {
            return bad(format!("DynamicViT pruning_loc {:?} must increase and stay below depth {}", self.pruning_loc, self.depth));
        }
        let mut n = self.num_patches();
        for (p, (&k, r)) in self.kept().iter().zip(&self.token_ratio).enumerate() {
            if k == 0 || k > n || !(*r > 0.0 && *r <= 1.0) {
                return bad(format!("DynamicViT token_ratio[{p}] = {r} keeps {k} of {n} tokens; it must keep at least one and no more than the previous stage"));
            }
            n = k;
        }
        Ok(())
    }
    fn build(&self, batch: usize) -> Result<Graph> {
        let mut g = Graph::new();
        let f = self.forward(&mut g, batch, Mode::Prune)?;
        for keep in f.decisions {
            g.output(keep);
        }
        g.output(f.logits);
        Ok(g)
    }
    crate::arch_square_image_fields!(img_size);
    fn num_features(&self) -> usize {
        self.embed_dim
    }
    fn read_args(&mut self, a: &Map<String, Value>) -> Result<()> {
        args::read(self, a, &RULES)
    }
    fn write_args(&self, preset: Option<&dyn Arch>) -> Map<String, Value> {
        let base = preset.and_then(|p| p.as_any().downcast_ref::<DynVitConfig>());
        let always: &[&str] =
            if base.is_some() { &[] } else { &["img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias", "pruning_loc", "token_ratio"] };
        args::write(self, base.unwrap_or(&Self::deit_s(0.7)), always, &RULES)
    }
    fn classifier(&self) -> Vec<&'static str> {
        vec!["head"]
    }
    /// timm's `param_groups_weight_decay` as the official optimizer factory applies it
    /// (1-d tensors and biases); cls_token and pos_embed are frozen there.
    fn no_weight_decay(&self, name: &str) -> bool {
        name == "cls_token" || name == "pos_embed"
    }
    fn first_conv(&self) -> &'static str {
        "patch_embed.proj"
    }
    /// The official optimizer factory leaves cls_token and pos_embed out of training.
    fn frozen(&self, name: &str) -> bool {
        name == "cls_token" || name == "pos_embed"
    }
    /// The official `_init_weights`: Linear trunc_normal(0.02) with zero bias, LayerNorm (1, 0);
    /// cls_token / pos_embed trunc_normal(0.02).
    fn init(&self, name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32> {
        if name == "cls_token" {
            return init::trunc_normal(shape.iter().product(), 0.02, rng);
        }
        init::timm_vit(name, shape, None, rng)
    }
    /// The official training step ([`DynVitConfig::training_graph`] with main.py's weights, the
    /// run's label smoothing and `--ratio-weight`) and its dense teacher.
    fn custom_training(&self, batch: usize, loss: &LossOptions) -> Option<Result<CustomTraining>> {
        Some((|| {
            let d = LossWeights::default();
            let w = LossWeights { smoothing: loss.smoothing, ratio: loss.ratio_weight.unwrap_or(d.ratio), ..d };
            let t = self.training_graph(batch, &w)?;
            Ok(CustomTraining { g: t.g, loss: t.loss, logits: t.logits, noise: t.noise, teacher: Some(self.teacher_graph(batch)?) })
        })())
    }
    /// Everything but the predictors (the official optimizer factory's "new_param" groups are
    /// the names containing `predictor`).
    fn backbone(&self, name: &str) -> bool {
        !name.contains("predictor")
    }
    /// main.py / engine.py: the backbone at 0.01 of the rate, and at 0 for the first 5 epochs.
    fn backbone_schedule(&self) -> (f64, usize) {
        (0.01, 5)
    }
    /// `kept_tokens`: per pruning stage, the patch indices kept (row-major in the original
    /// grid, class token not counted), in the order the model keeps them (descending score);
    /// `patch_grid`: that grid's [rows, columns].
    fn explain(&self, extra: &[Vec<f32>], batch: usize) -> Vec<Map<String, Value>> {
        let kept = self.kept();
        let mut out = vec![Map::new(); batch];
        if extra.len() != kept.len() {
            return out;
        }
        for (b, obj) in out.iter_mut().enumerate() {
            let mut prev: Vec<u32> = (0..self.num_patches() as u32).collect();
            let mut stages = Vec::with_capacity(kept.len());
            for (stage, &k) in kept.iter().enumerate() {
                let idx = f32_bits_as_u32(extra[stage].get(b * k..(b + 1) * k).unwrap_or(&[]));
                prev = idx.iter().map(|&i| prev.get(i as usize).copied().unwrap_or(u32::MAX)).collect();
                stages.push(Value::from(prev.clone()));
            }
            obj.insert("kept_tokens".into(), Value::Array(stages));
            let side = self.img_size / self.patch_size.max(1);
            obj.insert("patch_grid".into(), Value::from(vec![side, side]));
        }
        out
    }
    fn summary(&self) -> Vec<(String, String)> {
        let kept = self.kept();
        let stages: Vec<String> = self.pruning_loc.iter().zip(&kept).map(|(l, k)| format!("before block {l}: {k} patches")).collect();
        vec![
            (
                "vit".into(),
                format!(
                    "patch {} embed_dim {} depth {} heads {} mlp {} tokens {}",
                    self.patch_size,
                    self.embed_dim,
                    self.depth,
                    self.num_heads,
                    (self.embed_dim as f64 * self.mlp_ratio) as usize,
                    self.num_patches() + 1
                ),
            ),
            ("pruning".into(), format!("{} (ratios {:?})", stages.join(", "), self.token_ratio)),
        ]
    }
    arch_common!();
}
