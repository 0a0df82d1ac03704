//! Softmax over the keys with a per-sample key policy: DynamicViT's
//! `Attention.softmax_with_policy`, which every block runs while training.
//! For scores `a [B, H, N, N]` (rows are queries q, columns keys k) and a
//! policy `p [B, N]` (1 = kept, 0 = dropped, fractions allowed):
//!
//! ```text
//! P[b, q, k] = p[b, k] + (1 - p[b, k]) * (q == k)   a dropped key stays visible to itself
//! m          = max_k a[b, h, q, k]                  over ALL keys, masked ones too
//! e          = exp(a - m) * P                       (f32)
//! out        = (e + eps / N) / (sum_k e + eps),     eps = 1e-6
//! ```
//!
//! Because of the eps terms this is not softmax even when `p` is all ones.
//!
//! The backward is two ops of their own: [`MaskedSoftmaxGrad`] (the scores'
//! gradient, one invocation per row, which also writes each row's max, `c`
//! and `D`) and [`MaskedSoftmaxPolicyGrad`] (the policy's, gathered over
//! heads and queries per key from those: no atomics, no barriers). With
//! `g = dout` on a row, `D = S + eps`, `S = sum_k e_k`, `c = sum_k g_k out_k`
//! and `t_k = (g_k - c) / D`:
//!
//! ```text
//! d a[k]    = t_k * e_k + (k == k*) * eps * (S * sum_k g_k / N - sum_k g_k e_k) / D^2
//! d p[b, k] = sum over h and q != k of t_k * exp(a[b, h, q, k] - m)
//! ```
//!
//! The second term of `d a` is the gradient through the max `m` (which does
//! not cancel, as it does in softmax, because of the eps terms; PyTorch's
//! reference does not detach the max either), routed to the row's first
//! maximal key `k*`. It is of order eps.

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DType, DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::{Const, KernelKey};

/// The eps of DynamicViT's `softmax_with_policy` (the shader's `EPS`).
pub const MASKED_SOFTMAX_EPS: f32 = 1e-6;

/// The sizes of a masked softmax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskedSoftmaxDims {
    /// Samples in the batch (B).
    pub batch: usize,
    /// Attention heads (H).
    pub heads: usize,
    /// Tokens: queries and keys per head (N).
    pub tokens: usize,
}

impl MaskedSoftmaxDims {
    /// Score rows: `B * H * N`.
    pub fn rows(&self) -> usize {
        self.batch * self.heads * self.tokens
    }

    /// The shader's constants; also checks that every index fits a u32.
    fn key(&self, op: &str, entry: &'static str) -> Result<KernelKey> {
        u32_of(op, "B * H * N * N", self.rows() * self.tokens)?;
        Ok(KernelKey::new("masked_softmax", entry)
            .u("B", u32_of(op, "batch", self.batch)?)
            .u("H", u32_of(op, "heads", self.heads)?)
            .u("N", u32_of(op, "tokens", self.tokens)?)
            .with("EPS", Const::f32(MASKED_SOFTMAX_EPS)))
    }

    /// One row's reference values in f64: `(e, S, m, k*)` with `e[k] = exp(a[k] - m) * P[k]`,
    /// `S = sum e`, `m` the max and `k*` its first key.
    fn row(&self, a: &[f32], p: &[f32], r: usize) -> (Vec<f64>, f64, f64, usize) {
        let n = self.tokens;
        let (q, b) = (r % n, r / (self.heads * n));
        let row = &a[r * n..(r + 1) * n];
        let kmax = (1..n).fold(0, |best, k| if row[k] > row[best] { k } else { best });
        let m = row[kmax] as f64;
        let e: Vec<f64> = (0..n)
            .map(|k| {
                let pk = p[b * n + k] as f64;
                let weight = pk + (1.0 - pk) * if k == q { 1.0 } else { 0.0 };
                (row[k] as f64 - m).exp() * weight
            })
            .collect();
        let s = e.iter().sum();
        (e, s, m, kmax)
    }
}

/// See the module docs: the forward, `out` with the scores' shape.
#[derive(Debug, Clone)]
pub struct MaskedSoftmax {
    /// The attention scores `[B, H, N, N]` (or `[B * H, N, N]`).
    pub scores: TensorId,
    /// The keys' policy `[B, N]`.
    pub policy: TensorId,
    /// The sizes.
    pub dims: MaskedSoftmaxDims,
}

/// The scores' gradient of [`MaskedSoftmax`]: `d scores` (the scores' shape)
/// from the forward inputs and `dout`; one invocation per row, which
/// recomputes the row's max and sums.
#[derive(Debug, Clone)]
pub struct MaskedSoftmaxGrad {
    /// The forward's scores.
    pub scores: TensorId,
    /// The forward's policy `[B, N]`.
    pub policy: TensorId,
    /// The gradient of the forward's output (the scores' shape).
    pub dout: TensorId,
    /// The forward's sizes.
    pub dims: MaskedSoftmaxDims,
}

/// The policy's gradient of [`MaskedSoftmax`]: `d policy [B, N]`, each key
/// summing its terms over every head and query of its sample: one invocation
/// per (sample, key), reading each row's max, `c` and `D` from [`MaskedSoftmaxGrad`].
#[derive(Debug, Clone)]
pub struct MaskedSoftmaxPolicyGrad {
    /// The forward's scores.
    pub scores: TensorId,
    /// The forward's policy `[B, N]`.
    pub policy: TensorId,
    /// The gradient of the forward's output (the scores' shape).
    pub dout: TensorId,
    /// Each row's max, `c` and `D` `[B * H * N, 3]`: [`MaskedSoftmaxGrad`]'s second output.
    pub stats: TensorId,
    /// The forward's sizes.
    pub dims: MaskedSoftmaxDims,
}

impl Graph {
    /// DynamicViT's softmax with a key policy (see [`crate::ops::masked_softmax`]):
    /// `scores [B, H, N, N]` or `[B * H, N, N]` (heads inferred from the
    /// policy's batch) and `policy [B, N]`; the result has the scores' shape.
    pub fn masked_softmax(&mut self, scores: TensorId, policy: TensorId) -> Result<TensorId> {
        let op = "masked_softmax";
        let s = self.shape(scores).to_vec();
        let ps = self.shape(policy).to_vec();
        let [batch, tokens] = ps.as_slice() else {
            return Err(Error::shape(op, format!("policy {ps:?} must be [B, N]")));
        };
        let (batch, tokens) = (*batch, *tokens);
        if batch == 0 || tokens == 0 {
            return Err(Error::shape(op, format!("policy {ps:?} is empty")));
        }
        let (heads, n_q, n_k) = match s.as_slice() {
            [b, h, q, k] if *b == batch => (*h, *q, *k),
            [b, _, _, _] => return Err(Error::shape(op, format!("scores {s:?} and policy {ps:?} have batches {b} and {batch}"))),
            [bh, q, k] if bh % batch == 0 => (bh / batch, *q, *k),
            [bh, _, _] => {
                return Err(Error::shape(op, format!("scores {s:?}: {bh} rows of heads are not a multiple of the policy's batch {batch}")));
            }
            _ => return Err(Error::shape(op, format!("scores {s:?} must be [B, H, N, N] or [B * H, N, N]"))),
        };
        if n_q != n_k {
            return Err(Error::shape(op, format!("scores {s:?} must be square over queries and keys (N x N)")));
        }
        if n_k != tokens {
            return Err(Error::shape(op, format!("scores {s:?} have {n_k} keys but policy {ps:?} has {tokens} tokens")));
        }
        if heads == 0 {
            return Err(Error::shape(op, format!("scores {s:?} have no heads")));
        }
        let dims = MaskedSoftmaxDims { batch, heads, tokens };
        dims.key(op, "forward")?;
        Ok(self.push(Box::new(MaskedSoftmax { scores, policy, dims }), &s))
    }
}

impl Op for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked_softmax"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.scores), Some(self.policy)]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let (scores_shape, policy_shape) = (g.shape(self.scores).to_vec(), g.shape(self.policy).to_vec());
        let (scores, policy, dims) = (self.scores, self.policy, self.dims);
        // The scores' gradient also writes each row's max, c and D (its second output),
        // which the policy's gradient reads instead of recomputing them.
        let stats_shape = [dims.rows(), 3];
        let outs = g.push_outputs(
            Box::new(MaskedSoftmaxGrad { scores, policy, dout, dims }),
            &[(&scores_shape, DType::F32), (&stats_shape, DType::F32)],
        );
        let (d_scores, stats) = (outs[0], outs[1]);
        let d_policy = g.push(Box::new(MaskedSoftmaxPolicyGrad { scores, policy, dout, stats, dims }), &policy_shape);
        Ok(vec![Some(d_scores), Some(d_policy)])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.dims.key("masked_softmax", "forward")?, self.dims.rows())
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (a, p) = (get(self.scores), get(self.policy));
        let d = self.dims;
        let eps = MASKED_SOFTMAX_EPS as f64;
        let mut out = Vec::with_capacity(a.len());
        for r in 0..d.rows() {
            let (e, s, _, _) = d.row(&a, &p, r);
            out.extend(e.iter().map(|e| ((e + eps / d.tokens as f64) / (s + eps)) as f32));
        }
        out
    }
}

impl Op for MaskedSoftmaxGrad {
    fn name(&self) -> &'static str {
        "masked_softmax_grad"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.scores), Some(self.policy), Some(self.dout)]
    }

    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("masked_softmax_grad", "second derivatives are not supported"))
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(self.dims.key("masked_softmax_grad", "backward")?, self.dims.rows())
    }

    /// The scores' gradient, then each row's `(m, c, D)` with `c = (sum g e + eps / N sum g) / D`.
    fn cpu_outputs(&self, g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<Vec<f32>> {
        let (a, p, dy) = (get(self.scores), get(self.policy), get(self.dout));
        let d = self.dims;
        let (n, eps) = (d.tokens, MASKED_SOFTMAX_EPS as f64);
        let mut stats = Vec::with_capacity(d.rows() * 3);
        for r in 0..d.rows() {
            let (e, s, m, _) = d.row(&a, &p, r);
            let den = s + eps;
            let gr = &dy[r * n..(r + 1) * n];
            let (g1, g2): (f64, f64) = (e.iter().zip(gr).map(|(e, g)| e * *g as f64).sum(), gr.iter().map(|&v| v as f64).sum());
            stats.extend([m as f32, ((g1 + eps / n as f64 * g2) / den) as f32, den as f32]);
        }
        vec![self.cpu(g, get), stats]
    }

    /// The full Jacobian of each row, `d out_k / d a_j`, applied to `dout`
    /// (an independent check of the kernel's closed form): with `D = S + eps`,
    /// `d out_k / d a_j = (δ_kj e_k D - (e_k + eps / N) e_j) / D^2` at a fixed
    /// max, plus `d out_k / d m = eps (S / N - e_k) / D^2` for `j = k*`.
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (a, p, dy) = (get(self.scores), get(self.policy), get(self.dout));
        let d = self.dims;
        let (n, eps) = (d.tokens, MASKED_SOFTMAX_EPS as f64);
        let mut da = vec![0f32; a.len()];
        for r in 0..d.rows() {
            let (e, s, _, kmax) = d.row(&a, &p, r);
            let den = s + eps;
            let g = &dy[r * n..(r + 1) * n];
            for j in 0..n {
                let mut acc = 0f64;
                for k in 0..n {
                    let diag = if k == j { e[k] * den } else { 0.0 };
                    let mut jac = (diag - (e[k] + eps / n as f64) * e[j]) / (den * den);
                    if j == kmax {
                        jac += eps * (s / n as f64 - e[k]) / (den * den);
                    }
                    acc += g[k] as f64 * jac;
                }
                da[r * n + j] = acc as f32;
            }
        }
        da
    }
}

impl Op for MaskedSoftmaxPolicyGrad {
    fn name(&self) -> &'static str {
        "masked_softmax_policy_grad"
    }

    /// The policy (binding 1) is read by the CPU reference only: the kernel reads the stats.
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.scores), Some(self.policy), Some(self.dout), Some(self.stats)]
    }

    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("masked_softmax_policy_grad", "second derivatives are not supported"))
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Ok(Dispatch::linear(d.key("masked_softmax_policy_grad", "policy_backward")?, d.batch * d.tokens)?.without(&[1]))
    }

    /// Scatter form (each row adds to the keys it weighs), an independent
    /// check of the kernel's gather: `d out_k / d P_j = (δ_kj D - (e_k + eps / N)) u_j / D^2`
    /// with `u_j = exp(a_j - m)`, and `d P_j / d p_j = 1 - (q == j)`.
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (a, p, dy) = (get(self.scores), get(self.policy), get(self.dout));
        let d = self.dims;
        let (n, eps) = (d.tokens, MASKED_SOFTMAX_EPS as f64);
        let mut dp = vec![0f64; d.batch * n];
        for r in 0..d.rows() {
            let (q, b) = (r % n, r / (d.heads * n));
            let (e, s, m, _) = d.row(&a, &p, r);
            let den = s + eps;
            let g = &dy[r * n..(r + 1) * n];
            for j in (0..n).filter(|&j| j != q) {
                let u = (a[r * n + j] as f64 - m).exp();
                let mut acc = 0f64;
                for k in 0..n {
                    let diag = if k == j { den } else { 0.0 };
                    acc += g[k] as f64 * (diag - (e[k] + eps / n as f64)) * u / (den * den);
                }
                dp[b * n + j] += acc;
            }
        }
        dp.into_iter().map(|v| v as f32).collect()
    }
}
