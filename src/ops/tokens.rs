//! Token assembly: `[prefix tokens ; patch tokens] + pos_embed`.
//! `patches [B, NP, C]`, `prefix [NPRE, C]` (cls, dist, reg tokens in timm's
//! order) -> `[B, NPRE + NP, C]`, as timm's `VisionTransformer._pos_embed`.

use super::u32_of;
use crate::error::{Error, Result};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};
use crate::kernel::KernelKey;

/// Which tokens the position embedding covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosMode {
    /// pos_embed [NPRE + NP, C]: added after concatenation (timm default).
    All,
    /// pos_embed [NP, C]: added to patch tokens only (`no_embed_class`).
    PatchesOnly,
    /// No position embedding.
    None,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// Forward: the patch tokens `[B, NP, C]`.
    pub patches: TensorId,
    /// Prefix tokens `[NPRE, C]` (cls, dist, reg concatenated), shared by the batch.
    pub prefix: Option<TensorId>,
    /// The position embedding, `[NPRE + NP, C]` or `[NP, C]` as `mode` says.
    pub pos: Option<TensorId>,
    /// Which tokens `pos` covers.
    pub mode: PosMode,
    /// (B, NP, NPRE, C).
    pub dims: [usize; 4],
    /// Backward mode: `patches` holds dy [B, T, C]; the output is the gradient of one input.
    pub grad: Option<TokensGrad>,
}

/// Which input a backward [`Tokens`] op produces the gradient of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokensGrad {
    /// d patches `[B, NP, C]`: the patch rows of dy.
    Patches,
    /// d prefix `[NPRE, C]`: the prefix rows of dy summed over the batch.
    Prefix,
    /// d pos_embed (its forward shape): the rows it covers, summed over the batch.
    Pos,
}

impl Graph {
    /// Concatenates prefix tokens before the patches and adds the position embedding.
    pub fn tokens(&mut self, patches: TensorId, prefix: Option<TensorId>, pos: Option<TensorId>, mode: PosMode) -> Result<TensorId> {
        let s = self.shape(patches).to_vec();
        let [b, np, c] = s.as_slice() else {
            return Err(Error::shape("tokens", format!("patches {s:?} must be [B, N, C]")));
        };
        let npre = match prefix {
            Some(p) => match self.shape(p) {
                [n, pc] if pc == c => *n,
                ps => return Err(Error::shape("tokens", format!("prefix tokens {ps:?} must be [n, {c}]"))),
            },
            None => 0,
        };
        let want_pos = match mode {
            PosMode::All => Some(npre + np),
            PosMode::PatchesOnly => Some(*np),
            PosMode::None => None,
        };
        match (want_pos, pos) {
            (Some(len), Some(p)) if self.shape(p) == [len, *c] => {}
            (None, None) => {}
            (want, p) => {
                return Err(Error::shape(
                    "tokens",
                    format!("pos_embed {:?} does not match {want:?} tokens of width {c}", p.map(|p| self.shape(p).to_vec())),
                ))
            }
        }
        let op = Tokens { patches, prefix, pos, mode, dims: [*b, *np, npre, *c], grad: None };
        Ok(self.push(Box::new(op), &[*b, npre + np, *c]))
    }
}

impl Op for Tokens {
    fn name(&self) -> &'static str {
        "tokens"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        if self.grad.is_some() {
            return vec![Some(self.patches), None, None];
        }
        vec![Some(self.patches), self.prefix, self.pos]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        if self.grad.is_some() {
            return Err(Error::shape("tokens_grad", "second derivatives are not supported"));
        }
        let [b, np, npre, c] = self.dims;
        let part = |g: &mut Graph, which: TokensGrad, shape: &[usize]| {
            g.push(Box::new(Tokens { patches: dout, grad: Some(which), ..self.clone() }), shape)
        };
        let dp = part(g, TokensGrad::Patches, &[b, np, c]);
        let dpre = self.prefix.map(|_| part(g, TokensGrad::Prefix, &[npre, c]));
        let dpos = match (self.pos, self.mode) {
            (Some(_), PosMode::All) => Some(part(g, TokensGrad::Pos, &[npre + np, c])),
            (Some(_), PosMode::PatchesOnly) => Some(part(g, TokensGrad::Pos, &[np, c])),
            _ => None,
        };
        Ok(vec![Some(dp), dpre, dpos])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let [b, np, npre, c] = self.dims;
        let mode = match self.mode {
            PosMode::All => 0,
            PosMode::PatchesOnly => 1,
            PosMode::None => 2,
        };
        let key = KernelKey::new("tokens", "main")
            .u("B", u32_of("tokens", "B", b)?)
            .u("NP", u32_of("tokens", "NP", np)?)
            .u("NPRE", u32_of("tokens", "NPRE", npre)?)
            .u("C", u32_of("tokens", "C", c)?)
            .u("POS_MODE", mode)
            .u(
                "MODE",
                match self.grad {
                    None => 0,
                    Some(TokensGrad::Patches) => 1,
                    Some(TokensGrad::Prefix) => 2,
                    Some(TokensGrad::Pos) => 3,
                },
            );
        let n = match self.grad {
            None => b * (npre + np) * c,
            Some(TokensGrad::Patches) => b * np * c,
            Some(TokensGrad::Prefix) => npre * c,
            Some(TokensGrad::Pos) => (npre + np) * c,
        };
        Dispatch::linear(key, n)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let [b, np, npre, c] = self.dims;
        let patches = get(self.patches);
        let t = npre + np;
        if let Some(which) = self.grad {
            let dy = |bi: usize, ti: usize, ci: usize| patches[(bi * t + ti) * c + ci];
            let sum_rows = |first: usize, rows: usize| -> Vec<f32> {
                (0..rows * c).map(|i| (0..b).map(|bi| dy(bi, first + i / c, i % c)).sum()).collect()
            };
            return match which {
                TokensGrad::Patches => (0..b * np * c).map(|i| dy(i / (np * c), npre + (i / c) % np, i % c)).collect(),
                TokensGrad::Prefix => sum_rows(0, npre),
                TokensGrad::Pos if self.mode == PosMode::PatchesOnly => sum_rows(npre, np),
                TokensGrad::Pos => sum_rows(0, t),
            };
        }
        let prefix = self.prefix.map(get).unwrap_or_default();
        let pos = self.pos.map(get).unwrap_or_default();
        let t = npre + np;
        let mut out = vec![0f32; b * t * c];
        for bi in 0..b {
            for ti in 0..t {
                for ci in 0..c {
                    let mut v = if ti < npre { prefix[ti * c + ci] } else { patches[(bi * np + ti - npre) * c + ci] };
                    match self.mode {
                        PosMode::All => v += pos[ti * c + ci],
                        PosMode::PatchesOnly if ti >= npre => v += pos[(ti - npre) * c + ci],
                        _ => {}
                    }
                    out[(bi * t + ti) * c + ci] = v;
                }
            }
        }
        out
    }
}
