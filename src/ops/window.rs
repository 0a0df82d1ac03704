//! Swin's token moves (shaders/window.wgsl), each a gather with its own entry
//! point: window partition with the cyclic shift and padding
//! ([`WindowPartition`]), its reverse with the residual add
//! ([`WindowReverse`]), and patch merging, 2x2 space-to-depth ([`PatchMerge`],
//! backward [`PatchMergeGrad`]). Partition and reverse are each other's
//! backward, as are merge and its gradient. (The relative position bias is in
//! `attention_bias.rs`.)

use super::attention_bias::WindowMask;
use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

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
    /// The token map `[B, H*W, C]`.
    fn map_shape(&self) -> [usize; 3] {
        [self.b, self.h * self.w, self.c]
    }
    /// The windows `[B*NW, WH*WW, C]`.
    fn windows_shape(&self) -> [usize; 3] {
        [self.b * self.windows(), self.tokens(), self.c]
    }
    /// The shader's constants.
    fn key(&self, op: &str, entry: &'static str) -> Result<KernelKey> {
        let u = |what: &str, v: usize| u32_of(op, what, v);
        Ok(KernelKey::new("window", entry)
            .u("B", u("B", self.b)?)
            .u("H", u("H", self.h)?)
            .u("W", u("W", self.w)?)
            .u("C", u("C", self.c)?)
            .u("WH", u("WH", self.wh)?)
            .u("WW", u("WW", self.ww)?)
            .u("SH", u("SH", self.sh)?)
            .u("SW", u("SW", self.sw)?))
    }
    /// Checks the geometry and that `x` has `want`'s shape.
    fn check(&self, g: &Graph, op: &str, x: TensorId, want: &[usize]) -> Result<()> {
        if g.shape(x) != want {
            return Err(Error::shape(op, format!("input {:?}, expected {want:?}", g.shape(x))));
        }
        // A shift may exceed a small map (always_partition); the roll wraps, as torch.roll does.
        if self.wh == 0 || self.ww == 0 || self.h == 0 || self.w == 0 || self.sh >= self.wh || self.sw >= self.ww {
            return Err(Error::shape(op, format!("bad window {self:?}")));
        }
        Ok(())
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

/// See the module docs: `x [B, H*W, C] -> [B*NW, WH*WW, C]` (roll by
/// `-shift`, zero-pad, cut into windows).
#[derive(Debug, Clone)]
pub struct WindowPartition {
    /// The token map `[B, H*W, C]`.
    pub x: TensorId,
    /// Map, window and shift sizes.
    pub geom: WindowGeom,
}

/// See the module docs: `windows [B*NW, WH*WW, C] -> [B, H*W, C]` (uncut,
/// crop, roll by `shift`), plus `res` when given. The backward of
/// [`WindowPartition`], and its backward is one.
#[derive(Debug, Clone)]
pub struct WindowReverse {
    /// The windows `[B*NW, WH*WW, C]`.
    pub windows: TensorId,
    /// Residual `[B, H*W, C]` added to the output (entry `window_reverse_add`).
    pub res: Option<TensorId>,
    /// Map, window and shift sizes.
    pub geom: WindowGeom,
}

/// The sizes of a patch merging: a `H x W` map of `C` channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeDims {
    /// Images in the batch (B).
    pub batch: usize,
    /// Map height in tokens (H).
    pub height: usize,
    /// Map width in tokens (W).
    pub width: usize,
    /// Channels per token (C).
    pub channels: usize,
}

impl MergeDims {
    /// The merged map's height and width: `(ceil(H / 2), ceil(W / 2))`.
    pub fn half(&self) -> (usize, usize) {
        (self.height.div_ceil(2), self.width.div_ceil(2))
    }
    fn map_shape(&self) -> [usize; 3] {
        [self.batch, self.height * self.width, self.channels]
    }
    fn merged_shape(&self) -> [usize; 3] {
        let (h2, w2) = self.half();
        [self.batch, h2 * w2, 4 * self.channels]
    }
    /// The shader's constants (the window sizes keep their defaults).
    fn key(&self, op: &str, entry: &'static str) -> Result<KernelKey> {
        Ok(KernelKey::new("window", entry)
            .u("B", u32_of(op, "B", self.batch)?)
            .u("H", u32_of(op, "H", self.height)?)
            .u("W", u32_of(op, "W", self.width)?)
            .u("C", u32_of(op, "C", self.channels)?))
    }
}

/// See the module docs: timm's PatchMerging gather, `x [B, H*W, C] ->
/// [B, ceil(H/2)*ceil(W/2), 4C]` (zero-padded to even, 2x2 neighbours, channel
/// order (w offset, h offset, c)).
#[derive(Debug, Clone)]
pub struct PatchMerge {
    /// The token map `[B, H*W, C]`.
    pub x: TensorId,
    /// The sizes.
    pub dims: MergeDims,
}

/// The backward of [`PatchMerge`]: `dx [B, H*W, C]` from `dmerged
/// [B, ceil(H/2)*ceil(W/2), 4C]`; its backward is a [`PatchMerge`].
#[derive(Debug, Clone)]
pub struct PatchMergeGrad {
    /// The gradient of the merged map.
    pub dmerged: TensorId,
    /// The forward's sizes.
    pub dims: MergeDims,
}

impl Graph {
    /// Swin's `_attn` preamble: `x [B, H*W, C]` rolled by `-shift`, zero-padded, cut into windows.
    pub fn window_partition(&mut self, x: TensorId, geom: WindowGeom) -> Result<TensorId> {
        geom.check(self, "window_partition", x, &geom.map_shape())?;
        Ok(self.push(Box::new(WindowPartition { x, geom }), &geom.windows_shape()))
    }

    /// Windows back to `[B, H*W, C]` (crop, roll by `shift`), plus `res` when given.
    pub fn window_reverse(&mut self, win: TensorId, res: Option<TensorId>, geom: WindowGeom) -> Result<TensorId> {
        geom.check(self, "window_reverse", win, &geom.windows_shape())?;
        let out = geom.map_shape();
        if let Some(r) = res {
            if self.shape(r) != out {
                return Err(Error::shape("window_reverse", format!("residual {:?}, expected {out:?}", self.shape(r))));
            }
        }
        Ok(self.push(Box::new(WindowReverse { windows: win, res, geom }), &out))
    }

    /// PatchMerging's rearrangement of `x [B, H*W, C]`: 2x2 neighbours concatenated.
    pub fn patch_merge(&mut self, x: TensorId, b: usize, h: usize, w: usize) -> Result<TensorId> {
        let c = self.shape(x).last().copied().unwrap_or(0);
        let dims = MergeDims { batch: b, height: h, width: w, channels: c };
        if self.shape(x) != dims.map_shape() {
            return Err(Error::shape("patch_merge", format!("input {:?}, expected {:?}", self.shape(x), dims.map_shape())));
        }
        if h == 0 || w == 0 {
            return Err(Error::shape("patch_merge", format!("bad map {dims:?}")));
        }
        Ok(self.push(Box::new(PatchMerge { x, dims }), &dims.merged_shape()))
    }
}

impl Op for WindowPartition {
    fn name(&self) -> &'static str {
        "window_partition"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Ok(vec![Some(g.window_reverse(dout, None, self.geom)?)])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let [z, n, c] = self.geom.windows_shape();
        Dispatch::linear(self.geom.key("window_partition", "window_partition")?, z * n * c)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let WindowGeom { b, h, w, c, wh, ww, sh, sw } = self.geom;
        let (_, nww) = self.geom.grid();
        let (nw, n) = (self.geom.windows(), self.geom.tokens());
        let mut out = Vec::with_capacity(b * nw * n * c);
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
        out
    }
}

impl Op for WindowReverse {
    fn name(&self) -> &'static str {
        "window_reverse"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        match self.res {
            Some(r) => vec![Some(self.windows), Some(r)],
            None => vec![Some(self.windows)],
        }
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let dwin = g.window_partition(dout, self.geom)?;
        Ok(match self.res {
            Some(_) => vec![Some(dwin), Some(dout)],
            None => vec![Some(dwin)],
        })
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let entry = if self.res.is_some() { "window_reverse_add" } else { "window_reverse" };
        let [b, hw, c] = self.geom.map_shape();
        Dispatch::linear(self.geom.key("window_reverse", entry)?, b * hw * c)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.windows);
        let res = self.res.map(get);
        let WindowGeom { b, h, w, c, wh, ww, sh, sw } = self.geom;
        let (_, nww) = self.geom.grid();
        let (nw, n) = (self.geom.windows(), self.geom.tokens());
        let mut out = Vec::with_capacity(b * h * w * c);
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
        out
    }
}

impl Op for PatchMerge {
    fn name(&self) -> &'static str {
        "patch_merge"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let grad = PatchMergeGrad { dmerged: dout, dims: self.dims };
        Ok(vec![Some(g.push(Box::new(grad), &self.dims.map_shape()))])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let [b, n2, c4] = self.dims.merged_shape();
        Dispatch::linear(self.dims.key("patch_merge", "patch_merge")?, b * n2 * c4)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let MergeDims { batch: b, height: h, width: w, channels: c } = self.dims;
        let (h2, w2) = self.dims.half();
        let mut out = Vec::with_capacity(b * h2 * w2 * 4 * c);
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
        out
    }
}

impl Op for PatchMergeGrad {
    fn name(&self) -> &'static str {
        "patch_merge_grad"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.dmerged)]
    }

    /// The merge gather is linear: the backward of its gradient is the merge itself.
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let merge = PatchMerge { x: dout, dims: self.dims };
        Ok(vec![Some(g.push(Box::new(merge), &self.dims.merged_shape()))])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let [b, hw, c] = self.dims.map_shape();
        Dispatch::linear(self.dims.key("patch_merge_grad", "patch_merge_grad")?, b * hw * c)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.dmerged);
        let MergeDims { batch: b, height: h, width: w, channels: c } = self.dims;
        let (h2, w2) = self.dims.half();
        let mut out = Vec::with_capacity(b * h * w * c);
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
        out
    }
}
