//! Token pooling for the classifier: `x [B, T, C] -> [B, C]`.

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// How tokens are reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// Take one token (the class token is 0, DeiT's distillation token 1).
    Token(usize),
    /// Mean of tokens `start..T` (timm 'avg': after the prefix tokens).
    Avg(usize),
    /// Max of tokens `start..T` (timm 'max').
    Max(usize),
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The tokens `[B, T, C]` (forward input; read for max in backward mode too).
    pub x: TensorId,
    /// Which reduction, and from which token.
    pub mode: PoolMode,
    /// (B, T, C) of `x`.
    pub dims: [usize; 3],
    /// Backward mode: dy [B, C]; the output is dx [B, T, C].
    pub dy: Option<TensorId>,
}

impl Graph {
    /// Pools `x [B, T, C]` to `[B, C]`.
    pub fn pool(&mut self, x: TensorId, mode: PoolMode) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let [b, t, c] = s.as_slice() else {
            return Err(Error::shape("pool", format!("x {s:?} must be [B, T, C]")));
        };
        let start = match mode {
            PoolMode::Token(i) | PoolMode::Avg(i) | PoolMode::Max(i) => i,
        };
        if start >= *t {
            return Err(Error::shape("pool", format!("{mode:?} needs more than {t} tokens")));
        }
        let op = Pool { x, mode, dims: [*b, *t, *c], dy: None };
        Ok(self.push(Box::new(op), &[*b, *c]))
    }
}

impl Op for Pool {
    fn name(&self) -> &'static str {
        "pool"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), self.dy]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        if self.dy.is_some() {
            return Err(Error::shape("pool_grad", "second derivatives are not supported"));
        }
        let shape = g.shape(self.x).to_vec();
        Ok(vec![Some(g.push(Box::new(Pool { dy: Some(dout), ..self.clone() }), &shape)), None])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let [b, t, c] = self.dims;
        let (mode, start) = match self.mode {
            PoolMode::Token(i) => (0, i),
            PoolMode::Avg(i) => (1, i),
            PoolMode::Max(i) => (2, i),
        };
        let key = KernelKey::new("pool", "main")
            .u("B", u32_of("pool", "B", b)?)
            .u("T", u32_of("pool", "T", t)?)
            .u("C", u32_of("pool", "C", c)?)
            .u("MODE", mode + if self.dy.is_some() { 3 } else { 0 })
            .u("START", u32_of("pool", "start", start)?);
        Dispatch::linear(key, if self.dy.is_some() { b * t * c } else { b * c })
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let [b, t, c] = self.dims;
        if let Some(dy) = self.dy.map(get) {
            let mut out = vec![0f32; b * t * c];
            for bi in 0..b {
                for ci in 0..c {
                    let at = |ti: usize| x[(bi * t + ti) * c + ci];
                    let g = dy[bi * c + ci];
                    match self.mode {
                        PoolMode::Token(i) => out[(bi * t + i) * c + ci] = g,
                        PoolMode::Avg(s) => (s..t).for_each(|ti| out[(bi * t + ti) * c + ci] = g / (t - s) as f32),
                        PoolMode::Max(s) => {
                            let arg = (s..t).fold(s, |a, u| if at(u) > at(a) { u } else { a });
                            out[(bi * t + arg) * c + ci] = g;
                        }
                    }
                }
            }
            return out;
        }
        let mut out = vec![0f32; b * c];
        for bi in 0..b {
            for ci in 0..c {
                let at = |ti: usize| x[(bi * t + ti) * c + ci];
                out[bi * c + ci] = match self.mode {
                    PoolMode::Token(i) => at(i),
                    PoolMode::Avg(s) => (s..t).map(at).sum::<f32>() / (t - s) as f32,
                    PoolMode::Max(s) => (s..t).map(at).fold(f32::NEG_INFINITY, f32::max),
                };
            }
        }
        out
    }
}
