//! Softmax cross-entropy with label smoothing (timm's
//! `LabelSmoothingCrossEntropy`; smoothing 0 is plain cross-entropy):
//! `logits [B, K]`, `target [B]` (class indices as f32) -> per-row loss `[B]`.
//! [`Graph::cross_entropy_mean`] adds the batch mean, a `[1]` tensor. The
//! gradient is its own op, [`CrossEntropyGrad`].

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::{Const, KernelKey};

/// Rows and classes of a cross-entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossEntropyDims {
    /// Rows (images) B.
    pub batch: usize,
    /// Classes K.
    pub classes: usize,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct CrossEntropy {
    /// Logits `[B, K]`.
    pub logits: TensorId,
    /// Class indices `[B]`, stored as f32.
    pub target: TensorId,
    /// Label smoothing in [0, 1) (timm's `--smoothing`).
    pub smoothing: f32,
    /// Sizes.
    pub dims: CrossEntropyDims,
}

/// `dlogits [B, K]` from the gradient of each row's loss `dy [B]`.
#[derive(Debug, Clone)]
pub struct CrossEntropyGrad {
    /// The forward op's logits, target and smoothing.
    pub fwd: CrossEntropy,
    /// Gradient of each row's loss `[B]`.
    pub dy: TensorId,
}

impl CrossEntropy {
    fn key(&self, entry: &'static str) -> Result<KernelKey> {
        Ok(KernelKey::new("cross_entropy", entry)
            .u("B", u32_of("cross_entropy", "B", self.dims.batch)?)
            .u("K", u32_of("cross_entropy", "K", self.dims.classes)?)
            .with("S", Const::f32(self.smoothing)))
    }

    /// Per row: (log-sum-exp, sum of logits), in f64.
    fn rows(&self, x: &[f32]) -> Vec<(Vec<f64>, f64)> {
        let k = self.dims.classes;
        (0..self.dims.batch)
            .map(|b| {
                let row: Vec<f64> = x[b * k..(b + 1) * k].iter().map(|&v| v as f64).collect();
                let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
                (row, lse)
            })
            .collect()
    }
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
        let op = CrossEntropy { logits, target, smoothing, dims: CrossEntropyDims { batch: *b, classes: *k } };
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
        vec![Some(self.logits), Some(self.target)]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.key("forward")?, self.dims.batch)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (x, t) = (get(self.logits), get(self.target));
        let (k, s) = (self.dims.classes, self.smoothing as f64);
        let rows = self.rows(&x);
        rows.iter()
            .zip(&t)
            .map(|((row, lse), &y)| {
                let nll = lse - row[y as usize];
                let smooth = lse - row.iter().sum::<f64>() / k as f64;
                ((1.0 - s) * nll + s * smooth) as f32
            })
            .collect()
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let op = CrossEntropyGrad { fwd: self.clone(), dy: dout };
        Ok(vec![Some(g.push(Box::new(op), &[self.dims.batch, self.dims.classes])), None])
    }
}

impl Op for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "cross_entropy_grad"
    }

    /// logits (0), labels (1), dy (2); dlogits is the output (3).
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.fwd.logits), Some(self.fwd.target), Some(self.dy)]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.fwd.key("backward")?, self.fwd.dims.batch)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (x, t, dy) = (get(self.fwd.logits), get(self.fwd.target), get(self.dy));
        let (k, s) = (self.fwd.dims.classes, self.fwd.smoothing as f64);
        let mut out = Vec::with_capacity(x.len());
        for (b, (row, lse)) in self.fwd.rows(&x).iter().enumerate() {
            let y = t[b] as usize;
            for (j, v) in row.iter().enumerate() {
                let target = s / k as f64 + if j == y { 1.0 - s } else { 0.0 };
                out.push((((v - lse).exp() - target) * dy[b] as f64) as f32);
            }
        }
        out
    }

    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("cross_entropy_grad", "second derivatives are not supported"))
    }
}
