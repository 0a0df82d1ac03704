//! What defines a training run: [`TrainOptions`] (timm's flag names) and the update rule.

use super::augment::Augment;
use super::schedule::Schedule;
use crate::error::{Error, Result};
use crate::gpu::optim::{OptKind, OptSettings};
use std::path::PathBuf;

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
    /// The frozen teacher of a distilling family (DynamicViT; `--teacher`): a hub folder
    /// of the dense model. `None`: a frozen copy of the starting weights.
    #[serde(default)]
    pub teacher: Option<PathBuf>,
    /// Learning-rate multiplier of the family's backbone group (`--backbone-lr-scale`;
    /// DynamicViT: all but the predictors). `None`: the family's (DynamicViT 0.01, else 1).
    #[serde(default)]
    pub backbone_lr_scale: Option<f64>,
    /// Epochs at the start during which the backbone group is not updated
    /// (`--backbone-freeze-epochs`). `None`: the family's (DynamicViT 5, else 0).
    #[serde(default)]
    pub backbone_freeze_epochs: Option<usize>,
    /// DynamicViT's keep-ratio loss weight (`--ratio-weight`; `None`: main.py's 2.0, the
    /// README uses 5.0 for DeiT-B).
    #[serde(default)]
    pub ratio_weight: Option<f64>,
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
            teacher: None,
            backbone_lr_scale: None,
            backbone_freeze_epochs: None,
            ratio_weight: None,
        }
    }

    pub(crate) fn settings(&self) -> OptSettings {
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
            backbone_lr_scale: 1.0,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
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
        if self.backbone_lr_scale.is_some_and(|s| !(s.is_finite() && s >= 0.0)) {
            return bad("--backbone-lr-scale must be a number >= 0".into());
        }
        if self.ratio_weight.is_some_and(|w| !(w.is_finite() && w >= 0.0)) {
            return bad("--ratio-weight must be a number >= 0".into());
        }
        Ok(())
    }
}
