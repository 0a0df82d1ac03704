//! Model families, configs and loading from disk.

pub mod config;
pub mod swin;
pub mod vit;

use crate::error::{Error, Result};
use crate::graph::{Graph, TensorId};
use crate::ops::PoolMode;
use crate::weights::Weights;
use config::{finish, from_hub_json, preset, ModelConfig, Net};
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
    pub fn from_parts(config_json: Option<&str>, weights: Weights, arch: Option<&str>, source: &str) -> Result<Self> {
        let config = match (config_json, arch) {
            (Some(text), arch) => {
                let mut v: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| Error::Config(format!("{source}/config.json is not valid JSON: {e}")))?;
                if let (Some(a), Some(obj)) = (arch, v.as_object_mut()) {
                    obj.insert("architecture".into(), a.into());
                }
                from_hub_json(&v)?
            }
            (None, Some(a)) => preset_for_weights(a, &weights)?,
            (None, None) => infer_config(&weights)?,
        };
        let model = Model { config, weights, source: source.to_string() };
        model.graph(1).and_then(|g| model.weights.check(&g.param_table()))?;
        Ok(model)
    }

    /// A model with fresh weights (timm's initialisation, seeded).
    pub fn fresh(config: ModelConfig, seed: u64) -> Result<Self> {
        let table = build(&config, 1)?.param_table();
        let data = crate::train::init::init_weights(&table, config.init_values(), seed);
        let tensors = table
            .into_iter()
            .map(|(n, s)| {
                let v = data.get(&n).cloned().unwrap_or_default();
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

/// LayerNorm with the checkpoint's `{name}.weight` / `{name}.bias`.
pub(crate) fn norm(g: &mut Graph, x: TensorId, name: &str, c: usize, eps: f32) -> Result<TensorId> {
    let w = g.param(&format!("{name}.weight"), &[c]);
    let b = g.param(&format!("{name}.bias"), &[c]);
    g.layernorm(x, w, b, eps)
}

/// A linear layer's `{name}.weight [out, inp]` and optional `{name}.bias`.
pub(crate) fn linear_params(g: &mut Graph, name: &str, out: usize, inp: usize, bias: bool) -> (TensorId, Option<TensorId>) {
    let w = g.param(&format!("{name}.weight"), &[out, inp]);
    let b = bias.then(|| g.param(&format!("{name}.bias"), &[out]));
    (w, b)
}

/// timm's token-free global pooling of `x [B, T, C]` over tokens `start..`:
/// avg, max or avgmax (0.5 * (max + avg)); `None` for token pooling.
pub(crate) fn global_pool(g: &mut Graph, x: TensorId, pool: config::GlobalPool, start: usize) -> Result<Option<TensorId>> {
    Ok(Some(match pool {
        config::GlobalPool::Token => return Ok(None),
        config::GlobalPool::Avg => g.pool(x, PoolMode::Avg(start))?,
        config::GlobalPool::Max => g.pool(x, PoolMode::Max(start))?,
        config::GlobalPool::AvgMax => {
            let mx = g.pool(x, PoolMode::Max(start))?;
            let av = g.pool(x, PoolMode::Avg(start))?;
            g.add_scale(mx, av, 0.5)?
        }
    }))
}

/// The forward graph of a config.
pub fn build(config: &ModelConfig, batch: usize) -> Result<Graph> {
    match &config.net {
        Net::Vit(v) => vit::build(v, batch),
        Net::Swin(s) => swin::build(s, batch),
    }
}

/// A preset, with num_classes taken from the weights' head (fine-tuned files).
fn preset_for_weights(arch: &str, w: &Weights) -> Result<ModelConfig> {
    let mut cfg = preset(arch)?;
    let head = if cfg.vit().is_some() { "head.weight" } else { "head.fc.weight" };
    let classes = w.shape(head).map(|s| s[0]).unwrap_or(0);
    if classes != cfg.num_classes() {
        cfg.set_num_classes(classes);
        cfg.labels = None;
    }
    finish(cfg)
}

/// Infers a ViT config from tensor shapes (bare .safetensors, no --arch).
/// Head count is not stored in weights: head_dim 64 is assumed, as in every
/// stock ViT/DeiT; preprocessing uses timm's ViT defaults.
fn infer_config(w: &Weights) -> Result<ModelConfig> {
    let need = |n: &str| {
        w.shape(n)
            .map(|s| s.to_vec())
            .ok_or_else(|| Error::Config(format!("cannot infer the architecture: no tensor {n}; pass --arch with a preset name")))
    };
    if w.shape("layers.0.blocks.0.norm1.weight").is_some() {
        return Err(Error::Config(
            "this looks like a Swin checkpoint: its window and image size are not stored in the weights; pass --arch (e.g. swin_tiny_patch4_window7_224) or use a hub folder with config.json".into(),
        ));
    }
    let pw = need("patch_embed.proj.weight")?;
    let [dim, cin, p, p2] = pw.as_slice() else {
        return Err(Error::Config(format!("patch_embed.proj.weight has shape {pw:?}, expected [D, C, P, P]")));
    };
    if p != p2 {
        return Err(Error::Config("non-square patches are not supported".into()));
    }
    let depth = (0..).take_while(|i| w.shape(&format!("blocks.{i}.norm1.weight")).is_some()).count();
    let fc1 = need("blocks.0.mlp.fc1.weight")?;
    if dim % 64 != 0 {
        return Err(Error::Config(format!("cannot infer num_heads for embed_dim {dim}; pass --arch or use a config.json")));
    }
    let mut vit = match preset("vit_base_patch16_224")?.net {
        Net::Vit(v) => v,
        Net::Swin(_) => return Err(Error::Config("vit_base_patch16_224 is not a ViT preset".into())),
    };
    let v = &mut vit;
    v.embed_dim = *dim;
    v.in_chans = *cin;
    v.patch_size = *p;
    v.depth = depth;
    v.num_heads = dim / 64;
    v.mlp_ratio = fc1[0] as f64 / *dim as f64;
    v.qkv_bias = w.shape("blocks.0.attn.qkv.bias").is_some();
    v.proj_bias = w.shape("blocks.0.attn.proj.bias").is_some();
    v.init_values = w.shape("blocks.0.ls1.gamma").map(|_| 1.0);
    v.class_token = w.shape("cls_token").is_some();
    v.distilled = w.shape("dist_token").is_some();
    v.reg_tokens = w.shape("reg_token").map(|s| s[1]).unwrap_or(0);
    v.pre_norm = w.shape("norm_pre.weight").is_some();
    v.num_classes = w.shape("head.weight").map(|s| s[0]).unwrap_or(0);
    let has_fc_norm = w.shape("fc_norm.weight").is_some();
    v.fc_norm = Some(has_fc_norm);
    v.final_norm = has_fc_norm || w.shape("norm.weight").is_some();
    if has_fc_norm || !v.class_token {
        v.global_pool = config::GlobalPool::Avg;
    }
    let npre = v.num_prefix_tokens();
    let len = w.shape("pos_embed").map(|s| s[1]);
    v.pos_embed = len.is_some();
    let square = |n: usize| (1..=n).find(|g| g * g >= n).filter(|g| g * g == n);
    let grid = match len {
        Some(l) if l >= npre && square(l - npre).is_some() => square(l - npre),
        Some(l) => {
            v.no_embed_class = true;
            square(l)
        }
        None => None,
    }
    .ok_or_else(|| Error::Config("cannot infer the image size from pos_embed; pass --arch".into()))?;
    v.img_size = [grid * p, grid * p];
    let mut cfg = preset("vit_base_patch16_224")?;
    cfg.architecture = "vit (inferred from shapes)".into();
    cfg.net = Net::Vit(vit);
    cfg.data.input_size = [*cin, grid * p, grid * p];
    cfg.labels = None;
    log::warn!("no config: inferred {} heads (head_dim 64) and timm's default ViT preprocessing", dim / 64);
    finish(cfg)
}

/// The built-in default model (`vitrine classify` without `--model`).
pub fn default_model() -> Result<Model> {
    let weights = Weights::from_bytes(include_bytes!("../../models/default/model.safetensors"), "built-in model")?;
    Model::from_parts(Some(include_str!("../../models/default/config.json")), weights, None, "built-in model")
}
