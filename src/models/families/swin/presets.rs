//! timm's `swin_*` model functions as presets.

use super::{PerStage, SwinConfig};
use crate::models::common::{DataConfig, IMAGENET_MEAN, IMAGENET_STD};
use crate::models::family::ModelConfig;

const SWIN_PRESETS: [&str; 9] = [
    "swin_tiny_patch4_window7_224",
    "swin_small_patch4_window7_224",
    "swin_base_patch4_window7_224",
    "swin_base_patch4_window12_384",
    "swin_large_patch4_window7_224",
    "swin_large_patch4_window12_384",
    "swin_s3_tiny_224",
    "swin_s3_small_224",
    "swin_s3_base_224",
];

/// Every Swin preset name (timm's).
pub fn preset_names() -> Vec<String> {
    SWIN_PRESETS.iter().map(|s| s.to_string()).collect()
}

/// timm's `swin_*` model functions.
pub(super) fn preset(name: &str) -> Option<ModelConfig> {
    if !SWIN_PRESETS.contains(&name) {
        return None;
    }
    let w = |v: &[usize]| PerStage::Each(v.iter().map(|&x| [x, x]).collect());
    let (dim, depths, heads, window): (usize, Vec<usize>, Vec<usize>, PerStage<[usize; 2]>) = match name {
        // AutoFormerV2 (S3) searched per-stage windows, on SwinTransformer.
        "swin_s3_tiny_224" => (96, vec![2, 2, 6, 2], vec![3, 6, 12, 24], w(&[7, 7, 14, 7])),
        "swin_s3_small_224" => (96, vec![2, 2, 18, 2], vec![3, 6, 12, 24], w(&[14, 14, 14, 7])),
        "swin_s3_base_224" => (96, vec![2, 2, 30, 2], vec![3, 6, 12, 24], w(&[7, 7, 14, 7])),
        _ => {
            let window = if name.contains("window12") { 12 } else { 7 };
            let (dim, depths, heads) = match name.split('_').nth(1)? {
                "tiny" => (96, vec![2, 2, 6, 2], vec![3, 6, 12, 24]),
                "small" => (96, vec![2, 2, 18, 2], vec![3, 6, 12, 24]),
                "base" => (128, vec![2, 2, 18, 2], vec![4, 8, 16, 32]),
                _ => (192, vec![2, 2, 18, 2], vec![6, 12, 24, 48]),
            };
            (dim, depths, heads, PerStage::All([window, window]))
        }
    };
    let res = if name.ends_with("_384") { 384 } else { 224 };
    let swin = SwinConfig {
        img_size: [res, res],
        embed_dim: PerStage::All(dim),
        depths,
        num_heads: heads,
        window_size: window,
        ..SwinConfig::tiny()
    };
    let crop = if res == 384 { 1.0 } else { 0.9 };
    Some(ModelConfig::new(name, swin, DataConfig::rgb(res, crop, IMAGENET_MEAN, IMAGENET_STD)))
}
