//! What attention adds to its scaled scores before the softmax
//! (shaders/softmax.wgsl, shaders/relpos.wgsl): Swin's relative position
//! bias ([`RelPos`], `table -> [heads, N, N]`, backward [`RelPosGrad`]), the
//! shifted-window mask ([`WindowMask`], computed, not stored), both carried by
//! [`AttnBias`], and the gradient of the bias ([`Graph::bias_grad`]: the
//! softmax's ds / scale summed over windows and batch, a [`SumRows`]).

use super::transpose::{SumRows, SumRowsDims};
use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// Swin's shifted-window mask (see shaders/softmax.wgsl): windows of
/// `wh x ww` over the rolled map padded to `hp x wp`, `nww` per row, `nw` in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowMask {
    /// Windows per image.
    pub nw: usize,
    /// Windows per row of the padded map.
    pub nww: usize,
    /// Window height in tokens.
    pub wh: usize,
    /// Window width in tokens.
    pub ww: usize,
    /// Padded map height in tokens (a whole number of windows).
    pub hp: usize,
    /// Padded map width in tokens.
    pub wp: usize,
    /// Shift along the height, in tokens.
    pub sh: usize,
    /// Shift along the width, in tokens.
    pub sw: usize,
}

impl WindowMask {
    /// timm's region id of token `i` of window `w` (`SwinTransformerBlock.get_attn_mask`).
    pub fn region(&self, w: usize, i: usize) -> usize {
        let axis = |p: usize, n: usize, ws: usize, sh: usize| match () {
            _ if sh == 0 || p < n - ws => 0,
            _ if p < n - sh => 1,
            _ => 2,
        };
        let py = (w / self.nww) * self.wh + i / self.ww;
        let px = (w % self.nww) * self.ww + i % self.ww;
        axis(py, self.hp, self.wh, self.sh) * 3 + axis(px, self.wp, self.ww, self.sw)
    }
}

/// What [`Graph::attention_biased`] adds to the scaled scores: `bias [heads, T, T]`
/// for every window and batch, and optionally the shifted-window mask
/// (-100 between regions). Score rows are ordered `(batch, window, head, i)`.
#[derive(Debug, Clone, Copy)]
pub struct AttnBias {
    /// The bias `[heads, T, T]` (Swin's relative position bias).
    pub bias: TensorId,
    /// Heads H (the bias's first dimension).
    pub heads: usize,
    /// The shifted-window mask, for shifted blocks only.
    pub mask: Option<WindowMask>,
}

impl AttnBias {
    /// The value added to the scaled score of row `r`, column `j`.
    pub(crate) fn added(&self, bias: &[f32], t: usize, r: usize, j: usize) -> f32 {
        let (i, z) = (r % t, r / t);
        let h = z % self.heads;
        let mut a = bias[(h * t + i) * t + j];
        if let Some(m) = self.mask {
            let w = (z / self.heads) % m.nw;
            if m.region(w, i) != m.region(w, j) {
                a -= 100.0;
            }
        }
        a
    }
}

impl Graph {
    /// Gradient of a score bias `[heads, t, t]` from the softmax's `ds [Z*t, t]`
    /// (Z = windows x batch x heads): `inv_scale * ds` summed over windows and batch.
    pub fn bias_grad(&mut self, ds: TensorId, heads: usize, t: usize, inv_scale: f32) -> Result<TensorId> {
        let rows = self.shape(ds).iter().product::<usize>() / t.max(1);
        if heads == 0 || !rows.is_multiple_of(heads * t) {
            return Err(Error::shape("bias_grad", format!("ds {:?} does not split into {heads} heads of {t}", self.shape(ds))));
        }
        // ds read as [windows x batch, heads * t * t]: a column sum, scaled once.
        let dims = SumRowsDims { rows: rows / (heads * t), cols: heads * t * t };
        Ok(self.push(Box::new(SumRows { x: ds, dims, scale: inv_scale }), &[heads, t, t]))
    }
}

/// The sizes of a relative position bias: a `WH x WW` window, `heads` heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelPosDims {
    /// Window height in tokens (WH).
    pub window_h: usize,
    /// Window width in tokens (WW).
    pub window_w: usize,
    /// Heads (NH).
    pub heads: usize,
}

impl RelPosDims {
    /// Tokens per window: `N = WH * WW`.
    pub fn tokens(&self) -> usize {
        self.window_h * self.window_w
    }

    /// Table rows: one per relative offset, `(2WH - 1) * (2WW - 1)`.
    pub fn table_len(&self) -> usize {
        (2 * self.window_h - 1) * (2 * self.window_w - 1)
    }

    /// The table row of the offset between tokens `i` and `j` of a window.
    fn index(&self, i: usize, j: usize) -> usize {
        let (ww, wh) = (self.window_w, self.window_h);
        (i / ww + wh - 1 - j / ww) * (2 * ww - 1) + (i % ww + ww - 1 - j % ww)
    }

    /// The shader's constants.
    fn key(&self, op: &str, entry: &'static str) -> Result<KernelKey> {
        Ok(KernelKey::new("relpos", entry)
            .u("WH", u32_of(op, "WH", self.window_h)?)
            .u("WW", u32_of(op, "WW", self.window_w)?)
            .u("NH", u32_of(op, "heads", self.heads)?))
    }
}

/// Relative position bias: `table [(2WH-1)(2WW-1), NH] -> bias [NH, N, N]`,
/// `bias[h, i, j] = table[index(i - j), h]`.
#[derive(Debug, Clone)]
pub struct RelPos {
    /// The table `[(2WH-1)(2WW-1), NH]`.
    pub table: TensorId,
    /// The sizes.
    pub dims: RelPosDims,
}

/// The backward of [`RelPos`]: d table from `dbias [NH, N, N]`, summed over
/// the pairs of tokens sharing an offset.
#[derive(Debug, Clone)]
pub struct RelPosGrad {
    /// The gradient of the bias `[NH, N, N]`.
    pub dbias: TensorId,
    /// The forward's sizes.
    pub dims: RelPosDims,
}

impl Graph {
    /// timm's `WindowAttention._get_rel_pos_bias`: `table [(2WH-1)(2WW-1), heads] -> [heads, N, N]`.
    pub fn rel_pos_bias(&mut self, table: TensorId, wh: usize, ww: usize) -> Result<TensorId> {
        let s = self.shape(table).to_vec();
        let [len, heads] = s.as_slice() else {
            return Err(Error::shape("rel_pos", format!("table {s:?} must be [L, heads]")));
        };
        let dims = RelPosDims { window_h: wh, window_w: ww, heads: *heads };
        if wh == 0 || ww == 0 || *len != dims.table_len() {
            return Err(Error::shape("rel_pos", format!("table {s:?} does not fit a {wh}x{ww} window")));
        }
        let n = dims.tokens();
        Ok(self.push(Box::new(RelPos { table, dims }), &[*heads, n, n]))
    }
}

impl Op for RelPos {
    fn name(&self) -> &'static str {
        "rel_pos"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.table)]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let grad = RelPosGrad { dbias: dout, dims: self.dims };
        Ok(vec![Some(g.push(Box::new(grad), &[self.dims.table_len(), self.dims.heads]))])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Dispatch::linear(d.key("rel_pos", "forward")?, d.heads * d.tokens() * d.tokens())
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let table = get(self.table);
        let d = self.dims;
        let (n, nh) = (d.tokens(), d.heads);
        (0..nh * n * n).map(|o| table[d.index((o / n) % n, o % n) * nh + o / (n * n)]).collect()
    }
}

impl Op for RelPosGrad {
    fn name(&self) -> &'static str {
        "rel_pos_grad"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.dbias)]
    }

    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("rel_pos_grad", "second derivatives are not supported"))
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Dispatch::linear(d.key("rel_pos_grad", "backward")?, d.table_len() * d.heads)
    }

    /// Scatter form (each pair adds to its offset's entry), an independent
    /// check of the kernel's gather form.
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let dbias = get(self.dbias);
        let d = self.dims;
        let (n, nh) = (d.tokens(), d.heads);
        let mut out = vec![0f32; d.table_len() * nh];
        for h in 0..nh {
            for i in 0..n {
                for j in 0..n {
                    out[d.index(i, j) * nh + h] += dbias[(h * n + i) * n + j];
                }
            }
        }
        out
    }
}
