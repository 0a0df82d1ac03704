//! Graph pieces the families share, under timm's checkpoint names: LayerNorm,
//! linear parameters, head pooling and the pre-norm transformer block.

use super::common::GlobalPool;
use crate::error::Result;
use crate::graph::{Graph, TensorId};
use crate::ops::{Act, PoolMode};

/// The image input `[B, Cin, H, W]` and timm's patch embedding: non-overlapping
/// `p x p` patches (im2col) through `patch_embed.proj` (a conv stored as
/// `[C, Cin, p, p]`) -> `[B, (H / p) * (W / p), C]`. Returns (input, tokens).
pub fn patch_embed(
    g: &mut Graph,
    batch: usize,
    cin: usize,
    hw: [usize; 2],
    p: usize,
    c: usize,
    bias: bool,
) -> Result<(TensorId, TensorId)> {
    let img = g.input(&[batch, cin, hw[0], hw[1]]);
    let cols = g.im2col(img, p)?;
    let w = g.param_view("patch_embed.proj.weight", &[c, cin, p, p], &[c, cin * p * p]);
    let b = bias.then(|| g.param("patch_embed.proj.bias", &[c]));
    Ok((img, g.linear(cols, w, b)?))
}

/// LayerNorm with the checkpoint's `{name}.weight` / `{name}.bias`.
pub fn norm(g: &mut Graph, x: TensorId, name: &str, c: usize, eps: f32) -> Result<TensorId> {
    let w = g.param(&format!("{name}.weight"), &[c]);
    let b = g.param(&format!("{name}.bias"), &[c]);
    g.layernorm(x, w, b, eps)
}

/// A linear layer's `{name}.weight [out, inp]` and optional `{name}.bias`.
pub fn linear_params(g: &mut Graph, name: &str, out: usize, inp: usize, bias: bool) -> (TensorId, Option<TensorId>) {
    let w = g.param(&format!("{name}.weight"), &[out, inp]);
    let b = bias.then(|| g.param(&format!("{name}.bias"), &[out]));
    (w, b)
}

/// A linear layer `{name}` applied to `x`.
pub fn linear(g: &mut Graph, x: TensorId, name: &str, out: usize, inp: usize, bias: bool) -> Result<TensorId> {
    let (w, b) = linear_params(g, name, out, inp, bias);
    g.linear(x, w, b)
}

/// timm's token-free global pooling of `x [B, T, C]` over tokens `start..`:
/// avg, max or avgmax (0.5 * (max + avg)); `None` for token pooling.
pub fn global_pool(g: &mut Graph, x: TensorId, pool: GlobalPool, start: usize) -> Result<Option<TensorId>> {
    Ok(Some(match pool {
        GlobalPool::Token => return Ok(None),
        GlobalPool::Avg => g.pool(x, PoolMode::Avg(start))?,
        GlobalPool::Max => g.pool(x, PoolMode::Max(start))?,
        GlobalPool::AvgMax => {
            let mx = g.pool(x, PoolMode::Max(start))?;
            let av = g.pool(x, PoolMode::Avg(start))?;
            g.add_scale(mx, av, 0.5)?
        }
    }))
}

/// One pre-norm transformer block's sizes and switches (timm's `Block`).
#[derive(Debug, Clone, Copy)]
pub struct BlockSpec {
    /// Token width C.
    pub dim: usize,
    /// Attention heads (head dim = dim / heads).
    pub heads: usize,
    /// MLP hidden width.
    pub hidden: usize,
    /// Bias on `attn.qkv`.
    pub qkv_bias: bool,
    /// Bias on `attn.proj`, `mlp.fc1` and `mlp.fc2`.
    pub proj_bias: bool,
    /// Layer scale: `ls1.gamma` / `ls2.gamma` multiply the branches.
    pub layer_scale: bool,
    /// LayerNorm epsilon.
    pub eps: f32,
}

/// `x + ls1 * attn(norm1(x))`, then `x + ls2 * mlp(norm2(x))` (exact GELU),
/// with the tensors under `{prefix}.norm1`, `.attn.qkv`, `.attn.proj`,
/// `.norm2`, `.mlp.fc1`, `.mlp.fc2`, `.ls1.gamma`, `.ls2.gamma`.
pub fn vit_block(g: &mut Graph, x: TensorId, prefix: &str, s: &BlockSpec) -> Result<TensorId> {
    vit_block_policy(g, x, prefix, s, None)
}

/// [`vit_block`] whose attention masks dropped keys with a per-token `policy [B, T]`
/// (DynamicViT's training blocks, [`Graph::attention_policy`]) when one is given.
pub fn vit_block_policy(g: &mut Graph, x: TensorId, prefix: &str, s: &BlockSpec, policy: Option<TensorId>) -> Result<TensorId> {
    let c = s.dim;
    let gamma = |g: &mut Graph, n: &str| s.layer_scale.then(|| g.param(&format!("{prefix}.{n}.gamma"), &[c]));
    let h = norm(g, x, &format!("{prefix}.norm1"), c, s.eps)?;
    let (w, b) = linear_params(g, &format!("{prefix}.attn.qkv"), 3 * c, c, s.qkv_bias);
    let qkv = g.linear(h, w, b)?;
    let a = match policy {
        Some(p) => g.attention_policy(qkv, s.heads, p)?,
        None => g.attention(qkv, s.heads)?,
    };
    let (w, b) = linear_params(g, &format!("{prefix}.attn.proj"), c, c, s.proj_bias);
    let ls1 = gamma(g, "ls1");
    let x = g.linear_fused(a, w, b, Act::None, ls1, Some(x))?;
    let h = norm(g, x, &format!("{prefix}.norm2"), c, s.eps)?;
    let (w, b) = linear_params(g, &format!("{prefix}.mlp.fc1"), s.hidden, c, s.proj_bias);
    let h = g.linear_fused(h, w, b, Act::Gelu, None, None)?;
    let (w, b) = linear_params(g, &format!("{prefix}.mlp.fc2"), c, s.hidden, s.proj_bias);
    let ls2 = gamma(g, "ls2");
    g.linear_fused(h, w, b, Act::None, ls2, Some(x))
}
