//! Operations: one file per op with its shape rule (the `Graph` builder
//! method), its kernel choice and its plain CPU reference.

pub mod attention;
pub mod attention_bias;
pub mod cross_entropy;
pub mod elementwise;
pub mod im2col;
pub mod layernorm;
pub mod linear;
pub mod masked_softmax;
pub mod pool;
pub mod prune;
pub mod reuse;
pub mod select;
pub mod slice;
pub mod softmax;
pub mod token_pool;
pub mod tokens;
pub mod transpose;
pub mod unfold;
pub mod window;

pub use attention::Attention;
pub use attention_bias::{AttnBias, RelPos, RelPosDims, RelPosGrad, WindowMask};
pub use cross_entropy::{CrossEntropy, CrossEntropyDims, CrossEntropyGrad};
pub use elementwise::{Elementwise, EwMode, RowDot};
pub use im2col::{Col2Im, Im2Col, Im2ColDims};
pub use layernorm::{LayerNorm, LayerNormDims, LayerNormGrad};
pub use linear::{Act, Layout, Linear};
pub use masked_softmax::{MaskedSoftmax, MaskedSoftmaxDims, MaskedSoftmaxGrad, MaskedSoftmaxPolicyGrad, MASKED_SOFTMAX_EPS};
pub use pool::{Pool, PoolDims, PoolGrad, PoolMode};
pub use prune::{
    GumbelKeep, GumbelKeepGrad, KeepScore, KlDiv, KlDivGrad, LocalGlobal, LocalGlobalDims, LocalGlobalGrad, LocalGlobalWrt, PolicyPrefix,
};
pub use reuse::{ConcatLast, ResampleDims, TokenResample, TokenResampleGrad};
pub use select::{GatherDims, GatherTokens, GatherTokensGrad, ScatterRows, TopK, TopKDims};
pub use slice::{SliceDims, SliceLast, SliceLastGrad};
pub use softmax::{Softmax, SoftmaxGrad};
pub use token_pool::{TokenPool, TokenPoolDims, TokenPoolGrad, TokenPoolKind};
pub use tokens::{PosMode, Tokens, TokensBatchSum, TokensDims, TokensPatchGrad};
pub use transpose::{SumRows, SumRowsDims, Transpose, TransposeDims};
pub use unfold::{Fold, Unfold, UnfoldDims, UnfoldInput};
pub use window::{MergeDims, PatchMerge, PatchMergeGrad, WindowGeom, WindowPartition, WindowReverse};

/// Casts a size to the u32 a shader constant holds, naming the op if it does not fit.
pub(crate) fn u32_of(op: &str, what: &str, v: usize) -> crate::error::Result<u32> {
    u32::try_from(v).map_err(|_| crate::error::Error::shape(op, format!("{what} = {v} exceeds u32")))
}
