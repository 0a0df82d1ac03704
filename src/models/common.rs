//! Types every family shares, with no dependency on any family: eval
//! preprocessing ([`DataConfig`]) and head pooling ([`GlobalPool`]).
//! A leaf module: preprocessing and training read these without reaching
//! into model code.

/// Eval preprocessing, as timm's pretrained_cfg describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DataConfig {
    /// Channels, height, width of the model input.
    pub input_size: [usize; 3],
    /// `bicubic`, `bilinear` or `nearest`.
    pub interpolation: String,
    /// Fraction of the resized image the center crop keeps: the shorter side
    /// is resized to `floor(size / crop_pct)` before cropping to `size`.
    pub crop_pct: f64,
    /// `center` (resize shorter side, center crop) or `squash` (resize both sides).
    pub crop_mode: String,
    /// Per-channel mean subtracted from pixels scaled to [0, 1] (one-channel
    /// models use the first value).
    pub mean: [f32; 3],
    /// Per-channel standard deviation the centred pixels are divided by.
    pub std: [f32; 3],
}

/// Largest input side a config may ask for (pixels).
pub const MAX_INPUT_SIDE: usize = 8192;
/// Largest side the eval resize may produce before its crop (pixels).
pub const MAX_RESIZE_SIDE: usize = 16384;

impl DataConfig {
    /// Refuses values that would crash preprocessing, allocate without bound or make the
    /// output meaningless: channels 1 or 3, sides 1..=8192, crop_pct > 0 with the resize
    /// side `floor(side / crop_pct)` at most 16384 (timm pads a crop larger than the
    /// image, so crop_pct above 1 is accepted), finite means, finite positive stds.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Config(m));
        let [c, h, w] = self.input_size;
        if ![1, 3].contains(&c) {
            return bad(format!("input_size channels {c} is not supported (1 or 3)"));
        }
        if !(1..=MAX_INPUT_SIDE).contains(&h) || !(1..=MAX_INPUT_SIDE).contains(&w) {
            return bad(format!("input_size {h} x {w} is out of range (each side 1..={MAX_INPUT_SIDE})"));
        }
        let side = h.max(w) as f64 / self.crop_pct;
        if !self.crop_pct.is_finite() || self.crop_pct <= 0.0 || side > MAX_RESIZE_SIDE as f64 {
            let least = h.max(w) as f64 / MAX_RESIZE_SIDE as f64;
            return bad(format!("crop_pct {} is out of range (greater than 0, and at least {least:.4} so that the resize side stays within {MAX_RESIZE_SIDE} px)", self.crop_pct));
        }
        let chans = &self.mean[..c];
        if chans.iter().any(|m| !m.is_finite()) {
            return bad(format!("mean {:?} must be finite numbers", self.mean));
        }
        if self.std[..c].iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return bad(format!("std {:?} must be positive finite numbers (pixels are divided by it)", self.std));
        }
        Ok(())
    }

    /// Square RGB input of `size` pixels, bicubic, center crop.
    pub fn rgb(size: usize, crop_pct: f64, mean: [f32; 3], std: [f32; 3]) -> Self {
        DataConfig { input_size: [3, size, size], interpolation: "bicubic".into(), crop_pct, crop_mode: "center".into(), mean, std }
    }
}

/// Inception-style normalisation (timm's ViT weights): mean and std 0.5.
pub const INCEPTION_MEAN: [f32; 3] = [0.5, 0.5, 0.5];
/// ImageNet channel means (timm's `IMAGENET_DEFAULT_MEAN`).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (timm's `IMAGENET_DEFAULT_STD`).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Head pooling (timm `global_pool`); serialised as timm's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GlobalPool {
    /// `token`: the class token's features (needs `class_token`).
    Token,
    /// `avg`: mean over tokens (patch tokens only unless `pool_include_prefix`).
    Avg,
    /// `max`: maximum over tokens, per channel.
    Max,
    /// `avgmax`: `0.5 * (max + avg)`.
    AvgMax,
}

impl GlobalPool {
    /// timm's `global_pool` string.
    pub fn name(self) -> &'static str {
        match self {
            GlobalPool::Token => "token",
            GlobalPool::Avg => "avg",
            GlobalPool::Max => "max",
            GlobalPool::AvgMax => "avgmax",
        }
    }
}
