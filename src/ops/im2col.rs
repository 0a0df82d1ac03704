//! Patch extraction for a stride = kernel convolution:
//! `img [B, CIN, IH, IW] -> [B, GH * GW, CIN * P * P]` (GH = IH / P, floor).
//! Followed by a linear layer with the conv weight viewed as `[D, CIN*P*P]`,
//! it is timm's PatchEmbed (`proj` conv, `flatten(2).transpose(1, 2)`).
//!
//! The backward is its own op, [`Col2Im`] (each image element gathers the one
//! column element that read it; zero where the conv drops pixels).

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// The sizes of a patch extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Im2ColDims {
    /// Images in the batch (B).
    pub batch: usize,
    /// Image channels (CIN).
    pub in_channels: usize,
    /// Image height (IH).
    pub height: usize,
    /// Image width (IW).
    pub width: usize,
    /// Patch side (P), also the stride.
    pub patch: usize,
}

impl Im2ColDims {
    /// Patches per column and per row `(GH, GW)` (floor, as the conv).
    pub fn grid(&self) -> (usize, usize) {
        (self.height / self.patch, self.width / self.patch)
    }

    /// Features per patch: `CIN * P * P`.
    pub fn features(&self) -> usize {
        self.in_channels * self.patch * self.patch
    }

    /// The image's shape `[B, CIN, IH, IW]`.
    pub fn image_shape(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.height, self.width]
    }

    /// The shader's constants.
    fn key(&self, op: &str, entry: &'static str) -> Result<KernelKey> {
        Ok(KernelKey::new("im2col", entry)
            .u("B", u32_of(op, "B", self.batch)?)
            .u("CIN", u32_of(op, "CIN", self.in_channels)?)
            .u("IH", u32_of(op, "IH", self.height)?)
            .u("IW", u32_of(op, "IW", self.width)?)
            .u("P", u32_of(op, "P", self.patch)?))
    }
}

/// See the module docs: the forward patch extraction.
#[derive(Debug, Clone)]
pub struct Im2Col {
    /// The image `[B, CIN, IH, IW]`.
    pub img: TensorId,
    /// The sizes.
    pub dims: Im2ColDims,
}

/// The backward of [`Im2Col`] (col2im): `dimg [B, CIN, IH, IW]` from
/// `dcols [B, GH * GW, CIN * P * P]`.
#[derive(Debug, Clone)]
pub struct Col2Im {
    /// The gradient of the patches `[B, GH * GW, CIN * P * P]`.
    pub dcols: TensorId,
    /// The forward's sizes.
    pub dims: Im2ColDims,
}

impl Graph {
    /// Patches of size `p` from `img [B, CIN, IH, IW]`.
    pub fn im2col(&mut self, img: TensorId, p: usize) -> Result<TensorId> {
        let s = self.shape(img).to_vec();
        let [batch, in_channels, height, width] = s.as_slice() else {
            return Err(Error::shape("im2col", format!("image {s:?} must be [B, C, H, W]")));
        };
        if p == 0 || *height < p || *width < p {
            return Err(Error::shape("im2col", format!("image {s:?} is smaller than patch size {p}")));
        }
        let dims = Im2ColDims { batch: *batch, in_channels: *in_channels, height: *height, width: *width, patch: p };
        let (gh, gw) = dims.grid();
        Ok(self.push(Box::new(Im2Col { img, dims }), &[dims.batch, gh * gw, dims.features()]))
    }
}

impl Op for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.img)]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let grad = Col2Im { dcols: dout, dims: self.dims };
        Ok(vec![Some(g.push(Box::new(grad), &self.dims.image_shape()))])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        let (gh, gw) = d.grid();
        Dispatch::linear(d.key("im2col", "forward")?, d.batch * gh * gw * d.features())
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let img = get(self.img);
        let Im2ColDims { batch: b, in_channels: cin, height: ih, width: iw, patch: p } = self.dims;
        let (gh, gw) = self.dims.grid();
        let mut out = Vec::with_capacity(b * gh * gw * cin * p * p);
        for bi in 0..b {
            for py in 0..gh {
                for px in 0..gw {
                    for c in 0..cin {
                        for ky in 0..p {
                            for kx in 0..p {
                                out.push(img[((bi * cin + c) * ih + py * p + ky) * iw + px * p + kx]);
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

impl Op for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.dcols)]
    }

    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("col2im", "second derivatives are not supported"))
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Dispatch::linear(d.key("col2im", "backward")?, d.batch * d.in_channels * d.height * d.width)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let dcols = get(self.dcols);
        let Im2ColDims { batch: b, in_channels: cin, height: ih, width: iw, patch: p } = self.dims;
        let (gh, gw) = self.dims.grid();
        let k = self.dims.features();
        let mut out = vec![0f32; b * cin * ih * iw];
        for bi in 0..b {
            for c in 0..cin {
                for y in 0..gh * p {
                    for x in 0..gw * p {
                        let row = (bi * gh + y / p) * gw + x / p;
                        out[((bi * cin + c) * ih + y) * iw + x] = dcols[row * k + (c * p + y % p) * p + x % p];
                    }
                }
            }
        }
        out
    }
}
