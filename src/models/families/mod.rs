//! The family registry: one module per family, one line each below.
//!
//! A family module provides a `pub static FAMILY: Family` (presets, names,
//! inference from tensors) and a config type implementing [`Arch`](super::family::Arch)
//! (graph, `model_args`, head, weight decay, init, `inspect`). Nothing else in
//! the crate matches on the family; see docs/ADDING_A_FAMILY.md.

macro_rules! registry {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        $($(#[$doc])* pub mod $name;)*
        /// Every family, in lookup order (presets, config.json names, tensor inference).
        pub static FAMILIES: &[&crate::models::family::Family] = &[$(&$name::FAMILY),*];
    };
}

registry! {
    /// timm's VisionTransformer, DeiT, DeiT III.
    vit,
    /// timm's SwinTransformer v1.
    swin,
    /// HVT, hierarchical pooling (official MonashAI/HVT).
    hvt,
    /// T2T-ViT, tokens-to-token (official yitu-opensource/T2T-ViT).
    t2t,
    /// DynamicViT, per-image token pruning (official raoyongming/DynamicViT).
    dynamicvit,
    /// DVT, early-exit cascades with feature and relation reuse (official blackfeather-wang/Dynamic-Vision-Transformer).
    dvt,
}
