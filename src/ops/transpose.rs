//! Batched 2-D transpose `[Z, R, C] -> [Z, C, R]` ([`Transpose`]) and column
//! sums `[.., C] -> [C]` ([`SumRows`]), both in `transpose.wgsl`: the layout
//! work of backward passes (weight gradients, bias and token gradients).

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::{Const, KernelKey};

/// The sizes of a transpose: `x` read as `[Z, R, C]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransposeDims {
    /// Independent matrices Z.
    pub batch: usize,
    /// Rows R of each input matrix.
    pub rows: usize,
    /// Columns C of each input matrix.
    pub cols: usize,
}

/// See the module docs: `[Z, R, C] -> [Z, C, R]`.
#[derive(Debug, Clone)]
pub struct Transpose {
    /// The input, read as `[Z, R, C]` whatever its shape.
    pub x: TensorId,
    /// The sizes.
    pub dims: TransposeDims,
}

/// The sizes of a column sum: `x` read as `[R, C]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SumRowsDims {
    /// Rows R summed over.
    pub rows: usize,
    /// Columns C (the output's length).
    pub cols: usize,
}

/// See the module docs: `out[c] = scale * sum over r of x[r, c]` (the rows
/// summed in order, then scaled once).
#[derive(Debug, Clone)]
pub struct SumRows {
    /// The input, read as `[R, C]` whatever its shape.
    pub x: TensorId,
    /// The sizes.
    pub dims: SumRowsDims,
    /// Factor applied to each sum: 1 but for an attention bias gradient
    /// ([`Graph::bias_grad`]).
    pub scale: f32,
}

impl Graph {
    /// Swaps the last two dimensions of `[R, C]` or `[Z, R, C]`.
    pub fn transpose(&mut self, x: TensorId) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let (dims, out) = match s.as_slice() {
            [r, c] => (TransposeDims { batch: 1, rows: *r, cols: *c }, vec![*c, *r]),
            [z, r, c] => (TransposeDims { batch: *z, rows: *r, cols: *c }, vec![*z, *c, *r]),
            _ => return Err(Error::shape("transpose", format!("{s:?} must be [R, C] or [Z, R, C]"))),
        };
        Ok(self.push(Box::new(Transpose { x, dims }), &out))
    }

    /// Transposes `x` read as `[Z, R, C]` (any shape with Z*R*C elements) -> `[Z, C, R]`.
    pub fn transpose_as(&mut self, x: TensorId, z: usize, r: usize, c: usize) -> Result<TensorId> {
        let out = if z == 1 { vec![c, r] } else { vec![z, c, r] };
        self.transpose_shaped(x, [z, r, c], &out)
    }

    /// Transposes `x` read as `[Z, R, C]` -> `[Z, C, R]`, given the output `shape`
    /// (any with Z*C*R elements: DVT reads relations `[B, H, T*T]` as `[B*H, T, T]`).
    pub fn transpose_shaped(&mut self, x: TensorId, [z, r, c]: [usize; 3], shape: &[usize]) -> Result<TensorId> {
        if z * r * c != self.numel(x) || shape.iter().product::<usize>() != z * r * c {
            return Err(Error::shape("transpose", format!("{:?} -> {shape:?} is not [{z}, {r}, {c}] transposed", self.shape(x))));
        }
        Ok(self.push(Box::new(Transpose { x, dims: TransposeDims { batch: z, rows: r, cols: c } }), shape))
    }

    /// Sums `x` read as `[R, C]` over its rows -> `[C]`.
    pub fn sum_rows_as(&mut self, x: TensorId, r: usize, c: usize) -> Result<TensorId> {
        if r * c != self.numel(x) {
            return Err(Error::shape("sum_rows", format!("{:?} is not [{r}, {c}]", self.shape(x))));
        }
        Ok(self.push(Box::new(SumRows { x, dims: SumRowsDims { rows: r, cols: c }, scale: 1.0 }), &[c]))
    }

    /// Sums `x [.., C]` over every leading dimension -> `[C]`.
    pub fn sum_rows(&mut self, x: TensorId) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let c = *s.last().ok_or_else(|| Error::shape("sum_rows", "scalar input"))?;
        let r = self.numel(x) / c.max(1);
        Ok(self.push(Box::new(SumRows { x, dims: SumRowsDims { rows: r, cols: c }, scale: 1.0 }), &[c]))
    }
}

impl Op for Transpose {
    fn name(&self) -> &'static str {
        "transpose"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let TransposeDims { batch: z, rows: r, cols: c } = self.dims;
        let key = KernelKey::new("transpose", "transpose2d")
            .u("Z", u32_of("transpose", "Z", z)?)
            .u("R", u32_of("transpose", "R", r)?)
            .u("C", u32_of("transpose", "C", c)?);
        Dispatch::linear(key, z * r * c)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let TransposeDims { batch: z, rows: r, cols: c } = self.dims;
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
        // Back to the input's own shape (it may be read as [Z, R, C] through another one).
        let TransposeDims { batch, rows, cols } = self.dims;
        let shape = g.shape(self.x).to_vec();
        Ok(vec![Some(g.push(Box::new(Transpose { x: dout, dims: TransposeDims { batch, rows: cols, cols: rows } }), &shape))])
    }
}

impl Op for SumRows {
    fn name(&self) -> &'static str {
        "sum_rows"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let SumRowsDims { rows, cols } = self.dims;
        let mut key = KernelKey::new("transpose", "sum_rows").u("R", u32_of("sum_rows", "R", rows)?).u("C", u32_of("sum_rows", "C", cols)?);
        if self.scale != 1.0 {
            key = key.with("SCALE", Const::f32(self.scale));
        }
        Dispatch::linear(key, cols)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let SumRowsDims { rows, cols } = self.dims;
        (0..cols).map(|j| (0..rows).map(|i| x[i * cols + j]).sum::<f32>() * self.scale).collect()
    }

    /// Every row of `x` (read as `[R, C]`) gets `dout [C] * scale`: a fill times the
    /// vector broadcast over rows, in `x`'s own shape (the loss totals of DynamicViT).
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let shape = g.shape(self.x).to_vec();
        let ones = g.fill(&shape, self.scale)?;
        let len = g.numel(self.x);
        let op = super::Elementwise { a: Some(ones), b: Some(dout), mode: super::EwMode::MulCol, alpha: 1.0, len };
        Ok(vec![Some(g.push(Box::new(op), &shape))])
    }
}
