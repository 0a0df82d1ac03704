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
    /// Weights do not match the model: the tensors it needs but the file lacks, the file's
    /// tensors it has no use for, and those of another shape (name, in the file, expected).
    #[error("weights do not match the model: {}", weights_message(missing, unexpected, misshaped))]
    Weights {
        /// Tensors the model needs that the weights lack.
        missing: Vec<String>,
        /// Tensors in the weights the model has no use for.
        unexpected: Vec<String>,
        /// (name, shape in the weights, shape the model expects).
        misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
    },
    /// A valid configuration vitrine does not run (yet): the message names it and what is.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Training diverged: the loss stopped being finite.
    #[error("{msg}")]
    Diverged {
        /// The 1-based epoch.
        epoch: usize,
        /// The 1-based step within it.
        step: usize,
        /// The loss value (NaN or infinite).
        loss: f32,
        /// The whole one-line message (what was kept, what to try).
        msg: String,
    },
    /// A broken invariant inside vitrine (a bug, not bad input): please report it.
    #[error("internal error: {0}")]
    Internal(String),
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

/// `missing a, b; unexpected c; mis-shaped d is [1], expected [2]`, each list cut at 8 names.
fn weights_message(missing: &[String], unexpected: &[String], misshaped: &[(String, Vec<usize>, Vec<usize>)]) -> String {
    let list = |v: Vec<String>| {
        let more = if v.len() > 8 { format!(" and {} more", v.len() - 8) } else { String::new() };
        format!("{}{more}", v.into_iter().take(8).collect::<Vec<_>>().join(", "))
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", list(missing.to_vec())));
    }
    if !unexpected.is_empty() {
        parts.push(format!("unexpected {}", list(unexpected.to_vec())));
    }
    if !misshaped.is_empty() {
        parts.push(format!(
            "mis-shaped {}",
            list(misshaped.iter().map(|(n, got, want)| format!("{n} is {got:?}, expected {want:?}")).collect())
        ));
    }
    parts.join("; ")
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
