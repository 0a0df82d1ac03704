//! Token assembly: `[prefix tokens ; patch tokens] + pos_embed`.
//! `patches [B, NP, C]`, `prefix [NPRE, C]` (cls, dist, reg tokens in timm's
//! order) -> `[B, NPRE + NP, C]`, as timm's `VisionTransformer._pos_embed`.

use super::u32_of;
use crate::error::{Error, Result};
use crate::gpu::KernelKey;
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};

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
    pub patches: TensorId,
    pub prefix: Option<TensorId>,
    pub pos: Option<TensorId>,
    pub mode: PosMode,
    pub dims: [usize; 4],
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
        let op = Tokens { patches, prefix, pos, mode, dims: [*b, *np, npre, *c] };
        Ok(self.push(Box::new(op), &[*b, npre + np, *c]))
    }
}

impl Op for Tokens {
    fn name(&self) -> &'static str {
        "tokens"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.patches), self.prefix, self.pos]
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
            .u("POS_MODE", mode);
        Dispatch::linear(key, b * (npre + np) * c)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let [b, np, npre, c] = self.dims;
        let patches = get(self.patches);
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
