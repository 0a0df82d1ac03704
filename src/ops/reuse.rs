//! DVT's reuse plumbing ("Not All Images are Worth 16x16 Words", spec in
//! ../shared/kin/dvt.md §3-4): [`TokenResample`] carries a token axis from one
//! stage's grid to the next one's (nearest upsample x2, then adaptive average
//! pooling, the class token kept or zeroed), [`ConcatLast`] joins the reused
//! features to the tokens before `norm2`. Both in their own shaders
//! (`reuse.wgsl`, `concat.wgsl`); the resample's backward is its transpose
//! ([`TokenResampleGrad`]), the concat's two slices.

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DType, DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// The sizes of a token resample: the input read as `[outer, 1 + s_in^2, inner]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResampleDims {
    /// Independent token axes (batch, or batch x query tokens).
    pub outer: usize,
    /// Values per token (channels, or key tokens x channels).
    pub inner: usize,
    /// Input grid side.
    pub s_in: usize,
    /// The nearest-upsampled side (the official code: 14 into 10x10 stages, 20 otherwise).
    pub up: usize,
    /// Output grid side.
    pub s_out: usize,
    /// Class token copied (relations) or zeroed (features).
    pub keep_cls: bool,
}

impl ResampleDims {
    fn key(&self, entry: &'static str) -> Result<KernelKey> {
        let u = |w: &str, v: usize| u32_of("token_resample", w, v);
        Ok(KernelKey::new("reuse", entry)
            .u("OUTER", u("outer", self.outer)?)
            .u("INNER", u("inner", self.inner)?)
            .u("SIN", u("s_in", self.s_in)?)
            .u("UP", u("up", self.up)?)
            .u("SOUT", u("s_out", self.s_out)?)
            .u("KEEP", self.keep_cls as u32))
    }
    fn tokens_in(&self) -> usize {
        1 + self.s_in * self.s_in
    }
    fn tokens_out(&self) -> usize {
        1 + self.s_out * self.s_out
    }
    /// Output bin `i`'s upsampled rows `[start, end)`.
    fn bin(&self, i: usize) -> (usize, usize) {
        (i * self.up / self.s_out, ((i + 1) * self.up).div_ceil(self.s_out))
    }
    fn src(&self, u: usize) -> usize {
        u * self.s_in / self.up
    }
}

/// See the module docs: `[outer, 1 + s_in^2, inner] -> [outer, 1 + s_out^2, inner]`.
#[derive(Debug, Clone)]
pub struct TokenResample {
    /// The input.
    pub x: TensorId,
    /// Sizes.
    pub dims: ResampleDims,
}

/// The transpose of [`TokenResample`]: `dy [outer, 1 + s_out^2, inner] -> dx [outer, 1 + s_in^2, inner]`.
#[derive(Debug, Clone)]
pub struct TokenResampleGrad {
    /// The resample's output gradient.
    pub dy: TensorId,
    /// The forward's sizes.
    pub dims: ResampleDims,
}

/// See the module docs: `a [.., ca] ++ b [.., cb] -> [.., ca + cb]`.
#[derive(Debug, Clone)]
pub struct ConcatLast {
    /// The first part.
    pub a: TensorId,
    /// The second part (same leading dimensions).
    pub b: TensorId,
    /// Rows (the product of the leading dimensions).
    pub rows: usize,
    /// Columns of `a`.
    pub ca: usize,
    /// Columns of `b`.
    pub cb: usize,
}

impl Graph {
    /// Resamples the token axis of `x` (read as `[outer, 1 + s_in^2, inner]`) to an
    /// `s_out x s_out` grid through an `up x up` nearest upsampling; `shape` is the
    /// output's shape (`outer * (1 + s_out^2) * inner` values).
    pub fn token_resample(&mut self, x: TensorId, dims: ResampleDims, shape: &[usize]) -> Result<TensorId> {
        let bad = |m: String| Err(Error::shape("token_resample", m));
        if dims.s_in == 0 || dims.s_out == 0 || dims.up < dims.s_in || dims.up < dims.s_out {
            return bad(format!(
                "grids {} -> {} through {} must be positive, the upsampled one the largest",
                dims.s_in, dims.s_out, dims.up
            ));
        }
        if self.dtype(x) != DType::F32 || dims.outer * dims.tokens_in() * dims.inner != self.numel(x) {
            return bad(format!("f32 {:?} is not [{}, {}, {}]", self.shape(x), dims.outer, dims.tokens_in(), dims.inner));
        }
        if shape.iter().product::<usize>() != dims.outer * dims.tokens_out() * dims.inner {
            return bad(format!("output {shape:?} is not [{}, {}, {}]", dims.outer, dims.tokens_out(), dims.inner));
        }
        Ok(self.push(Box::new(TokenResample { x, dims }), shape))
    }

    /// `a [.., ca]` and `b [.., cb]` joined along the last dimension.
    pub fn concat_last(&mut self, a: TensorId, b: TensorId) -> Result<TensorId> {
        let (sa, sb) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        let (Some((&ca, la)), Some((&cb, lb))) = (sa.split_last(), sb.split_last()) else {
            return Err(Error::shape("concat_last", "parts must have at least one dimension"));
        };
        if la != lb || ca == 0 || cb == 0 || self.dtype(a) != DType::F32 || self.dtype(b) != DType::F32 {
            return Err(Error::shape("concat_last", format!("f32 {sa:?} and {sb:?} differ before the last dimension")));
        }
        let mut out = la.to_vec();
        out.push(ca + cb);
        Ok(self.push(Box::new(ConcatLast { a, b, rows: la.iter().product(), ca, cb }), &out))
    }
}

/// `out[o, t, c] = f(x[o, ., c])` for each output token, as the kernels do.
fn resample_cpu(x: &[f32], d: &ResampleDims, forward: bool) -> Vec<f32> {
    let (tin, tout) = (d.tokens_in(), d.tokens_out());
    let (from, to) = if forward { (tin, tout) } else { (tout, tin) };
    let mut out = vec![0f32; d.outer * to * d.inner];
    let hits = |i: usize, s: usize| {
        let (a, b) = d.bin(i);
        (a..b).filter(|&u| d.src(u) == s).count()
    };
    for o in 0..d.outer {
        let xi = |t: usize, c: usize| x[(o * from + t) * d.inner + c];
        for c in 0..d.inner {
            out[o * to * d.inner + c] = if d.keep_cls { xi(0, c) } else { 0.0 };
        }
        for t in 1..to {
            for c in 0..d.inner {
                let v = if forward {
                    let (ty, tx) = ((t - 1) / d.s_out, (t - 1) % d.s_out);
                    let ((y0, y1), (x0, x1)) = (d.bin(ty), d.bin(tx));
                    let mut acc = 0f32;
                    for u in y0..y1 {
                        for v in x0..x1 {
                            acc += xi(1 + d.src(u) * d.s_in + d.src(v), c);
                        }
                    }
                    acc / (y1 - y0) as f32 / (x1 - x0) as f32
                } else {
                    let (sy, sx) = ((t - 1) / d.s_in, (t - 1) % d.s_in);
                    let mut acc = 0f32;
                    for ty in 0..d.s_out {
                        let hy = hits(ty, sy);
                        if hy == 0 {
                            continue;
                        }
                        let (y0, y1) = d.bin(ty);
                        for tx in 0..d.s_out {
                            let hx = hits(tx, sx);
                            if hx == 0 {
                                continue;
                            }
                            let (x0, x1) = d.bin(tx);
                            acc += xi(1 + ty * d.s_out + tx, c) * (hy * hx) as f32 / (y1 - y0) as f32 / (x1 - x0) as f32;
                        }
                    }
                    acc
                };
                out[(o * to + t) * d.inner + c] = v;
            }
        }
    }
    out
}

impl Op for TokenResample {
    fn name(&self) -> &'static str {
        "token_resample"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.dims.key("forward")?, self.dims.outer * self.dims.tokens_out() * self.dims.inner)
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        resample_cpu(&get(self.x), &self.dims, true)
    }
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let shape = g.shape(self.x).to_vec();
        Ok(vec![Some(g.push(Box::new(TokenResampleGrad { dy: dout, dims: self.dims }), &shape))])
    }
}

impl Op for TokenResampleGrad {
    fn name(&self) -> &'static str {
        "token_resample_grad"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.dy)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.dims.key("backward")?, self.dims.outer * self.dims.tokens_in() * self.dims.inner)
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        resample_cpu(&get(self.dy), &self.dims, false)
    }
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        // Linear in dy: its own adjoint is the forward resample.
        let shape = g.shape(self.dy).to_vec();
        Ok(vec![Some(g.push(Box::new(TokenResample { x: dout, dims: self.dims }), &shape))])
    }
}

impl Op for ConcatLast {
    fn name(&self) -> &'static str {
        "concat_last"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.a), Some(self.b)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let u = |w: &str, v: usize| u32_of("concat_last", w, v);
        let key =
            KernelKey::new("concat", "forward").u("ROWS", u("rows", self.rows)?).u("CA", u("ca", self.ca)?).u("CB", u("cb", self.cb)?);
        Dispatch::linear(key, self.rows * (self.ca + self.cb))
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (a, b) = (get(self.a), get(self.b));
        a.chunks(self.ca).zip(b.chunks(self.cb)).flat_map(|(ra, rb)| ra.iter().chain(rb).copied()).collect()
    }
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Ok(vec![Some(g.slice_last(dout, 0, self.ca)?), Some(g.slice_last(dout, self.ca, self.cb)?)])
    }
}
