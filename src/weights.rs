//! Safetensors loading with strict name / shape / dtype checks.
//! F32, F16 and BF16 tensors are accepted and converted to f32.

use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// A loaded checkpoint: tensor name -> (shape, f32 data).
#[derive(Debug, Default, Clone)]
pub struct Weights {
    /// Tensors by timm name: shape and row-major f32 data.
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// Storage dtype seen in the file (the first tensor's), for `inspect`.
    pub dtype: String,
}

impl Weights {
    /// Reads a .safetensors file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses safetensors bytes; `origin` names the source in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        let bad = |msg: String| Error::Safetensors { path: origin.to_string(), msg };
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let mut tensors = HashMap::new();
        let mut dtype = String::new();
        for (name, view) in st.tensors() {
            let shape = view.shape().to_vec();
            let data = view.data();
            let numel: usize = shape.iter().product();
            let vals: Vec<f32> = match view.dtype() {
                Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                Dtype::F16 => data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
                Dtype::BF16 => data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
                other => return Err(bad(format!("tensor {name} has dtype {other:?}; only F32, F16 and BF16 are supported"))),
            };
            if vals.len() != numel {
                return Err(bad(format!("tensor {name}: shape {shape:?} does not match its {} bytes", data.len())));
            }
            if dtype.is_empty() {
                dtype = format!("{:?}", view.dtype());
            }
            tensors.insert(name, (shape, vals));
        }
        Ok(Weights { tensors, dtype })
    }

    /// Checks the file against the tensors a model expects: every missing,
    /// unexpected and mis-shaped tensor is named in one error.
    pub fn check(&self, expected: &[(String, Vec<usize>)]) -> Result<()> {
        let mut missing = Vec::new();
        let mut misshaped = Vec::new();
        for (name, want) in expected {
            match self.tensors.get(name) {
                None => missing.push(name.clone()),
                Some((got, _)) if got != want => misshaped.push((name.clone(), got.clone(), want.clone())),
                Some(_) => {}
            }
        }
        let mut unexpected: Vec<String> = self.tensors.keys().filter(|k| !expected.iter().any(|(n, _)| n == *k)).cloned().collect();
        unexpected.sort();
        if missing.is_empty() && unexpected.is_empty() && misshaped.is_empty() {
            Ok(())
        } else {
            Err(Error::Weights { missing, unexpected, misshaped })
        }
    }

    /// Name -> data, the form graphs take their parameters in.
    pub fn data(&self) -> HashMap<String, Vec<f32>> {
        self.tensors.iter().map(|(k, (_, v))| (k.clone(), v.clone())).collect()
    }

    /// Shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|(s, _)| s.as_slice())
    }
}
