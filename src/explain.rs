//! What a ViT attends to: attention rollout (Abnar & Zuidema, "Quantifying Attention Flow
//! in Transformers", 2020) and the last block's class-token attention, read from the
//! attention probabilities the GPU computes, and drawn over the input image.
//!
//! Rollout: per block, the head-mean attention `A` plus the identity (the residual
//! connection), rows renormalised, `Â = (A + I) / rowsum`; the blocks' `Â` are multiplied
//! from the first to the last, and the class token's row over the patch tokens is the map.
//! Defined for models with a class token (ViT, DeiT); Swin has no class token, and the
//! other families' token mixing (pooling, token-to-token, pruning, early exit) breaks the
//! one-token-per-patch chain the product assumes: those are refused with a message.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::models::families::vit::VitConfig;
use crate::models::Model;
use crate::preprocess::Image8;

/// The attention maps of one image.
#[derive(Debug, Clone)]
pub struct AttentionMaps {
    /// Patch grid `[rows, columns]`; the maps are row-major over it.
    pub grid: [usize; 2],
    /// Attention rollout: the class token's row of the product, over the patches.
    pub rollout: Vec<f32>,
    /// The last block's class-token attention over the patches, head mean.
    pub last_cls: Vec<f32>,
    /// The model's logits for the image.
    pub logits: Vec<f32>,
}

/// Runs `model` on one preprocessed image `[C, H, W]` and returns its attention maps. The
/// attention probabilities are extra outputs of the forward graph (every block's softmax);
/// the maps are computed from them on the CPU in f64.
pub async fn attention_maps(engine: &mut Engine, model: &Model, input: &[f32]) -> Result<AttentionMaps> {
    let vit = model.config.arch_as::<VitConfig>().filter(|v| v.class_token).ok_or_else(|| {
        Error::Unsupported(format!(
            "attention maps are drawn for ViT and DeiT models with a class token; {} ({} family) has {}",
            model.config.architecture,
            model.config.family().name,
            match model.config.arch_as::<VitConfig>() {
                Some(_) => "no class token",
                None => "no single class token over one token per patch",
            }
        ))
    })?;
    let grid = vit.grid();
    let prefix = vit.num_prefix_tokens();
    let t = prefix + grid[0] * grid[1];
    let mut g = model.graph(1)?;
    let probs: Vec<_> = g.nodes.iter().filter(|n| n.op.name() == "softmax").map(|n| n.out).collect();
    if probs.len() != vit.depth {
        return Err(Error::Unsupported(format!(
            "{}: {} attention maps for {} blocks ({t} tokens are attended with a fused kernel that keeps no probabilities)",
            model.config.architecture,
            probs.len(),
            vit.depth
        )));
    }
    g.outputs.extend(&probs);
    let exe = engine.compile(&g, &model.weights.data())?;
    let mut outs = exe.run(&engine.ctx, &[input]).await.map_err(|e| engine.ctx.explain_error(e))?;
    let heads = vit.num_heads;
    let blocks: Vec<Vec<f64>> = outs.drain(1..).map(|p| head_mean(&p, heads, t)).collect::<Result<_>>()?;
    let logits = outs.pop().unwrap_or_default();
    let (rollout, last_cls) = rollout(&blocks, t, prefix)?;
    Ok(AttentionMaps { grid, rollout, last_cls, logits })
}

/// The head mean `[T, T]` of one block's probabilities `[heads, T, TP]` (rows padded to TP).
fn head_mean(p: &[f32], heads: usize, t: usize) -> Result<Vec<f64>> {
    let tp = p.len().checked_div(heads * t).filter(|&tp| tp >= t && tp * heads * t == p.len());
    let tp = tp.ok_or_else(|| Error::Internal(format!("attention probabilities of {} values for {heads} heads x {t} tokens", p.len())))?;
    let mut a = vec![0f64; t * t];
    for h in 0..heads {
        for i in 0..t {
            for j in 0..t {
                a[i * t + j] += p[(h * t + i) * tp + j] as f64 / heads as f64;
            }
        }
    }
    Ok(a)
}

/// Rollout of head-mean attentions `[T, T]` (first block first): the class token's row of
/// `Â_L ... Â_1` over the patch tokens, and of `A_L` itself.
pub fn rollout(blocks: &[Vec<f64>], t: usize, prefix: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let last = blocks.last().ok_or_else(|| Error::Internal("no attention blocks".into()))?;
    // Only the class token's row of the product is needed: r <- r Â, from the last block down.
    let mut r: Vec<f64> = (0..t).map(|j| if j == 0 { 1.0 } else { 0.0 }).collect();
    for a in blocks.iter().rev() {
        let mut next = vec![0f64; t];
        for (i, ri) in r.iter().enumerate().filter(|(_, ri)| **ri != 0.0) {
            let row = &a[i * t..(i + 1) * t];
            let sum: f64 = row.iter().sum::<f64>() + 1.0;
            for (j, v) in row.iter().enumerate() {
                next[j] += ri * (v + if i == j { 1.0 } else { 0.0 }) / sum;
            }
        }
        r = next;
    }
    Ok((r[prefix..].iter().map(|&v| v as f32).collect(), last[prefix..t].iter().map(|&v| v as f32).collect()))
}

/// A map over the patch grid drawn over `img` (the preprocessed, uncropped-to-tensor image
/// the model saw): scaled to its maximum, bilinearly upsampled, coloured (dark blue, low,
/// through green and yellow to red, high) and blended at 50 %.
pub fn overlay(img: &Image8, map: &[f32], grid: [usize; 2]) -> Result<image::RgbImage> {
    let [gh, gw] = grid;
    if map.len() != gh * gw || gh == 0 || gw == 0 {
        return Err(Error::Input(format!("a map of {} values for a {gh} x {gw} grid", map.len())));
    }
    let max = map.iter().cloned().fold(f32::MIN_POSITIVE, f32::max);
    let (w, h, c) = (img.width, img.height, img.channels);
    let at = |gy: usize, gx: usize| map[gy.min(gh - 1) * gw + gx.min(gw - 1)] / max;
    let mut out = image::RgbImage::new(w as u32, h as u32);
    for y in 0..h {
        // Patch centres are at (k + 0.5) cells; clamp outside them.
        let fy = ((y as f32 + 0.5) * gh as f32 / h as f32 - 0.5).max(0.0);
        let (y0, ty) = (fy.floor() as usize, fy.fract());
        for x in 0..w {
            let fx = ((x as f32 + 0.5) * gw as f32 / w as f32 - 0.5).max(0.0);
            let (x0, tx) = (fx.floor() as usize, fx.fract());
            let v =
                (at(y0, x0) * (1.0 - tx) + at(y0, x0 + 1) * tx) * (1.0 - ty) + (at(y0 + 1, x0) * (1.0 - tx) + at(y0 + 1, x0 + 1) * tx) * ty;
            let i = (y * w + x) * c;
            let src = if c == 3 { [img.data[i], img.data[i + 1], img.data[i + 2]] } else { [img.data[i]; 3] };
            let heat = colormap(v);
            let px = std::array::from_fn(|k| ((src[k] as f32 + heat[k] as f32) / 2.0).round() as u8);
            out.put_pixel(x as u32, y as u32, image::Rgb(px));
        }
    }
    Ok(out)
}

/// `img` enlarged (nearest neighbour, a whole factor) to at least 224 pixels wide, for drawing.
pub fn enlarge(img: &Image8) -> Image8 {
    let z = (224 / img.width.max(1)).max(1);
    crate::preprocess::resize(img, img.width * z, img.height * z, "nearest").unwrap_or_else(|_| img.clone())
}

/// PNG bytes of [`overlay`] on `img` [`enlarge`]d: what the demo page shows.
pub fn overlay_png(img: &Image8, map: &[f32], grid: [usize; 2]) -> Result<Vec<u8>> {
    let picture = overlay(&enlarge(img), map, grid)?;
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Internal(format!("cannot encode the attention map as PNG: {e}")))?;
    Ok(png)
}

/// A jet-like colour for `v` in [0, 1].
fn colormap(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0);
    let ch = |centre: f32| ((1.5 - (4.0 * v - centre).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    [ch(3.0), ch(2.0), ch(1.0)]
}

/// Writes `text` onto `img` at (`x`, `y`) in the built-in 6 x 11 font, scaled by `scale`,
/// on a white band; characters past the right edge are dropped.
pub fn label(img: &mut image::RgbImage, text: &str, x: u32, y: u32, scale: u32) {
    let (gw, gh) = crate::font::SIZE;
    let (gw, gh) = (gw as u32 * scale, gh as u32 * scale);
    for (k, ch) in text.chars().enumerate() {
        let x0 = x + k as u32 * gw;
        if x0 + gw > img.width() || y + gh > img.height() {
            break;
        }
        let glyph = crate::font::glyph(ch);
        for dy in 0..gh {
            for dx in 0..gw {
                let on = glyph[(dy / scale) as usize] >> (5 - dx / scale) & 1 == 1;
                img.put_pixel(x0 + dx, y + dy, image::Rgb(if on { [0, 0, 0] } else { [255, 255, 255] }));
            }
        }
    }
}
