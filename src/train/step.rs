//! One training step: the training graph (forward, label-smoothed loss,
//! backward to the trainable parameters), its executable and optimizer
//! (`Session`), the step itself (forward + backward + update in one
//! submit), and giving a model a new head.

use super::data::Rng;
#[cfg(not(target_arch = "wasm32"))]
use super::options::TrainOptions;
use crate::autodiff::backward;
#[cfg(not(target_arch = "wasm32"))]
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu::optim::{OptParam, Optimizer};
use crate::gpu::{Context, Executable};
use crate::graph::{Graph, TensorId};
use crate::models::family::LossOptions;
use crate::models::Model;
#[cfg(not(target_arch = "wasm32"))]
use std::collections::HashMap;

/// A checkpoint tensor: its name, shape and f32 data.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Gives `model` a `classes`-way head: a new one (timm's init) when the count
/// differs, and the dataset's class names as labels.
pub fn adapt_head(model: &mut Model, classes: &[String], num_classes: usize, seed: u64, log: &mut dyn FnMut(&str)) -> Result<()> {
    if model.config.num_classes() != num_classes {
        log(&format!("replacing the {}-class head with a new {num_classes}-class head", model.config.num_classes()));
        new_head(model, num_classes, seed)?;
    }
    label_head(model, classes, num_classes);
    Ok(())
}

/// Gives `model` a new `num_classes`-way head (timm's init, seeded), whatever its head was.
pub fn new_head(model: &mut Model, num_classes: usize, seed: u64) -> Result<()> {
    model.config.set_num_classes(num_classes);
    let cfg = model.config.clone();
    model.weights.tensors.retain(|name, _| !cfg.is_head(name));
    let mut rng = Rng::new(seed ^ 0x4EAD);
    for (name, shape) in model.graph(1)?.param_table() {
        if let std::collections::hash_map::Entry::Vacant(e) = model.weights.tensors.entry(name) {
            let v = cfg.arch.init(e.key(), &shape, &mut rng);
            e.insert((shape, v));
        }
    }
    Ok(())
}

/// The class names as the model's labels when there is one per class.
fn label_head(model: &mut Model, classes: &[String], num_classes: usize) {
    model.config.labels =
        if classes.len() == num_classes { Some(classes.to_vec()) } else { model.config.labels.take().filter(|l| l.len() == num_classes) };
}

/// A model's training graph: inputs (images, labels); outputs (per-row loss,
/// logits); the parameters' gradients kept for the optimizer.
pub struct TrainingGraph {
    /// The graph: inputs images `[B, C, H, W]`, the noise inputs (a family's own step
    /// only), labels `[B]`, then the teacher's outputs (idem); outputs the loss summed
    /// over the batch (`[B]` per row, or `[1]`) and logits `[B, K]`.
    pub g: Graph,
    /// The parameter tensors that get gradients, in kept-gradient order.
    pub trainable: Vec<TensorId>,
    /// One optimizer entry per trainable parameter (same order).
    pub specs: Vec<OptParam>,
    /// Element counts of the Gumbel noise inputs, filled at every micro-step.
    pub noise: Vec<usize>,
    /// The teacher graph a family's own step runs first (see `Arch::custom_training`).
    pub teacher: Option<Graph>,
}

/// Builds the training graph: forward, label-smoothed cross-entropy per row,
/// backward seeded with 1 / (batch x micro-batches) per row (the mean over the
/// whole step), to every parameter, or to the head only (`freeze_backbone`).
/// A family with its own step (`Arch::custom_training`: DynamicViT) brings its
/// graph and loss; its mean is seeded with 1 / micro-batches.
pub fn training_graph(model: &Model, b: usize, smoothing: f32, accum: usize, freeze_backbone: bool) -> Result<TrainingGraph> {
    training_graph_with(model, b, &LossOptions { smoothing, ratio_weight: None }, accum, freeze_backbone)
}

/// [`training_graph`] with every loss setting (a family's own step reads more than smoothing).
pub fn training_graph_with(model: &Model, b: usize, loss: &LossOptions, accum: usize, freeze_backbone: bool) -> Result<TrainingGraph> {
    let smoothing = loss.smoothing;
    model.config.arch.trainable()?;
    let trains = |g: &Graph, t: TensorId| {
        let parts = g.param_parts(t).unwrap_or_default();
        // Tensors the reference code never trains (T2T's Performer `w`, say) get no gradient.
        !parts.iter().any(|(n, _)| model.config.arch.frozen(n)) && (!freeze_backbone || parts.iter().all(|(n, _)| model.config.is_head(n)))
    };
    let specs_of = |g: &mut Graph, trainable: &[TensorId], grads: &[TensorId]| {
        let mut specs = Vec::with_capacity(grads.len());
        for (i, (&p, &d)) in trainable.iter().zip(grads).enumerate() {
            g.keep(d);
            let parts = g.param_parts(p).unwrap_or_default();
            let backbone = parts.iter().any(|(n, _)| model.config.arch.backbone(n));
            specs.push(OptParam { param: p, grad: i, decay: model.config.decays(parts), backbone });
        }
        specs
    };
    if let Some(custom) = model.config.arch.custom_training(b, loss) {
        let crate::models::family::CustomTraining { mut g, loss, logits, noise, teacher } = custom?;
        let trainable: Vec<TensorId> = g.params().into_iter().filter(|&t| trains(&g, t)).collect();
        let seed = g.fill(&[1], 1.0 / accum.max(1) as f32)?;
        let grads = backward(&mut g, loss, seed, &trainable)?;
        let total = g.scale(loss, b as f32)?;
        g.output(total);
        g.output(logits);
        let specs = specs_of(&mut g, &trainable, &grads);
        let noise = noise.iter().map(|&t| g.numel(t)).collect();
        return Ok(TrainingGraph { g, trainable, specs, noise, teacher });
    }
    let mut g = model.graph(b)?;
    let logits = g.outputs.pop().ok_or_else(|| Error::Input("the model graph has no output".into()))?;
    let target = g.input(&[b]);
    let rows = g.cross_entropy(logits, target, smoothing)?;
    g.output(rows);
    g.output(logits);
    let trainable: Vec<TensorId> = g.params().into_iter().filter(|&t| trains(&g, t)).collect();
    let seed = g.fill(&[b], 1.0 / (b * accum.max(1)) as f32)?;
    let grads = backward(&mut g, rows, seed, &trainable)?;
    let specs = specs_of(&mut g, &trainable, &grads);
    Ok(TrainingGraph { g, trainable, specs, noise: Vec::new(), teacher: None })
}

#[cfg(not(target_arch = "wasm32"))]
/// Per-process training context: graphs, executables, optimizer.
pub(crate) struct Session {
    pub(crate) g: Graph,
    pub(crate) exe: Executable,
    pub(crate) eval_exe: Executable,
    pub(crate) opt: Optimizer,
    pub(crate) trainable: Vec<TensorId>,
    pub(crate) classes: usize,
    /// Element counts of the Gumbel noise inputs.
    noise: Vec<usize>,
    /// The teacher's executable (its own weights, never updated).
    teacher: Option<Executable>,
    /// Epochs during which the backbone group is frozen.
    pub(crate) backbone_freeze_epochs: usize,
}

#[cfg(not(target_arch = "wasm32"))]
/// The inputs a micro-step adds to its images and labels: Gumbel noise, teacher outputs.
pub(crate) struct ExtraInputs {
    pub(crate) noise: Vec<Vec<f32>>,
    pub(crate) teacher: Vec<Vec<f32>>,
}

#[cfg(not(target_arch = "wasm32"))]
impl Session {
    pub(crate) fn new(engine: &mut Engine, model: &Model, opts: &TrainOptions) -> Result<Self> {
        let b = opts.batch_size;
        let loss = LossOptions { smoothing: opts.smoothing as f32, ratio_weight: opts.ratio_weight.map(|w| w as f32) };
        let TrainingGraph { g, trainable, specs, noise, teacher } =
            training_graph_with(model, b, &loss, opts.grad_accum, opts.freeze_backbone)?;
        let exe = engine.compile(&g, &model.weights.data())?;
        let (scale, freeze) = model.config.arch.backbone_schedule();
        let settings =
            crate::gpu::optim::OptSettings { backbone_lr_scale: opts.backbone_lr_scale.unwrap_or(scale) as f32, ..opts.settings() };
        let opt = engine.optimizer(&exe, &specs, settings)?;
        let eval_g = model.graph(b)?;
        let eval_exe = engine.compile_sharing(&eval_g, &g, &exe)?;
        let teacher = match teacher {
            Some(tg) => {
                let weights = match &opts.teacher {
                    Some(dir) => {
                        let t = Model::load(dir, None)?;
                        if t.config.num_classes() != model.config.num_classes() {
                            return Err(Error::Input(format!(
                                "{}: the teacher has {} classes, the model {}",
                                dir.display(),
                                t.config.num_classes(),
                                model.config.num_classes()
                            )));
                        }
                        t.weights.data()
                    }
                    None => model.weights.data(),
                };
                Some(engine.compile(&tg, &weights)?)
            }
            None if opts.teacher.is_some() => {
                return Err(Error::Input(format!("--teacher: {} trains without a teacher", model.config.architecture)))
            }
            None if opts.ratio_weight.is_some() => {
                return Err(Error::Input(format!("--ratio-weight: {} has no keep-ratio loss", model.config.architecture)))
            }
            None => None,
        };
        let backbone_freeze_epochs = opts.backbone_freeze_epochs.unwrap_or(freeze);
        Ok(Session { g, exe, eval_exe, opt, trainable, classes: model.config.num_classes(), noise, teacher, backbone_freeze_epochs })
    }

    /// Whether this run distils from a teacher.
    pub(crate) fn has_teacher(&self) -> bool {
        self.teacher.is_some()
    }

    /// A micro-step's noise (Gumbel(0, 1) from a generator seeded with `seed`, as
    /// `F.gumbel_softmax` draws it: `-log(Exp(1))`) and the teacher's outputs on `images`.
    pub(crate) fn extra_inputs(&self, engine: &Engine, images: &[f32], seed: u64) -> Result<ExtraInputs> {
        let mut rng = Rng::new(seed);
        let noise = self.noise.iter().map(|&n| (0..n).map(|_| -((-(1.0 - rng.unit()).ln()).max(1e-30)).ln() as f32).collect()).collect();
        let teacher = match &self.teacher {
            Some(exe) => pollster::block_on(exe.run(&engine.ctx, &[images]))?,
            None => Vec::new(),
        };
        Ok(ExtraInputs { noise, teacher })
    }

    /// Current weights, split into the checkpoint's tensors.
    pub(crate) fn weights(&self, engine: &Engine) -> Result<Vec<NamedTensor>> {
        let mut out = Vec::new();
        for t in self.g.params() {
            let data = pollster::block_on(self.exe.read_param(&engine.ctx, t, self.g.numel(t)))?;
            split_parts(self.g.param_parts(t).unwrap_or_default(), &data, "", &mut out);
        }
        Ok(out)
    }

    pub(crate) fn optimizer_tensors(&self, engine: &Engine) -> Result<Vec<NamedTensor>> {
        let state = pollster::block_on(self.opt.read_state(&engine.ctx))?;
        let mut out = Vec::new();
        for (&t, bufs) in self.trainable.iter().zip(&state) {
            for (prefix, data) in ["m.", "v."].iter().zip(bufs) {
                split_parts(self.g.param_parts(t).unwrap_or_default(), data, prefix, &mut out);
            }
        }
        Ok(out)
    }

    pub(crate) fn restore_optimizer(&mut self, engine: &Engine, tensors: &HashMap<String, (Vec<usize>, Vec<f32>)>, t: u32) -> Result<()> {
        let adam = self.opt.is_adam();
        let mut state = Vec::new();
        for &p in &self.trainable {
            let parts = self.g.param_parts(p).unwrap_or_default();
            let mut bufs = Vec::new();
            for prefix in if adam { &["m.", "v."][..] } else { &["m."][..] } {
                let mut v = Vec::new();
                for (name, _) in parts {
                    let key = format!("{prefix}{name}");
                    let (_, data) = tensors.get(&key).ok_or_else(|| Error::Input(format!("optimizer.safetensors has no {key}")))?;
                    v.extend_from_slice(data);
                }
                bufs.push(v);
            }
            state.push(bufs);
        }
        self.opt.write_state(&engine.ctx, &state, t)
    }
}

pub(crate) fn split_parts(parts: &[(String, Vec<usize>)], data: &[f32], prefix: &str, out: &mut Vec<(String, Vec<usize>, Vec<f32>)>) {
    let mut off = 0;
    for (name, shape) in parts {
        let n: usize = shape.iter().product();
        out.push((format!("{prefix}{name}"), shape.clone(), data[off..off + n].to_vec()));
        off += n;
    }
}

/// Runs one training step: the executable's graph (forward + backward), then
/// the optimizer, in one submit; returns the graph's outputs (e.g. the loss).
pub async fn train_step(ctx: &Context, exe: &Executable, opt: &mut Optimizer, inputs: &[&[f32]], lr: f32) -> Result<Vec<Vec<f32>>> {
    micro_step(ctx, exe, opt, inputs, 0, 1, lr).await
}

/// Runs micro-batch `i` of `n` of one optimizer step: forward + backward,
/// accumulation (n > 1), and on the last micro-batch the update with `lr`.
pub async fn micro_step(
    ctx: &Context,
    exe: &Executable,
    opt: &mut Optimizer,
    inputs: &[&[f32]],
    i: usize,
    n: usize,
    lr: f32,
) -> Result<Vec<Vec<f32>>> {
    let last = i + 1 == n;
    if n > 1 && !opt.accumulates() {
        return Err(Error::Input("micro-batches need an optimizer built with accumulate = true".into()));
    }
    if last {
        opt.prepare(ctx, lr);
    }
    let o: &Optimizer = opt;
    exe.run_then(ctx, inputs, &|enc| {
        if n > 1 {
            o.record_accumulate(enc, i == 0);
        }
        if last {
            o.record(enc);
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;
    use crate::models::config::preset;
    use crate::models::family::{Arch, Family};
    use crate::models::vit::VitConfig;
    use crate::rng::Rng;
    use serde_json::{Map, Value};

    /// A ViT whose `pos_embed` the reference code would never train (as T2T's is).
    #[derive(Debug, Clone)]
    struct FrozenPos(VitConfig);

    impl Arch for FrozenPos {
        fn family(&self) -> &'static Family {
            self.0.family()
        }
        fn validate(&self) -> Result<()> {
            self.0.validate()
        }
        fn build(&self, batch: usize) -> Result<Graph> {
            self.0.build(batch)
        }
        fn num_classes(&self) -> usize {
            self.0.num_classes()
        }
        fn set_num_classes(&mut self, n: usize) {
            self.0.set_num_classes(n)
        }
        fn input(&self) -> (usize, [usize; 2]) {
            self.0.input()
        }
        fn set_input(&mut self, chans: usize, size: [usize; 2]) {
            self.0.set_input(chans, size)
        }
        fn num_features(&self) -> usize {
            self.0.num_features()
        }
        fn read_args(&mut self, args: &Map<String, Value>) -> Result<()> {
            self.0.read_args(args)
        }
        fn write_args(&self, preset: Option<&dyn Arch>) -> Map<String, Value> {
            self.0.write_args(preset)
        }
        fn classifier(&self) -> Vec<&'static str> {
            self.0.classifier()
        }
        fn no_weight_decay(&self, name: &str) -> bool {
            self.0.no_weight_decay(name)
        }
        fn frozen(&self, name: &str) -> bool {
            name == "pos_embed"
        }
        fn init(&self, name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32> {
            self.0.init(name, shape, rng)
        }
        fn summary(&self) -> Vec<(String, String)> {
            self.0.summary()
        }
        fn to_json(&self) -> Value {
            self.0.to_json()
        }
        fn clone_box(&self) -> Box<dyn Arch> {
            Box::new(self.clone())
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    #[test]
    fn frozen_tensors_get_no_gradient_and_the_rest_do() -> Result<()> {
        let mut cfg = preset("vit_tiny_patch16_224")?;
        let mut vit = cfg.arch_as::<VitConfig>().cloned().ok_or_else(|| Error::Config("not a ViT".into()))?;
        (vit.img_size, vit.depth, vit.embed_dim, vit.num_heads, vit.num_classes) = ([32, 32], 1, 32, 2, 3);
        cfg.data.input_size = [3, 32, 32];
        let plain = Model::fresh(crate::ModelConfig { arch: Box::new(vit.clone()), ..cfg.clone() }, 1)?;
        let frozen = Model::fresh(crate::ModelConfig { arch: Box::new(FrozenPos(vit)), ..cfg }, 1)?;
        let names = |m: &Model| -> Result<Vec<String>> {
            let tg = training_graph(m, 2, 0.0, 1, false)?;
            Ok(tg.trainable.iter().flat_map(|&t| tg.g.param_parts(t).unwrap_or_default().iter().map(|p| p.0.clone())).collect())
        };
        let (all, some) = (names(&plain)?, names(&frozen)?);
        assert!(all.iter().any(|n| n == "pos_embed"));
        assert!(!some.iter().any(|n| n == "pos_embed"));
        assert_eq!(all.len(), some.len() + 1, "only pos_embed is left out");
        Ok(())
    }
}
