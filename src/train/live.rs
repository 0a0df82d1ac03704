//! Training from examples held in memory, one optimizer step per call, with no threads
//! and no files: what the browser demo's "teach your own classes" runs (through the web
//! API), and the same natively. A step is `vitrine train`'s step: the same training graph
//! and optimizer kernels, the same epoch order and per-sample augmentation draws
//! ([`epoch_order`], [`sample_seed`]), the same schedule; with the examples in the order a
//! folder lists them, `vitrine train` on that folder takes the same steps.

use super::augment::train_tensor;
use super::checkpoint::hub_files;
use super::data::{epoch_order, sample_seed, Rng};
use super::options::TrainOptions;
use super::state::EpochRecord;
use super::step::{adapt_head, new_head, split_parts, train_step, training_graph_with, NamedTensor};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu::optim::Optimizer;
use crate::gpu::Executable;
use crate::graph::plan::plan;
use crate::graph::{DeviceCaps, Graph};
use crate::models::family::LossOptions;
use crate::models::Model;
use crate::preprocess::{to_channels, Image8};

/// Most classes a live run takes (the demo offers 2 to 10).
pub const MAX_CLASSES: usize = 1000;

/// What one step did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// Mean training loss of the step's batch (label-smoothed cross-entropy).
    pub loss: f64,
    /// Top-1 accuracy on the step's batch, in percent.
    pub accuracy: f64,
    /// Mean loss and accuracy over the epoch so far.
    pub epoch_loss: f64,
    /// Top-1 accuracy over the epoch so far, in percent.
    pub epoch_accuracy: f64,
    /// The epoch this step belonged to (0-based) and the step within it (0-based).
    pub epoch: usize,
    /// The step within the epoch (0-based).
    pub step: usize,
    /// Steps in this epoch (examples / batch size, the last partial batch dropped).
    pub steps_per_epoch: usize,
    /// Optimizer steps taken so far, this one included.
    pub global_step: u64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Whether the step ended its epoch.
    pub epoch_done: bool,
}

/// The graph, executable and optimizer of a run, built at its first step.
struct Compiled {
    g: Graph,
    exe: Executable,
    opt: Optimizer,
}

/// A training run over in-memory examples (see the module docs).
pub struct LiveTrainer {
    model: Model,
    opts: TrainOptions,
    classes: Vec<String>,
    examples: Vec<(Image8, usize)>,
    compiled: Option<Compiled>,
    epoch: usize,
    step: usize,
    steps_per_epoch: usize,
    order: Vec<usize>,
    global_step: u64,
    sums: (f64, usize, usize),
    /// Set when a step diverged: its update already ran, so the weights are not usable.
    failed: Option<String>,
    /// One record per finished epoch (no validation; no clock on wasm: secs 0).
    history: Vec<EpochRecord>,
}

impl LiveTrainer {
    /// A run that fine-tunes `model` for `classes` with `opts` (its data and output paths
    /// unused): the model gets a new head (timm's init, seeded; always, as new classes are new
    /// even when their count matches the old head's) and the names as labels. Families whose
    /// training needs extra inputs (DynamicViT's teacher and noise, DVT's exits) are refused,
    /// as is gradient accumulation (one micro-batch per step here).
    pub fn new(mut model: Model, classes: Vec<String>, opts: TrainOptions) -> Result<Self> {
        opts.validate()?;
        if opts.grad_accum != 1 {
            return Err(Error::Unsupported(format!("grad_accum {}: a live run takes one micro-batch per step", opts.grad_accum)));
        }
        if !(2..=MAX_CLASSES).contains(&classes.len()) {
            return Err(Error::Input(format!("{} classes: a run needs 2 to {MAX_CLASSES}", classes.len())));
        }
        if model.config.arch.custom_training(1, &LossOptions { smoothing: 0.0, ratio_weight: None }).is_some() {
            return Err(Error::Unsupported(format!(
                "{}: training this family needs its own inputs (a teacher, noise or several exits); only `vitrine train` runs it",
                model.config.architecture
            )));
        }
        let n = classes.len();
        if model.config.num_classes() == n {
            new_head(&mut model, n, opts.seed)?;
        }
        adapt_head(&mut model, &classes, n, opts.seed, &mut |m| log::info!("{m}"))?;
        Ok(LiveTrainer {
            model,
            opts,
            classes,
            examples: Vec::new(),
            compiled: None,
            epoch: 0,
            step: 0,
            steps_per_epoch: 0,
            order: Vec::new(),
            global_step: 0,
            sums: (0.0, 0, 0),
            failed: None,
            history: Vec::new(),
        })
    }

    /// Adds a decoded image of class `class` (converted to the model's channels). Examples
    /// added during an epoch join from the next one.
    pub fn add_example(&mut self, class: usize, img: Image8) -> Result<()> {
        if class >= self.classes.len() {
            return Err(Error::Input(format!("class {class} out of range: the run has {} classes", self.classes.len())));
        }
        if img.width == 0 || img.height == 0 {
            return Err(Error::Input("an empty image".into()));
        }
        let c = self.model.config.data.input_size[0];
        self.examples.push((to_channels(img, c), class));
        Ok(())
    }

    /// Checks, before anything is allocated, that the training graph at the run's batch size
    /// fits `caps` (every tensor within the storage binding limit: the planner's message
    /// otherwise); returns the parameter count and the trainable one.
    pub fn check_fits(&self, caps: &DeviceCaps) -> Result<(usize, usize)> {
        let b = self.opts.batch_size;
        let tg = training_graph_with(&self.model, b, &self.loss(), 1, self.opts.freeze_backbone)?;
        plan(&tg.g, caps).map_err(|e| match e {
            Error::Gpu(m) => Error::Gpu(format!("{} is too large to train on this GPU at batch {b}: {m}", self.model.config.architecture)),
            other => other,
        })?;
        Ok((tg.g.param_count(), tg.trainable.iter().map(|&t| tg.g.numel(t)).sum()))
    }

    fn loss(&self) -> LossOptions {
        LossOptions { smoothing: self.opts.smoothing as f32, ratio_weight: None }
    }

    /// Examples per class, in class order.
    pub fn counts(&self) -> Vec<usize> {
        let mut n = vec![0; self.classes.len()];
        for (_, c) in &self.examples {
            n[*c] += 1;
        }
        n
    }

    /// The run's divergence, once it happened (the update of the diverged step already ran).
    fn check_failed(&self) -> Result<()> {
        match &self.failed {
            Some(msg) => Err(Error::Input(msg.clone())),
            None => Ok(()),
        }
    }

    /// The finished epochs' records.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// The run's curves as `vitrine train` draws them (`curves.svg`: loss, accuracy and
    /// learning rate per finished epoch; no validation here).
    pub fn curves_svg(&self) -> Result<String> {
        let csv = super::curves::summary_csv(&self.history);
        let history = super::curves::parse_summary(&csv, "the run's history")?;
        Ok(super::curves::svg(&history, &format!("{} on {}", self.model.config.architecture, self.classes.join(", "))))
    }

    /// Examples per step.
    pub fn batch_size(&self) -> usize {
        self.opts.batch_size
    }

    /// The class names.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// One optimizer step on the next batch of the epoch's order (a new epoch reshuffles).
    pub async fn step(&mut self, engine: &mut Engine) -> Result<StepReport> {
        self.check_failed()?;
        let b = self.opts.batch_size;
        if self.step == 0 {
            let n = self.examples.len();
            if n < b {
                return Err(Error::Input(format!("{n} examples: a step needs a batch of {b}; add images or lower the batch size")));
            }
            self.order = epoch_order(n, self.opts.seed, self.epoch);
            self.steps_per_epoch = n / b;
            self.sums = (0.0, 0, 0);
        }
        if self.compiled.is_none() {
            let tg = training_graph_with(&self.model, b, &self.loss(), 1, self.opts.freeze_backbone)?;
            let exe = engine.compile(&tg.g, &self.model.weights.data())?;
            let opt = engine.optimizer(&exe, &tg.specs, self.opts.settings())?;
            self.compiled = Some(Compiled { g: tg.g, exe, opt });
        }
        let cfg = &self.model.config.data;
        let per: usize = cfg.input_size.iter().product();
        let mut images = Vec::with_capacity(b * per);
        let mut labels = Vec::with_capacity(b);
        for pos in self.step * b..(self.step + 1) * b {
            let (img, label) = &self.examples[self.order[pos]];
            let mut rng = Rng::new(sample_seed(self.opts.seed, self.epoch, pos));
            images.extend(train_tensor(img, cfg, &self.opts.augment, &mut rng)?);
            labels.push(*label as f32);
        }
        let lr = self.opts.sched.lr_at(self.epoch, self.step, self.steps_per_epoch);
        let c = self.compiled.as_mut().ok_or_else(|| Error::Internal("not compiled".into()))?;
        let out = train_step(&engine.ctx, &c.exe, &mut c.opt, &[&images, &labels], lr as f32).await?;
        let (rows, logits) = match &out[..] {
            [rows, logits, ..] => (rows, logits),
            _ => return Err(Error::Internal("the training graph returned no loss".into())),
        };
        let loss: f64 = rows.iter().map(|&v| v as f64).sum();
        if !loss.is_finite() {
            let (epoch, step) = (self.epoch + 1, self.step + 1);
            let msg = format!(
                "loss became {loss} at epoch {epoch}, step {step} (lr {lr:.3e}); training stopped and its weights are lost. Start again with a lower learning rate"
            );
            self.failed = Some(msg.clone());
            return Err(Error::Diverged { epoch, step, loss: loss as f32, msg });
        }
        let k = self.classes.len();
        // Top-1 as `vitrine train` counts it: no logit above the label's.
        let correct = logits.chunks(k).zip(&labels).filter(|(row, &y)| row.iter().all(|&v| v <= row[y as usize])).count();
        self.sums = (self.sums.0 + loss, self.sums.1 + correct, self.sums.2 + b);
        let report = StepReport {
            loss: loss / b as f64,
            accuracy: 100.0 * correct as f64 / b as f64,
            epoch_loss: self.sums.0 / self.sums.2 as f64,
            epoch_accuracy: 100.0 * self.sums.1 as f64 / self.sums.2 as f64,
            epoch: self.epoch,
            step: self.step,
            steps_per_epoch: self.steps_per_epoch,
            global_step: self.global_step + 1,
            lr,
            epoch_done: self.step + 1 == self.steps_per_epoch,
        };
        self.global_step += 1;
        self.step += 1;
        if report.epoch_done {
            self.history.push(EpochRecord {
                epoch: self.epoch + 1,
                lr,
                train_loss: report.epoch_loss,
                train_acc: report.epoch_accuracy,
                val_loss: None,
                val_top1: None,
                val_top5: None,
                secs: 0.0,
                images_per_s: 0.0,
            });
            self.step = 0;
            self.epoch += 1;
        }
        Ok(report)
    }

    /// The model with its current weights (read back from the GPU; the starting weights
    /// before the first step).
    pub async fn model(&self, engine: &Engine) -> Result<Model> {
        self.check_failed()?;
        let mut model = self.model.clone();
        if let Some(c) = &self.compiled {
            let mut named: Vec<NamedTensor> = Vec::new();
            for t in c.g.params() {
                let data = c.exe.read_param(&engine.ctx, t, c.g.numel(t)).await?;
                split_parts(c.g.param_parts(t).unwrap_or_default(), &data, "", &mut named);
            }
            for (name, shape, data) in named {
                model.weights.tensors.insert(name, (shape, data));
            }
        }
        model.source = format!("{} (trained {} steps)", self.model.config.architecture, self.global_step);
        Ok(model)
    }
}

/// A model in the hub layout, in memory: (config.json text, model.safetensors bytes), as
/// `vitrine train` writes them (timm loads both).
pub fn hub_bytes(model: &Model) -> Result<(String, Vec<u8>)> {
    let mut tensors: Vec<NamedTensor> = model.weights.tensors.iter().map(|(n, (s, d))| (n.clone(), s.clone(), d.clone())).collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut files = hub_files(std::path::Path::new(""), &model.config, &tensors, Default::default())?.into_iter().map(|(_, b)| b);
    match (files.next(), files.next()) {
        (Some(config), Some(weights)) => Ok((String::from_utf8(config).map_err(|e| Error::Internal(e.to_string()))?, weights)),
        _ => Err(Error::Internal("the hub layout has two files".into())),
    }
}
