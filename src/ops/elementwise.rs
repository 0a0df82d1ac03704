//! Elementwise ops over equal shapes, one kernel (`elementwise.wgsl`):
//! `(a + b) * alpha` (DeiT's averaged heads, gradient sums), `a * alpha`,
//! `a * b`, `dy * gelu'(x)` and constant fill.

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
    }
}

impl Graph {
    fn elementwise(&mut self, a: Option<TensorId>, b: Option<TensorId>, mode: EwMode, alpha: f32, shape: &[usize]) -> Result<TensorId> {
        let check = if mode == EwMode::MulCol { [a, None] } else { [a, b] };
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
        }
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![self.a, self.b]
    }

    fn dispatch(&self, g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let mode = ew_code(self.mode);
        let bn = match (self.mode, self.b) {
            (EwMode::MulCol, Some(b)) => g.numel(b),
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
        (0..self.len)
            .map(|i| match self.mode {
                EwMode::AddScale => (a[i] + b[i]) * self.alpha,
                EwMode::Scale => a[i] * self.alpha,
                EwMode::Mul => a[i] * b[i],
                EwMode::GeluGrad => b[i] * gelu_grad_ref(a[i]),
                EwMode::Fill => self.alpha,
                EwMode::MulCol => a[i] * b[i % b.len().max(1)],
            })
            .collect()
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
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
            EwMode::GeluGrad => Err(Error::shape("gelu_grad", "second derivatives are not supported")),
        }
    }
}
