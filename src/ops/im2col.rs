//! Patch extraction for a stride = kernel convolution:
//! `img [B, CIN, IH, IW] -> [B, GH * GW, CIN * P * P]` (GH = IH / P, floor).
//! Followed by a linear layer with the conv weight viewed as `[D, CIN*P*P]`,
//! it is timm's PatchEmbed (`proj` conv, `flatten(2).transpose(1, 2)`).

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Im2Col {
    /// Forward: the image `[B, CIN, IH, IW]`.
    pub img: TensorId,
    /// (B, CIN, IH, IW, P): batch, image channels, height, width, patch side.
    pub dims: [usize; 5],
    /// Backward mode (col2im): `img` holds d cols; the output is d img.
    pub grad: bool,
}

impl Graph {
    /// Patches of size `p` from `img [B, CIN, IH, IW]`.
    pub fn im2col(&mut self, img: TensorId, p: usize) -> Result<TensorId> {
        let s = self.shape(img).to_vec();
        let [b, cin, ih, iw] = s.as_slice() else {
            return Err(Error::shape("im2col", format!("image {s:?} must be [B, C, H, W]")));
        };
        if p == 0 || *ih < p || *iw < p {
            return Err(Error::shape("im2col", format!("image {s:?} is smaller than patch size {p}")));
        }
        let (gh, gw) = (ih / p, iw / p);
        let op = Im2Col { img, dims: [*b, *cin, *ih, *iw, p], grad: false };
        Ok(self.push(Box::new(op), &[*b, gh * gw, cin * p * p]))
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
        if self.grad {
            return Err(Error::shape("col2im", "second derivatives are not supported"));
        }
        let [b, cin, ih, iw, _] = self.dims;
        Ok(vec![Some(g.push(Box::new(Im2Col { img: dout, dims: self.dims, grad: true }), &[b, cin, ih, iw]))])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let [b, cin, ih, iw, p] = self.dims;
        let key = KernelKey::new("im2col", "main")
            .u("B", u32_of("im2col", "B", b)?)
            .u("CIN", u32_of("im2col", "CIN", cin)?)
            .u("IH", u32_of("im2col", "IH", ih)?)
            .u("IW", u32_of("im2col", "IW", iw)?)
            .u("P", u32_of("im2col", "P", p)?)
            .u("MODE", self.grad as u32);
        Dispatch::linear(key, if self.grad { b * cin * ih * iw } else { b * (ih / p) * (iw / p) * cin * p * p })
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let img = get(self.img);
        let [b, cin, ih, iw, p] = self.dims;
        let (gh, gw) = (ih / p, iw / p);
        if self.grad {
            let k = cin * p * p;
            let mut out = vec![0f32; b * cin * ih * iw];
            for bi in 0..b {
                for c in 0..cin {
                    for y in 0..gh * p {
                        for x in 0..gw * p {
                            let row = (bi * gh + y / p) * gw + x / p;
                            out[((bi * cin + c) * ih + y) * iw + x] = img[row * k + (c * p + y % p) * p + x % p];
                        }
                    }
                }
            }
            return out;
        }
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
