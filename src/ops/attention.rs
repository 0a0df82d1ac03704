//! Multi-head self-attention core: `qkv [B, T, 3C] -> [B, T, C]`, C = H * D.
//! softmax(q k^T * D^-0.5) v per head, with the row max subtracted; heads are
//! merged back in timm's order (`transpose(1, 2).reshape(B, T, C)`).

use super::u32_of;
use crate::error::{Error, Result};
use crate::gpu::{Const, KernelKey};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Attention {
    pub qkv: TensorId,
    pub b: usize,
    pub t: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub scale: f32,
}

impl Graph {
    /// Attention over `qkv [B, T, 3 * heads * head_dim]`.
    pub fn attention(&mut self, qkv: TensorId, heads: usize) -> Result<TensorId> {
        let s = self.shape(qkv).to_vec();
        let [b, t, c3] = s.as_slice() else {
            return Err(Error::shape("attention", format!("qkv {s:?} must be [B, T, 3C]")));
        };
        if heads == 0 || c3 % (3 * heads) != 0 {
            return Err(Error::shape("attention", format!("qkv {s:?} does not split into 3 x {heads} heads")));
        }
        let head_dim = c3 / (3 * heads);
        let scale = (head_dim as f32).powf(-0.5);
        let op = Attention { qkv, b: *b, t: *t, heads, head_dim, scale };
        Ok(self.push(Box::new(op), &[*b, *t, c3 / 3]))
    }
}

impl Op for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.qkv)]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let key = KernelKey::new("attention", "main")
            .u("B", u32_of("attention", "B", self.b)?)
            .u("T", u32_of("attention", "T", self.t)?)
            .u("H", u32_of("attention", "H", self.heads)?)
            .u("HEAD_DIM", u32_of("attention", "D", self.head_dim)?)
            .with("SCALE", Const::f32(self.scale));
        Dispatch::linear(key, self.b * self.heads * self.t)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let qkv = get(self.qkv);
        let (b, t, h, d) = (self.b, self.t, self.heads, self.head_dim);
        let c = h * d;
        let at = |bi: usize, ti: usize, part: usize, hi: usize, di: usize| qkv[(bi * t + ti) * 3 * c + part * c + hi * d + di];
        let mut out = vec![0f32; b * t * c];
        for bi in 0..b {
            for hi in 0..h {
                for i in 0..t {
                    let scores: Vec<f32> = (0..t)
                        .map(|j| (0..d).map(|x| at(bi, i, 0, hi, x) * self.scale * at(bi, j, 1, hi, x)).sum())
                        .collect();
                    let mx = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
                    let sum: f32 = e.iter().sum();
                    for x in 0..d {
                        let v: f32 = (0..t).map(|j| e[j] * at(bi, j, 2, hi, x)).sum();
                        out[(bi * t + i) * c + hi * d + x] = v / sum;
                    }
                }
            }
        }
        out
    }
}
