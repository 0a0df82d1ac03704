//! DynamicViT's score predictor pieces (`PredictorLG` in the official
//! models/dyvit.py), one kernel file (`shaders/prune.wgsl`):
//!
//! - [`LocalGlobal`]: `h [B, N, C]` -> `[B, N, C]`, the first `C / 2`
//!   channels of each token as they are (local), the rest replaced by their
//!   mean over the tokens whose policy is kept (global):
//!   `sum_n h[b, n, c] p[b, n] / sum_n p[b, n]` (`p` = 1 without a policy).
//! - [`KeepScore`]: `z [.., 2]` -> `[..]`, `log_softmax(z)[.., 0]`, the
//!   log-probability of "keep" that the top-k ranks, computed as PyTorch does
//!   (`z0 - max - log(sum exp(z - max))`): a monotone rewrite could flip near-ties.
//!
//! Training keeps every token and masks attention instead (the official
//! `softmax_with_policy`), with these (kernels in `shaders/prune_train.wgsl`
//! where they are backward rules or the loss):
//!
//! - [`LocalGlobal`] with a policy `[B, N, 1]` (the previous stage's
//!   decisions) and its backward to `h` and to the policy ([`LocalGlobalGrad`]).
//! - [`GumbelKeep`]: `F.gumbel_softmax(z, hard=True)[.., 0:1]` with the
//!   Gumbel noise as an input: 1 where `z0 + g0 >= z1 + g1`, else 0, and the
//!   straight-through gradient of `softmax(z + g)[0]` ([`GumbelKeepGrad`]).
//!   The official code applies it to `log_softmax(z)`; softmax is shift-invariant,
//!   so `z` itself gives the same decision and gradient.
//! - [`PolicyPrefix`]: `[B, N, 1]` decisions -> the attention policy `[B, 1 + N]`
//!   with the class token always kept.
//! - [`KlDiv`]: the distillation term `sum_k pt (log pt - log ps)` per row.
//!
//! [`KeepScore`] stays inference-only: training decides by Gumbel-softmax.

use super::u32_of;
use super::{PoolMode, SliceDims, SliceLast};
use crate::error::{Error, Result};
use crate::graph::{DType, DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// Sizes of a [`LocalGlobal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalGlobalDims {
    /// Images.
    pub batch: usize,
    /// Tokens per image.
    pub tokens: usize,
    /// Channels per token.
    pub channels: usize,
    /// Local channels (`C / 2`, rounded down); the rest are global.
    pub local: usize,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct LocalGlobal {
    /// The predictor's features `[B, N, C]`.
    pub h: TensorId,
    /// Which tokens count in the mean, `[B, N, 1]` (0 or 1); `None`: all.
    pub policy: Option<TensorId>,
    /// Sizes.
    pub dims: LocalGlobalDims,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct KeepScore {
    /// Two logits per row, `[R, 2]`.
    pub z: TensorId,
    /// Rows R.
    pub rows: usize,
}

impl Graph {
    /// DynamicViT's local / global channel mix of `h [B, N, C]` (see the module docs).
    pub fn local_global(&mut self, h: TensorId, policy: Option<TensorId>) -> Result<TensorId> {
        let s = self.shape(h).to_vec();
        let [b, n, c] = s.as_slice() else {
            return Err(Error::shape("local_global", format!("h {s:?} must be [B, N, C]")));
        };
        if *c < 2 || self.dtype(h) != DType::F32 {
            return Err(Error::shape("local_global", format!("h {s:?} needs f32 and at least 2 channels")));
        }
        if let Some(p) = policy {
            if self.shape(p) != [*b, *n, 1] {
                return Err(Error::shape("local_global", format!("policy {:?} must be [{b}, {n}, 1]", self.shape(p))));
            }
        }
        let dims = LocalGlobalDims { batch: *b, tokens: *n, channels: *c, local: c / 2 };
        Ok(self.push(Box::new(LocalGlobal { h, policy, dims }), &s))
    }

    /// `log_softmax(z)[.., 0]` for `z [.., 2]`: DynamicViT's keep score, shape `z`'s leading dimensions.
    pub fn keep_score(&mut self, z: TensorId) -> Result<TensorId> {
        let s = self.shape(z).to_vec();
        match s.split_last() {
            Some((2, lead)) if !lead.is_empty() => {
                let rows = lead.iter().product();
                let lead = lead.to_vec();
                Ok(self.push(Box::new(KeepScore { z, rows }), &lead))
            }
            _ => Err(Error::shape("keep_score", format!("z {s:?} must be [.., 2] (keep / drop logits)"))),
        }
    }
}

impl Op for LocalGlobal {
    fn name(&self) -> &'static str {
        "local_global"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.h), self.policy]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        let key = KernelKey::new("prune", "local_global")
            .u("B", u32_of("local_global", "batch", d.batch)?)
            .u("N", u32_of("local_global", "tokens", d.tokens)?)
            .u("C", u32_of("local_global", "channels", d.channels)?)
            .u("L", u32_of("local_global", "local", d.local)?)
            .u("POLICY", u32::from(self.policy.is_some()));
        Dispatch::linear(key, d.batch * d.tokens * d.local + d.batch * (d.channels - d.local))
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let LocalGlobalDims { batch, tokens: n, channels: c, local } = self.dims;
        let h = get(self.h);
        let p = self.policy.map(get).unwrap_or_else(|| vec![1.0; batch * n]);
        let mut out = h.clone();
        for b in 0..batch {
            let den: f32 = p[b * n..][..n].iter().sum();
            for ch in local..c {
                let num: f32 = (0..n).map(|t| h[(b * n + t) * c + ch] * p[b * n + t]).sum();
                for t in 0..n {
                    out[(b * n + t) * c + ch] = num / den;
                }
            }
        }
        out
    }
    /// With `G = sum_n dout`, `S = sum_n p` and `m` the global means: `dh = dout` on the
    /// local channels and `p G / S` on the global ones; `dp[n] = sum_c G (h[n] - m) / S`
    /// over the global channels. Means over tokens (`pool`) stand for the sums.
    fn backward(&self, g: &mut Graph, out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let gm = g.pool(dout, PoolMode::Avg(0))?;
        let pm = match self.policy {
            Some(p) => Some(g.pool(p, PoolMode::Avg(0))?),
            None => None,
        };
        let d = self.dims;
        let dh = g.push(
            Box::new(LocalGlobalGrad { wrt: LocalGlobalWrt::H, x: dout, y: None, policy: self.policy, gm, pm, dims: d }),
            g.shape(self.h).to_vec().as_slice(),
        );
        let dp = match self.policy {
            Some(p) => {
                let shape = g.shape(p).to_vec();
                Some(g.push(
                    Box::new(LocalGlobalGrad { wrt: LocalGlobalWrt::Policy, x: self.h, y: Some(out), policy: None, gm, pm, dims: d }),
                    &shape,
                ))
            }
            None => None,
        };
        Ok(vec![Some(dh), dp])
    }
}

impl Op for KeepScore {
    fn name(&self) -> &'static str {
        "keep_score"
    }
    /// Binding 1 (the policy of `local_global`) is not declared by this entry point.
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.z), None]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let key = KernelKey::new("prune", "keep_score").u("R", u32_of("keep_score", "rows", self.rows)?);
        Ok(Dispatch::linear(key, self.rows)?.without(&[1]))
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        get(self.z)
            .chunks(2)
            .take(self.rows)
            .map(|z| {
                let m = z[0].max(z[1]);
                (z[0] - m) - ((z[0] - m).exp() + (z[1] - m).exp()).ln()
            })
            .collect()
    }
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("keep_score", "is inference-only: DynamicViT training decides with Gumbel-softmax"))
    }
}

/// Which input a [`LocalGlobalGrad`] is the gradient of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalGlobalWrt {
    /// The features `h` (`x` is the output gradient).
    H,
    /// The policy (`x` is `h`, `y` the forward output).
    Policy,
}

/// The backward of [`LocalGlobal`] (see its `backward`): `gm` is the mean over
/// tokens of the output gradient `[B, C]`, `pm` the policy's mean `[B, 1]`.
#[derive(Debug, Clone)]
pub struct LocalGlobalGrad {
    /// Which gradient.
    pub wrt: LocalGlobalWrt,
    /// The output gradient (for `H`) or `h` (for `Policy`).
    pub x: TensorId,
    /// The forward output (for `Policy`).
    pub y: Option<TensorId>,
    /// The policy (for `H`; `None`: all ones).
    pub policy: Option<TensorId>,
    /// Mean over tokens of the output gradient.
    pub gm: TensorId,
    /// Mean of the policy over tokens (`None`: 1).
    pub pm: Option<TensorId>,
    /// Sizes.
    pub dims: LocalGlobalDims,
}

impl Op for LocalGlobalGrad {
    fn name(&self) -> &'static str {
        match self.wrt {
            LocalGlobalWrt::H => "local_global_grad",
            LocalGlobalWrt::Policy => "local_global_policy_grad",
        }
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        match self.wrt {
            LocalGlobalWrt::H => vec![Some(self.x), self.policy, Some(self.gm), self.pm],
            LocalGlobalWrt::Policy => vec![Some(self.x), self.y, Some(self.gm), self.pm],
        }
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        let (entry, n) = match self.wrt {
            LocalGlobalWrt::H => ("local_global_dh", d.batch * d.tokens * d.channels),
            LocalGlobalWrt::Policy => ("local_global_dp", d.batch * d.tokens),
        };
        let key = KernelKey::new("prune_train", entry)
            .u("B", u32_of(entry, "batch", d.batch)?)
            .u("N", u32_of(entry, "tokens", d.tokens)?)
            .u("C", u32_of(entry, "channels", d.channels)?)
            .u("L", u32_of(entry, "local", d.local)?)
            .u("POLICY", u32::from(self.pm.is_some()));
        Dispatch::linear(key, n)
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let LocalGlobalDims { batch, tokens: n, channels: c, local } = self.dims;
        let (x, gm) = (get(self.x), get(self.gm));
        let pm = self.pm.map(get).unwrap_or_else(|| vec![1.0; batch]);
        match self.wrt {
            LocalGlobalWrt::H => {
                let p = self.policy.map(get).unwrap_or_else(|| vec![1.0; batch * n]);
                (0..batch * n * c)
                    .map(|i| {
                        let (ch, bn) = (i % c, i / c);
                        if ch < local {
                            x[i]
                        } else {
                            p[bn] * gm[(bn / n) * c + ch] / pm[bn / n]
                        }
                    })
                    .collect()
            }
            LocalGlobalWrt::Policy => {
                let y = self.y.map(get).unwrap_or_default();
                (0..batch * n)
                    .map(|i| (local..c).map(|ch| gm[(i / n) * c + ch] * (x[i * c + ch] - y[i * c + ch])).sum::<f32>() / pm[i / n])
                    .collect()
            }
        }
    }
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape(self.name(), "second derivatives are not supported"))
    }
}

/// See the module docs: hard keep decisions `[.., 1]` from logits `z [.., 2]` and Gumbel noise `g [.., 2]`.
#[derive(Debug, Clone)]
pub struct GumbelKeep {
    /// Keep / drop logits.
    pub z: TensorId,
    /// The Gumbel noise added to them (an input: vitrine's seeded RNG, or a test's).
    pub g: TensorId,
    /// Rows.
    pub rows: usize,
}

/// The straight-through gradient of [`GumbelKeep`]: `dz [.., 2]`.
#[derive(Debug, Clone)]
pub struct GumbelKeepGrad {
    /// Keep / drop logits.
    pub z: TensorId,
    /// The Gumbel noise.
    pub g: TensorId,
    /// The decisions' gradient `[.., 1]`.
    pub dy: TensorId,
    /// Rows.
    pub rows: usize,
}

/// See the module docs: `[B, N, 1]` decisions -> `[B, 1 + N]` policy, the class token kept.
#[derive(Debug, Clone)]
pub struct PolicyPrefix {
    /// The decisions.
    pub keep: TensorId,
    /// Images.
    pub batch: usize,
    /// Patch tokens.
    pub tokens: usize,
}

/// The distillation term per row (see the module docs): student `s [B, K]`, teacher `t [B, K]` -> `[B]`.
#[derive(Debug, Clone)]
pub struct KlDiv {
    /// Student logits.
    pub s: TensorId,
    /// Teacher logits (no gradient).
    pub t: TensorId,
    /// Rows B.
    pub rows: usize,
    /// Classes K.
    pub classes: usize,
}

/// The student's gradient of [`KlDiv`]: `dy[b] (softmax(s) - softmax(t))`.
#[derive(Debug, Clone)]
pub struct KlDivGrad {
    /// The forward op.
    pub fwd: KlDiv,
    /// The rows' gradient `[B]`.
    pub dy: TensorId,
}

impl Graph {
    /// DynamicViT's hard keep decisions: `z [.., 2]` keep / drop logits, `g` the Gumbel noise of
    /// the same shape -> `[.., 1]` (see the module docs).
    pub fn gumbel_keep(&mut self, z: TensorId, g: TensorId) -> Result<TensorId> {
        let s = self.shape(z).to_vec();
        if s.last() != Some(&2) || self.shape(g) != s.as_slice() {
            return Err(Error::shape("gumbel_keep", format!("z {s:?} and noise {:?} must be one shape [.., 2]", self.shape(g))));
        }
        let mut out = s.clone();
        if let Some(l) = out.last_mut() {
            *l = 1;
        }
        let rows = self.numel(z) / 2;
        Ok(self.push(Box::new(GumbelKeep { z, g, rows }), &out))
    }

    /// The attention policy `[B, 1 + N]` of decisions `[B, N, 1]`: the class token always kept.
    pub fn policy_prefix(&mut self, keep: TensorId) -> Result<TensorId> {
        let s = self.shape(keep).to_vec();
        let [b, n, 1] = s.as_slice() else {
            return Err(Error::shape("policy_prefix", format!("decisions {s:?} must be [B, N, 1]")));
        };
        let (batch, tokens) = (*b, *n);
        Ok(self.push(Box::new(PolicyPrefix { keep, batch, tokens }), &[batch, tokens + 1]))
    }

    /// `sum_k pt (log pt - log ps)` per row of student logits `s [B, K]` and teacher logits `t`
    /// (the teacher gets no gradient) -> `[B]`.
    pub fn kl_div(&mut self, s: TensorId, t: TensorId) -> Result<TensorId> {
        let sh = self.shape(s).to_vec();
        let [rows, classes] = sh.as_slice() else {
            return Err(Error::shape("kl_div", format!("logits {sh:?} must be [B, K]")));
        };
        if self.shape(t) != sh.as_slice() {
            return Err(Error::shape("kl_div", format!("student {sh:?} and teacher {:?} logits differ in shape", self.shape(t))));
        }
        let (rows, classes) = (*rows, *classes);
        Ok(self.push(Box::new(KlDiv { s, t, rows, classes }), &[rows]))
    }
}

impl Op for GumbelKeep {
    fn name(&self) -> &'static str {
        "gumbel_keep"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.z), Some(self.g)]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Dispatch::linear(KernelKey::new("prune", "gumbel_keep").u("R", u32_of("gumbel_keep", "rows", self.rows)?), self.rows)
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (z, g) = (get(self.z), get(self.g));
        (0..self.rows).map(|r| if z[2 * r] + g[2 * r] >= z[2 * r + 1] + g[2 * r + 1] { 1.0 } else { 0.0 }).collect()
    }
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let shape = g.shape(self.z).to_vec();
        let dz = g.push(Box::new(GumbelKeepGrad { z: self.z, g: self.g, dy: dout, rows: self.rows }), &shape);
        Ok(vec![Some(dz), None])
    }
}

impl Op for GumbelKeepGrad {
    fn name(&self) -> &'static str {
        "gumbel_keep_grad"
    }
    /// Binding 3 is not declared by this entry point.
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.z), Some(self.g), Some(self.dy), None]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let key = KernelKey::new("prune_train", "gumbel_keep_grad").u("R", u32_of("gumbel_keep_grad", "rows", self.rows)?);
        Ok(Dispatch::linear(key, self.rows)?.without(&[3]))
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (z, g, dy) = (get(self.z), get(self.g), get(self.dy));
        let mut out = vec![0f32; 2 * self.rows];
        for r in 0..self.rows {
            let d = (z[2 * r + 1] + g[2 * r + 1]) - (z[2 * r] + g[2 * r]);
            let y0 = 1.0 / (1.0 + d.exp());
            out[2 * r] = dy[r] * y0 * (1.0 - y0);
            out[2 * r + 1] = -out[2 * r];
        }
        out
    }
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("gumbel_keep_grad", "second derivatives are not supported"))
    }
}

impl Op for PolicyPrefix {
    fn name(&self) -> &'static str {
        "policy_prefix"
    }
    /// Binding 1 (local_global's policy) is not declared by this entry point.
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.keep), None]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let key = KernelKey::new("prune", "policy_prefix")
            .u("B", u32_of("policy_prefix", "batch", self.batch)?)
            .u("N", u32_of("policy_prefix", "tokens", self.tokens)?);
        Ok(Dispatch::linear(key, self.batch * (self.tokens + 1))?.without(&[1]))
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let k = get(self.keep);
        k.chunks(self.tokens.max(1)).take(self.batch).flat_map(|row| std::iter::once(1.0).chain(row.iter().copied())).collect()
    }
    /// The decisions' gradient is the policy's, class token column dropped.
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let dims = SliceDims { rows: self.batch, cols: self.tokens + 1, start: 1, len: self.tokens };
        Ok(vec![Some(g.push(Box::new(SliceLast { x: dout, dims }), &[self.batch, self.tokens, 1])), None])
    }
}

impl KlDiv {
    fn key(&self, entry: &'static str) -> Result<KernelKey> {
        Ok(KernelKey::new("prune_train", entry)
            .u("B", u32_of("kl_div", "rows", self.rows)?)
            .u("K", u32_of("kl_div", "classes", self.classes)?))
    }
    /// Log-softmax of each row.
    fn log_softmax(x: &[f32], k: usize) -> Vec<f32> {
        x.chunks(k.max(1))
            .flat_map(|row| {
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let z: f32 = row.iter().map(|v| (v - m).exp()).sum();
                row.iter().map(move |v| v - m - z.ln()).collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Op for KlDiv {
    fn name(&self) -> &'static str {
        "kl_div"
    }
    /// Bindings 2 and 3 are not declared by this entry point.
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.s), Some(self.t), None, None]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Ok(Dispatch::linear(self.key("kl_div")?, self.rows)?.without(&[2, 3]))
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (ls, lt) = (Self::log_softmax(&get(self.s), self.classes), Self::log_softmax(&get(self.t), self.classes));
        ls.chunks(self.classes).zip(lt.chunks(self.classes)).map(|(s, t)| s.iter().zip(t).map(|(a, b)| b.exp() * (b - a)).sum()).collect()
    }
    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let shape = g.shape(self.s).to_vec();
        Ok(vec![Some(g.push(Box::new(KlDivGrad { fwd: self.clone(), dy: dout }), &shape)), None, None, None])
    }
}

impl Op for KlDivGrad {
    fn name(&self) -> &'static str {
        "kl_div_grad"
    }
    /// Binding 3 is not declared by this entry point.
    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.fwd.s), Some(self.fwd.t), Some(self.dy), None]
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Ok(Dispatch::linear(self.fwd.key("kl_div_grad")?, self.fwd.rows * self.fwd.classes)?.without(&[3]))
    }
    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let k = self.fwd.classes;
        let (ls, lt, dy) = (KlDiv::log_softmax(&get(self.fwd.s), k), KlDiv::log_softmax(&get(self.fwd.t), k), get(self.dy));
        (0..ls.len()).map(|i| dy[i / k] * (ls[i].exp() - lt[i].exp())).collect()
    }
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("kl_div_grad", "second derivatives are not supported"))
    }
}
