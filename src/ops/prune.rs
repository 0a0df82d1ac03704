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
//! Both are the inference path: the gathered tokens are what the pruned
//! blocks read. Training keeps every token and masks attention instead
//! (issue 13's training part), so neither op has a backward rule yet; asking
//! for one is an error naming the op.

use super::u32_of;
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
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("local_global", "is inference-only: DynamicViT training masks attention instead of gathering"))
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
