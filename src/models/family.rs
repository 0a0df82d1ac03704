//! What a model family is to the rest of vitrine: [`Family`] (its presets and
//! how names and files map to it) and [`Arch`] (one resolved config of it).
//! Nothing outside `models/families/` matches on the family: training,
//! checkpoints, the CLI and the browser go through these two, and
//! [`ModelConfig`] (a boxed `Arch` with preprocessing and labels). Families
//! depend on this module; it depends on none of them (lookup by name is in
//! `config.rs`, over the registry).

use super::common::{DataConfig, GlobalPool};
use crate::error::Result;
use crate::graph::{Graph, TensorId};
use crate::rng::Rng;
use crate::weights::Weights;
use serde_json::{Map, Value};
use std::any::Any;
use std::fmt::Debug;

/// A family's entry in the registry (`models/families/mod.rs`).
pub struct Family {
    /// Short name (`vit`, `swin`, `hvt`); config.json may use it as its `architecture`.
    pub name: &'static str,
    /// One line for docs and listings.
    pub about: &'static str,
    /// Every preset name, in display order.
    pub presets: fn() -> Vec<String>,
    /// The config of a preset name (`None`: not one of this family's).
    pub preset: fn(&str) -> Option<ModelConfig>,
    /// The starting config for an architecture name that is not a preset but
    /// belongs to this family (config.json's `model_args` then describe the
    /// model: `vit_*` / `deit*` for ViT, the family name itself); `None`: not ours.
    pub base: fn(&str) -> Option<ModelConfig>,
    /// A config inferred from a bare checkpoint's tensor names and shapes:
    /// `None` when the tensors are not this family's, `Some(Err)` when they
    /// are but cannot be resolved without a config.
    pub infer: fn(&Weights) -> Option<Result<ModelConfig>>,
}

/// One resolved config of a family: everything vitrine asks a model.
pub trait Arch: Debug + Send + Sync + 'static {
    /// The registry entry of this config's family.
    fn family(&self) -> &'static Family;
    /// Rejects configs the reference code would reject or vitrine cannot run.
    fn validate(&self) -> Result<()>;
    /// The forward graph for `batch` images: one input `[B, C, H, W]`, one
    /// output, the logits `[B, classes]` (pooled features when there is no head).
    fn build(&self, batch: usize) -> Result<Graph>;

    /// Classes of the head (0: a feature extractor without head).
    fn num_classes(&self) -> usize;
    /// Sets the head's class count.
    fn set_num_classes(&mut self, n: usize);
    /// Input channels and image (height, width).
    fn input(&self) -> (usize, [usize; 2]);
    /// Sets the input channels and size (from pretrained_cfg's `input_size`).
    fn set_input(&mut self, chans: usize, size: [usize; 2]);
    /// Width of the pooled features the head reads.
    fn num_features(&self) -> usize;
    /// The head's pooling, for config.json's informational `global_pool`.
    fn global_pool(&self) -> Option<GlobalPool> {
        None
    }

    /// Applies config.json `model_args` (the reference constructor's keyword arguments).
    fn read_args(&mut self, args: &Map<String, Value>) -> Result<()>;
    /// The `model_args` that rebuild this config from `preset` (the config
    /// its architecture name gives, when it is a preset) or from scratch.
    fn write_args(&self, preset: Option<&dyn Arch>) -> Map<String, Value>;
    /// Checkpoint prefixes of the classifier (`head`; `head`, `head_dist`; `head.fc`):
    /// replaced for a new class count, the only tensors `--freeze-backbone` trains.
    fn classifier(&self) -> Vec<&'static str>;
    /// The first conv's checkpoint prefix (pretrained_cfg's `first_conv`).
    fn first_conv(&self) -> &'static str {
        "patch_embed.proj"
    }
    /// Tensors the reference code excludes from weight decay by name (its
    /// `no_weight_decay()`); 1-d tensors and biases are excluded for every family.
    fn no_weight_decay(&self, name: &str) -> bool;
    /// Tensors the reference code never trains (buffers stored in the
    /// checkpoint): `vitrine train` gives them no gradient and never updates them.
    fn frozen(&self, _name: &str) -> bool {
        false
    }
    /// Renames a checkpoint's tensors from another layout of the same model
    /// (an older layout, the original repository's names) to the names the
    /// graph uses, and drops stored buffers the graph recomputes. Applied to
    /// every loaded checkpoint before its names are checked; default: nothing.
    fn remap(&self, _w: &mut Weights) {}
    /// Fresh values of one checkpoint tensor, as the reference code initialises it.
    fn init(&self, name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32>;
    /// Whether `vitrine train` can train this config; `Err` names what is missing.
    fn trainable(&self) -> Result<()> {
        Ok(())
    }
    /// The family's own training step when it is not label-smoothed cross-entropy on
    /// the inference graph (DynamicViT: Gumbel decisions, a dense teacher, four loss
    /// terms). Default: none.
    fn custom_training(&self, _batch: usize, _loss: &LossOptions) -> Option<Result<CustomTraining>> {
        None
    }
    /// Tensors of the backbone group, trained at the backbone learning-rate scale
    /// and frozen for the first epochs (DynamicViT: everything but the predictors).
    fn backbone(&self, _name: &str) -> bool {
        false
    }
    /// The family's (backbone learning-rate scale, backbone freeze epochs) when the
    /// run gives none: the official recipe's (DynamicViT: 0.01, 5). Default (1, 0).
    fn backbone_schedule(&self) -> (f64, usize) {
        (1.0, 0)
    }
    /// Per-image facts from the graph's extra outputs (every output before the
    /// logits, `batch` images each) for `classify --json`: DynamicViT's kept
    /// tokens. Default: nothing.
    fn explain(&self, _extra: &[Vec<f32>], batch: usize) -> Vec<Map<String, Value>> {
        vec![Map::new(); batch]
    }
    /// An early-exit cascade's exits (DVT): thresholds and costs; `None` (the default):
    /// one exit, [`Arch::build`] is the whole model.
    fn exits(&self) -> Option<Exits> {
        None
    }
    /// Sets the max-softmax thresholds of every exit but the last (`--exit-thresholds`).
    fn set_exit_thresholds(&mut self, _t: &[f32]) -> Result<()> {
        Err(crate::Error::Config(format!("{} has a single exit: exit thresholds do not apply", self.family().name)))
    }
    /// The graph of exit `k` alone for `batch` images (cascades only). Inputs: the images,
    /// then what exit `k - 1` carries; outputs: the logits, then what exit `k + 1` reads
    /// (each carried tensor holds `batch` equal-sized rows, one per image, in order).
    fn build_exit(&self, _k: usize, _batch: usize) -> Result<Graph> {
        Err(crate::Error::Config(format!("{} has a single exit", self.family().name)))
    }
    /// Lines for `vitrine inspect`: (label, text), after architecture and before classes.
    fn summary(&self) -> Vec<(String, String)>;
    /// The config as JSON (its serde form), for `--json` outputs.
    fn to_json(&self) -> Value;
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn Arch>;
    /// For a family reading its own preset in [`Arch::write_args`].
    fn as_any(&self) -> &dyn Any;
}

/// An early-exit cascade's exits ([`Arch::exits`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Exits {
    /// Max-softmax threshold of each exit but the last: an image stops at the first
    /// exit whose confidence reaches it (infinite: never stops there).
    pub thresholds: Vec<f32>,
    /// Cumulative GFLOPs (multiply-adds, one image) to reach each exit.
    pub gflops: Vec<f64>,
}

/// The run's loss settings a family's own step reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOptions {
    /// Label smoothing of the classification term.
    pub smoothing: f32,
    /// DynamicViT's keep-ratio weight (`--ratio-weight`; `None`: main.py's 2.0).
    pub ratio_weight: Option<f32>,
}

/// A family's own training step (see [`Arch::custom_training`]).
pub struct CustomTraining {
    /// Forward and loss. Inputs in order: the images, each of `noise`, the labels
    /// (class indices as f32), then the teacher graph's outputs in its output order.
    pub g: Graph,
    /// The batch's mean loss `[1]`.
    pub loss: TensorId,
    /// The logits `[B, K]` (for the running accuracy).
    pub logits: TensorId,
    /// Inputs the trainer fills with fresh Gumbel(0, 1) samples from its seeded RNG
    /// at every micro-step.
    pub noise: Vec<TensorId>,
    /// A graph the trainer runs first on the same images, with the teacher's
    /// weights (never updated); its outputs are the last inputs of `g`.
    pub teacher: Option<Graph>,
}

/// A resolved model: its family's config, preprocessing and labels.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelConfig {
    /// Architecture name (a preset such as `vit_base_patch16_224`, or a family name).
    pub architecture: String,
    /// The family's config.
    #[serde(serialize_with = "arch_json")]
    pub arch: Box<dyn Arch>,
    /// Eval preprocessing (timm's `pretrained_cfg`).
    pub data: DataConfig,
    /// Class names, from config.json `label_names` or built in for ImageNet-1k.
    #[serde(skip)]
    pub labels: Option<Vec<String>>,
}

// serde's `serialize_with` hands the field itself: a `&Box`.
#[allow(clippy::borrowed_box)]
fn arch_json<S: serde::Serializer>(a: &Box<dyn Arch>, s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::Serialize;
    let mut v = a.to_json();
    if let Value::Object(o) = &mut v {
        o.insert("family".into(), a.family().name.into());
    }
    v.serialize(s)
}

impl ModelConfig {
    /// A config of `arch` under an architecture name, without labels.
    pub fn new(architecture: &str, arch: impl Arch, data: DataConfig) -> Self {
        ModelConfig { architecture: architecture.to_string(), arch: Box::new(arch), data, labels: None }
    }
    /// The registry entry of this model's family.
    pub fn family(&self) -> &'static Family {
        self.arch.family()
    }
    /// Classes of the head (0: a feature extractor without head).
    pub fn num_classes(&self) -> usize {
        self.arch.num_classes()
    }
    /// Sets the head's class count; labels are left as they are.
    pub fn set_num_classes(&mut self, n: usize) {
        self.arch.set_num_classes(n)
    }
    /// Input channels and image size.
    pub fn input(&self) -> (usize, [usize; 2]) {
        self.arch.input()
    }
    /// Width of the pooled features the head reads.
    pub fn num_features(&self) -> usize {
        self.arch.num_features()
    }
    /// The family's config as `T` (`None` for another family).
    pub fn arch_as<T: Arch>(&self) -> Option<&T> {
        self.arch.as_any().downcast_ref::<T>()
    }
    /// Applies `model_args` (the family constructor's keyword arguments);
    /// the input size follows them.
    pub fn apply_model_args(&mut self, args: &Map<String, Value>) -> Result<()> {
        self.arch.read_args(args)?;
        let (c, [h, w]) = self.input();
        self.data.input_size = [c, h, w];
        Ok(())
    }
    /// Whether a checkpoint tensor belongs to the classifier.
    pub fn is_head(&self, name: &str) -> bool {
        self.arch.classifier().iter().any(|p| name.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
    }
    /// timm's weight-decay rule: none for 1-d tensors, biases and the
    /// family's `no_weight_decay()` names; false when any part is excluded.
    pub fn decays(&self, parts: &[(String, Vec<usize>)]) -> bool {
        parts.iter().all(|(n, s)| s.len() > 1 && !n.ends_with(".bias") && !self.arch.no_weight_decay(n))
    }
}

impl Clone for Box<dyn Arch> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// The boilerplate half of [`Arch`] for a config type `T: Clone + Serialize`.
#[macro_export]
#[doc(hidden)]
macro_rules! arch_common {
    () => {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
        fn clone_box(&self) -> Box<dyn $crate::models::family::Arch> {
            Box::new(self.clone())
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    };
}

/// [`Arch`]'s head and input accessors for a config with timm's fields
/// `num_classes`, `in_chans` and `img_size: [usize; 2]`.
#[macro_export]
#[doc(hidden)]
macro_rules! arch_image_fields {
    () => {
        fn num_classes(&self) -> usize {
            self.num_classes
        }
        fn set_num_classes(&mut self, n: usize) {
            self.num_classes = n;
        }
        fn input(&self) -> (usize, [usize; 2]) {
            (self.in_chans, self.img_size)
        }
        fn set_input(&mut self, chans: usize, size: [usize; 2]) {
            (self.in_chans, self.img_size) = (chans, size);
        }
    };
}

/// [`Arch`]'s head and input accessors for a config with `num_classes`,
/// `in_chans` and a square input side in the named field; a non-square size
/// sets the side to 0, which the family's `validate` refuses (never a crop).
#[macro_export]
#[doc(hidden)]
macro_rules! arch_square_image_fields {
    ($side:ident) => {
        fn num_classes(&self) -> usize {
            self.num_classes
        }
        fn set_num_classes(&mut self, n: usize) {
            self.num_classes = n;
        }
        fn input(&self) -> (usize, [usize; 2]) {
            (self.in_chans, [self.$side, self.$side])
        }
        fn set_input(&mut self, chans: usize, size: [usize; 2]) {
            self.in_chans = chans;
            self.$side = if size[0] == size[1] { size[0] } else { 0 };
        }
    };
}
