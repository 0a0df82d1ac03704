//! Token pooling for the classifier: `x [B, T, C] -> [B, C]`.
//!
//! The backward is its own op, [`PoolGrad`] (`dx [B, T, C]`, one value per
//! input element; max sends the gradient to the first maximal token).

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

impl PoolMode {
    /// The token taken, or the first token reduced (the shader's `START`).
    pub fn start(self) -> usize {
        match self {
            PoolMode::Token(i) | PoolMode::Avg(i) | PoolMode::Max(i) => i,
        }
    }
}

/// The shader's `KIND` constant; mirrors `KIND_TOKEN` / `KIND_AVG` / `KIND_MAX` in `shaders/pool.wgsl`.
fn kind_code(mode: PoolMode) -> u32 {
    match mode {
        PoolMode::Token(_) => 0,
        PoolMode::Avg(_) => 1,
        PoolMode::Max(_) => 2,
    }
}

/// The sizes of a pooling: `x [B, T, C]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolDims {
    /// Images in the batch (B).
    pub batch: usize,
    /// Tokens per image (T).
    pub tokens: usize,
    /// Channels per token (C).
    pub channels: usize,
}

impl PoolDims {
    /// The shader's constants.
    fn key(&self, op: &str, entry: &'static str, mode: PoolMode) -> Result<KernelKey> {
        Ok(KernelKey::new("pool", entry)
            .u("B", u32_of(op, "B", self.batch)?)
            .u("T", u32_of(op, "T", self.tokens)?)
            .u("C", u32_of(op, "C", self.channels)?)
            .u("KIND", kind_code(mode))
            .u("START", u32_of(op, "start", mode.start())?))
    }
}

/// See the module docs: the forward pooling.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The tokens `[B, T, C]`.
    pub x: TensorId,
    /// Which reduction, and from which token.
    pub mode: PoolMode,
    /// The sizes.
    pub dims: PoolDims,
}

/// The backward of [`Pool`]: `dx [B, T, C]` from `x` and `dy [B, C]`.
#[derive(Debug, Clone)]
pub struct PoolGrad {
    /// The forward input `[B, T, C]` (read for the argmax).
    pub x: TensorId,
    /// The gradient of the pooled tokens `[B, C]`.
    pub dy: TensorId,
    /// The forward's reduction.
    pub mode: PoolMode,
    /// The forward's sizes.
    pub dims: PoolDims,
}

impl Graph {
    /// Pools `x [B, T, C]` to `[B, C]`.
    pub fn pool(&mut self, x: TensorId, mode: PoolMode) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let [batch, tokens, channels] = s.as_slice() else {
            return Err(Error::shape("pool", format!("x {s:?} must be [B, T, C]")));
        };
        if mode.start() >= *tokens {
            return Err(Error::shape("pool", format!("{mode:?} needs more than {tokens} tokens")));
        }
        let dims = PoolDims { batch: *batch, tokens: *tokens, channels: *channels };
        Ok(self.push(Box::new(Pool { x, mode, dims }), &[dims.batch, dims.channels]))
    }
}

impl Op for Pool {
    fn name(&self) -> &'static str {
        "pool"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let shape = g.shape(self.x).to_vec();
        let grad = PoolGrad { x: self.x, dy: dout, mode: self.mode, dims: self.dims };
        Ok(vec![Some(g.push(Box::new(grad), &shape))])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Dispatch::linear(d.key("pool", "forward", self.mode)?, d.batch * d.channels)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let PoolDims { batch: b, tokens: t, channels: c } = self.dims;
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

impl Op for PoolGrad {
    fn name(&self) -> &'static str {
        "pool_grad"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), Some(self.dy)]
    }

    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("pool_grad", "second derivatives are not supported"))
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Dispatch::linear(d.key("pool_grad", "backward", self.mode)?, d.batch * d.tokens * d.channels)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (x, dy) = (get(self.x), get(self.dy));
        let PoolDims { batch: b, tokens: t, channels: c } = self.dims;
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
        out
    }
}
