//! Softmax cross-entropy with label smoothing (timm's
//! `LabelSmoothingCrossEntropy`; smoothing 0 is plain cross-entropy):
//! `logits [B, K]`, `target [B]` (class indices as f32) -> per-row loss `[B]`.
//! [`Graph::cross_entropy_mean`] adds the batch mean, a `[1]` tensor.

use crate::error::{Error, Result};
use crate::gpu::{Const, KernelKey};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::ops::u32_of;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct CrossEntropy {
    /// Logits `[B, K]`.
    pub logits: TensorId,
    /// Class indices `[B]`, stored as f32.
    pub target: TensorId,
    /// Label smoothing in [0, 1) (timm's `--smoothing`).
    pub smoothing: f32,
    /// Batch B.
    pub b: usize,
    /// Classes K.
    pub k: usize,
    /// Backward mode: gradient of each row's loss; the output is dlogits.
    pub dy: Option<TensorId>,
}

impl Graph {
    /// Per-row label-smoothed cross-entropy.
    pub fn cross_entropy(&mut self, logits: TensorId, target: TensorId, smoothing: f32) -> Result<TensorId> {
        let (ls, ts) = (self.shape(logits).to_vec(), self.shape(target).to_vec());
        let [b, k] = ls.as_slice() else {
            return Err(Error::shape("cross_entropy", format!("logits {ls:?} must be [B, K]")));
        };
        if ts != [*b] {
            return Err(Error::shape("cross_entropy", format!("target {ts:?} must be [{b}]")));
        }
        if !(0.0..1.0).contains(&smoothing) {
            return Err(Error::shape("cross_entropy", format!("smoothing {smoothing} must be in [0, 1)")));
        }
        let op = CrossEntropy { logits, target, smoothing, b: *b, k: *k, dy: None };
        Ok(self.push(Box::new(op), &[*b]))
    }

    /// The batch mean of [`Graph::cross_entropy`], shape `[1]`.
    pub fn cross_entropy_mean(&mut self, logits: TensorId, target: TensorId, smoothing: f32) -> Result<TensorId> {
        let rows = self.cross_entropy(logits, target, smoothing)?;
        let b = self.numel(rows);
        let total = self.sum_rows_as(rows, b, 1)?;
        self.scale(total, 1.0 / b as f32)
    }
}

impl Op for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.logits), Some(self.target), self.dy]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let key = KernelKey::new("cross_entropy", "main")
            .u("B", u32_of("cross_entropy", "B", self.b)?)
            .u("K", u32_of("cross_entropy", "K", self.k)?)
            .with("S", Const::f32(self.smoothing))
            .u("MODE", self.dy.is_some() as u32);
        Dispatch::linear(key, self.b)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (x, t) = (get(self.logits), get(self.target));
        let dy = self.dy.map(get);
        let (k, s) = (self.k, self.smoothing as f64);
        let mut out = Vec::new();
        for b in 0..self.b {
            let row: Vec<f64> = x[b * k..(b + 1) * k].iter().map(|&v| v as f64).collect();
            let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
            let y = t[b] as usize;
            match &dy {
                None => {
                    let nll = lse - row[y];
                    let smooth = lse - row.iter().sum::<f64>() / k as f64;
                    out.push(((1.0 - s) * nll + s * smooth) as f32);
                }
                Some(dy) => {
                    for (j, v) in row.iter().enumerate() {
                        let target = s / k as f64 + if j == y { 1.0 - s } else { 0.0 };
                        out.push((((v - lse).exp() - target) * dy[b] as f64) as f32);
                    }
                }
            }
        }
        out
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        if self.dy.is_some() {
            return Err(Error::shape("cross_entropy_grad", "second derivatives are not supported"));
        }
        let op = CrossEntropy { dy: Some(dout), ..self.clone() };
        Ok(vec![Some(g.push(Box::new(op), &[self.b, self.k])), None, None])
    }
}
