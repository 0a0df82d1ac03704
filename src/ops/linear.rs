//! Linear layer with a fused epilogue:
//! `out[M, N] = res + gamma * act(x[M, K] . w[N, K]^T + bias)`.
//! This is nn.Linear (weight in its own [out, in] layout), optionally followed
//! by exact GELU, layer scale and a residual add, in one kernel. The same op,
//! batched (`bmm`), multiplies Z independent pairs `a[z] . b[z]^T` (attention).
//! Backward passes read the operands where they lie ([`Layout`]): the input
//! gradient is `dout . w` and the weight gradient `dout^T . x`, with no
//! transposed copies.

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, MatmulKind, Op, TensorId};
use crate::kernel::KernelKey;
use crate::tune::MatmulShape;

/// The subgroup kernel's blocks (shaders/matmul_subgroup.wgsl): entry point, rows,
/// columns. `main_w56` (A . W^T only) fits 49-token windows (Swin) in one row block.
const SUBGROUP_BLOCKS: [(&str, usize, usize); 2] = [("main", 32, 64), ("main_w56", 56, 32)];

/// The subgroup kernel's block for an `m x n` product in `layout`: the 32 x 64
/// block unless the 56 x 32 one computes at least 10 % fewer outputs (it does half
/// the multiply-adds per W load and broadcast, so a few percent of padding is not
/// worth it: 784-row linears measured even). Returns the entry point, its rows and
/// columns, and the outputs it computes.
pub fn subgroup_block(layout: Layout, m: usize, n: usize) -> (&'static str, usize, usize, usize) {
    let area = |(_, r, c): (&str, usize, usize)| m.div_ceil(r) * r * n.div_ceil(c) * c;
    let [wide, window] = SUBGROUP_BLOCKS;
    let (entry, r, c) = if layout == Layout::ABt && area(window) * 10 <= area(wide) * 9 { window } else { wide };
    let entry = if entry == "main" { layout.entry() } else { entry };
    (entry, r, c, area((entry, r, c)))
}

/// Activation fused after the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Identity.
    None,
    /// Exact (erf) GELU, as torch's `nn.GELU()`.
    Gelu,
}

/// How a [`Linear`]'s operands lie in memory (each kernel family has an entry
/// point per layout; shaders/matmul_io.wgsl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// `x [Z, M, K] . w [N, K]^T`: nn.Linear's weight layout, attention's `q k^T`.
    ABt,
    /// `x [Z, M, K] . w [K, N]`: an input gradient (`dout . w`).
    AB,
    /// `x [Z, K, M]^T . w [K, N]`: a weight gradient (`dout^T . x`).
    AtB,
}

impl Layout {
    /// The kernel entry point for this layout.
    fn entry(self) -> &'static str {
        match self {
            Layout::ABt => "main",
            Layout::AB => "main_ab",
            Layout::AtB => "main_atb",
        }
    }

    /// Whether the vec4 kernels can read these shapes in this layout: each
    /// operand's contiguous dimension must be a multiple of 4.
    pub fn vec4_ok(self, m: usize, n: usize, k: usize) -> bool {
        match self {
            Layout::ABt => k.is_multiple_of(4),
            Layout::AB => k.is_multiple_of(4) && n.is_multiple_of(4),
            Layout::AtB => m.is_multiple_of(4) && n.is_multiple_of(4),
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Linear {
    /// Left operand `x [.., K]` (`[Z, M, K]` for bmm).
    pub x: TensorId,
    /// Weight `[N, K]` (nn.Linear's `[out, in]`), or `[Z, N, K]` when `w_batched`.
    pub w: TensorId,
    /// Bias `[N]`, added before the activation.
    pub bias: Option<TensorId>,
    /// Layer scale `[N]` (timm's `ls1.gamma` / `ls2.gamma`), applied after the activation.
    pub gamma: Option<TensorId>,
    /// Residual with the output's shape, added last.
    pub res: Option<TensorId>,
    /// Activation after the bias.
    pub act: Act,
    /// Rows M: the product of all dimensions of `x` but the last (per product for bmm).
    pub m: usize,
    /// Output columns N.
    pub n: usize,
    /// Reduction length K.
    pub k: usize,
    /// Independent products (grid z); 1 for a linear layer.
    pub z: usize,
    /// `w` holds one matrix per z (bmm) rather than one shared matrix.
    pub w_batched: bool,
    /// How `x` and `w` lie in memory; the fields above name the product's
    /// `[M, K] . [K, N]` sizes whatever the layout.
    pub layout: Layout,
    /// The output is stored as f16 elements ([`Graph::store_activations_f16`]).
    pub out_f16: bool,
    /// H > 0: the Z = B * H products are attention heads, written merged in timm's
    /// order, `[B, M, H * N]` (product z = b * H + h, row r, column c at
    /// `((b * M + r) * H + h) * N + c`), so no head-merge pass follows `p . v`.
    pub merge_heads: usize,
}

impl Graph {
    /// `x [.., K]` times `w [N, K]`^T (+ `bias [N]`) -> `[.., N]`.
    pub fn linear(&mut self, x: TensorId, w: TensorId, bias: Option<TensorId>) -> Result<TensorId> {
        self.linear_fused(x, w, bias, Act::None, None, None)
    }

    /// Linear with the fused epilogue: `res + gamma * act(x w^T + bias)`.
    pub fn linear_fused(
        &mut self,
        x: TensorId,
        w: TensorId,
        bias: Option<TensorId>,
        act: Act,
        gamma: Option<TensorId>,
        res: Option<TensorId>,
    ) -> Result<TensorId> {
        let xs = self.shape(x).to_vec();
        let ws = self.shape(w).to_vec();
        let (Some(&k), [n, wk]) = (xs.last(), ws.as_slice()) else {
            return Err(Error::shape("linear", format!("x {xs:?}, weight {ws:?}: weight must be [N, K]")));
        };
        if k != *wk {
            return Err(Error::shape("linear", format!("x {xs:?} has K = {k}, weight {ws:?} has K = {wk}")));
        }
        let n = *n;
        for (what, t) in [("bias", bias), ("gamma", gamma)] {
            if let Some(t) = t {
                if self.shape(t) != [n] {
                    return Err(Error::shape("linear", format!("{what} {:?} must be [{n}]", self.shape(t))));
                }
            }
        }
        let mut out_shape = xs.clone();
        if let Some(l) = out_shape.last_mut() {
            *l = n;
        }
        if let Some(r) = res {
            if self.shape(r) != out_shape.as_slice() {
                return Err(Error::shape("linear", format!("residual {:?} must be {out_shape:?}", self.shape(r))));
            }
        }
        let m = xs.iter().product::<usize>() / k.max(1);
        let op =
            Linear { x, w, bias, gamma, res, act, m, n, k, z: 1, w_batched: false, layout: Layout::ABt, out_f16: false, merge_heads: 0 };
        Ok(self.push(Box::new(op), &out_shape))
    }

    /// Batched `a [Z, M, K] . b [Z, N, K]^T -> [Z, M, N]`.
    pub fn bmm(&mut self, a: TensorId, b: TensorId) -> Result<TensorId> {
        self.bmm_heads(a, b, 0)
    }

    /// [`Graph::bmm`] over Z = B * `heads` attention heads, written with the heads
    /// merged: `[B, M, heads * N]` (timm's `transpose(1, 2).reshape(B, T, C)` of the
    /// per-head `[B, H, M, N]`). `heads` 0: plain `[Z, M, N]`.
    pub fn bmm_heads(&mut self, a: TensorId, b: TensorId, heads: usize) -> Result<TensorId> {
        let (as_, bs) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        let ([z, m, k], [zb, n, kb]) = (as_.as_slice(), bs.as_slice()) else {
            return Err(Error::shape("bmm", format!("{as_:?} x {bs:?}: operands must be [Z, M, K] and [Z, N, K]")));
        };
        if z != zb || k != kb {
            return Err(Error::shape("bmm", format!("{as_:?} x {bs:?}: Z and K must agree")));
        }
        if *z > crate::graph::MAX_GROUPS as usize {
            return Err(Error::shape("bmm", format!("batch {z} exceeds the dispatch limit")));
        }
        if heads > 0 && z % heads != 0 {
            return Err(Error::shape("bmm", format!("{as_:?} x {bs:?}: Z = {z} is not a whole number of {heads} heads")));
        }
        let op = Linear {
            x: a,
            w: b,
            bias: None,
            gamma: None,
            res: None,
            act: Act::None,
            m: *m,
            n: *n,
            k: *k,
            z: *z,
            w_batched: true,
            layout: Layout::ABt,
            out_f16: false,
            merge_heads: heads,
        };
        let shape = match z.checked_div(heads) {
            Some(b) => vec![b, *m, heads * n],
            None => vec![*z, *m, *n],
        };
        Ok(self.push(Box::new(op), &shape))
    }

    /// The product of `a` and `w` in `layout`, `[M, K] . [K, N]` for each of
    /// `[z, m, n, k]`'s Z (`w` one matrix per z when `w_batched`, else shared),
    /// shaped `shape` (Z * M * N elements). The operands are read as flat
    /// buffers of the layout's sizes: backward passes build these from a
    /// forward op's sizes.
    pub fn product(
        &mut self,
        a: TensorId,
        w: TensorId,
        layout: Layout,
        [z, m, n, k]: [usize; 4],
        w_batched: bool,
        shape: &[usize],
    ) -> Result<TensorId> {
        let wz = if w_batched { z } else { 1 };
        if self.numel(a) != z * m * k || self.numel(w) != wz * n * k || shape.iter().product::<usize>() != z * m * n {
            let (sa, sw) = (self.shape(a), self.shape(w));
            return Err(Error::shape(
                "matmul",
                format!("{sa:?} x {sw:?} -> {shape:?} is not a {layout:?} product of Z={z} M={m} N={n} K={k}"),
            ));
        }
        if z > crate::graph::MAX_GROUPS as usize {
            return Err(Error::shape("matmul", format!("batch {z} exceeds the dispatch limit")));
        }
        let op = Linear {
            x: a,
            w,
            bias: None,
            gamma: None,
            res: None,
            act: Act::None,
            m,
            n,
            k,
            z,
            w_batched,
            layout,
            out_f16: false,
            merge_heads: 0,
        };
        Ok(self.push(Box::new(op), shape))
    }
}

impl Op for Linear {
    fn name(&self) -> &'static str {
        if self.w_batched {
            "bmm"
        } else {
            "linear"
        }
    }

    fn macs(&self, _g: &Graph) -> u64 {
        (self.z * self.m * self.n * self.k) as u64
    }

    fn matmul_shape(&self) -> Option<MatmulShape> {
        Some(self.shape())
    }

    fn store_output_f16(&mut self) -> bool {
        self.out_f16 = true;
        true
    }

    fn sum_into(&mut self, prev: TensorId) -> bool {
        if self.res.is_some() {
            return false;
        }
        self.res = Some(prev);
        true
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.x), Some(self.w), self.bias, self.gamma, self.res]
    }

    fn dispatch(&self, g: &Graph, caps: &DeviceCaps) -> Result<Dispatch> {
        self.dispatch_z(g, caps)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (x, w) = (get(self.x), get(self.w));
        let bias = self.bias.map(get);
        let gamma = self.gamma.map(get);
        let res = self.res.map(get);
        let (m, n, k) = (self.m, self.n, self.k);
        let mut out = vec![0f32; self.z * m * n];
        // Element strides of x (row, k) and w (column, k) in this layout.
        let (xs, ws) = match self.layout {
            Layout::ABt => ((k, 1), (k, 1)),
            Layout::AB => ((k, 1), (1, n)),
            Layout::AtB => ((1, m), (1, n)),
        };
        for z in 0..self.z {
            let wz = if self.w_batched { z * n * k } else { 0 };
            for r in 0..m {
                let xr = z * m * k + r * xs.0;
                for c in 0..n {
                    let wr = wz + c * ws.0;
                    let mut y: f32 = (0..k).map(|i| x[xr + i * xs.1] * w[wr + i * ws.1]).sum();
                    if let Some(b) = &bias {
                        y += b[c];
                    }
                    if self.act == Act::Gelu {
                        y = gelu_ref(y);
                    }
                    if let Some(g) = &gamma {
                        y *= g[c];
                    }
                    let o = self.out_index(z, r, c);
                    if let Some(res) = &res {
                        y += res[o];
                    }
                    out[o] = y;
                }
            }
        }
        out
    }

    /// Gradients of x, w, bias, gamma and the residual. Where the epilogue has
    /// GELU or layer scale, the pre-activation is recomputed (not stored).
    fn backward(&self, g: &mut Graph, _out: TensorId, dout_merged: TensorId) -> Result<Vec<Option<TensorId>>> {
        let (x, w) = (self.x, self.w);
        // Heads merged into the output: the products' gradients per head first (the
        // residual's gradient keeps the output's layout).
        let dout = match self.merge_heads {
            0 => dout_merged,
            h => {
                let (b, t, d) = (self.z / h, self.m, self.n);
                let dims = super::attention::HeadDims { b, t, tp: t.div_ceil(4) * 4, h, d };
                g.head_layout(dout_merged, super::attention::HeadsMode::MergeGrad, dims)
            }
        };
        let recompute = |g: &mut Graph, act: Act| -> Result<TensorId> {
            if self.w_batched {
                g.bmm(x, w)
            } else {
                g.linear_fused(x, w, self.bias, act, None, None)
            }
        };
        let mut d = dout;
        let mut dgamma = None;
        if let Some(gamma) = self.gamma {
            let h = recompute(g, self.act)?;
            let dh = g.mul(dout, h)?;
            dgamma = Some(g.sum_rows(dh)?);
            d = g.mul_col(dout, gamma)?;
        }
        if self.act == Act::Gelu {
            let z = recompute(g, Act::None)?;
            d = g.gelu_grad(z, d)?;
        }
        let dbias = match self.bias {
            Some(_) => Some(g.sum_rows(d)?),
            None => None,
        };
        if self.layout != Layout::ABt {
            return Err(Error::Unsupported(format!(
                "the gradient of a {:?} product (only forward products are differentiated)",
                self.layout
            )));
        }
        let (m, n, k, z) = (self.m, self.n, self.k, self.z);
        // dx = d . w (w [N, K] is the AB layout's [K', N'] with K' = N, N' = K);
        // dw = d^T . x, summed over every z when w is shared.
        let x_shape = g.shape(x).to_vec();
        let dx = g.product(d, w, Layout::AB, [z, m, k, n], self.w_batched, &x_shape)?;
        let dw = if self.w_batched {
            g.product(d, x, Layout::AtB, [z, n, k, m], true, &[z, n, k])?
        } else {
            g.product(d, x, Layout::AtB, [1, n, k, z * m], false, &[n, k])?
        };
        Ok(vec![Some(dx), Some(dw), dbias, dgamma, self.res.map(|_| dout_merged)])
    }
}

impl Linear {
    /// Where product z's row r, column c lies in the output (see `merge_heads`).
    fn out_index(&self, z: usize, r: usize, c: usize) -> usize {
        match self.merge_heads {
            0 => (z * self.m + r) * self.n + c,
            h => (((z / h) * self.m + r) * h + z % h) * self.n + c,
        }
    }

    /// This product's shape (the key of a measured kernel choice).
    pub fn shape(&self) -> MatmulShape {
        MatmulShape { layout: self.layout, z: self.z, m: self.m, n: self.n, k: self.k, w_batched: self.w_batched }
    }

    /// The launch: grid z = Z, except the register kernel, which packs the Z
    /// products into its linear index.
    fn dispatch_z(&self, g: &Graph, caps: &DeviceCaps) -> Result<Dispatch> {
        // f16 weights, left operand or output: the same kernels composed with
        // matmul_w_f16, matmul_a_f16 or matmul_out_f16.wgsl.
        let half = |t: TensorId| g.dtype(t) == crate::graph::DType::F16;
        let name = |family: &'static str| kernel_variant(family, half(self.w), half(self.x), self.out_f16);
        let (m, n) = (u32_of("linear", "M", self.m)?, u32_of("linear", "N", self.n)?);
        let z = u32_of("linear", "Z", self.z)?;
        let heads = u32_of("linear", "heads", self.merge_heads)?;
        // matmul_io.wgsl's MatmulDims: shapes and epilogue switches are uniforms,
        // so every matmul of a model shares one pipeline per kernel.
        let dims = |k: u32| {
            vec![
                m,
                n,
                k,
                self.bias.is_some() as u32,
                (self.act == Act::Gelu) as u32,
                self.gamma.is_some() as u32,
                self.res.is_some() as u32,
                self.w_batched as u32,
                z,
                heads,
            ]
        };
        let entry = self.layout.entry();
        if !self.layout.vec4_ok(self.m, self.n, self.k) {
            let mut d = Dispatch::linear(KernelKey::new(name("matmul_scalar")?, entry), self.m.div_ceil(8) * self.n.div_ceil(8))?;
            d.workgroups[2] = z;
            return Ok(d.with_uniforms(dims(u32_of("linear", "K", self.k)?)));
        }
        // dims.k: K / 4 where the kernel steps through K in vec4s, K for A^T . W.
        let k = u32_of("linear", "K", if self.layout == Layout::AtB { self.k } else { self.k / 4 })?;
        let mut d = match caps.matmul_for(&self.shape()) {
            MatmulKind::Tiled => Dispatch::grid(KernelKey::new(name("matmul")?, entry), self.n.div_ceil(64), self.m.div_ceil(64))?,
            MatmulKind::Subgroup => {
                let (entry, rows, cols, _) = subgroup_block(self.layout, self.m, self.n);
                Dispatch::groups(KernelKey::new(name("matmul_subgroup")?, entry), self.m.div_ceil(rows) * self.n.div_ceil(cols))?
            }
            MatmulKind::Register => {
                // A . W^T with 64 rows or more: 16-row blocks, twice the multiply-adds per
                // weight load (ViT-Ti in Chromium's SwiftShader: 1043 -> 907 ms; lavapipe
                // about even); fewer rows keep 8, which pads less.
                let (entry, rows) = if self.layout == Layout::ABt && self.m >= 64 { ("main_r16", 16) } else { (entry, 8) };
                let tiles = self.z * self.m.div_ceil(rows) * self.n.div_ceil(8);
                return Ok(Dispatch::linear(KernelKey::new(name("matmul_reg")?, entry), tiles)?.with_uniforms(dims(k)));
            }
        };
        d.workgroups[2] = z;
        Ok(d.with_uniforms(dims(k)))
    }
}

/// The registered name of a matmul kernel family's variant: f16 weights (`_f16`), and
/// with them an f16 left operand (`_ah`) and f16 output (`_oh`); see `kernel::SHADERS`.
fn kernel_variant(family: &'static str, w16: bool, a16: bool, o16: bool) -> Result<&'static str> {
    if !w16 && !a16 && !o16 {
        return Ok(family);
    }
    let want = format!("{family}{}{}{}", if w16 { "_f16" } else { "" }, if a16 { "_ah" } else { "" }, if o16 { "_oh" } else { "" });
    crate::kernel::SHADERS
        .iter()
        .map(|(n, _)| *n)
        .find(|n| *n == want)
        .ok_or_else(|| Error::Unsupported(format!("{want}: f16 activations need f16 weights (`--precision f16`)")))
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`, in f64.
pub fn gelu_ref(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + erf_f64(x / std::f64::consts::SQRT_2))) as f32
}

/// Derivative of exact GELU, `Phi(x) + x phi(x)`, in f64.
pub fn gelu_grad_ref(x: f32) -> f32 {
    let x = x as f64;
    let cdf = 0.5 * (1.0 + erf_f64(x / std::f64::consts::SQRT_2));
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (cdf + x * pdf) as f32
}

/// erf to ~1e-15 (series for small |x|, continued fraction for large).
pub fn erf_f64(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 2.5 {
        // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        let mut term = a;
        let mut sum = a;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -a * a / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc continued fraction (Lentz), accurate for a >= 2.5.
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (a + f);
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * (a + f))
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}
