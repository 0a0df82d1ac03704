//! Elementwise ops over equal shapes, one kernel (`elementwise.wgsl`):
//! `(a + b) * alpha` (DeiT's averaged heads, gradient sums), `a * alpha`,
//! `a * b`, `dy * gelu'(x)`, constant fill, and the row-broadcast forms
//! (`a [R, N]` with a per-row `b [R]`: scale, divide, and the Performer's
//! positive random feature `exp(a - |z|^2 / 2) / sqrt(m)`); [`RowDot`] is the
//! matching per-row reduction `sum_n a[r, n] * b[r, n]` (same shader, its own
//! entry point). The Performer token layer (T2T-ViT) is composed of these and
//! batched matmuls, so its backward is the autodiff of these rules.

use super::linear::gelu_grad_ref;
use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::{Const, KernelKey};

/// Which elementwise function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EwMode {
    /// `(a + b) * alpha`.
    AddScale,
    /// `a * alpha`.
    Scale,
    /// `a * b`.
    Mul,
    /// `b * gelu'(a)`: `a` is the GELU's input x, `b` the output gradient dy.
    GeluGrad,
    /// Every element set to `alpha`; no inputs.
    Fill,
    /// `a [.., N] * b [N]`.
    MulCol,
    /// `a [R, N] * b[r] * alpha`: one scale per row.
    MulRow,
    /// `a [R, N] / (b[r] + alpha)`: the Performer's normalisation (alpha its epsilon).
    DivRow,
    /// `exp(a [R, N] - b[r] / 2) * alpha`: the Performer's feature map, with `a = z w^T`,
    /// `b = |z|^2` and `alpha = 1 / sqrt(m)`.
    PrmExp,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Elementwise {
    /// First operand (`None` for `Fill`).
    pub a: Option<TensorId>,
    /// Second operand (`None` for `Scale` and `Fill`; the vector `[N]` for `MulCol`).
    pub b: Option<TensorId>,
    /// Which function.
    pub mode: EwMode,
    /// The scale factor, or the fill value for `Fill`.
    pub alpha: f32,
    /// Output element count.
    pub len: usize,
}

/// The shader's `MODE`; mirrors `EW_ADD_SCALE` .. `EW_MUL_COL` in `shaders/elementwise.wgsl`.
fn ew_code(mode: EwMode) -> u32 {
    match mode {
        EwMode::AddScale => 0,
        EwMode::Scale => 1,
        EwMode::Mul => 2,
        EwMode::GeluGrad => 3,
        EwMode::Fill => 4,
        EwMode::MulCol => 5,
        EwMode::MulRow => 6,
        EwMode::DivRow => 7,
        EwMode::PrmExp => 8,
    }
}

impl Graph {
    fn elementwise(&mut self, a: Option<TensorId>, b: Option<TensorId>, mode: EwMode, alpha: f32, shape: &[usize]) -> Result<TensorId> {
        let check = if matches!(mode, EwMode::MulCol | EwMode::MulRow | EwMode::DivRow | EwMode::PrmExp) { [a, None] } else { [a, b] };
        for t in check.into_iter().flatten() {
            if self.shape(t) != shape {
                return Err(Error::shape("elementwise", format!("{shape:?} vs {:?}", self.shape(t))));
            }
        }
        let len = shape.iter().product();
        Ok(self.push(Box::new(Elementwise { a, b, mode, alpha, len }), shape))
    }

    /// `(a + b) * alpha`.
    pub fn add_scale(&mut self, a: TensorId, b: TensorId, alpha: f32) -> Result<TensorId> {
        let s = self.shape(a).to_vec();
        self.elementwise(Some(a), Some(b), EwMode::AddScale, alpha, &s)
    }

    /// `a * alpha`.
    pub fn scale(&mut self, a: TensorId, alpha: f32) -> Result<TensorId> {
        let s = self.shape(a).to_vec();
        self.elementwise(Some(a), None, EwMode::Scale, alpha, &s)
    }

    /// `a * b`.
    pub fn mul(&mut self, a: TensorId, b: TensorId) -> Result<TensorId> {
        let s = self.shape(a).to_vec();
        self.elementwise(Some(a), Some(b), EwMode::Mul, 1.0, &s)
    }

    /// `dy * gelu'(x)`: the gradient through an exact GELU.
    pub fn gelu_grad(&mut self, x: TensorId, dy: TensorId) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        self.elementwise(Some(x), Some(dy), EwMode::GeluGrad, 1.0, &s)
    }

    /// `a [.., N]` times the vector `b [N]` on every row.
    pub fn mul_col(&mut self, a: TensorId, b: TensorId) -> Result<TensorId> {
        let s = self.shape(a).to_vec();
        if s.last() != Some(&self.numel(b)) {
            return Err(Error::shape("mul_col", format!("{s:?} rows vs vector {:?}", self.shape(b))));
        }
        self.elementwise(Some(a), Some(b), EwMode::MulCol, 1.0, &s)
    }

    /// The row-broadcast modes: `a [.., N]` with one value of `b [.., 1]` per row.
    fn row_broadcast(&mut self, a: TensorId, b: TensorId, mode: EwMode, alpha: f32) -> Result<TensorId> {
        let s = self.shape(a).to_vec();
        let mut rows = s.clone();
        if let Some(n) = rows.last_mut() {
            *n = 1;
        }
        if s.is_empty() || self.shape(b) != rows.as_slice() {
            return Err(Error::shape(self_name(mode), format!("{s:?} needs one row value per row; got {:?}", self.shape(b))));
        }
        self.elementwise(Some(a), Some(b), mode, alpha, &s)
    }

    /// `a [.., N] * b[row] * alpha`.
    pub fn mul_row(&mut self, a: TensorId, b: TensorId, alpha: f32) -> Result<TensorId> {
        self.row_broadcast(a, b, EwMode::MulRow, alpha)
    }

    /// `a [.., N] / (b[row] + eps)`.
    pub fn div_row(&mut self, a: TensorId, b: TensorId, eps: f32) -> Result<TensorId> {
        self.row_broadcast(a, b, EwMode::DivRow, eps)
    }

    /// The Performer's positive random features `exp(wz [.., m] - sq[row] / 2) * alpha`, where
    /// `wz = z w^T` and `sq = |z|^2` per row ([`Graph::row_dot`] of `z` with itself).
    pub fn prm_exp(&mut self, wz: TensorId, sq: TensorId, alpha: f32) -> Result<TensorId> {
        self.row_broadcast(wz, sq, EwMode::PrmExp, alpha)
    }

    /// `sum_n a[.., n] * b[.., n]`: one value per row (`a`, `b` of one shape `[.., N]`;
    /// the result is `[.., 1]`).
    pub fn row_dot(&mut self, a: TensorId, b: TensorId) -> Result<TensorId> {
        let s = self.shape(a).to_vec();
        if self.shape(b) != s.as_slice() || s.is_empty() {
            return Err(Error::shape("row_dot", format!("{s:?} vs {:?}: one shape [.., N] needed", self.shape(b))));
        }
        let (n, lead) = (s[s.len() - 1], &s[..s.len() - 1]);
        let rows = lead.iter().product();
        let mut out = lead.to_vec();
        out.push(1);
        Ok(self.push(Box::new(RowDot { a, b, rows, n }), &out))
    }

    /// A copy of `x` that gradients do not flow through (PyTorch's `detach()`:
    /// DynamicViT's token-distillation mask).
    pub fn detach(&mut self, x: TensorId) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let len = s.iter().product();
        Ok(self.push(Box::new(Detach { x, len }), &s))
    }

    /// A tensor of `shape` filled with `value`.
    pub fn fill(&mut self, shape: &[usize], value: f32) -> Result<TensorId> {
        self.elementwise(None, None, EwMode::Fill, value, shape)
    }
}

impl Op for Elementwise {
    fn name(&self) -> &'static str {
        match self.mode {
            EwMode::AddScale => "add_scale",
            EwMode::Scale => "scale",
            EwMode::Mul => "mul",
            EwMode::GeluGrad => "gelu_grad",
            EwMode::Fill => "fill",
            EwMode::MulCol => "mul_col",
            EwMode::MulRow | EwMode::DivRow | EwMode::PrmExp => self_name(self.mode),
        }
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![self.a, self.b]
    }

    fn dispatch(&self, g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let mode = ew_code(self.mode);
        let bn = match (self.mode, self.b) {
            (EwMode::MulCol, Some(b)) => g.numel(b),
            (EwMode::MulRow | EwMode::DivRow | EwMode::PrmExp, Some(b)) => self.len / g.numel(b).max(1),
            _ => 1,
        };
        let key = KernelKey::new("elementwise", "main")
            .u("LEN", u32_of("elementwise", "len", self.len)?)
            .with("ALPHA", Const::f32(self.alpha))
            .u("MODE", mode)
            .u("BN", u32_of("elementwise", "BN", bn)?);
        Dispatch::linear(key, self.len)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let a = self.a.map(get).unwrap_or_default();
        let b = self.b.map(get).unwrap_or_default();
        let row = self.len / b.len().max(1);
        (0..self.len)
            .map(|i| match self.mode {
                EwMode::AddScale => (a[i] + b[i]) * self.alpha,
                EwMode::Scale => a[i] * self.alpha,
                EwMode::Mul => a[i] * b[i],
                EwMode::GeluGrad => b[i] * gelu_grad_ref(a[i]),
                EwMode::Fill => self.alpha,
                EwMode::MulCol => a[i] * b[i % b.len().max(1)],
                EwMode::MulRow => a[i] * b[i / row] * self.alpha,
                EwMode::DivRow => a[i] / (b[i / row] + self.alpha),
                EwMode::PrmExp => (a[i] - 0.5 * b[i / row]).exp() * self.alpha,
            })
            .collect()
    }

    fn backward(&self, g: &mut Graph, out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        match self.mode {
            EwMode::AddScale => {
                let d = g.scale(dout, self.alpha)?;
                Ok(vec![Some(d), Some(d)])
            }
            EwMode::Scale => Ok(vec![Some(g.scale(dout, self.alpha)?), None]),
            EwMode::Mul => {
                let (a, b) = (self.a.ok_or_else(|| Error::shape("mul", "no a"))?, self.b.ok_or_else(|| Error::shape("mul", "no b"))?);
                Ok(vec![Some(g.mul(dout, b)?), Some(g.mul(dout, a)?)])
            }
            EwMode::Fill => Ok(vec![None, None]),
            EwMode::MulCol => {
                let (a, b) =
                    (self.a.ok_or_else(|| Error::shape("mul_col", "no a"))?, self.b.ok_or_else(|| Error::shape("mul_col", "no b"))?);
                let ab = g.mul(dout, a)?;
                Ok(vec![Some(g.mul_col(dout, b)?), Some(g.sum_rows(ab)?)])
            }
            EwMode::MulRow => {
                // d a = dy * b[r] * alpha; d b[r] = alpha * sum_n dy a.
                let (a, b) = self.operands()?;
                let da = g.mul_row(dout, b, self.alpha)?;
                let db = g.row_dot(dout, a)?;
                let db = if self.alpha == 1.0 { db } else { g.scale(db, self.alpha)? };
                Ok(vec![Some(da), Some(db)])
            }
            EwMode::DivRow => {
                // y = a / (b + eps): d a = dy / (b + eps); d b[r] = -sum_n dy y / (b + eps).
                let (_, b) = self.operands()?;
                let da = g.div_row(dout, b, self.alpha)?;
                let dyy = g.row_dot(dout, out)?;
                let db = g.div_row(dyy, b, self.alpha)?;
                Ok(vec![Some(da), Some(g.scale(db, -1.0)?)])
            }
            EwMode::PrmExp => {
                // y = exp(a - b / 2) * alpha: d a = dy y; d b[r] = -1/2 sum_n dy y.
                let da = g.mul(dout, out)?;
                let db = g.row_dot(dout, out)?;
                Ok(vec![Some(da), Some(g.scale(db, -0.5)?)])
            }
            EwMode::GeluGrad => Err(Error::shape("gelu_grad", "second derivatives are not supported")),
        }
    }
}

impl Elementwise {
    fn operands(&self) -> Result<(TensorId, TensorId)> {
        let name = self_name(self.mode);
        Ok((self.a.ok_or_else(|| Error::shape(name, "no a"))?, self.b.ok_or_else(|| Error::shape(name, "no b"))?))
    }
}

/// The op name of the row-broadcast modes.
fn self_name(mode: EwMode) -> &'static str {
    match mode {
        EwMode::MulRow => "mul_row",
        EwMode::DivRow => "div_row",
        EwMode::PrmExp => "prm_exp",
        _ => "elementwise",
    }
}

/// See [`Graph::row_dot`]: `out[r] = sum_n a[r, n] * b[r, n]`.
#[derive(Debug, Clone)]
pub struct RowDot {
    /// First operand `[R, N]`.
    pub a: TensorId,
    /// Second operand `[R, N]`.
    pub b: TensorId,
    /// Rows R.
    pub rows: usize,
    /// Row length N.
    pub n: usize,
}

impl Op for RowDot {
    fn name(&self) -> &'static str {
        "row_dot"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.a), Some(self.b)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let key = KernelKey::new("elementwise", "row_dot")
            .u("LEN", u32_of("row_dot", "rows", self.rows)?)
            .u("BN", u32_of("row_dot", "N", self.n)?);
        Dispatch::linear(key, self.rows)
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (a, b) = (get(self.a), get(self.b));
        a.chunks(self.n.max(1)).zip(b.chunks(self.n.max(1))).map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum()).collect()
    }
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        // d a = b * dy[r]; d b = a * dy[r] (autodiff sums both when a and b are one tensor).
        Ok(vec![Some(g.mul_row(self.b, dout, 1.0)?), Some(g.mul_row(self.a, dout, 1.0)?)])
    }
}

/// See [`Graph::detach`]: the elementwise kernel's copy (`a * 1`), no gradient.
#[derive(Debug, Clone)]
pub struct Detach {
    /// The tensor copied.
    pub x: TensorId,
    /// Its element count.
    pub len: usize,
}

impl Op for Detach {
    fn name(&self) -> &'static str {
        "detach"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), None]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let key = KernelKey::new("elementwise", "main").u("LEN", u32_of("detach", "len", self.len)?).u("MODE", ew_code(EwMode::Scale));
        Dispatch::linear(key, self.len)
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        get(self.x)
    }
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Ok(vec![None, None])
    }
}
