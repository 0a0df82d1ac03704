//! Choosing tokens by score, with u32 indices (DynamicViT's pruning):
//! per-row top-k ([`TopK`]: values and indices, one node with two outputs),
//! its backward ([`ScatterRows`]: two launches, zero then scatter), and token
//! gathers by index ([`GatherTokens`], backward [`GatherTokensGrad`]).
//! Kernels: `shaders/select.wgsl`.

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{f32_bits_as_u32, u32_as_f32_bits, DType, DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// Rows of scores and how many to keep per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopKDims {
    /// Independent rows (every leading dimension).
    pub rows: usize,
    /// Scores per row.
    pub cols: usize,
    /// Kept per row (1..=cols).
    pub k: usize,
}

impl TopKDims {
    fn key(&self, entry: &'static str) -> Result<KernelKey> {
        Ok(KernelKey::new("select", entry)
            .u("ROWS", u32_of("top_k", "rows", self.rows)?)
            .u("COLS", u32_of("top_k", "cols", self.cols)?)
            .u("K", u32_of("top_k", "k", self.k)?))
    }
}

/// The `k` largest values of each row of `x [.., N]`, descending, and their
/// column indices (u32); ties go to the lower index (`out`: values `[.., k]`,
/// extra output: indices `[.., k]`).
#[derive(Debug, Clone)]
pub struct TopK {
    /// The scores.
    pub x: TensorId,
    /// Sizes.
    pub dims: TopKDims,
}

/// `dst [R, N]`: zeros, except `dst[r, idx[r, j]] = src[r, j]` (indices distinct
/// within a row). Two launches: zero the output, then scatter.
#[derive(Debug, Clone)]
pub struct ScatterRows {
    /// Values `[R, k]`.
    pub src: TensorId,
    /// Column of each value, u32 `[R, k]`.
    pub idx: TensorId,
    /// Sizes (`cols` is N).
    pub dims: TopKDims,
}

/// Tokens, tokens picked and channels of a gather.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatherDims {
    /// Images.
    pub batch: usize,
    /// Tokens per image in the source (N).
    pub tokens: usize,
    /// Tokens picked per image (K).
    pub picked: usize,
    /// Channels per token (C).
    pub channels: usize,
    /// Leading tokens copied as they are before the picked ones (P; DynamicViT's class
    /// token); indices count from the first token after them.
    pub prefix: usize,
}

impl GatherDims {
    fn key(&self, entry: &'static str) -> Result<KernelKey> {
        Ok(KernelKey::new("select", entry)
            .u("B", u32_of("gather_tokens", "batch", self.batch)?)
            .u("N", u32_of("gather_tokens", "tokens", self.tokens)?)
            .u("K", u32_of("gather_tokens", "picked", self.picked)?)
            .u("C", u32_of("gather_tokens", "channels", self.channels)?)
            .u("P", u32_of("gather_tokens", "prefix", self.prefix)?))
    }

    /// Output rows per image: `P + K`.
    fn rows(&self) -> usize {
        self.prefix + self.picked
    }
}

/// `out[b, k, c] = x[b, idx[b, k], c]` for `x [B, N, C]`, `idx [B, K]` (u32);
/// an index `>= N` gives zeros. With a prefix P the first P tokens come first
/// unchanged and the indices count from token P: `out [B, P + K, C]`.
#[derive(Debug, Clone)]
pub struct GatherTokens {
    /// The tokens.
    pub x: TensorId,
    /// Token of each output row, u32 `[B, K]`.
    pub idx: TensorId,
    /// Sizes.
    pub dims: GatherDims,
}

/// The gradient of [`GatherTokens`]: `dx[b, n, c] = sum over k with idx[b, k] == n of dy[b, k, c]`.
#[derive(Debug, Clone)]
pub struct GatherTokensGrad {
    /// `dy [B, K, C]`.
    pub dy: TensorId,
    /// The gather's indices.
    pub idx: TensorId,
    /// Sizes.
    pub dims: GatherDims,
}

impl Graph {
    /// The `k` largest entries of each row of `x [.., N]` and their indices:
    /// `(values [.., k] f32, indices [.., k] u32)`, descending, ties to the lower index.
    pub fn top_k(&mut self, x: TensorId, k: usize) -> Result<(TensorId, TensorId)> {
        let s = self.shape(x).to_vec();
        let Some((&cols, lead)) = s.split_last() else {
            return Err(Error::shape("top_k", "x must have at least one dimension"));
        };
        if self.dtype(x) != DType::F32 {
            return Err(Error::shape("top_k", "x must be f32 scores"));
        }
        if k == 0 || k > cols {
            return Err(Error::shape("top_k", format!("k = {k} must be in 1..={cols} (the row length)")));
        }
        let dims = TopKDims { rows: lead.iter().product(), cols, k };
        let mut out = lead.to_vec();
        out.push(k);
        let ids = self.push_outputs(Box::new(TopK { x, dims }), &[(&out, DType::F32), (&out, DType::U32)]);
        Ok((ids[0], ids[1]))
    }

    /// Picks tokens by index: `x [B, N, C]`, `idx [B, K]` (u32) -> `[B, K, C]`.
    pub fn gather_tokens(&mut self, x: TensorId, idx: TensorId) -> Result<TensorId> {
        self.gather_tokens_after(x, idx, 0)
    }

    /// Keeps the first `prefix` tokens of `x [B, N, C]` and picks the rest by index,
    /// counted from token `prefix`: `idx [B, K]` (u32) -> `[B, prefix + K, C]`.
    pub fn gather_tokens_after(&mut self, x: TensorId, idx: TensorId, prefix: usize) -> Result<TensorId> {
        let (xs, is) = (self.shape(x).to_vec(), self.shape(idx).to_vec());
        let ([b, n, c], [bi, k]) = (xs.as_slice(), is.as_slice()) else {
            return Err(Error::shape("gather_tokens", format!("x {xs:?} must be [B, N, C] and idx {is:?} [B, K]")));
        };
        if b != bi || self.dtype(idx) != DType::U32 || self.dtype(x) != DType::F32 {
            return Err(Error::shape("gather_tokens", format!("x {xs:?} (f32) and idx {is:?} (u32) must share B")));
        }
        if prefix > *n {
            return Err(Error::shape("gather_tokens", format!("prefix {prefix} is longer than the {n} tokens")));
        }
        let dims = GatherDims { batch: *b, tokens: *n, picked: *k, channels: *c, prefix };
        Ok(self.push(Box::new(GatherTokens { x, idx, dims }), &[*b, prefix + *k, *c]))
    }
}

impl Op for TopK {
    fn name(&self) -> &'static str {
        "top_k"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.dims.key("topk")?, self.dims.rows * self.dims.cols)
    }
    fn cpu(&self, g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        self.cpu_outputs(g, get).swap_remove(0)
    }
    fn cpu_outputs(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<Vec<f32>> {
        let x = get(self.x);
        let TopKDims { rows, cols, k } = self.dims;
        let (mut values, mut indices) = (Vec::with_capacity(rows * k), Vec::with_capacity(rows * k));
        for row in x.chunks(cols).take(rows) {
            let mut order: Vec<usize> = (0..cols).collect();
            // Descending; equal values keep the lower index first (a stable sort).
            order.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap_or(std::cmp::Ordering::Equal));
            for &j in &order[..k] {
                values.push(row[j]);
                indices.push(j as u32);
            }
        }
        vec![values, u32_as_f32_bits(&indices)]
    }
    /// The values' gradient goes back to the columns they came from.
    fn backward(&self, g: &mut Graph, out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let idx = g.nodes.iter().find(|n| n.out == out).and_then(|n| n.extra.first().copied());
        let idx = idx.ok_or_else(|| Error::shape("top_k", "backward: the indices output is missing"))?;
        let shape = g.shape(self.x).to_vec();
        Ok(vec![Some(g.push(Box::new(ScatterRows { src: dout, idx, dims: self.dims }), &shape))])
    }
}

impl Op for ScatterRows {
    fn name(&self) -> &'static str {
        "scatter_rows"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.src), Some(self.idx)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.dims.key("scatter_rows")?, self.dims.rows * self.dims.k)
    }
    /// Zero the output (binds only it), then scatter.
    fn dispatches(&self, g: &Graph, caps: &DeviceCaps) -> Result<Vec<Dispatch>> {
        let zero = Dispatch::linear(self.dims.key("scatter_zero")?, self.dims.rows * self.dims.cols)?.without(&[0, 1]);
        Ok(vec![zero, self.dispatch(g, caps)?])
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (src, idx) = (get(self.src), f32_bits_as_u32(&get(self.idx)));
        let TopKDims { rows, cols, k } = self.dims;
        let mut out = vec![0f32; rows * cols];
        for r in 0..rows {
            for j in 0..k {
                let col = idx[r * k + j] as usize;
                if col < cols {
                    out[r * cols + col] = src[r * k + j];
                }
            }
        }
        out
    }
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("scatter_rows", "second derivatives are not supported"))
    }
}

impl Op for GatherTokens {
    fn name(&self) -> &'static str {
        "gather_tokens"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), Some(self.idx)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Dispatch::linear(d.key("gather_tokens")?, d.batch * d.rows() * d.channels)
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (x, idx) = (get(self.x), f32_bits_as_u32(&get(self.idx)));
        let GatherDims { batch, tokens, picked, channels: c, prefix } = self.dims;
        let rows = self.dims.rows();
        let mut out = vec![0f32; batch * rows * c];
        for b in 0..batch {
            for j in 0..rows {
                let n = if j < prefix { j } else { prefix + idx[b * picked + j - prefix] as usize };
                if n < tokens {
                    out[(b * rows + j) * c..][..c].copy_from_slice(&x[(b * tokens + n) * c..][..c]);
                }
            }
        }
        out
    }
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let shape = g.shape(self.x).to_vec();
        Ok(vec![Some(g.push(Box::new(GatherTokensGrad { dy: dout, idx: self.idx, dims: self.dims }), &shape)), None])
    }
}

impl Op for GatherTokensGrad {
    fn name(&self) -> &'static str {
        "gather_tokens_grad"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.dy), Some(self.idx)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Dispatch::linear(d.key("gather_tokens_grad")?, d.batch * d.tokens * d.channels)
    }
    /// Scatter-adds (the kernel gathers): two directions, one answer.
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (dy, idx) = (get(self.dy), f32_bits_as_u32(&get(self.idx)));
        let GatherDims { batch, tokens, picked, channels: c, prefix } = self.dims;
        let rows = self.dims.rows();
        let mut out = vec![0f32; batch * tokens * c];
        for b in 0..batch {
            for j in 0..rows {
                let n = if j < prefix { j } else { prefix + idx[b * picked + j - prefix] as usize };
                if n < tokens {
                    for ch in 0..c {
                        out[(b * tokens + n) * c + ch] += dy[(b * rows + j) * c + ch];
                    }
                }
            }
        }
        out
    }
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("gather_tokens_grad", "second derivatives are not supported"))
    }
}
