//! Where a run is: `train_state.json` ([`TrainState`]: options, position,
//! running totals, history), what a run reports, and the hooks a caller gives it.

use super::options::TrainOptions;

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
