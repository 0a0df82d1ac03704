//! LayerNorm over the last dimension: `x [R, C] -> [R, C]`, f32 statistics,
//! biased variance, eps from the model config (timm ViT: 1e-6).

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::{Const, KernelKey};

/// See the module docs.
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
    /// Rows R: the product of all but the last dimension.
    pub rows: usize,
    /// Channels C normalised over.
    pub c: usize,
    /// Backward mode: the bias binding holds dy and the output is dx.
    pub dy: Option<TensorId>,
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
        let rows = xs.iter().product::<usize>() / c.max(1);
        Ok(self.push(Box::new(LayerNorm { x, weight, bias, eps, rows, c, dy: None }), &xs))
    }
}

impl Op for LayerNorm {
    fn name(&self) -> &'static str {
        "layernorm"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), Some(self.weight), Some(self.dy.unwrap_or(self.bias))]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let key = KernelKey::new("layernorm", "main")
            .u("R", u32_of("layernorm", "rows", self.rows)?)
            .u("C", u32_of("layernorm", "C", self.c)?)
            .with("EPS", Const::f32(self.eps))
            .u("MODE", self.dy.is_some() as u32);
        Dispatch::linear(key, self.rows)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (x, w) = (get(self.x), get(self.weight));
        let b = get(self.dy.unwrap_or(self.bias));
        let c = self.c;
        let mut out = vec![0f32; x.len()];
        for r in 0..self.rows {
            let row = &x[r * c..(r + 1) * c];
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
            let inv = 1.0 / (var + self.eps as f64).sqrt();
            let xhat: Vec<f64> = row.iter().map(|&v| (v as f64 - mean) * inv).collect();
            if self.dy.is_some() {
                let g: Vec<f64> = (0..c).map(|i| b[r * c + i] as f64 * w[i] as f64).collect();
                let mg = g.iter().sum::<f64>() / c as f64;
                let mgx = g.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / c as f64;
                for i in 0..c {
                    out[r * c + i] = (inv * (g[i] - mg - xhat[i] * mgx)) as f32;
                }
            } else {
                for i in 0..c {
                    out[r * c + i] = (xhat[i] * w[i] as f64 + b[i] as f64) as f32;
                }
            }
        }
        out
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        if self.dy.is_some() {
            return Err(Error::shape("layernorm_grad", "second derivatives are not supported"));
        }
        let xs = g.shape(self.x).to_vec();
        let dx = g.push(Box::new(LayerNorm { dy: Some(dout), ..self.clone() }), &xs);
        let ones = g.fill(&[self.c], 1.0)?;
        let zeros = g.fill(&[self.c], 0.0)?;
        let xhat = g.layernorm(self.x, ones, zeros, self.eps)?;
        let dyx = g.mul(dout, xhat)?;
        let dw = g.sum_rows(dyx)?;
        let db = g.sum_rows(dout)?;
        Ok(vec![Some(dx), Some(dw), Some(db)])
    }
}
