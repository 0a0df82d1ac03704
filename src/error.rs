//! One error type for the whole crate. Every message names the offending
//! file, tensor, op or shape, so the CLI can print it as a single line.

use std::path::PathBuf;

/// The crate's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying io error.
        source: std::io::Error,
    },
    /// An image file could not be decoded.
    #[error("{path}: cannot decode image: {msg}")]
    Image {
        /// The image's file name or other origin.
        path: String,
        /// The decoder's message.
        msg: String,
    },
    /// A weights file is corrupt, truncated or inconsistent.
    #[error("{path}: invalid safetensors file: {msg}")]
    Safetensors {
        /// The weights file's name or other origin.
        path: String,
        /// What is wrong with it.
        msg: String,
    },
    /// Weights do not match the model: missing, unexpected or mis-shaped tensors.
    #[error("weights do not match the model: {0}")]
    Weights(String),
    /// A configuration (config.json, preset, CLI flag) is invalid or unsupported.
    #[error("config: {0}")]
    Config(String),
    /// A shape rule was violated while building the graph.
    #[error("shape error in {op}: {msg}")]
    Shape {
        /// The graph op whose shape rule failed (e.g. `linear`).
        op: String,
        /// The offending shapes and why.
        msg: String,
    },
    /// No usable GPU adapter, or the device cannot run the plan.
    #[error("gpu: {0}")]
    Gpu(String),
    /// A shader failed to build (template constant missing, validation).
    #[error("shader {name}: {msg}")]
    Shader {
        /// The shader's registry name (e.g. `matmul`, the file without `.wgsl`).
        name: String,
        /// What failed: unknown shader, missing or duplicate constant, validation.
        msg: String,
    },
    /// Bad user input that fits no other category.
    #[error("{0}")]
    Input(String),
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an io error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub(crate) fn shape(op: &str, msg: impl Into<String>) -> Self {
        Error::Shape { op: op.to_string(), msg: msg.into() }
    }
}
