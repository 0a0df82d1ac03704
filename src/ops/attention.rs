//! Multi-head self-attention core: `qkv [B, T, 3C] -> [B, T, C]`, C = H * D.
//! softmax(q k^T * D^-0.5) v per head, with the row max subtracted; heads are
//! merged back in timm's order (`transpose(1, 2).reshape(B, T, C)`).
//!
//! Two implementations behind one builder, [`Graph::attention`]:
//! - decomposed (default): split heads -> bmm (q k^T) -> scaled softmax -> bmm
//!   (p v, writing the heads merged: `Graph::bmm_heads`), so the fast matmul
//!   kernels do the arithmetic;
//! - fused (`attention.wgsl`, online softmax, one invocation per query row):
//!   used when the [B*H, T, T] score matrix would not fit one storage binding.

use super::attention_bias::AttnBias;
use super::softmax::Softmax;
use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::{Const, KernelKey};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Attention {
    /// Input `qkv [B, T, 3C]`: q, k, v each `[H, D]` per token, in timm's layout.
    pub qkv: TensorId,
    /// Batch B.
    pub b: usize,
    /// Tokens T.
    pub t: usize,
    /// Heads H.
    pub heads: usize,
    /// Head dim D.
    pub head_dim: usize,
    /// Score scale, `D^-0.5`.
    pub scale: f32,
}

/// Largest score matrix the decomposed path builds (WebGPU's default storage binding).
const MAX_SCORES_BYTES: usize = 128 << 20;

impl Graph {
    /// Attention over `qkv [B, T, 3 * heads * head_dim]`.
    pub fn attention(&mut self, qkv: TensorId, heads: usize) -> Result<TensorId> {
        self.attention_biased(qkv, heads, None)
    }

    /// Attention whose scaled scores get `bias` added before the softmax
    /// (Swin's relative position bias and shifted-window mask).
    pub fn attention_biased(&mut self, qkv: TensorId, heads: usize, bias: Option<AttnBias>) -> Result<TensorId> {
        self.attention_scaled(qkv, heads, bias, None)
    }

    /// Attention with an explicit score scale (`None`: `head_dim^-0.5`). T2T's
    /// token transformers scale by their input width's `dim^-0.5`, not the head's.
    pub fn attention_scaled(&mut self, qkv: TensorId, heads: usize, bias: Option<AttnBias>, scale: Option<f32>) -> Result<TensorId> {
        let (b, t, head_dim) = self.attention_dims(qkv, heads)?;
        let tp = t.div_ceil(4) * 4;
        if let Some(ab) = bias {
            if self.shape(ab.bias) != [heads, t, t] {
                return Err(Error::shape("attention", format!("bias {:?} must be [{heads}, {t}, {t}]", self.shape(ab.bias))));
            }
        } else if b * heads * t * tp * 4 > MAX_SCORES_BYTES && scale.is_none() {
            return self.attention_fused(qkv, heads);
        }
        let scale = scale.unwrap_or((head_dim as f32).powf(-0.5));
        let dims = HeadDims { b, t, tp, h: heads, d: head_dim };
        let z = b * heads;
        let (q, k, vt) = self.split_heads(qkv, dims);
        let s = self.bmm(q, k)?;
        let p = self.push(Box::new(Softmax { s, rows: z * t, t, tp, scale, bias }), &[z, t, tp]);
        // p . v writes the heads merged (no merge pass).
        self.bmm_heads(p, vt, heads)
    }

    /// DynamicViT's training attention: `softmax_with_policy` over the keys
    /// ([`Graph::masked_softmax`], `policy [B, T]`: 1 kept, 0 dropped; a dropped
    /// key stays visible to itself) of `(q k^T) * head_dim^-0.5`, unpadded
    /// (`T` keys), then `@ v`.
    pub fn attention_policy(&mut self, qkv: TensorId, heads: usize, policy: TensorId) -> Result<TensorId> {
        let (b, t, head_dim) = self.attention_dims(qkv, heads)?;
        let dims = HeadDims { b, t, tp: t, h: heads, d: head_dim };
        let (q, k, vt) = self.split_heads(qkv, dims);
        let s = self.bmm(q, k)?;
        let s = self.scale(s, (head_dim as f32).powf(-0.5))?;
        let p = self.masked_softmax(s, policy)?;
        // p . v writes the heads merged (no merge pass).
        self.bmm_heads(p, vt, heads)
    }

    /// DVT's attention with relation reuse: the scaled scores `a = (q k^T) * head_dim^-0.5`,
    /// plus `rel_in [B*H, T, T]` when given, are returned beside the output (the stage's
    /// relations, the next stage's reuse input), then `softmax(a) @ v`. Returns (out, a).
    pub fn attention_relation(&mut self, qkv: TensorId, heads: usize, rel_in: Option<TensorId>) -> Result<(TensorId, TensorId)> {
        let (b, t, head_dim) = self.attention_dims(qkv, heads)?;
        let tp = t.div_ceil(4) * 4;
        let dims = HeadDims { b, t, tp, h: heads, d: head_dim };
        let z = b * heads;
        let (q, k, vt) = self.split_heads(qkv, dims);
        let s = self.bmm(q, k)?;
        let mut a = self.scale(s, (head_dim as f32).powf(-0.5))?;
        if let Some(r) = rel_in {
            a = self.add_scale(a, r, 1.0)?;
        }
        let p = self.push(Box::new(Softmax { s: a, rows: z * t, t, tp, scale: 1.0, bias: None }), &[z, t, tp]);
        Ok((self.bmm_heads(p, vt, heads)?, a))
    }

    /// Attention with the fused online-softmax kernel.
    pub fn attention_fused(&mut self, qkv: TensorId, heads: usize) -> Result<TensorId> {
        let (b, t, head_dim) = self.attention_dims(qkv, heads)?;
        let scale = (head_dim as f32).powf(-0.5);
        let op = Attention { qkv, b, t, heads, head_dim, scale };
        Ok(self.push(Box::new(op), &[b, t, heads * head_dim]))
    }

    /// q, k `[B*H, T, D]` and v transposed `[B*H, D, TP]` (zero columns past T) of `qkv`.
    fn split_heads(&mut self, qkv: TensorId, dims: HeadDims) -> (TensorId, TensorId, TensorId) {
        let q = self.head_layout(qkv, HeadsMode::Split(0), dims);
        let k = self.head_layout(qkv, HeadsMode::Split(1), dims);
        let vt = self.head_layout(qkv, HeadsMode::SplitVt, dims);
        (q, k, vt)
    }

    /// One head-layout change of `x` ([`HeadsMode`]; the output shape follows from it).
    pub(crate) fn head_layout(&mut self, x: TensorId, mode: HeadsMode, dims: HeadDims) -> TensorId {
        let HeadDims { b, t, tp, h, d } = dims;
        let shape = match mode {
            HeadsMode::Split(_) | HeadsMode::MergeGrad => [b * h, t, d],
            HeadsMode::SplitVt => [b * h, d, tp],
            HeadsMode::Merge => [b, t, h * d],
            HeadsMode::SplitGrad(_) | HeadsMode::SplitVtGrad => [b, t, 3 * h * d],
        };
        self.push(Box::new(Heads { x, mode, dims, acc: None }), &shape)
    }

    /// (B, T, D) of `qkv [B, T, 3 * heads * D]`.
    fn attention_dims(&self, qkv: TensorId, heads: usize) -> Result<(usize, usize, usize)> {
        let s = self.shape(qkv);
        let [b, t, c3] = s else {
            return Err(Error::shape("attention", format!("qkv {s:?} must be [B, T, 3C]")));
        };
        if heads == 0 || c3 % (3 * heads) != 0 {
            return Err(Error::shape("attention", format!("qkv {s:?} does not split into 3 x {heads} heads")));
        }
        Ok((*b, *t, c3 / (3 * heads)))
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
                    let scores: Vec<f32> =
                        (0..t).map(|j| (0..d).map(|x| at(bi, i, 0, hi, x) * self.scale * at(bi, j, 1, hi, x)).sum()).collect();
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

/// Sizes shared by the head layout ops.
#[derive(Debug, Clone, Copy)]
pub struct HeadDims {
    /// Batch B.
    pub b: usize,
    /// Tokens T.
    pub t: usize,
    /// T rounded up to a multiple of 4 (the K of the p . v product).
    pub tp: usize,
    /// Heads H.
    pub h: usize,
    /// Head dim D.
    pub d: usize,
}

/// What a [`Heads`] op does (see shaders/heads.wgsl).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadsMode {
    /// qkv -> q (0) or k (1) as [B*H, T, D].
    Split(usize),
    /// qkv -> v transposed and padded, [B*H, D, TP].
    SplitVt,
    /// [B*H, T, D] -> [B, T, H*D].
    Merge,
    /// Backward of `Split(p)`: [B*H, T, D] -> d qkv [B, T, 3C] (zeros outside part p).
    SplitGrad(usize),
    /// Backward of `SplitVt`: [B*H, D, TP] -> d qkv [B, T, 3C].
    SplitVtGrad,
    /// Backward of `Merge`: [B, T, H*D] -> [B*H, T, D].
    MergeGrad,
}

/// The shader's `MODE`; mirrors `HEADS_SPLIT` .. `HEADS_MERGE_GRAD` in `shaders/heads.wgsl`.
fn heads_code(mode: HeadsMode) -> u32 {
    match mode {
        HeadsMode::Split(_) => 0,
        HeadsMode::SplitVt => 1,
        HeadsMode::Merge => 2,
        HeadsMode::SplitGrad(_) => 3,
        HeadsMode::SplitVtGrad => 4,
        HeadsMode::MergeGrad => 5,
    }
}

/// Head layout changes around the attention matmuls.
#[derive(Debug, Clone)]
pub struct Heads {
    /// The input, shaped as [`HeadsMode`] says for the mode.
    pub x: TensorId,
    /// Which layout change.
    pub mode: HeadsMode,
    /// B, T, TP, H, D.
    pub dims: HeadDims,
    /// Added to the output (a gradient sum folded into the scatter; the
    /// `SplitGrad` / `SplitVtGrad` modes only).
    pub acc: Option<TensorId>,
}

impl Op for Heads {
    fn name(&self) -> &'static str {
        "heads"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), self.acc]
    }

    fn sum_into(&mut self, prev: TensorId) -> bool {
        let scatter = matches!(self.mode, HeadsMode::SplitGrad(_) | HeadsMode::SplitVtGrad);
        if !scatter || self.acc.is_some() {
            return false;
        }
        self.acc = Some(prev);
        true
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let HeadDims { b, t, tp, h, d } = self.dims;
        let (part, n) = match self.mode {
            HeadsMode::Split(p) => (p as u32, b * h * t * d),
            HeadsMode::SplitVt => (2, b * h * d * tp),
            HeadsMode::Merge => (0, b * t * h * d),
            HeadsMode::SplitGrad(p) => (p as u32, b * t * 3 * h * d),
            HeadsMode::SplitVtGrad => (2, b * t * 3 * h * d),
            HeadsMode::MergeGrad => (0, b * h * t * d),
        };
        let mode = heads_code(self.mode);
        let key = KernelKey::new("heads", "main")
            .u("B", u32_of("heads", "B", b)?)
            .u("T", u32_of("heads", "T", t)?)
            .u("TP", u32_of("heads", "TP", tp)?)
            .u("H", u32_of("heads", "H", h)?)
            .u("D", u32_of("heads", "D", d)?)
            .u("MODE", mode)
            .u("PART", part)
            .u("HAS_ACC", self.acc.is_some() as u32);
        Dispatch::linear(key, n)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let HeadDims { b, t, tp, h, d } = self.dims;
        let c = h * d;
        let qkv = |bi: usize, ti: usize, part: usize, hi: usize, di: usize| x[(bi * t + ti) * 3 * c + part * c + hi * d + di];
        let mut out = Vec::new();
        match self.mode {
            HeadsMode::Split(p) => {
                for bi in 0..b {
                    for hi in 0..h {
                        for ti in 0..t {
                            out.extend((0..d).map(|di| qkv(bi, ti, p, hi, di)));
                        }
                    }
                }
            }
            HeadsMode::SplitVt => {
                for bi in 0..b {
                    for hi in 0..h {
                        for di in 0..d {
                            out.extend((0..tp).map(|ti| if ti < t { qkv(bi, ti, 2, hi, di) } else { 0.0 }));
                        }
                    }
                }
            }
            HeadsMode::Merge => {
                for bi in 0..b {
                    for ti in 0..t {
                        for hi in 0..h {
                            out.extend((0..d).map(|di| x[((bi * h + hi) * t + ti) * d + di]));
                        }
                    }
                }
            }
            HeadsMode::MergeGrad => {
                for bi in 0..b {
                    for hi in 0..h {
                        for ti in 0..t {
                            out.extend((0..d).map(|di| x[(bi * t + ti) * c + hi * d + di]));
                        }
                    }
                }
            }
            HeadsMode::SplitGrad(_) | HeadsMode::SplitVtGrad => {
                out = vec![0f32; b * t * 3 * c];
                for bi in 0..b {
                    for ti in 0..t {
                        for hi in 0..h {
                            for di in 0..d {
                                let z = bi * h + hi;
                                let (part, v) = match self.mode {
                                    HeadsMode::SplitGrad(p) => (p, x[(z * t + ti) * d + di]),
                                    _ => (2, x[(z * d + di) * tp + ti]),
                                };
                                out[(bi * t + ti) * 3 * c + part * c + hi * d + di] = v;
                            }
                        }
                    }
                }
                if let Some(acc) = self.acc {
                    out.iter_mut().zip(get(acc)).for_each(|(o, a)| *o += a);
                }
            }
        }
        out
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let mode = match self.mode {
            HeadsMode::Split(p) => HeadsMode::SplitGrad(p),
            HeadsMode::SplitVt => HeadsMode::SplitVtGrad,
            HeadsMode::Merge => HeadsMode::MergeGrad,
            _ => return Err(Error::shape("heads", "second derivatives are not supported")),
        };
        Ok(vec![Some(g.head_layout(dout, mode, self.dims))])
    }
}

/// Plain attention on the CPU, straight from the definition (tests).
pub fn reference(qkv: &[f32], b: usize, t: usize, h: usize, d: usize) -> Vec<f32> {
    let op = Attention { qkv: 0, b, t, heads: h, head_dim: d, scale: (d as f32).powf(-0.5) };
    op.cpu(&Graph::new(), &|_| qkv.to_vec())
}
