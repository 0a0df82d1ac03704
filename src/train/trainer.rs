//! The training loop behind `vitrine train`, and evaluation (`vitrine eval`).
//!
//! One step: the loader's batch is written to the GPU, the training graph runs
//! forward, loss and backward, and the optimizer kernels update the weights, all
//! in one submit; the per-row losses and logits come back for the progress line
//! and the NaN guard. An evaluation graph shares the training executable's
//! parameter buffers, so evaluating needs no copy. Checkpoints (hub layout +
//! optimizer state + `train_state.json`) are written atomically at the end of
//! each epoch, every `checkpoint_every` steps, and when stopped early.

use super::augment::Augment;
use super::checkpoint::{safetensors_bytes, safetensors_metadata, save_model, write_atomic};
use super::data::{Dataset, Rng, Split};
use super::loader::LoaderSpec;
use super::progress::Progress;
use super::schedule::Schedule;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu::optim::{micro_step, OptKind, OptParam, OptSettings, Optimizer};
use crate::gpu::Executable;
use crate::graph::autodiff::backward;
use crate::graph::{Graph, TensorId};
use crate::models::common::DataConfig;
use crate::models::Model;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The update rule, by timm's `--opt` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptName {
    /// AdamW with decoupled weight decay (timm's `adamw`).
    AdamW,
    /// SGD with Nesterov momentum (timm's `sgd`).
    Sgd,
    /// SGD with plain momentum (timm's `momentum`).
    Momentum,
}

impl OptName {
    /// Parses `--opt`: `adamw`, `sgd` (or `nesterov`) or `momentum`; anything
    /// else is an [`Error::Config`].
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "adamw" => Ok(OptName::AdamW),
            "sgd" | "nesterov" => Ok(OptName::Sgd),
            "momentum" => Ok(OptName::Momentum),
            _ => Err(Error::Config(format!("--opt {s:?} is not supported (adamw, sgd, momentum)"))),
        }
    }
}

/// A checkpoint tensor: its name, shape and f32 data.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Everything that defines a run (stored in `train_state.json` for `--resume`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainOptions {
    /// The data folder (`--data`): ImageFolder, IDX or CIFAR binary batches.
    pub data: PathBuf,
    /// The output folder (`--out`) for checkpoints and `summary.csv`.
    pub out: PathBuf,
    /// Epochs to train (`--epochs`).
    pub epochs: usize,
    /// Images per micro-batch (`--batch-size`, `-b`): the graph's batch B; an
    /// optimizer step sees `batch_size * grad_accum` images.
    pub batch_size: usize,
    /// Micro-batches per optimizer step (timm's `--grad-accum-steps`).
    pub grad_accum: usize,
    /// The update rule (`--opt`).
    pub opt: OptName,
    /// SGD momentum factor (`--momentum`); unused by AdamW.
    pub momentum: f64,
    /// Weight decay (`--weight-decay`), not applied to the tensors [`ModelConfig::decays`](crate::ModelConfig::decays) excludes.
    pub weight_decay: f64,
    /// AdamW epsilon (`--opt-eps`).
    pub opt_eps: f64,
    /// AdamW (beta1, beta2) (`--opt-betas`).
    pub opt_betas: [f64; 2],
    /// The learning-rate schedule (`--lr`, `--sched`, `--warmup-*`, ...).
    pub sched: Schedule,
    /// Label smoothing of the loss, in [0, 1) (`--smoothing`).
    pub smoothing: f64,
    /// Clip gradients to this global L2 norm (`--clip-grad`); `None`: no clipping.
    pub clip_grad: Option<f64>,
    /// Training augmentation (`--crop`, `--scale`, `--ratio`, `--pad`, `--hflip`, `--no-aug`).
    pub augment: Augment,
    /// Seed of the initialisation, data order, validation split and augmentation (`--seed`).
    pub seed: u64,
    /// Train only the classifier (`head.*`, `head_dist.*`) (`--freeze-backbone`).
    pub freeze_backbone: bool,
    /// Fraction of the training set held out when the data has no val split.
    pub val_split: f64,
    /// Image decoding threads (`--workers`, `-j`).
    pub workers: usize,
    /// Also checkpoint every this many optimizer steps.
    pub checkpoint_every: Option<u64>,
}

impl TrainOptions {
    /// vitrine's defaults for fine-tuning (timm's flag names; values chosen for
    /// short runs: AdamW 1e-3, weight decay 0.05, cosine with 1 warmup epoch).
    pub fn new(data: PathBuf, out: PathBuf) -> Self {
        TrainOptions {
            data,
            out,
            epochs: 10,
            batch_size: 64,
            grad_accum: 1,
            opt: OptName::AdamW,
            momentum: 0.9,
            weight_decay: 0.05,
            opt_eps: 1e-8,
            opt_betas: [0.9, 0.999],
            sched: Schedule {
                kind: super::schedule::SchedKind::Cosine,
                lr: 1e-3,
                min_lr: 0.0,
                warmup_lr: 1e-5,
                warmup_epochs: 1.0,
                epochs: 10,
                decay_epochs: 90.0,
                decay_rate: 0.1,
                on_updates: false,
            },
            smoothing: 0.1,
            clip_grad: None,
            augment: Augment::timm_default(),
            seed: 42,
            freeze_backbone: false,
            val_split: 0.1,
            workers: 2,
            checkpoint_every: None,
        }
    }

    fn settings(&self) -> OptSettings {
        let kind = match self.opt {
            OptName::AdamW => OptKind::AdamW { beta1: self.opt_betas[0] as f32, beta2: self.opt_betas[1] as f32, eps: self.opt_eps as f32 },
            OptName::Sgd => OptKind::Sgd { momentum: self.momentum as f32, nesterov: true },
            OptName::Momentum => OptKind::Sgd { momentum: self.momentum as f32, nesterov: false },
        };
        OptSettings {
            kind,
            weight_decay: self.weight_decay as f32,
            clip_grad: self.clip_grad.map(|c| c as f32),
            accumulate: self.grad_accum > 1,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.epochs == 0 || self.batch_size == 0 || self.grad_accum == 0 {
            return bad("--epochs, --batch-size and --grad-accum-steps must be positive".into());
        }
        if !(self.sched.lr > 0.0 && self.sched.lr.is_finite()) {
            return bad(format!("--lr must be a positive number, got {}", self.sched.lr));
        }
        if !(0.0..1.0).contains(&self.smoothing) {
            return bad(format!("--smoothing must be in [0, 1), got {}", self.smoothing));
        }
        if !(0.0..1.0).contains(&self.val_split) {
            return bad(format!("--val-split must be in [0, 1), got {}", self.val_split));
        }
        if self.clip_grad.is_some_and(|c| c.is_nan() || c <= 0.0) {
            return bad("--clip-grad must be positive".into());
        }
        Ok(())
    }
}

/// Running totals of the epoch in progress.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Running {
    /// Sum of the per-image training losses (label-smoothed).
    pub loss_sum: f64,
    /// Training images whose top-1 prediction was right.
    pub correct: u64,
    /// Training images seen.
    pub seen: u64,
    /// Seconds spent training in this epoch, across resumes.
    pub secs: f64,
}

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// Epoch number, 1-based.
    pub epoch: usize,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean label-smoothed training loss.
    pub train_loss: f64,
    /// Top-1 accuracy on the training batches, in percent.
    pub train_acc: f64,
    /// Mean cross-entropy (no smoothing) on the evaluation set; `None` without one.
    pub val_loss: Option<f64>,
    /// Top-1 accuracy on the evaluation set, in percent.
    pub val_top1: Option<f64>,
    /// Top-5 accuracy on the evaluation set, in percent.
    pub val_top5: Option<f64>,
    /// Training seconds (evaluation excluded).
    pub secs: f64,
    /// Training throughput in images per second.
    pub images_per_s: f64,
}

/// `train_state.json`: where a run is and how it was configured.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// Version of this file's layout (1).
    pub format: u32,
    /// Epoch in progress (0-based) and optimizer steps done in it.
    pub epoch: usize,
    /// Optimizer steps done in the epoch in progress.
    pub step: usize,
    /// Optimizer steps done in the whole run; every checkpoint file carries it.
    pub global_step: u64,
    /// The optimizer's step count (AdamW's bias corrections).
    pub opt_t: u32,
    /// The run's options.
    pub options: TrainOptions,
    /// The training set's class names, by label.
    pub classes: Vec<String>,
    /// Totals of the epoch in progress.
    pub running: Running,
    /// Every finished epoch, in order.
    pub history: Vec<EpochRecord>,
}

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// The state at the end (as written to `train_state.json`).
    pub state: TrainState,
    /// Stopped by `stop_after` before the last epoch.
    pub stopped: bool,
    /// Wall-clock seconds of this call, setup and evaluation included.
    pub secs: f64,
}

/// Hooks for a run that are not part of its definition.
pub struct Hooks<'a> {
    /// Stop (with a checkpoint) after this many optimizer steps in this call.
    pub stop_after: Option<u64>,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// Receives the summary lines (one per epoch, and notes).
    pub log: &'a mut dyn FnMut(&str),
}

/// Gives `model` a `classes`-way head: a new one (timm's init) when the count
/// differs, and the dataset's class names as labels.
pub fn adapt_head(model: &mut Model, classes: &[String], num_classes: usize, seed: u64, log: &mut dyn FnMut(&str)) -> Result<()> {
    if model.config.num_classes() != num_classes {
        log(&format!("replacing the {}-class head with a new {num_classes}-class head", model.config.num_classes()));
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
    }
    model.config.labels =
        if classes.len() == num_classes { Some(classes.to_vec()) } else { model.config.labels.take().filter(|l| l.len() == num_classes) };
    Ok(())
}

/// Top-1 / top-5 accuracy (percent), mean cross-entropy and per-class counts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalResult {
    /// Top-1 accuracy in percent.
    pub top1: f64,
    /// Top-5 accuracy in percent.
    pub top5: f64,
    /// Mean cross-entropy (no label smoothing).
    pub loss: f64,
    /// Images evaluated.
    pub n: usize,
    /// (correct, total) per class.
    pub per_class: Vec<(usize, usize)>,
}

/// Scores `logits` rows against labels into `acc` (correct1, correct5, loss sum, per class).
fn score(logits: &[f32], labels: &[f32], count: usize, k: usize, acc: &mut (u64, u64, f64, Vec<(usize, usize)>)) {
    for (row, &label) in logits.chunks(k).zip(labels).take(count) {
        let y = label as usize;
        let above = row.iter().filter(|&&v| v > row[y]).count();
        acc.0 += (above == 0) as u64;
        acc.1 += (above < 5) as u64;
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
        acc.2 += lse - row[y] as f64;
        if let Some(c) = acc.3.get_mut(y) {
            c.0 += (above == 0) as usize;
            c.1 += 1;
        }
    }
}

/// Evaluates a compiled forward graph (`[batch, C, H, W]` -> logits) on `data`.
pub fn evaluate(
    engine: &Engine,
    exe: &Executable,
    data: Arc<Dataset>,
    cfg: &DataConfig,
    batch: usize,
    workers: usize,
    progress: Option<&str>,
) -> Result<EvalResult> {
    let k = exe.plan().outputs.first().map(|o| o.1 / batch.max(1)).unwrap_or(0);
    let n = data.len();
    if n == 0 {
        return Err(Error::Input("the evaluation set is empty".into()));
    }
    let spec = LoaderSpec {
        data: data.clone(),
        order: Arc::new((0..n).collect()),
        batch,
        pad_last: true,
        cfg: cfg.clone(),
        augment: Augment::none(),
        seed: 0,
        epoch: 0,
        workers,
    };
    let total = spec.batches();
    let mut bar = Progress::new(progress.unwrap_or(""), total, progress.is_some());
    let mut acc = (0u64, 0u64, 0f64, vec![(0usize, 0usize); k]);
    for (i, b) in spec.start(0).enumerate() {
        let b = b?;
        let out = pollster::block_on(exe.run(&engine.ctx, &[&b.images]))?;
        let logits = out.first().ok_or_else(|| Error::Input("the evaluation graph has no output".into()))?;
        score(logits, &b.labels, b.count, k, &mut acc);
        let seen = (i + 1) * batch;
        bar.update(i + 1, 0, seen.min(n), &format!("top1 {:.2}%", 100.0 * acc.0 as f64 / seen.min(n) as f64));
    }
    bar.finish();
    Ok(EvalResult {
        top1: 100.0 * acc.0 as f64 / n as f64,
        top5: 100.0 * acc.1 as f64 / n as f64,
        loss: acc.2 / n as f64,
        n,
        per_class: acc.3,
    })
}

/// The training set and the evaluation set of a run: the data's own val/test
/// split when it has one, else `val_split` of the training set (seeded).
pub fn datasets(opts: &TrainOptions) -> Result<(Dataset, Dataset)> {
    let mut train = Dataset::open(&opts.data, Split::Train)?;
    if train.is_empty() {
        return Err(Error::Input(format!("{}: no training images found", opts.data.display())));
    }
    let val = match Dataset::open(&opts.data, Split::Val) {
        Ok(v) if !v.is_empty() => v,
        _ if opts.val_split > 0.0 => train.split_off(opts.val_split, opts.seed),
        _ => Dataset { samples: Vec::new(), classes: train.classes.clone() },
    };
    Ok((train, val))
}

fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (epoch as u64 + 1));
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// A resumable checkpoint read back from disk.
pub struct Resume {
    /// The checkpointed model (config and weights).
    pub model: Model,
    /// `train_state.json`.
    pub state: TrainState,
    /// `optimizer.safetensors`: moments by name (`m.<tensor>`, `v.<tensor>`), with shapes.
    pub optimizer: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

/// Reads `dir`'s checkpoint for `--resume`, checking that its files belong together.
pub fn load_resume(dir: &Path) -> Result<Resume> {
    let state_path = dir.join("train_state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", state_path.display())))?;
    let model = Model::load(dir, None)?;
    let step = state.global_step.to_string();
    let mut optimizer = HashMap::new();
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let p = dir.join(file);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        let meta = safetensors_metadata(&bytes, &p.display().to_string())?;
        if meta.get("step") != Some(&step) {
            return Err(Error::Input(format!(
                "{}: written at step {}, but train_state.json is at step {step} (was the checkpoint interrupted?)",
                p.display(),
                meta.get("step").map(String::as_str).unwrap_or("?")
            )));
        }
        if file == "optimizer.safetensors" {
            optimizer = crate::weights::Weights::from_bytes(&bytes, &p.display().to_string())?.tensors;
        }
    }
    Ok(Resume { model, state, optimizer })
}

/// A model's training graph: inputs (images, labels); outputs (per-row loss,
/// logits); the parameters' gradients kept for the optimizer.
pub struct TrainingGraph {
    /// The graph: inputs images `[B, C, H, W]` and labels `[B]`; outputs
    /// per-row loss `[B]` and logits `[B, K]`.
    pub g: Graph,
    /// The parameter tensors that get gradients, in kept-gradient order.
    pub trainable: Vec<TensorId>,
    /// One optimizer entry per trainable parameter (same order).
    pub specs: Vec<OptParam>,
}

/// Builds the training graph: forward, label-smoothed cross-entropy per row,
/// backward seeded with 1 / (batch x micro-batches) per row (the mean over the
/// whole step), to every parameter, or to the head only (`freeze_backbone`).
pub fn training_graph(model: &Model, b: usize, smoothing: f32, accum: usize, freeze_backbone: bool) -> Result<TrainingGraph> {
    let mut g = model.graph(b)?;
    let logits = g.outputs.pop().ok_or_else(|| Error::Input("the model graph has no output".into()))?;
    let target = g.input(&[b]);
    let rows = g.cross_entropy(logits, target, smoothing)?;
    g.output(rows);
    g.output(logits);
    let trainable: Vec<TensorId> = g
        .params()
        .into_iter()
        .filter(|&t| !freeze_backbone || g.param_parts(t).is_some_and(|p| p.iter().all(|(n, _)| model.config.is_head(n))))
        .collect();
    let seed = g.fill(&[b], 1.0 / (b * accum.max(1)) as f32)?;
    let grads = backward(&mut g, rows, seed, &trainable)?;
    let mut specs = Vec::with_capacity(grads.len());
    for (i, (&p, &d)) in trainable.iter().zip(&grads).enumerate() {
        g.keep(d);
        specs.push(OptParam { param: p, grad: i, decay: g.param_parts(p).is_some_and(|parts| model.config.decays(parts)) });
    }
    Ok(TrainingGraph { g, trainable, specs })
}

/// Per-process training context: graphs, executables, optimizer.
struct Session {
    g: Graph,
    exe: Executable,
    eval_exe: Executable,
    opt: Optimizer,
    trainable: Vec<TensorId>,
    classes: usize,
}

impl Session {
    fn new(engine: &mut Engine, model: &Model, opts: &TrainOptions) -> Result<Self> {
        let b = opts.batch_size;
        let TrainingGraph { g, trainable, specs } = training_graph(model, b, opts.smoothing as f32, opts.grad_accum, opts.freeze_backbone)?;
        let exe = engine.compile(&g, &model.weights.data())?;
        let opt = engine.optimizer(&exe, &specs, opts.settings())?;
        let eval_g = model.graph(b)?;
        let eval_exe = engine.compile_sharing(&eval_g, &g, &exe)?;
        Ok(Session { g, exe, eval_exe, opt, trainable, classes: model.config.num_classes() })
    }

    /// Current weights, split into the checkpoint's tensors.
    fn weights(&self, engine: &Engine) -> Result<Vec<NamedTensor>> {
        let mut out = Vec::new();
        for t in self.g.params() {
            let data = pollster::block_on(self.exe.read_param(&engine.ctx, t, self.g.numel(t)))?;
            split_parts(self.g.param_parts(t).unwrap_or_default(), &data, "", &mut out);
        }
        Ok(out)
    }

    fn optimizer_tensors(&self, engine: &Engine) -> Result<Vec<NamedTensor>> {
        let state = pollster::block_on(self.opt.read_state(&engine.ctx))?;
        let mut out = Vec::new();
        for (&t, bufs) in self.trainable.iter().zip(&state) {
            for (prefix, data) in ["m.", "v."].iter().zip(bufs) {
                split_parts(self.g.param_parts(t).unwrap_or_default(), data, prefix, &mut out);
            }
        }
        Ok(out)
    }

    fn restore_optimizer(&mut self, engine: &Engine, tensors: &HashMap<String, (Vec<usize>, Vec<f32>)>, t: u32) -> Result<()> {
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

fn split_parts(parts: &[(String, Vec<usize>)], data: &[f32], prefix: &str, out: &mut Vec<(String, Vec<usize>, Vec<f32>)>) {
    let mut off = 0;
    for (name, shape) in parts {
        let n: usize = shape.iter().product();
        out.push((format!("{prefix}{name}"), shape.clone(), data[off..off + n].to_vec()));
        off += n;
    }
}

fn save_checkpoint(engine: &Engine, s: &Session, model: &Model, state: &TrainState) -> Result<()> {
    let dir = &state.options.out;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let meta = HashMap::from([("step".to_string(), state.global_step.to_string())]);
    // Optimizer first, train_state.json last: a checkpoint is complete only
    // when all three carry the same step (checked by `load_resume`).
    write_atomic(&dir.join("optimizer.safetensors"), &safetensors_bytes(&s.optimizer_tensors(engine)?, meta.clone())?)?;
    save_model(dir, &model.config, &s.weights(engine)?, meta)?;
    let text = serde_json::to_string_pretty(state).map_err(|e| Error::Input(e.to_string()))?;
    write_atomic(&dir.join("train_state.json"), text.as_bytes())?;
    let mut csv = String::from("epoch,lr,train_loss,train_acc,val_loss,val_top1,val_top5,secs,images_per_s\n");
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
    for r in &state.history {
        csv += &format!(
            "{},{:.6e},{:.6},{:.4},{},{},{},{:.1},{:.1}\n",
            r.epoch,
            r.lr,
            r.train_loss,
            r.train_acc,
            opt(r.val_loss),
            opt(r.val_top1),
            opt(r.val_top5),
            r.secs,
            r.images_per_s
        );
    }
    write_atomic(&dir.join("summary.csv"), csv.as_bytes())
}

/// Trains `model` (already given its head, see [`adapt_head`]) as `opts`
/// says, from the start or from `resume`.
pub fn train(engine: &mut Engine, model: Model, opts: TrainOptions, resume: Option<Resume>, hooks: Hooks) -> Result<TrainReport> {
    opts.validate()?;
    let started = Instant::now();
    let (train_set, val_set) = datasets(&opts)?;
    let k = model.config.num_classes();
    if let Some(bad) = train_set.samples.iter().find(|s| s.label >= k) {
        return Err(Error::Input(format!("{}: label {} but the model has {k} classes", opts.data.display(), bad.label)));
    }
    let micro_per_epoch = train_set.len() / opts.batch_size;
    let steps_per_epoch = micro_per_epoch / opts.grad_accum;
    if steps_per_epoch == 0 {
        return Err(Error::Input(format!(
            "{} training images are fewer than one step of {} x {} images",
            train_set.len(),
            opts.batch_size,
            opts.grad_accum
        )));
    }
    let mut s = Session::new(engine, &model, &opts)?;
    let mut state = TrainState {
        format: 1,
        epoch: 0,
        step: 0,
        global_step: 0,
        opt_t: 0,
        options: opts.clone(),
        classes: train_set.classes.clone(),
        running: Running::default(),
        history: Vec::new(),
    };
    if let Some(r) = &resume {
        s.restore_optimizer(engine, &r.optimizer, r.state.opt_t)?;
        state = TrainState { options: opts.clone(), ..r.state.clone() };
        (hooks.log)(&format!("resuming at epoch {}, step {} (global step {})", state.epoch + 1, state.step, state.global_step));
    }
    let train_set = Arc::new(train_set);
    let val_set = Arc::new(val_set);
    let cfg = model.config.data.clone();
    let b = opts.batch_size;
    let a = opts.grad_accum;
    let mut steps_here = 0u64;
    let mut last_good = resume.as_ref().map(|r| (r.state.epoch, r.state.step));
    while state.epoch < opts.epochs {
        let epoch = state.epoch;
        let spec = LoaderSpec {
            data: train_set.clone(),
            order: Arc::new(epoch_order(train_set.len(), opts.seed, epoch)),
            batch: b,
            pad_last: false,
            cfg: cfg.clone(),
            augment: opts.augment.clone(),
            seed: opts.seed,
            epoch,
            workers: opts.workers,
        };
        let first = state.step;
        let mut loader = spec.start(first * a);
        let title = format!("epoch {}/{}", epoch + 1, opts.epochs);
        let mut bar = Progress::new(title, steps_per_epoch, hooks.progress);
        let t0 = Instant::now();
        let secs_before = state.running.secs;
        let mut lr = 0.0;
        while state.step < steps_per_epoch {
            lr = opts.sched.lr_at(epoch, state.step, steps_per_epoch);
            for i in 0..a {
                let batch = loader.next().ok_or_else(|| Error::Input("data loader ended early".into()))??;
                let out =
                    pollster::block_on(micro_step(&engine.ctx, &s.exe, &mut s.opt, &[&batch.images, &batch.labels], i, a, lr as f32))?;
                let (rows, logits) = (&out[0], &out[1]);
                if let Some(bad) = rows.iter().find(|v| !v.is_finite()) {
                    let kept = match last_good {
                        Some((e, 0)) => format!("the last good checkpoint (after epoch {e}) in {} is intact", opts.out.display()),
                        Some((e, st)) => {
                            format!("the last good checkpoint (epoch {}, step {st}) in {} is intact", e + 1, opts.out.display())
                        }
                        None => "no checkpoint had been written yet".into(),
                    };
                    return Err(Error::Input(format!(
                        "loss became {bad} at epoch {}, step {} (lr {lr:.3e}); training stopped, {kept}. Try a lower --lr or --clip-grad",
                        epoch + 1,
                        state.step + 1
                    )));
                }
                state.running.loss_sum += rows.iter().map(|&v| v as f64).sum::<f64>();
                let mut acc = (0, 0, 0.0, Vec::new());
                score(logits, &batch.labels, b, s.classes, &mut acc);
                state.running.correct += acc.0;
                state.running.seen += b as u64;
            }
            state.step += 1;
            state.global_step += 1;
            state.opt_t = s.opt.t;
            steps_here += 1;
            state.running.secs = secs_before + t0.elapsed().as_secs_f64();
            let r = &state.running;
            let stats = format!("loss {:.4} acc {:.2}%", r.loss_sum / r.seen as f64, 100.0 * r.correct as f64 / r.seen as f64);
            bar.update(state.step, first, (state.step - first) * a * b, &stats);
            let stop = hooks.stop_after.is_some_and(|n| steps_here >= n) && state.step < steps_per_epoch;
            if stop || opts.checkpoint_every.is_some_and(|n| n > 0 && state.global_step.is_multiple_of(n)) {
                save_checkpoint(engine, &s, &model, &state)?;
                last_good = Some((state.epoch, state.step));
            }
            if stop {
                bar.finish();
                (hooks.log)(&format!("stopped after {steps_here} steps; checkpoint in {} (continue with --resume)", opts.out.display()));
                return Ok(TrainReport { state, stopped: true, secs: started.elapsed().as_secs_f64() });
            }
        }
        drop(loader);
        bar.finish();
        let r = state.running.clone();
        let eval = if val_set.is_empty() {
            None
        } else {
            let title = hooks.progress.then(|| format!("eval  {}/{}", epoch + 1, opts.epochs));
            Some(evaluate(engine, &s.eval_exe, val_set.clone(), &cfg, b, opts.workers, title.as_deref())?)
        };
        let images = (steps_per_epoch * a * b) as f64;
        let rec = EpochRecord {
            epoch: epoch + 1,
            lr,
            train_loss: r.loss_sum / r.seen.max(1) as f64,
            train_acc: 100.0 * r.correct as f64 / r.seen.max(1) as f64,
            val_loss: eval.as_ref().map(|e| e.loss),
            val_top1: eval.as_ref().map(|e| e.top1),
            val_top5: eval.as_ref().map(|e| e.top5),
            secs: r.secs,
            images_per_s: images / r.secs.max(1e-9),
        };
        let val = match &eval {
            Some(e) => format!("  val loss {:.4} top1 {:.2}% top5 {:.2}%", e.loss, e.top1, e.top5),
            None => String::new(),
        };
        (hooks.log)(&format!(
            "epoch {}/{}  lr {:.2e}  train loss {:.4} acc {:.2}%{val}  {:.0} img/s  {:.1} s",
            epoch + 1,
            opts.epochs,
            lr,
            rec.train_loss,
            rec.train_acc,
            rec.images_per_s,
            rec.secs
        ));
        state.history.push(rec);
        state.epoch += 1;
        state.step = 0;
        state.running = Running::default();
        save_checkpoint(engine, &s, &model, &state)?;
        last_good = Some((state.epoch, 0));
    }
    Ok(TrainReport { state, stopped: false, secs: started.elapsed().as_secs_f64() })
}
