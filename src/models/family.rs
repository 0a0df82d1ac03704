//! What a model family is to the rest of vitrine: [`Family`] (its presets and
//! how names and files map to it) and [`Arch`] (one resolved config of it).
//! Nothing outside `models/families/` matches on the family: training,
//! checkpoints, the CLI and the browser go through these two.

use super::common::GlobalPool;
use super::config::ModelConfig;
use crate::error::Result;
use crate::graph::Graph;
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
    /// Tensors the reference code never trains (buffers stored in the checkpoint).
    fn frozen(&self, _name: &str) -> bool {
        false
    }
    /// Fresh values of one checkpoint tensor, as the reference code initialises it.
    fn init(&self, name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32>;
    /// Lines for `vitrine inspect`: (label, text), after architecture and before classes.
    fn summary(&self) -> Vec<(String, String)>;
    /// The config as JSON (its serde form), for `--json` outputs.
    fn to_json(&self) -> Value;
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn Arch>;
    /// For a family reading its own preset in [`Arch::write_args`].
    fn as_any(&self) -> &dyn Any;
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
