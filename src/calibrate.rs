//! Exit thresholds for early-exit cascades (DVT), the official way: the
//! budget rows of `inference.py` (`dynamic_find_threshold`, `dynamic_evaluate`,
//! blackfeather-wang/Dynamic-Vision-Transformer, vendored in
//! scripts/dvt_official/dynamic_threshold.py) on the max-softmax confidences of
//! every exit over a data set, then the row a GFLOPs budget allows.
//!
//! For budget row p = 1..59 the target fraction of images leaving at exit k is
//! q_k ∝ (p / 20)^(k + 1). Sorting exit k's confidences in descending order, its
//! threshold is the confidence of the floor(n · q_k)-th image that has not left
//! at an earlier exit (1e8, never reached, when that rank is 0 or past the
//! images left); the last exit takes everything (-1e8). Each row's accuracy and
//! expected GFLOPs per image follow from the exits the images then take. The
//! official code reports the whole curve; `calibrate` picks the largest p
//! whose expected GFLOPs stay within the budget (vitrine's rule, stated as such).
//! All arithmetic is f32, as the official tensors are.

use crate::error::{Error, Result};

/// An exit's confidence in one image: the largest softmax probability of its logits, in
/// f32 as `F.softmax(o, 1).max(1)` computes it (1 / sum of exp(l - max)). The cascade, the
/// calibration and the benchmark all use this one function, so a threshold taken from a
/// calibration image's confidence sends that image out at the same exit.
pub fn confidence(logits: &[f32]) -> f32 {
    let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    1.0 / logits.iter().map(|&v| (v - m).exp()).sum::<f32>()
}

/// The predicted class of one row of logits (the first of equal maxima).
pub fn argmax(logits: &[f32]) -> usize {
    logits.iter().enumerate().fold(0, |best, (j, &v)| if v > logits[best] { j } else { best })
}

/// Every exit's confidences and predictions from the cascade's per-exit logits
/// (`[images * classes]` each, `k` classes): `(conf[exit][image], pred[exit][image])`.
pub fn confidences(per_exit: &[Vec<f32>], k: usize, images: usize) -> (Vec<Vec<f32>>, Vec<Vec<usize>>) {
    let conf = per_exit.iter().map(|l| l.chunks(k.max(1)).take(images).map(confidence).collect()).collect();
    let pred = per_exit.iter().map(|l| l.chunks(k.max(1)).take(images).map(argmax).collect()).collect();
    (conf, pred)
}

/// The official budget rows: p = 1..=59.
pub const ROWS: std::ops::RangeInclusive<u32> = 1..=59;

/// inference.py's exit fractions for budget row `p`: `exp(log(p / 20) * [1, 2, 3])`
/// normalised to sum 1, for `exits` exits, in f32.
pub fn exit_fractions(p: u32, exits: usize) -> Vec<f32> {
    let base = (p as f64 / 20.0) as f32;
    let v: Vec<f32> = (1..=exits).map(|k| (base.ln() * k as f32).exp()).collect();
    let sum: f32 = v.iter().sum();
    v.iter().map(|x| x / sum).collect()
}

/// The official `dynamic_find_threshold` on confidences `conf[k][i]` (exit k, image i)
/// with exit fractions `q`: one threshold per exit, the last -1e8.
pub fn find_thresholds(conf: &[Vec<f32>], q: &[f32]) -> Vec<f32> {
    let stages = conf.len();
    let n = conf.first().map_or(0, Vec::len);
    let mut filtered = vec![0u32; n];
    let mut t = vec![1e8f32; stages];
    for k in 0..stages.saturating_sub(1) {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| conf[k][b].total_cmp(&conf[k][a]).then(a.cmp(&b)));
        let out_n = (n as f32 * q.get(k).copied().unwrap_or(0.0)).floor() as usize;
        let mut count = 0;
        for &i in &order {
            if filtered[i] == 0 {
                count += 1;
                if count == out_n {
                    t[k] = conf[k][i];
                    break;
                }
            }
        }
        for (f, &c) in filtered.iter_mut().zip(&conf[k]) {
            *f += (c >= t[k]) as u32;
        }
    }
    if let Some(last) = t.last_mut() {
        *last = -1e8;
    }
    t
}

/// The official `dynamic_evaluate`: (top-1 accuracy in percent, expected GFLOPs per
/// image) when each image leaves at the first exit whose confidence reaches its
/// threshold; `pred[k][i]` the predicted class, `flops[k]` the cumulative GFLOPs to exit k.
pub fn evaluate(conf: &[Vec<f32>], pred: &[Vec<usize>], target: &[usize], flops: &[f32], t: &[f32]) -> (f32, f32) {
    let n = target.len();
    let stages = conf.len();
    let mut exits = vec![0u32; stages];
    let mut correct = 0u32;
    for i in 0..n {
        for k in 0..stages {
            if conf[k][i] >= t[k] {
                correct += (pred[k][i] == target[i]) as u32;
                exits[k] += 1;
                break;
            }
        }
    }
    let expected = (0..stages).fold(0f32, |acc, k| acc + exits[k] as f32 / n.max(1) as f32 * flops.get(k).copied().unwrap_or(0.0));
    (correct as f32 * 100.0 / n.max(1) as f32, expected)
}

/// One budget row's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    /// The official budget row p (1..=59).
    pub p: u32,
    /// Thresholds of every exit but the last (1e8: never reached).
    pub thresholds: Vec<f32>,
    /// Top-1 accuracy (percent) on the calibration images.
    pub accuracy: f32,
    /// Expected GFLOPs per image.
    pub gflops: f32,
}

/// Every official budget row on these confidences.
pub fn curve(conf: &[Vec<f32>], pred: &[Vec<usize>], target: &[usize], flops: &[f32]) -> Vec<Row> {
    ROWS.map(|p| {
        let q = exit_fractions(p, conf.len());
        let mut t = find_thresholds(conf, &q);
        let (accuracy, gflops) = evaluate(conf, pred, target, flops, &t);
        t.pop();
        Row { p, thresholds: t, accuracy, gflops }
    })
    .collect()
}

/// The row a budget selects: the largest p whose expected GFLOPs per image are within it.
pub fn pick(rows: &[Row], budget: f64) -> Result<&Row> {
    rows.iter().rev().find(|r| r.gflops as f64 <= budget).ok_or_else(|| {
        let least = rows.iter().map(|r| r.gflops).fold(f32::INFINITY, f32::min);
        Error::Input(format!("budget {budget} GFLOPs is below the cheapest calibrated row ({least:.4} GFLOPs per image)"))
    })
}
