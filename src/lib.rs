//! # vitrine
//!
//! Vision Transformers on any GPU through WebGPU: WGSL compute shaders on
//! wgpu, the same Rust code natively (Vulkan, Metal, DX12, GL) and in the
//! browser, exact to timm.
//!
//! ```text
//! image bytes -> preprocess (decode, resize, crop, normalize; exact to timm)
//!             -> graph built once per (model, batch): patch embed -> [+cls/dist/reg tokens, +pos]
//!                -> N x block (LN -> attention -> +res -> LN -> MLP -> +res) -> norm -> pool -> head
//!             -> plan (buffer liveness, device limits) -> executable (pipelines + bind groups made once)
//!             -> run: write input, record each layer's dispatches, one submit -> read back logits
//! ```
//!
//! Shapes use fixed letters: B batch, T tokens, C channels, H heads, D head dim.

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod classify;
pub mod engine;
pub mod error;
pub mod gpu;
pub mod graph;
pub mod ops;

pub use engine::Engine;
pub use error::{Error, Result};
pub mod models;
pub mod preprocess;
pub mod train;
pub mod weights;
#[cfg(all(feature = "web", target_arch = "wasm32"))]
pub mod web;
