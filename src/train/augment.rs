//! Training transforms (timm's `transforms_factory` train path, without colour
//! jitter): random resized crop or pad-and-crop, horizontal flip, then
//! normalisation. With [`Augment::none`] a sample gets the eval transform.

use super::data::Rng;
use crate::error::Result;
use crate::models::common::DataConfig;
use crate::preprocess::{crop, eval_image, hflip, normalize, resize, Image8};

/// How a training image is cropped.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Crop {
    /// torchvision's RandomResizedCrop: area fraction in `scale`, aspect in `ratio`.
    RandomResized {
        /// (min, max) fraction of the image area (timm's `--scale`, default 0.08-1).
        scale: [f64; 2],
        /// (min, max) aspect ratio, width / height (timm's `--ratio`, default 3/4-4/3).
        ratio: [f64; 2],
    },
    /// Eval resize, zero-pad by `pad` pixels on each side, random crop back
    /// (torchvision's `RandomCrop(size, padding)`; the CIFAR / MNIST recipe).
    Pad {
        /// Zero padding on each side, in pixels.
        pad: usize,
    },
    /// The eval transform (resize + center crop).
    Center,
}

/// A training augmentation recipe.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// How the image is cropped to the model's input size.
    pub crop: Crop,
    /// Probability of a horizontal flip.
    pub hflip: f64,
}

impl Augment {
    /// timm's defaults: RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3) + flip 0.5.
    pub fn timm_default() -> Self {
        Augment { crop: Crop::RandomResized { scale: [0.08, 1.0], ratio: [3.0 / 4.0, 4.0 / 3.0] }, hflip: 0.5 }
    }
    /// No augmentation (`--no-aug`): the eval transform.
    pub fn none() -> Self {
        Augment { crop: Crop::Center, hflip: 0.0 }
    }
}

/// torchvision's `RandomResizedCrop.get_params`: (left, top, width, height).
pub fn rrc_window(w: usize, h: usize, scale: [f64; 2], ratio: [f64; 2], rng: &mut Rng) -> (usize, usize, usize, usize) {
    let area = (w * h) as f64;
    let (lr0, lr1) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * (scale[0] + (scale[1] - scale[0]) * rng.unit());
        let aspect = (lr0 + (lr1 - lr0) * rng.unit()).exp();
        let cw = (target * aspect).sqrt().round() as usize;
        let ch = (target / aspect).sqrt().round() as usize;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            let top = rng.below(h - ch + 1);
            let left = rng.below(w - cw + 1);
            return (left, top, cw, ch);
        }
    }
    // Fallback: the whole image, clamped to the aspect range, centred.
    let in_ratio = w as f64 / h as f64;
    let (cw, ch) = if in_ratio < ratio[0] {
        (w, ((w as f64 / ratio[0]).round() as usize).clamp(1, h))
    } else if in_ratio > ratio[1] {
        (((h as f64 * ratio[1]).round() as usize).clamp(1, w), h)
    } else {
        (w, h)
    };
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}

/// One augmented, normalised training tensor (CHW) of `cfg.input_size`.
pub fn train_tensor(img: &Image8, cfg: &DataConfig, aug: &Augment, rng: &mut Rng) -> Result<Vec<f32>> {
    let [_, th, tw] = cfg.input_size;
    let mut out = match &aug.crop {
        Crop::Center => eval_image(img, cfg)?,
        Crop::Pad { pad } => {
            let base = eval_image(img, cfg)?;
            let (dx, dy) = (rng.below(2 * pad + 1) as i64, rng.below(2 * pad + 1) as i64);
            crop(&base, dx - *pad as i64, dy - *pad as i64, tw, th)
        }
        Crop::RandomResized { scale, ratio } => {
            let (l, t, w, h) = rrc_window(img.width, img.height, *scale, *ratio, rng);
            let window = crop(img, l as i64, t as i64, w, h);
            if (w, h) == (tw, th) {
                window
            } else {
                resize(&window, tw, th, &cfg.interpolation)?
            }
        }
    };
    if aug.hflip > 0.0 && rng.unit() < aug.hflip {
        out = hflip(&out);
    }
    Ok(normalize(&out, cfg))
}
