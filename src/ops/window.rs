//! Swin's window operations (shaders/window.wgsl, shaders/relpos.wgsl):
//! window partition with the cyclic shift and padding, its reverse with the
//! residual add, patch merging (2x2 space-to-depth), the relative position
//! bias and the gradients of all of them. Each is a gather, so each backward
//! is another mode of the same kernels.

use super::attention::WindowMask;
use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::{Const, KernelKey};

/// Geometry of one windowed attention: a `h x w` map of `c` channels, windows
/// `wh x ww`, cyclic shift `(sh, sw)` (timm's `SwinTransformerBlock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowGeom {
    /// Batch B.
    pub b: usize,
    /// Map height in tokens.
    pub h: usize,
    /// Map width in tokens.
    pub w: usize,
    /// Channels C.
    pub c: usize,
    /// Window height in tokens.
    pub wh: usize,
    /// Window width in tokens.
    pub ww: usize,
    /// Cyclic shift along the height (`shift_size[0]`), less than `wh`.
    pub sh: usize,
    /// Cyclic shift along the width (`shift_size[1]`), less than `ww`.
    pub sw: usize,
}

impl WindowGeom {
    /// Windows per column and per row (the map is zero-padded up to whole windows).
    pub fn grid(&self) -> (usize, usize) {
        (self.h.div_ceil(self.wh), self.w.div_ceil(self.ww))
    }
    /// Windows per image (NW), padding included.
    pub fn windows(&self) -> usize {
        let (a, b) = self.grid();
        a * b
    }
    /// Tokens per window: `wh * ww`.
    pub fn tokens(&self) -> usize {
        self.wh * self.ww
    }
    /// timm's shifted-window attention mask for this geometry (none without a shift).
    pub fn mask(&self) -> Option<WindowMask> {
        let (nwh, nww) = self.grid();
        (self.sh != 0 || self.sw != 0).then_some(WindowMask {
            nw: nwh * nww,
            nww,
            wh: self.wh,
            ww: self.ww,
            hp: nwh * self.wh,
            wp: nww * self.ww,
            sh: self.sh,
            sw: self.sw,
        })
    }
}

/// Which rearrangement a [`Window`] op does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowMode {
    /// `[B, H*W, C] -> [B*NW, WH*WW, C]` (roll, pad, partition).
    Partition,
    /// `[B*NW, WH*WW, C] -> [B, H*W, C]` (reverse, crop, roll back), plus `res` when given.
    Reverse,
    /// `[B, H*W, C] -> [B, ceil(H/2)*ceil(W/2), 4C]` (PatchMerging's gather).
    Merge,
    /// Backward of `Merge`.
    MergeGrad,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Window {
    /// The input, shaped as [`WindowMode`] says for the mode.
    pub x: TensorId,
    /// Residual `[B, H*W, C]` added to the output (`Reverse` only).
    pub res: Option<TensorId>,
    /// Which rearrangement.
    pub mode: WindowMode,
    /// Map, window and shift sizes.
    pub geom: WindowGeom,
}

impl Graph {
    fn window_op(&mut self, x: TensorId, res: Option<TensorId>, mode: WindowMode, geom: WindowGeom) -> Result<TensorId> {
        let WindowGeom { b, h, w, c, .. } = geom;
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let (want, out) = match mode {
            WindowMode::Partition => (vec![b, h * w, c], vec![b * geom.windows(), geom.tokens(), c]),
            WindowMode::Reverse => (vec![b * geom.windows(), geom.tokens(), c], vec![b, h * w, c]),
            WindowMode::Merge => (vec![b, h * w, c], vec![b, h2 * w2, 4 * c]),
            WindowMode::MergeGrad => (vec![b, h2 * w2, 4 * c], vec![b, h * w, c]),
        };
        if self.shape(x) != want.as_slice() {
            return Err(Error::shape("window", format!("{mode:?}: input {:?}, expected {want:?}", self.shape(x))));
        }
        if let Some(r) = res {
            if mode != WindowMode::Reverse || self.shape(r) != out.as_slice() {
                return Err(Error::shape("window", format!("residual {:?}, expected {out:?}", self.shape(r))));
            }
        }
        // A shift may exceed a small map (always_partition); the roll wraps, as torch.roll does.
        if geom.wh == 0 || geom.ww == 0 || h == 0 || w == 0 || geom.sh >= geom.wh.max(1) || geom.sw >= geom.ww.max(1) {
            return Err(Error::shape("window", format!("bad window {geom:?}")));
        }
        Ok(self.push(Box::new(Window { x, res, mode, geom }), &out))
    }

    /// Swin's `_attn` preamble: `x [B, H*W, C]` rolled by `-shift`, zero-padded, cut into windows.
    pub fn window_partition(&mut self, x: TensorId, geom: WindowGeom) -> Result<TensorId> {
        self.window_op(x, None, WindowMode::Partition, geom)
    }

    /// Windows back to `[B, H*W, C]` (crop, roll by `shift`), plus `res` when given.
    pub fn window_reverse(&mut self, win: TensorId, res: Option<TensorId>, geom: WindowGeom) -> Result<TensorId> {
        self.window_op(win, res, WindowMode::Reverse, geom)
    }

    /// PatchMerging's rearrangement of `x [B, H*W, C]`: 2x2 neighbours concatenated.
    pub fn patch_merge(&mut self, x: TensorId, b: usize, h: usize, w: usize) -> Result<TensorId> {
        let c = self.shape(x).last().copied().unwrap_or(0);
        let geom = WindowGeom { b, h, w, c, wh: 1, ww: 1, sh: 0, sw: 0 };
        self.window_op(x, None, WindowMode::Merge, geom)
    }
}

impl Op for Window {
    fn name(&self) -> &'static str {
        "window"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), self.res]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let dx = match self.mode {
            WindowMode::Partition => g.window_op(dout, None, WindowMode::Reverse, self.geom)?,
            WindowMode::Reverse => g.window_op(dout, None, WindowMode::Partition, self.geom)?,
            WindowMode::Merge => g.window_op(dout, None, WindowMode::MergeGrad, self.geom)?,
            WindowMode::MergeGrad => g.window_op(dout, None, WindowMode::Merge, self.geom)?,
        };
        Ok(vec![Some(dx), self.res.map(|_| dout)])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let WindowGeom { b, h, w, c, wh, ww, sh, sw } = self.geom;
        let u = |what: &str, v: usize| u32_of("window", what, v);
        let mode = match self.mode {
            WindowMode::Partition => 0,
            WindowMode::Reverse => 1,
            WindowMode::Merge => 2,
            WindowMode::MergeGrad => 3,
        };
        let key = KernelKey::new("window", "main")
            .u("B", u("B", b)?)
            .u("H", u("H", h)?)
            .u("W", u("W", w)?)
            .u("C", u("C", c)?)
            .u("WH", u("WH", wh)?)
            .u("WW", u("WW", ww)?)
            .u("SH", u("SH", sh)?)
            .u("SW", u("SW", sw)?)
            .u("MODE", mode)
            .u("RES", self.res.is_some() as u32);
        // One invocation per output element; the output shape is fixed by the mode.
        let n = match self.mode {
            WindowMode::Partition => b * self.geom.windows() * self.geom.tokens() * c,
            WindowMode::Merge => b * h.div_ceil(2) * w.div_ceil(2) * 4 * c,
            WindowMode::Reverse | WindowMode::MergeGrad => b * h * w * c,
        };
        Dispatch::linear(key, n)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let WindowGeom { b, h, w, c, wh, ww, sh, sw } = self.geom;
        let (_, nww) = self.geom.grid();
        let (nw, n) = (self.geom.windows(), self.geom.tokens());
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let mut out = Vec::new();
        match self.mode {
            WindowMode::Partition => {
                for bi in 0..b {
                    for wi in 0..nw {
                        for i in 0..n {
                            let py = (wi / nww) * wh + i / ww;
                            let px = (wi % nww) * ww + i % ww;
                            for ci in 0..c {
                                out.push(if py < h && px < w { x[((bi * h + (py + sh) % h) * w + (px + sw) % w) * c + ci] } else { 0.0 });
                            }
                        }
                    }
                }
            }
            WindowMode::Reverse => {
                let res = self.res.map(get);
                for bi in 0..b {
                    for y in 0..h {
                        for xx in 0..w {
                            let py = (y + h - sh % h) % h;
                            let px = (xx + w - sw % w) % w;
                            let wi = (py / wh) * nww + px / ww;
                            let i = (py % wh) * ww + px % ww;
                            for ci in 0..c {
                                let o = ((bi * h + y) * w + xx) * c + ci;
                                let r = res.as_ref().map_or(0.0, |r| r[o]);
                                out.push(x[((bi * nw + wi) * n + i) * c + ci] + r);
                            }
                        }
                    }
                }
            }
            WindowMode::Merge => {
                for bi in 0..b {
                    for y2 in 0..h2 {
                        for x2 in 0..w2 {
                            for k in 0..4 {
                                let (y, xx) = (2 * y2 + k % 2, 2 * x2 + k / 2);
                                for ci in 0..c {
                                    out.push(if y < h && xx < w { x[((bi * h + y) * w + xx) * c + ci] } else { 0.0 });
                                }
                            }
                        }
                    }
                }
            }
            WindowMode::MergeGrad => {
                for bi in 0..b {
                    for y in 0..h {
                        for xx in 0..w {
                            let k = (xx % 2) * 2 + y % 2;
                            for ci in 0..c {
                                out.push(x[(((bi * h2 + y / 2) * w2 + xx / 2) * 4 + k) * c + ci]);
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// Which output a [`RelPos`] op computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RelPosMode {
    /// table `[(2WH-1)(2WW-1), NH]` -> bias `[NH, N, N]`.
    Bias,
    /// ds `[ZB*NH*N, N]` -> d bias `[NH, N, N]`, times `inv_scale`, summed over ZB.
    BiasGrad {
        /// Groups summed over: windows x batch.
        zb: usize,
        /// Factor applied to ds (1 / the softmax's scale).
        inv_scale: f32,
    },
    /// d bias `[NH, N, N]` -> d table.
    TableGrad,
}

/// Relative position bias of a `wh x ww` window with `heads` heads.
#[derive(Debug, Clone)]
pub struct RelPos {
    /// The input: table, ds or d bias, as [`RelPosMode`] says for the mode.
    pub x: TensorId,
    /// Window height in tokens.
    pub wh: usize,
    /// Window width in tokens (N = wh * ww).
    pub ww: usize,
    /// Heads NH.
    pub heads: usize,
    /// Which output.
    pub mode: RelPosMode,
}

impl RelPos {
    fn table_len(&self) -> usize {
        (2 * self.wh - 1) * (2 * self.ww - 1)
    }
    fn index(&self, i: usize, j: usize) -> usize {
        let (ww, wh) = (self.ww, self.wh);
        (i / ww + wh - 1 - j / ww) * (2 * ww - 1) + (i % ww + ww - 1 - j % ww)
    }
}

impl Graph {
    /// timm's `WindowAttention._get_rel_pos_bias`: `table [(2WH-1)(2WW-1), heads] -> [heads, N, N]`.
    pub fn rel_pos_bias(&mut self, table: TensorId, wh: usize, ww: usize) -> Result<TensorId> {
        let s = self.shape(table).to_vec();
        let [len, heads] = s.as_slice() else {
            return Err(Error::shape("rel_pos", format!("table {s:?} must be [L, heads]")));
        };
        let op = RelPos { x: table, wh, ww, heads: *heads, mode: RelPosMode::Bias };
        if wh == 0 || ww == 0 || *len != op.table_len() {
            return Err(Error::shape("rel_pos", format!("table {s:?} does not fit a {wh}x{ww} window")));
        }
        let n = wh * ww;
        Ok(self.push(Box::new(op), &[*heads, n, n]))
    }

    /// Gradient of a score bias `[heads, t, t]` from the softmax's `ds [Z*t, t]`
    /// (Z = windows x batch x heads): `inv_scale * ds` summed over windows and batch.
    pub fn bias_grad(&mut self, ds: TensorId, heads: usize, t: usize, inv_scale: f32) -> Result<TensorId> {
        let rows = self.shape(ds).iter().product::<usize>() / t.max(1);
        if heads == 0 || !rows.is_multiple_of(heads * t) {
            return Err(Error::shape("bias_grad", format!("ds {:?} does not split into {heads} heads of {t}", self.shape(ds))));
        }
        let zb = rows / (heads * t);
        // Any window factorisation of t works for the sum; (1, t) keeps N = t.
        let op = RelPos { x: ds, wh: 1, ww: t, heads, mode: RelPosMode::BiasGrad { zb, inv_scale } };
        Ok(self.push(Box::new(op), &[heads, t, t]))
    }
}

impl Op for RelPos {
    fn name(&self) -> &'static str {
        "rel_pos"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        if self.mode != RelPosMode::Bias {
            return Err(Error::shape("rel_pos", "second derivatives are not supported"));
        }
        let op = RelPos { x: dout, mode: RelPosMode::TableGrad, ..self.clone() };
        Ok(vec![Some(g.push(Box::new(op), &[self.table_len(), self.heads]))])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let u = |what: &str, v: usize| u32_of("rel_pos", what, v);
        let n = self.wh * self.ww;
        let (mode, zb, inv, count) = match self.mode {
            RelPosMode::Bias => (0, 1, 1.0, self.heads * n * n),
            RelPosMode::BiasGrad { zb, inv_scale } => (1, zb, inv_scale, self.heads * n * n),
            RelPosMode::TableGrad => (2, 1, 1.0, self.table_len() * self.heads),
        };
        let key = KernelKey::new("relpos", "main")
            .u("WH", u("WH", self.wh)?)
            .u("WW", u("WW", self.ww)?)
            .u("NH", u("heads", self.heads)?)
            .u("ZB", u("ZB", zb)?)
            .u("MODE", mode)
            .with("INV_SCALE", Const::f32(inv));
        Dispatch::linear(key, count)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let (n, nh) = (self.wh * self.ww, self.heads);
        match self.mode {
            RelPosMode::Bias => (0..nh * n * n).map(|o| x[self.index((o / n) % n, o % n) * nh + o / (n * n)]).collect(),
            RelPosMode::BiasGrad { zb, inv_scale } => {
                (0..nh * n * n).map(|o| (0..zb).map(|z| x[z * nh * n * n + o]).sum::<f32>() * inv_scale).collect()
            }
            RelPosMode::TableGrad => {
                let mut out = vec![0f32; self.table_len() * nh];
                for h in 0..nh {
                    for i in 0..n {
                        for j in 0..n {
                            out[self.index(i, j) * nh + h] += x[(h * n + i) * n + j];
                        }
                    }
                }
                out
            }
        }
    }
}
