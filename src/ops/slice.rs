//! A window of the last dimension: `x [.., C] -> [.., len]` from column
//! `start` ([`SliceLast`]); [`Graph::split_last`] cuts a tensor into
//! consecutive pieces (DynamicViT's local / global channels, T2T's k / q / v).
//! The backward ([`SliceLastGrad`]) puts the gradient back in its window and
//! zeros elsewhere; autodiff sums the pieces' gradients.

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DType, DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// Rows, row length and the window of a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceDims {
    /// Rows: the product of every dimension but the last.
    pub rows: usize,
    /// Length of the last dimension of the input.
    pub cols: usize,
    /// First column kept.
    pub start: usize,
    /// Columns kept.
    pub len: usize,
}

impl SliceDims {
    fn key(&self, entry: &'static str) -> Result<KernelKey> {
        Ok(KernelKey::new("slice", entry)
            .u("ROWS", u32_of("slice_last", "rows", self.rows)?)
            .u("COLS", u32_of("slice_last", "cols", self.cols)?)
            .u("START", u32_of("slice_last", "start", self.start)?)
            .u("LEN", u32_of("slice_last", "len", self.len)?))
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct SliceLast {
    /// The input `[.., cols]`.
    pub x: TensorId,
    /// Sizes.
    pub dims: SliceDims,
}

/// The gradient of [`SliceLast`]: `dy [.., len]` -> `dx [.., cols]`.
#[derive(Debug, Clone)]
pub struct SliceLastGrad {
    /// The slice's output gradient.
    pub dy: TensorId,
    /// Sizes.
    pub dims: SliceDims,
}

impl Graph {
    /// Columns `start..start + len` of the last dimension of `x`.
    pub fn slice_last(&mut self, x: TensorId, start: usize, len: usize) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let Some((&cols, lead)) = s.split_last() else {
            return Err(Error::shape("slice_last", "x must have at least one dimension"));
        };
        if self.dtype(x) != DType::F32 {
            return Err(Error::shape("slice_last", "x must be f32"));
        }
        if len == 0 || start.checked_add(len).is_none_or(|end| end > cols) {
            return Err(Error::shape("slice_last", format!("columns {start}..{} are not inside 0..{cols}", start.saturating_add(len))));
        }
        let mut out = lead.to_vec();
        out.push(len);
        let dims = SliceDims { rows: lead.iter().product(), cols, start, len };
        Ok(self.push(Box::new(SliceLast { x, dims }), &out))
    }

    /// Tokens `start..start + len` of `x [B, N, C]` -> `[B, len, C]` (DynamicViT's patch
    /// tokens without the class token): a window of each image's `N * C` values.
    pub fn slice_tokens(&mut self, x: TensorId, start: usize, len: usize) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let [b, n, c] = s.as_slice() else {
            return Err(Error::shape("slice_tokens", format!("x {s:?} must be [B, N, C]")));
        };
        if self.dtype(x) != DType::F32 || len == 0 || start.checked_add(len).is_none_or(|end| end > *n) {
            return Err(Error::shape("slice_tokens", format!("tokens {start}..{} of f32 {s:?}", start.saturating_add(len))));
        }
        let dims = SliceDims { rows: *b, cols: n * c, start: start * c, len: len * c };
        Ok(self.push(Box::new(SliceLast { x, dims }), &[*b, len, *c]))
    }

    /// Cuts the last dimension of `x` into consecutive pieces of the given sizes
    /// (they must add up to its length).
    pub fn split_last(&mut self, x: TensorId, sizes: &[usize]) -> Result<Vec<TensorId>> {
        let cols = self.shape(x).last().copied().unwrap_or(0);
        if sizes.iter().sum::<usize>() != cols {
            return Err(Error::shape("split_last", format!("pieces {sizes:?} do not add up to {cols}")));
        }
        let mut start = 0;
        let mut out = Vec::with_capacity(sizes.len());
        for &len in sizes {
            out.push(self.slice_last(x, start, len)?);
            start += len;
        }
        Ok(out)
    }
}

impl Op for SliceLast {
    fn name(&self) -> &'static str {
        "slice_last"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.dims.key("forward")?, self.dims.rows * self.dims.len)
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let SliceDims { cols, start, len, .. } = self.dims;
        x.chunks(cols).flat_map(|row| row[start..start + len].to_vec()).collect()
    }
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let shape = g.shape(self.x).to_vec();
        Ok(vec![Some(g.push(Box::new(SliceLastGrad { dy: dout, dims: self.dims }), &shape))])
    }
}

impl Op for SliceLastGrad {
    fn name(&self) -> &'static str {
        "slice_last_grad"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.dy)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.dims.key("backward")?, self.dims.rows * self.dims.cols)
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let dy = get(self.dy);
        let SliceDims { rows, cols, start, len } = self.dims;
        let mut out = vec![0f32; rows * cols];
        for r in 0..rows {
            out[r * cols + start..][..len].copy_from_slice(&dy[r * len..][..len]);
        }
        out
    }
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("slice_last_grad", "second derivatives are not supported"))
    }
}
