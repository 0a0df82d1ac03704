//! LayerNorm over the last dimension: `x [R, C] -> [R, C]`, f32 statistics,
//! biased variance, eps from the model config (timm ViT: 1e-6).
//!
//! The backward is its own op, [`LayerNormGrad`] (dx; the weight and bias
//! gradients are column sums, built from other ops).

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::{Const, KernelKey};

/// The sizes of a LayerNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerNormDims {
    /// Rows R: the product of all but the last dimension.
    pub rows: usize,
    /// Channels C normalised over.
    pub channels: usize,
}

impl LayerNormDims {
    /// The shader's constants.
    fn key(&self, op: &str, entry: &'static str, eps: f32) -> Result<KernelKey> {
        Ok(KernelKey::new("layernorm", entry)
            .u("R", u32_of(op, "rows", self.rows)?)
            .u("C", u32_of(op, "channels", self.channels)?)
            .with("EPS", Const::f32(eps)))
    }

    /// Calls `visit(row, 1 / sqrt(var + eps), xhat)` for each row of `x` (f64 statistics).
    fn for_each_row(&self, x: &[f32], eps: f32, mut visit: impl FnMut(usize, f64, Vec<f64>)) {
        let c = self.channels;
        for r in 0..self.rows {
            let row = &x[r * c..(r + 1) * c];
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
            let inv = 1.0 / (var + eps as f64).sqrt();
            visit(r, inv, row.iter().map(|&v| (v as f64 - mean) * inv).collect());
        }
    }
}

/// See the module docs: the forward LayerNorm.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    /// The input `[R, C]` (any shape whose last dimension is C).
    pub x: TensorId,
    /// Scale (timm's `{name}.weight`) `[C]`.
    pub weight: TensorId,
    /// Shift (timm's `{name}.bias`) `[C]`.
    pub bias: TensorId,
    /// Added to the variance before the square root.
    pub eps: f32,
    /// The sizes.
    pub dims: LayerNormDims,
}

/// The backward of [`LayerNorm`] with respect to `x`: `dx [R, C]` from `x`,
/// `weight` and `dy [R, C]`.
#[derive(Debug, Clone)]
pub struct LayerNormGrad {
    /// The forward input `[R, C]` (its statistics are recomputed).
    pub x: TensorId,
    /// The forward's scale `[C]`.
    pub weight: TensorId,
    /// The gradient of the output `[R, C]`.
    pub dy: TensorId,
    /// The forward's eps.
    pub eps: f32,
    /// The forward's sizes.
    pub dims: LayerNormDims,
}

impl Graph {
    /// LayerNorm of `x [.., C]` with `weight [C]`, `bias [C]`.
    pub fn layernorm(&mut self, x: TensorId, weight: TensorId, bias: TensorId, eps: f32) -> Result<TensorId> {
        let xs = self.shape(x).to_vec();
        let c = *xs.last().ok_or_else(|| Error::shape("layernorm", "x has no dimensions"))?;
        for t in [weight, bias] {
            if self.shape(t) != [c] {
                return Err(Error::shape("layernorm", format!("x {xs:?}: weight/bias {:?} must be [{c}]", self.shape(t))));
            }
        }
        let dims = LayerNormDims { rows: xs.iter().product::<usize>() / c.max(1), channels: c };
        Ok(self.push(Box::new(LayerNorm { x, weight, bias, eps, dims }), &xs))
    }
}

impl Op for LayerNorm {
    fn name(&self) -> &'static str {
        "layernorm"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), Some(self.weight), Some(self.bias)]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.dims.key("layernorm", "forward", self.eps)?, self.dims.rows)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (x, w, b) = (get(self.x), get(self.weight), get(self.bias));
        let c = self.dims.channels;
        let mut out = vec![0f32; x.len()];
        self.dims.for_each_row(&x, self.eps, |r, _inv, xhat| {
            for i in 0..c {
                out[r * c + i] = (xhat[i] * w[i] as f64 + b[i] as f64) as f32;
            }
        });
        out
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let xs = g.shape(self.x).to_vec();
        let grad = LayerNormGrad { x: self.x, weight: self.weight, dy: dout, eps: self.eps, dims: self.dims };
        let dx = g.push(Box::new(grad), &xs);
        let ones = g.fill(&[self.dims.channels], 1.0)?;
        let zeros = g.fill(&[self.dims.channels], 0.0)?;
        let xhat = g.layernorm(self.x, ones, zeros, self.eps)?;
        let dyx = g.mul(dout, xhat)?;
        let dw = g.sum_rows(dyx)?;
        let db = g.sum_rows(dout)?;
        Ok(vec![Some(dx), Some(dw), Some(db)])
    }
}

impl Op for LayerNormGrad {
    fn name(&self) -> &'static str {
        "layernorm_grad"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), Some(self.weight), Some(self.dy)]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.dims.key("layernorm_grad", "backward", self.eps)?, self.dims.rows)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (x, w, dy) = (get(self.x), get(self.weight), get(self.dy));
        let c = self.dims.channels;
        let mut out = vec![0f32; x.len()];
        self.dims.for_each_row(&x, self.eps, |r, inv, xhat| {
            let g: Vec<f64> = (0..c).map(|i| dy[r * c + i] as f64 * w[i] as f64).collect();
            let mg = g.iter().sum::<f64>() / c as f64;
            let mgx = g.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / c as f64;
            for i in 0..c {
                out[r * c + i] = (inv * (g[i] - mg - xhat[i] * mgx)) as f32;
            }
        });
        out
    }

    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("layernorm_grad", "second derivatives are not supported"))
    }
}
