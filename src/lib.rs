#![warn(missing_docs)]
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
//! ## Classify an image
//!
//! ```no_run
//! # fn main() -> vitrine::Result<()> {
//! use vitrine::{Classifier, Engine, Model};
//! let mut engine = Engine::new_blocking()?;            // the default GPU (Engine::from_wgpu for your own)
//! let model = Model::builtin()?;                       // or Model::load("vit_b".as_ref(), None): a timm hub folder
//! let mut clf = Classifier::new(model);
//! let path = "models/samples/ankle-boot-0.png";
//! let image = std::fs::read(path).map_err(|e| vitrine::Error::io(path, e))?;
//! for p in clf.classify(&mut engine, &image, 5)? {
//!     println!("{:<20} {:5.1}%", p.label, p.prob * 100.0);
//! }
//! # Ok(()) }
//! ```
//!
//! ## The surface
//!
//! The types at the crate root are the library's curated API: [`Engine`]
//! (a GPU device and its compiled pipelines), [`Model`] (a config and its
//! weights), [`Classifier`] (a model compiled for an engine), [`Trainer`] with
//! [`TrainOptions`] and [`Dataset`] (fine-tuning), [`Error`].
//! `examples/` holds complete programs: `classify`, `features`, `fine_tune`
//! and `custom_graph`.
//!
//! The modules are the layers underneath, public for tools, tests and custom
//! graphs; they change more freely than the root API: [`graph`] (tensors, nodes,
//! planner), [`autodiff`], [`ops`] (one file per op with its CPU reference),
//! [`gpu`] (the only module that touches wgpu), [`models`] (families, configs,
//! presets), [`preprocess`], [`weights`], [`train`].
//!
//! Shapes use fixed letters: B batch, T tokens, C channels, H heads, D head dim.

pub mod autodiff;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod calibrate;
pub mod classify;
pub mod engine;
pub mod error;
pub mod explain;
mod font;
#[cfg(not(target_arch = "wasm32"))]
pub mod fuzz;
pub mod gpu;
pub mod graph;
pub mod kernel;
pub mod models;
pub mod ops;
pub mod preprocess;
pub mod rng;
pub mod train;
pub mod tune;
#[cfg(all(feature = "web", target_arch = "wasm32"))]
pub mod web;
pub mod weights;

pub use classify::{Classifier, Prediction};
pub use engine::{Engine, EngineOptions};
pub use error::{Error, Result};
pub use gpu::context::{AdapterOptions, AdapterSummary};
pub use graph::{MatmulKind, Precision};
pub use models::config::{DataConfig, ModelConfig};
pub use models::Model;
pub use train::data::{Dataset, Split};
#[cfg(not(target_arch = "wasm32"))]
pub use train::trainer::{TrainOptions, TrainReport};
#[cfg(not(target_arch = "wasm32"))]
pub use train::Trainer;
/// wgpu, re-exported so that applications use the same version as vitrine
/// (for [`Engine::from_wgpu`] and [`AdapterOptions`]).
pub use wgpu;
