//! Evaluation of a compiled forward graph on a data set (`vitrine eval`, and
//! each epoch's validation), and the train / validation split of a run.

use super::augment::Augment;
use super::data::{Dataset, Split};
use super::loader::LoaderSpec;
use super::options::TrainOptions;
use super::progress::Progress;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu::Executable;
use crate::models::common::DataConfig;
use std::sync::Arc;

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
pub(crate) fn score(logits: &[f32], labels: &[f32], count: usize, k: usize, acc: &mut (u64, u64, f64, Vec<(usize, usize)>)) {
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
    let k = exe.plan().outputs.last().map(|o| o.1 / batch.max(1)).unwrap_or(0);
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
        let logits = out.last().ok_or_else(|| Error::Input("the evaluation graph has no output".into()))?;
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
        Ok(v) if !v.is_empty() && v.classes != train.classes => {
            return Err(Error::Input(format!(
                "{}: the val split's classes ({}) differ from the training split's ({}); labels would not match",
                opts.data.display(),
                v.classes.join(", "),
                train.classes.join(", ")
            )))
        }
        Ok(v) if !v.is_empty() => v,
        _ if opts.val_split > 0.0 => train.split_off(opts.val_split, opts.seed),
        _ => Dataset { samples: Vec::new(), classes: train.classes.clone() },
    };
    Ok((train, val))
}
