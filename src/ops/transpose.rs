//! Batched 2-D transpose `[Z, R, C] -> [Z, C, R]` and column sums
//! `[.., C] -> [C]` (`transpose.wgsl`): the layout work of backward passes
//! (weight gradients, bias and token gradients).

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Transpose {
    /// The input, read as `[Z, R, C]` whatever its shape.
    pub x: TensorId,
    /// (Z, R, C)
    pub dims: [usize; 3],
    /// Column sums instead of a transpose.
    pub sum_rows: bool,
}

impl Graph {
    /// Swaps the last two dimensions of `[R, C]` or `[Z, R, C]`.
    pub fn transpose(&mut self, x: TensorId) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let (dims, out) = match s.as_slice() {
            [r, c] => ([1, *r, *c], vec![*c, *r]),
            [z, r, c] => ([*z, *r, *c], vec![*z, *c, *r]),
            _ => return Err(Error::shape("transpose", format!("{s:?} must be [R, C] or [Z, R, C]"))),
        };
        Ok(self.push(Box::new(Transpose { x, dims, sum_rows: false }), &out))
    }

    /// Transposes `x` read as `[Z, R, C]` (any shape with Z*R*C elements) -> `[Z, C, R]`.
    pub fn transpose_as(&mut self, x: TensorId, z: usize, r: usize, c: usize) -> Result<TensorId> {
        if z * r * c != self.numel(x) {
            return Err(Error::shape("transpose", format!("{:?} is not [{z}, {r}, {c}]", self.shape(x))));
        }
        let out = if z == 1 { vec![c, r] } else { vec![z, c, r] };
        Ok(self.push(Box::new(Transpose { x, dims: [z, r, c], sum_rows: false }), &out))
    }

    /// Sums `x` read as `[R, C]` over its rows -> `[C]`.
    pub fn sum_rows_as(&mut self, x: TensorId, r: usize, c: usize) -> Result<TensorId> {
        if r * c != self.numel(x) {
            return Err(Error::shape("sum_rows", format!("{:?} is not [{r}, {c}]", self.shape(x))));
        }
        Ok(self.push(Box::new(Transpose { x, dims: [1, r, c], sum_rows: true }), &[c]))
    }

    /// Sums `x [.., C]` over every leading dimension -> `[C]`.
    pub fn sum_rows(&mut self, x: TensorId) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let c = *s.last().ok_or_else(|| Error::shape("sum_rows", "scalar input"))?;
        let r = self.numel(x) / c.max(1);
        Ok(self.push(Box::new(Transpose { x, dims: [1, r, c], sum_rows: true }), &[c]))
    }
}

impl Op for Transpose {
    fn name(&self) -> &'static str {
        if self.sum_rows {
            "sum_rows"
        } else {
            "transpose"
        }
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let [z, r, c] = self.dims;
        let key = KernelKey::new("transpose", "main")
            .u("Z", u32_of("transpose", "Z", z)?)
            .u("R", u32_of("transpose", "R", r)?)
            .u("C", u32_of("transpose", "C", c)?)
            .u("MODE", self.sum_rows as u32);
        Dispatch::linear(key, if self.sum_rows { c } else { z * r * c })
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let [z, r, c] = self.dims;
        if self.sum_rows {
            return (0..c).map(|j| (0..z * r).map(|i| x[i * c + j]).sum()).collect();
        }
        let mut out = vec![0f32; z * r * c];
        for zi in 0..z {
            for ri in 0..r {
                for ci in 0..c {
                    out[(zi * c + ci) * r + ri] = x[(zi * r + ri) * c + ci];
                }
            }
        }
        out
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        if self.sum_rows {
            return Err(Error::shape("sum_rows", "no backward (used only inside backward passes)"));
        }
        Ok(vec![Some(g.transpose(dout)?)])
    }
}
