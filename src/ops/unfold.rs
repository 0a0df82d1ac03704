//! Sliding-window patch extraction (T2T-ViT's "soft split"): PyTorch's
//! `nn.Unfold(kernel_size = k, stride = s, padding = p)` (zero padding,
//! dilation 1) followed by `.transpose(1, 2)`, produced token-major directly:
//! `cols [B, L, C * k * k]` with
//! `cols[b, l, f] = xpad[b, c, oh * s + ki, ow * s + kj]` (0 in the padding),
//! `l = oh * OW + ow`, `f = c * k * k + ki * k + kj` (channel-major features),
//! `OH = (H + 2p - k) / s + 1`, `OW = (W + 2p - k) / s + 1` (floor).
//!
//! The image is read from either layout ([`UnfoldInput`]): an image
//! `[B, C, H, W]`, or tokens `[B, H * W, C]` read as the image
//! `x[b, c, h, w] = t[b, h * W + w, c]` (T2T's `x.transpose(1, 2).reshape(B, C, H, W)`
//! between splits, without a transpose op).
//!
//! The backward is its own op, [`Fold`] (col2im: each input element sums the
//! `(l, f)` positions that read it, gathered per input element so that
//! overlapping windows add up without atomics). Unfold and fold are adjoint,
//! so the backward of [`Fold`] is an [`Unfold`].
//!
//! With `k == s`, `p == 0` and an image input, the output equals
//! [`Graph::im2col`]'s (same row order and same channel-major feature order).

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// The layout the unfolded image is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnfoldInput {
    /// `x [B, C, H, W]`.
    Image,
    /// `x [B, H * W, C]`, read as the image `x[b, c, h, w] = t[b, h * W + w, c]`.
    Tokens,
}

/// The shader's `INPUT` constant; mirrors `INPUT_IMAGE` / `INPUT_TOKENS` in `shaders/unfold.wgsl`.
fn input_code(input: UnfoldInput) -> u32 {
    match input {
        UnfoldInput::Image => 0,
        UnfoldInput::Tokens => 1,
    }
}

/// The sizes of an unfold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnfoldDims {
    /// Images in the batch (B).
    pub batch: usize,
    /// Image channels (C).
    pub channels: usize,
    /// Image height before padding (H).
    pub height: usize,
    /// Image width before padding (W).
    pub width: usize,
    /// Window side (k).
    pub kernel: usize,
    /// Pixels between window starts, in both directions (s).
    pub stride: usize,
    /// Zero pixels added on each side, in both directions (p).
    pub padding: usize,
}

impl UnfoldDims {
    /// The padded size of a side of `n` pixels: `n + 2p` (saturating).
    fn padded(&self, n: usize) -> usize {
        n.saturating_add(self.padding.saturating_mul(2))
    }

    /// Windows per column and per row `[OH, OW]`: `(H + 2p - k) / s + 1` (floor);
    /// `[0, 0]` when no window fits or the kernel or stride is 0.
    pub fn out_hw(&self) -> [usize; 2] {
        let (ph, pw) = (self.padded(self.height), self.padded(self.width));
        if self.kernel == 0 || self.stride == 0 || self.kernel > ph || self.kernel > pw {
            return [0, 0];
        }
        [(ph - self.kernel) / self.stride + 1, (pw - self.kernel) / self.stride + 1]
    }

    /// Output tokens per image: `L = OH * OW`.
    pub fn tokens(&self) -> usize {
        let [oh, ow] = self.out_hw();
        oh * ow
    }

    /// Features per output token: `C * k * k`.
    pub fn features(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// The shape of `x` (and of the fold's `dx`) in the given layout.
    pub fn input_shape(&self, input: UnfoldInput) -> Vec<usize> {
        match input {
            UnfoldInput::Image => vec![self.batch, self.channels, self.height, self.width],
            UnfoldInput::Tokens => vec![self.batch, self.height * self.width, self.channels],
        }
    }

    /// The shape of the unfolded columns: `[B, L, C * k * k]`.
    pub fn output_shape(&self) -> Vec<usize> {
        vec![self.batch, self.tokens(), self.features()]
    }

    /// Index of the image element `(b, c, h, w)` in `x` laid out as `input`.
    fn input_index(&self, input: UnfoldInput, b: usize, c: usize, h: usize, w: usize) -> usize {
        let (cs, hs, ws) = (self.channels, self.height, self.width);
        match input {
            UnfoldInput::Image => ((b * cs + c) * hs + h) * ws + w,
            UnfoldInput::Tokens => (b * hs * ws + h * ws + w) * cs + c,
        }
    }

    /// Checks that every size and index the kernel computes fits a `u32`
    /// (products checked, so a huge padding is an error, not an overflow).
    fn check_u32(&self, op: &str) -> Result<()> {
        let [oh, ow] = self.out_hw();
        let product = |what: &str, v: &[usize]| {
            let n = v.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).unwrap_or(usize::MAX);
            u32_of(op, what, n).map(|_| ())
        };
        product("B * OH * OW * C * k * k", &[self.batch, oh, ow, self.channels, self.kernel, self.kernel])?;
        product("B * C * H * W", &[self.batch, self.channels, self.height, self.width])?;
        product("padded height", &[self.padded(self.height)])?;
        product("padded width", &[self.padded(self.width)])
    }

    /// The shader's size constants.
    fn key(&self, op: &str, entry: &'static str, input: UnfoldInput) -> Result<KernelKey> {
        self.check_u32(op)?;
        let [oh, ow] = self.out_hw();
        Ok(KernelKey::new("unfold", entry)
            .u("B", u32_of(op, "batch", self.batch)?)
            .u("C", u32_of(op, "channels", self.channels)?)
            .u("H", u32_of(op, "height", self.height)?)
            .u("W", u32_of(op, "width", self.width)?)
            .u("K", u32_of(op, "kernel", self.kernel)?)
            .u("S", u32_of(op, "stride", self.stride)?)
            .u("P", u32_of(op, "padding", self.padding)?)
            .u("OH", u32_of(op, "out height", oh)?)
            .u("OW", u32_of(op, "out width", ow)?)
            .u("INPUT", input_code(input)))
    }

    /// Calls `visit(x index, cols index)` for every column element that reads
    /// a pixel inside the image (padding positions are skipped), in the order
    /// of a plain nested loop over `b, oh, ow, c, ki, kj`.
    fn for_each_read(&self, input: UnfoldInput, mut visit: impl FnMut(usize, usize)) {
        let [oh_n, ow_n] = self.out_hw();
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let mut col = 0;
        for b in 0..self.batch {
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    for c in 0..self.channels {
                        for ki in 0..k {
                            for kj in 0..k {
                                // Padded coordinates, then the image's (if inside).
                                let (yp, xp) = (oh * s + ki, ow * s + kj);
                                if yp >= p && yp - p < self.height && xp >= p && xp - p < self.width {
                                    visit(self.input_index(input, b, c, yp - p, xp - p), col);
                                }
                                col += 1;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// See the module docs: the forward unfold, `x -> cols [B, L, C * k * k]`.
#[derive(Debug, Clone)]
pub struct Unfold {
    /// The image `[B, C, H, W]` or tokens `[B, H * W, C]` (see `input`).
    pub x: TensorId,
    /// The sizes.
    pub dims: UnfoldDims,
    /// The layout of `x`.
    pub input: UnfoldInput,
}

/// The backward of [`Unfold`] (fold / col2im): `dx` in the forward input's
/// layout from `dcols [B, L, C * k * k]`, summing over overlapping windows.
#[derive(Debug, Clone)]
pub struct Fold {
    /// The gradient of the columns `[B, L, C * k * k]`.
    pub dcols: TensorId,
    /// The forward's sizes.
    pub dims: UnfoldDims,
    /// The layout of the forward's `x`, and so of the output.
    pub input: UnfoldInput,
}

impl Graph {
    /// Unfolds `x` into windows of `kernel x kernel` pixels every `stride`
    /// pixels, with `padding` zeros on each side: `[B, OH * OW, C * kernel^2]`,
    /// token-major (`nn.Unfold(kernel, stride, padding)(x).transpose(1, 2)`).
    /// `hw` is the image's `[H, W]`: it gives the grid of `Tokens` input and
    /// must equal `x`'s last two sides for `Image` input.
    pub fn unfold(
        &mut self,
        x: TensorId,
        input: UnfoldInput,
        hw: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<TensorId> {
        let s = self.shape(x).to_vec();
        let [height, width] = hw;
        let (batch, channels) = match (input, s.as_slice()) {
            (UnfoldInput::Image, &[b, c, h, w]) => {
                if [h, w] != hw {
                    return Err(Error::shape("unfold", format!("hw {hw:?} does not match image x {s:?} [B, C, H, W]")));
                }
                (b, c)
            }
            (UnfoldInput::Tokens, &[b, n, c]) => {
                if height.checked_mul(width) != Some(n) {
                    return Err(Error::shape("unfold", format!("hw {hw:?}: H * W != the {n} tokens of x {s:?} [B, H * W, C]")));
                }
                (b, c)
            }
            (UnfoldInput::Image, _) => return Err(Error::shape("unfold", format!("image x {s:?} must be [B, C, H, W]"))),
            (UnfoldInput::Tokens, _) => return Err(Error::shape("unfold", format!("tokens x {s:?} must be [B, H * W, C]"))),
        };
        if height == 0 || width == 0 {
            return Err(Error::shape("unfold", format!("the image {height}x{width} is empty")));
        }
        if kernel == 0 || stride == 0 {
            return Err(Error::shape("unfold", format!("kernel {kernel} and stride {stride} must be at least 1")));
        }
        let dims = UnfoldDims { batch, channels, height, width, kernel, stride, padding };
        let (ph, pw) = (dims.padded(height), dims.padded(width));
        if kernel > ph || kernel > pw {
            return Err(Error::shape(
                "unfold",
                format!("kernel {kernel} is larger than the padded image {ph}x{pw} ({height}x{width}, padding {padding})"),
            ));
        }
        dims.check_u32("unfold")?;
        let op = Unfold { x, dims, input };
        Ok(self.push(Box::new(op), &dims.output_shape()))
    }
}

impl Op for Unfold {
    fn name(&self) -> &'static str {
        "unfold"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x)]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let fold = Fold { dcols: dout, dims: self.dims, input: self.input };
        Ok(vec![Some(g.push(Box::new(fold), &self.dims.input_shape(self.input)))])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Dispatch::linear(d.key("unfold", "forward", self.input)?, d.batch * d.tokens() * d.features())
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let x = get(self.x);
        let d = self.dims;
        let mut cols = vec![0f32; d.batch * d.tokens() * d.features()];
        d.for_each_read(self.input, |xi, ci| cols[ci] = x[xi]);
        cols
    }
}

impl Op for Fold {
    fn name(&self) -> &'static str {
        "fold"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.dcols)]
    }

    /// Fold is the adjoint of unfold: its backward unfolds the output gradient.
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let unfold = Unfold { x: dout, dims: self.dims, input: self.input };
        Ok(vec![Some(g.push(Box::new(unfold), &self.dims.output_shape()))])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Dispatch::linear(d.key("fold", "backward", self.input)?, d.batch * d.channels * d.height * d.width)
    }

    /// Scatter form (each column element adds to the pixel it read), an
    /// independent check of the kernel's gather form.
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let dcols = get(self.dcols);
        let d = self.dims;
        let mut dx = vec![0f32; d.batch * d.channels * d.height * d.width];
        d.for_each_read(self.input, |xi, ci| dx[xi] += dcols[ci]);
        dx
    }
}
