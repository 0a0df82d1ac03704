//! Token assembly: `[prefix tokens ; patch tokens] + pos_embed`.
//! `patches [B, NP, C]`, `prefix [NPRE, C]` (cls, dist, reg tokens in timm's
//! order) -> `[B, NPRE + NP, C]`, as timm's `VisionTransformer._pos_embed`.
//!
//! The backward is two ops: [`TokensPatchGrad`] (the patch rows of dy) and
//! [`TokensBatchSum`] (rows of dy summed over the batch: the gradients of the
//! prefix tokens and of the position embedding, shared by the batch).

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

/// The shader's `POS_MODE` constant; mirrors `POS_ALL` / `POS_PATCHES` / `POS_NONE` in `shaders/tokens.wgsl`.
fn pos_code(mode: PosMode) -> u32 {
    match mode {
        PosMode::All => 0,
        PosMode::PatchesOnly => 1,
        PosMode::None => 2,
    }
}

/// The sizes of a token assembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokensDims {
    /// Images in the batch (B).
    pub batch: usize,
    /// Patch tokens per image (NP).
    pub patch_tokens: usize,
    /// Prefix tokens (NPRE): cls, dist and reg tokens together.
    pub prefix_tokens: usize,
    /// Channels per token (C).
    pub channels: usize,
}

impl TokensDims {
    /// Tokens per image of the output: `T = NPRE + NP`.
    pub fn tokens(&self) -> usize {
        self.prefix_tokens + self.patch_tokens
    }

    /// The shader's size constants.
    fn key(&self, op: &str, entry: &'static str) -> Result<KernelKey> {
        Ok(KernelKey::new("tokens", entry)
            .u("B", u32_of(op, "B", self.batch)?)
            .u("NP", u32_of(op, "NP", self.patch_tokens)?)
            .u("NPRE", u32_of(op, "NPRE", self.prefix_tokens)?)
            .u("C", u32_of(op, "C", self.channels)?))
    }
}

/// See the module docs: the forward assembly.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The patch tokens `[B, NP, C]`.
    pub patches: TensorId,
    /// Prefix tokens `[NPRE, C]` (cls, dist, reg concatenated), shared by the batch.
    pub prefix: Option<TensorId>,
    /// The position embedding, `[NPRE + NP, C]` or `[NP, C]` as `mode` says.
    pub pos: Option<TensorId>,
    /// Which tokens `pos` covers.
    pub mode: PosMode,
    /// The sizes.
    pub dims: TokensDims,
}

/// Part of the backward of [`Tokens`]: d patches `[B, NP, C]`, the patch rows
/// of `dy [B, T, C]`.
#[derive(Debug, Clone)]
pub struct TokensPatchGrad {
    /// The gradient of the tokens `[B, T, C]`.
    pub dy: TensorId,
    /// The forward's sizes.
    pub dims: TokensDims,
}

/// Part of the backward of [`Tokens`]: rows `first..first + rows` of
/// `dy [B, T, C]` summed over the batch -> `[rows, C]` (d prefix: the prefix
/// rows; d pos_embed: the rows it covers).
#[derive(Debug, Clone)]
pub struct TokensBatchSum {
    /// The gradient of the tokens `[B, T, C]`.
    pub dy: TensorId,
    /// The forward's sizes.
    pub dims: TokensDims,
    /// The first token summed.
    pub first: usize,
    /// Tokens summed (the output's rows).
    pub rows: usize,
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
        let dims = TokensDims { batch: *b, patch_tokens: *np, prefix_tokens: npre, channels: *c };
        let op = Tokens { patches, prefix, pos, mode, dims };
        Ok(self.push(Box::new(op), &[*b, dims.tokens(), *c]))
    }
}

impl Op for Tokens {
    fn name(&self) -> &'static str {
        "tokens"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.patches), self.prefix, self.pos]
    }

    fn backward(&self, g: &mut Graph, _out: TensorId, dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        let d = self.dims;
        let (np, npre, c) = (d.patch_tokens, d.prefix_tokens, d.channels);
        let dp = g.push(Box::new(TokensPatchGrad { dy: dout, dims: d }), &[d.batch, np, c]);
        let batch_sum =
            |g: &mut Graph, first: usize, rows: usize| g.push(Box::new(TokensBatchSum { dy: dout, dims: d, first, rows }), &[rows, c]);
        let dpre = self.prefix.map(|_| batch_sum(g, 0, npre));
        let dpos = match (self.pos, self.mode) {
            (Some(_), PosMode::All) => Some(batch_sum(g, 0, npre + np)),
            (Some(_), PosMode::PatchesOnly) => Some(batch_sum(g, npre, np)),
            _ => None,
        };
        Ok(vec![Some(dp), dpre, dpos])
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        let key = d.key("tokens", "forward")?.u("POS_MODE", pos_code(self.mode));
        Dispatch::linear(key, d.batch * d.tokens() * d.channels)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let TokensDims { batch: b, patch_tokens: np, prefix_tokens: npre, channels: c } = self.dims;
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

impl Op for TokensPatchGrad {
    fn name(&self) -> &'static str {
        "tokens_patch_grad"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.dy)]
    }

    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("tokens_patch_grad", "second derivatives are not supported"))
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let d = self.dims;
        Dispatch::linear(d.key("tokens_patch_grad", "patch_grad")?, d.batch * d.patch_tokens * d.channels)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let TokensDims { batch: b, patch_tokens: np, prefix_tokens: npre, channels: c } = self.dims;
        let dy = get(self.dy);
        let t = npre + np;
        (0..b * np * c).map(|i| dy[((i / (np * c)) * t + npre + (i / c) % np) * c + i % c]).collect()
    }
}

impl Op for TokensBatchSum {
    fn name(&self) -> &'static str {
        "tokens_batch_sum"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.dy)]
    }

    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape("tokens_batch_sum", "second derivatives are not supported"))
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let op = "tokens_batch_sum";
        let key = self.dims.key(op, "batch_sum")?.u("FIRST", u32_of(op, "first", self.first)?).u("ROWS", u32_of(op, "rows", self.rows)?);
        Dispatch::linear(key, self.rows * self.dims.channels)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let TokensDims { batch: b, channels: c, .. } = self.dims;
        let t = self.dims.tokens();
        let dy = get(self.dy);
        (0..self.rows * c).map(|i| (0..b).map(|bi| dy[(bi * t + self.first + i / c) * c + i % c]).sum()).collect()
    }
}
