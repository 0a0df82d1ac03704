//! The attention's row softmax of scaled scores (with Swin's relative position
//! bias and shifted-window mask added first), and its gradient as its own op.

use super::attention_bias::AttnBias;
use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::{Const, KernelKey};

/// Row softmax of scaled scores `[R, T] -> [R, TP]` (zero padding after T).
#[derive(Debug, Clone)]
pub struct Softmax {
    /// Forward: the raw scores `[R, T]` (q k^T, unscaled).
    pub s: TensorId,
    /// Rows R (Z * T, where Z = B * H, or windows x batch x heads for Swin).
    pub rows: usize,
    /// Tokens T: the length of a score row.
    pub t: usize,
    /// T rounded up to a multiple of 4: the row stride of the output.
    pub tp: usize,
    /// Scale applied to the scores before the bias and softmax (`D^-0.5`).
    pub scale: f32,
    /// Added to the scaled scores.
    pub bias: Option<AttnBias>,
}

/// The gradient of [`Softmax`] with respect to its (unscaled) scores:
/// `ds [R, T] = scale * p * (dp - sum_k p dp)`, from the forward output `p [R, TP]` and `dp`.
#[derive(Debug, Clone)]
pub struct SoftmaxGrad {
    /// The forward op (sizes and scale).
    pub fwd: Softmax,
    /// The forward output p `[R, TP]`.
    pub p: TensorId,
    /// Its gradient `[R, TP]`.
    pub dp: TensorId,
}

impl Softmax {
    fn key(&self, entry: &'static str) -> Result<KernelKey> {
        let u = |what: &str, v: usize| u32_of("softmax", what, v);
        Ok(KernelKey::new("softmax", entry)
            .u("R", u("rows", self.rows)?)
            .u("T", u("T", self.t)?)
            .u("TP", u("TP", self.tp)?)
            .with("SCALE", Const::f32(self.scale)))
    }
}

impl Op for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax_grad"
    }
    /// p (0), dp (1); position 2 (the forward's bias) is not bound.
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.p), Some(self.dp), None]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Ok(Dispatch::linear(self.fwd.key("backward")?, self.fwd.rows)?.without(&[2]))
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (s, dp) = (get(self.p), get(self.dp));
        let Softmax { rows, t, tp, scale, .. } = self.fwd;
        let mut out = vec![0f32; rows * t];
        for r in 0..rows {
            let dot: f32 = (0..t).map(|j| s[r * tp + j] * dp[r * tp + j]).sum();
            for j in 0..t {
                out[r * t + j] = scale * s[r * tp + j] * (dp[r * tp + j] - dot);
            }
        }
        out
    }
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("softmax_grad", "second derivatives are not supported"))
    }
}

impl Op for Softmax {
    fn name(&self) -> &'static str {
        "softmax"
    }

    /// scores (0), bias (2, a dummy without one); position 1 (the gradient's dp) is not bound.
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.s), None, self.bias.map(|b| b.bias)]
    }

    fn backward(&self, g: &mut Graph, out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let op = SoftmaxGrad { fwd: self.clone(), p: out, dp: dout };
        let shape = g.shape(self.s).to_vec();
        let ds = g.push(Box::new(op), &shape);
        // The bias enters the logits unscaled: its gradient is ds / scale, summed over windows and batch.
        let dbias = match self.bias {
            Some(ab) => Some(g.bias_grad(ds, ab.heads, self.t, 1.0 / self.scale)?),
            None => None,
        };
        Ok(vec![Some(ds), None, dbias])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let u = |what: &str, v: usize| u32_of("softmax", what, v);
        let mut key = self.key("forward")?;
        if let Some(ab) = self.bias {
            key = key.u("BIAS", 1).u("NH", u("heads", ab.heads)?);
            if let Some(m) = ab.mask {
                key = key
                    .u("MASK", 1)
                    .u("NW", u("NW", m.nw)?)
                    .u("NWW", u("NWW", m.nww)?)
                    .u("WH", u("WH", m.wh)?)
                    .u("WW", u("WW", m.ww)?)
                    .u("HP", u("HP", m.hp)?)
                    .u("WP", u("WP", m.wp)?)
                    .u("SH", u("SH", m.sh)?)
                    .u("SW", u("SW", m.sw)?);
            }
        }
        Ok(Dispatch::linear(key, self.rows)?.without(&[1]))
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let s = get(self.s);
        let bias = self.bias.map(|b| get(b.bias)).unwrap_or_default();
        let mut out = vec![0f32; self.rows * self.tp];
        for r in 0..self.rows {
            let row = &s[r * self.t..(r + 1) * self.t];
            let logits: Vec<f32> =
                row.iter().enumerate().map(|(j, v)| v * self.scale + self.bias.map_or(0.0, |ab| ab.added(&bias, self.t, r, j))).collect();
            let mx = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = logits.iter().map(|v| (v - mx).exp()).collect();
            let sum: f32 = e.iter().sum();
            for (j, v) in e.iter().enumerate() {
                out[r * self.tp + j] = v / sum;
            }
        }
        out
    }
}
