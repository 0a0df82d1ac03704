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

impl DataConfig {
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
