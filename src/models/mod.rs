//! Model families, configs and loading from disk.

pub mod args;
pub mod blocks;
pub mod common;
pub mod config;
pub mod families;
pub mod family;
pub mod init;

pub use families::{swin, vit};

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::rng::Rng;
use crate::weights::Weights;
use config::{finish, from_hub_json, preset, ModelConfig};
use families::FAMILIES;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

/// A model ready to build graphs: its resolved config and its weights.
#[derive(Debug, Clone)]
pub struct Model {
    /// The resolved architecture, preprocessing and labels.
    pub config: ModelConfig,
    /// Its tensors, by timm name.
    pub weights: Weights,
    /// Where it came from, for messages.
    pub source: String,
}

impl Model {
    /// Loads `path`: a hub-layout directory (config.json + model.safetensors)
    /// or a bare .safetensors file (config from `arch`, or inferred from shapes).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: &Path, arch: Option<&str>) -> Result<Self> {
        if path.is_dir() {
            let cfg_path = path.join("config.json");
            let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
            let st = path.join("model.safetensors");
            let weights = Weights::load(&st)?;
            return Self::from_parts(Some(&text), weights, arch, &path.display().to_string());
        }
        if !path.exists() {
            return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory")));
        }
        let weights = Weights::load(path)?;
        Self::from_parts(None, weights, arch, &path.display().to_string())
    }

    /// Builds a model from an optional config.json text and parsed weights.
    /// `arch`, when given, overrides the architecture in the config.
    pub fn from_parts(config_json: Option<&str>, mut weights: Weights, arch: Option<&str>, source: &str) -> Result<Self> {
        let (config, remapped) = match (config_json, arch) {
            (Some(text), arch) => {
                let mut v: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| Error::Config(format!("{source}/config.json is not valid JSON: {e}")))?;
                if let (Some(a), Some(obj)) = (arch, v.as_object_mut()) {
                    obj.insert("architecture".into(), a.into());
                }
                (from_hub_json(&v)?, false)
            }
            (None, Some(a)) => (preset_for_weights(a, &mut weights)?, true),
            (None, None) => (infer_config(&weights)?, false),
        };
        if !remapped {
            config.arch.remap(&mut weights);
        }
        let model = Model { config, weights, source: source.to_string() };
        model.graph(1).and_then(|g| model.weights.check(&g.param_table()))?;
        Ok(model)
    }

    /// A model with fresh weights (timm's initialisation, seeded).
    pub fn fresh(config: ModelConfig, seed: u64) -> Result<Self> {
        let table = build(&config, 1)?.param_table();
        let mut rng = Rng::new(seed);
        let tensors = table
            .into_iter()
            .map(|(n, s)| {
                let v = config.arch.init(&n, &s, &mut rng);
                (n, (s, v))
            })
            .collect();
        let source = format!("{} (fresh weights, seed {seed})", config.architecture);
        Ok(Model { config, weights: Weights { tensors, dtype: "F32".into() }, source })
    }

    /// The built-in model: a 139k-parameter ViT vitrine trained on
    /// Fashion-MNIST (10 clothing classes, 28x28 grayscale; see models/default/).
    pub fn builtin() -> Result<Self> {
        default_model()
    }

    /// The model without its classifier: its graph outputs the pooled
    /// embedding `[B, C]` (timm's `forward_head(x, pre_logits=True)`, or a
    /// model created with `num_classes=0`); the head's weights are dropped.
    pub fn into_feature_extractor(mut self) -> Result<Self> {
        self.config.set_num_classes(0);
        self.config.labels = None;
        let keep: std::collections::HashSet<String> = self.graph(1)?.param_table().into_iter().map(|(n, _)| n).collect();
        self.weights.tensors.retain(|n, _| keep.contains(n));
        self.source = format!("{} (features)", self.source);
        Ok(self)
    }

    /// The forward graph for a batch size.
    pub fn graph(&self, batch: usize) -> Result<Graph> {
        build(&self.config, batch)
    }

    /// Class name of an index (or the index as text).
    pub fn label(&self, i: usize) -> String {
        self.config.labels.as_ref().and_then(|l| l.get(i).cloned()).unwrap_or_else(|| format!("class {i}"))
    }
}

/// The forward graph of a config.
pub fn build(config: &ModelConfig, batch: usize) -> Result<Graph> {
    config.arch.build(batch)
}

/// A preset, with num_classes taken from the weights' head (fine-tuned files);
/// the weights are renamed to the family's layout first ([`Arch::remap`](family::Arch::remap)).
fn preset_for_weights(arch: &str, w: &mut Weights) -> Result<ModelConfig> {
    let mut cfg = preset(arch)?;
    cfg.arch.remap(w);
    let head = cfg.arch.classifier().first().map(|h| format!("{h}.weight")).unwrap_or_default();
    let classes = w.shape(&head).and_then(|s| s.first().copied()).unwrap_or(0);
    if classes != cfg.num_classes() {
        cfg.set_num_classes(classes);
        cfg.labels = None;
    }
    finish(cfg)
}

/// A config from tensor names and shapes alone (a bare .safetensors, no
/// `--arch`): the first family whose inferred config needs exactly these
/// tensors (several families may recognise a ViT-like layout). When none
/// fits, the error of the last family that recognised them (the most
/// specific: later families extend earlier layouts) is reported.
fn infer_config(w: &Weights) -> Result<ModelConfig> {
    let mut last_err = None;
    for f in FAMILIES {
        match (f.infer)(w) {
            Some(Ok(cfg)) => match finish(cfg).and_then(|cfg| build(&cfg, 1).and_then(|g| w.check(&g.param_table())).map(|_| cfg)) {
                Ok(cfg) => return Ok(cfg),
                Err(e) => last_err = Some(e),
            },
            Some(Err(e)) => last_err = Some(e),
            None => {}
        }
    }
    Err(last_err.unwrap_or_else(|| {
        Error::Config("cannot infer the architecture: no model family recognises these tensors; pass --arch with a preset name".into())
    }))
}

/// The built-in default model (`vitrine classify` without `--model`).
pub fn default_model() -> Result<Model> {
    let weights = Weights::from_bytes(include_bytes!("../../models/default/model.safetensors"), "built-in model")?;
    Model::from_parts(Some(include_str!("../../models/default/config.json")), weights, None, "built-in model")
}
