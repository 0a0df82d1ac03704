//! Strided 1-D pooling over the token axis (HVT's token downsampling):
//! `x [B, N, C] -> [B, N_out, C]`, as `torch.nn.MaxPool1d` / `AvgPool1d`
//! `(kernel_size = k, stride = s)` with no padding and floor mode applied to
//! each channel's token sequence:
//! `out[b, j, c] = reduce(x[b, s * j + i, c] for i in 0..k)`, `j < N_out =
//! (N - k) / s + 1`; trailing tokens that no window covers are dropped.
//!
//! The backward is its own op, [`TokenPoolGrad`], computed per input element
//! (each token gathers from the windows covering it, so overlapping windows
//! add up without atomics); max routes a window's gradient to its first
//! maximal token, as PyTorch does.

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// How a window of tokens is reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPoolKind {
    /// The window's maximum (`MaxPool1d`).
    Max,
    /// The window's mean (`AvgPool1d` without padding).
    Avg,
}

/// The shader's `KIND` constant; mirrors `KIND_MAX` / `KIND_AVG` in `shaders/token_pool.wgsl`.
fn kind_code(kind: TokenPoolKind) -> u32 {
    match kind {
        TokenPoolKind::Max => 0,
        TokenPoolKind::Avg => 1,
    }
}

/// The sizes of a token pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPoolDims {
    /// Images in the batch.
    pub batch: usize,
    /// Input tokens per image (N).
    pub tokens: usize,
    /// Channels per token (C).
    pub channels: usize,
    /// Tokens per window (k).
    pub kernel: usize,
    /// Tokens between window starts (s).
    pub stride: usize,
}

impl TokenPoolDims {
    /// Output tokens per image: `(N - k) / s + 1` (floor mode); 0 when no
    /// window fits (`k > N`) or the kernel or stride is 0.
    pub fn out_tokens(&self) -> usize {
        if self.kernel == 0 || self.stride == 0 || self.kernel > self.tokens {
            return 0;
        }
        (self.tokens - self.kernel) / self.stride + 1
    }

    /// The shader's size constants.
    fn key(&self, op: &str, entry: &'static str, kind: TokenPoolKind) -> Result<KernelKey> {
        Ok(KernelKey::new("token_pool", entry)
            .u("B", u32_of(op, "batch", self.batch)?)
            .u("N", u32_of(op, "tokens", self.tokens)?)
            .u("C", u32_of(op, "channels", self.channels)?)
            .u("K", u32_of(op, "kernel", self.kernel)?)
            .u("S", u32_of(op, "stride", self.stride)?)
            .u("N_OUT", u32_of(op, "out tokens", self.out_tokens())?)
            .u("KIND", kind_code(kind)))
    }

    /// The first token (absolute index) holding the maximum of window `j` of
    /// image `b`, channel `c`, in `x [B, N, C]` (strict `>`: the earliest of equals).
    fn argmax(&self, x: &[f32], b: usize, j: usize, c: usize) -> usize {
        let at = |t: usize| x[(b * self.tokens + t) * self.channels + c];
        let t0 = j * self.stride;
        (t0 + 1..t0 + self.kernel).fold(t0, |a, t| if at(t) > at(a) { t } else { a })
    }
}

/// See the module docs: the forward pooling.
#[derive(Debug, Clone)]
pub struct TokenPool {
    /// The tokens `[B, N, C]`.
    pub x: TensorId,
    /// Max or mean over each window.
    pub kind: TokenPoolKind,
    /// The sizes.
    pub dims: TokenPoolDims,
}

/// The backward of [`TokenPool`]: `dx [B, N, C]` from `x` and `dy [B, N_out, C]`.
#[derive(Debug, Clone)]
pub struct TokenPoolGrad {
    /// The forward input `[B, N, C]` (read for the argmax).
    pub x: TensorId,
    /// The gradient of the pooled tokens `[B, N_out, C]`.
    pub dy: TensorId,
    /// The forward's reduction.
    pub kind: TokenPoolKind,
    /// The forward's sizes.
    pub dims: TokenPoolDims,
}

impl Graph {
    /// Pools `x [B, N, C]` over its tokens with windows of `kernel` tokens
    /// every `stride` tokens: `[B, (N - kernel) / stride + 1, C]`.
    pub fn token_pool(&mut self, x: TensorId, kind: TokenPoolKind, kernel: usize, stride: usize) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let [batch, tokens, channels] = s.as_slice() else {
            return Err(Error::shape("token_pool", format!("x {s:?} must be [B, N, C]")));
        };
        if kernel == 0 || stride == 0 {
            return Err(Error::shape("token_pool", format!("kernel {kernel} and stride {stride} must be at least 1")));
        }
        if kernel > *tokens {
            return Err(Error::shape("token_pool", format!("kernel {kernel} is larger than the {tokens} tokens of x {s:?}")));
        }
        let dims = TokenPoolDims { batch: *batch, tokens: *tokens, channels: *channels, kernel, stride };
        let op = TokenPool { x, kind, dims };
        Ok(self.push(Box::new(op), &[dims.batch, dims.out_tokens(), dims.channels]))
    }
}

impl Op for TokenPool {
    fn name(&self) -> &'static str {
        "token_pool"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let shape = g.shape(self.x).to_vec();
        let grad = TokenPoolGrad { x: self.x, dy: dout, kind: self.kind, dims: self.dims };
        Ok(vec![Some(g.push(Box::new(grad), &shape))])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        let n = d.batch * d.out_tokens() * d.channels;
        u32_of("token_pool", "B * N_out * C", n)?;
        Dispatch::linear(d.key("token_pool", "forward", self.kind)?, n)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let d = self.dims;
        let (n, no, c) = (d.tokens, d.out_tokens(), d.channels);
        let mut out = vec![0f32; d.batch * no * c];
        for b in 0..d.batch {
            for j in 0..no {
                for ci in 0..c {
                    out[(b * no + j) * c + ci] = match self.kind {
                        TokenPoolKind::Max => x[(b * n + d.argmax(&x, b, j, ci)) * c + ci],
                        TokenPoolKind::Avg => (0..d.kernel).map(|i| x[(b * n + j * d.stride + i) * c + ci]).sum::<f32>() / d.kernel as f32,
                    };
                }
            }
        }
        out
    }
}

impl Op for TokenPoolGrad {
    fn name(&self) -> &'static str {
        "token_pool_grad"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), Some(self.dy)]
    }

    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("token_pool_grad", "second derivatives are not supported"))
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        let n = d.batch * d.tokens * d.channels;
        u32_of("token_pool_grad", "B * N * C", n)?;
        Dispatch::linear(d.key("token_pool_grad", "backward", self.kind)?, n)
    }

    /// Scatter form (each window adds to its tokens), an independent check
    /// of the kernel's gather form.
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (x, dy) = (get(self.x), get(self.dy));
        let d = self.dims;
        let (n, no, c) = (d.tokens, d.out_tokens(), d.channels);
        let mut dx = vec![0f32; d.batch * n * c];
        for b in 0..d.batch {
            for j in 0..no {
                for ci in 0..c {
                    let g = dy[(b * no + j) * c + ci];
                    match self.kind {
                        TokenPoolKind::Max => dx[(b * n + d.argmax(&x, b, j, ci)) * c + ci] += g,
                        TokenPoolKind::Avg => {
                            for i in 0..d.kernel {
                                dx[(b * n + j * d.stride + i) * c + ci] += g / d.kernel as f32;
                            }
                        }
                    }
                }
            }
        }
        dx
    }
}
