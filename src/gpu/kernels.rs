//! Shader registry and pipeline cache.
//!
//! Every kernel lives in `shaders/*.wgsl` and is compiled into the binary with
//! `include_str!`. A shader declares its tunable values as ordinary WGSL
//! constants with defaults (`const TM: u32 = 8u;`), so each file validates on
//! its own. Specialisation replaces the value of named constants, nothing else:
//! no recursion, no control flow in templates. The pipeline cache key is the
//! shader name plus its constants.

use crate::error::{Error, Result};
use std::collections::HashMap;

const GELU: &str = include_str!("../../shaders/gelu.wgsl");
const EPILOGUE: &str = include_str!("../../shaders/epilogue.wgsl");
const MATMUL_IO: &str = include_str!("../../shaders/matmul_io.wgsl");

/// Every kernel, by name, as the list of shader files it is made of (shared
/// parts such as `gelu.wgsl` are concatenated with the kernel; WGSL allows
/// module-scope declarations in any order).
pub const SHADERS: &[(&str, &[&str])] = &[
    ("matmul", &[GELU, MATMUL_IO, include_str!("../../shaders/matmul.wgsl"), EPILOGUE]),
    ("matmul_reg", &[GELU, MATMUL_IO, include_str!("../../shaders/matmul_reg.wgsl"), EPILOGUE]),
    ("matmul_subgroup", &[GELU, MATMUL_IO, include_str!("../../shaders/matmul_subgroup.wgsl"), EPILOGUE]),
    ("matmul_scalar", &[GELU, include_str!("../../shaders/matmul_scalar.wgsl"), EPILOGUE]),
    ("layernorm", &[include_str!("../../shaders/layernorm.wgsl")]),
    ("attention", &[include_str!("../../shaders/attention.wgsl")]),
    ("heads", &[include_str!("../../shaders/heads.wgsl")]),
    ("softmax", &[include_str!("../../shaders/softmax.wgsl")]),
    ("im2col", &[include_str!("../../shaders/im2col.wgsl")]),
    ("tokens", &[include_str!("../../shaders/tokens.wgsl")]),
    ("pool", &[include_str!("../../shaders/pool.wgsl")]),
    ("elementwise", &[GELU, include_str!("../../shaders/elementwise.wgsl")]),
    ("transpose", &[include_str!("../../shaders/transpose.wgsl")]),
    ("cross_entropy", &[include_str!("../../shaders/cross_entropy.wgsl")]),
    ("optim", &[include_str!("../../shaders/optim.wgsl")]),
    ("grad", &[include_str!("../../shaders/grad.wgsl")]),
    ("window", &[include_str!("../../shaders/window.wgsl")]),
    ("relpos", &[include_str!("../../shaders/relpos.wgsl")]),
];

/// The full WGSL source of a kernel (its parts concatenated).
pub fn source(name: &str) -> Result<String> {
    SHADERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, parts)| parts.join("\n"))
        .ok_or_else(|| Error::Shader { name: name.into(), msg: "no such shader".into() })
}

/// A constant value substituted into a shader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Const {
    U32(u32),
    F32Bits(u32),
}

impl Const {
    pub fn f32(v: f32) -> Self {
        Const::F32Bits(v.to_bits())
    }
    fn wgsl(&self) -> String {
        match self {
            Const::U32(v) => format!("{v}u"),
            Const::F32Bits(b) => {
                let v = f32::from_bits(*b);
                // Debug formatting round-trips f32 exactly and always has a '.' or 'e'.
                format!("{v:?}")
            }
        }
    }
}

/// A shader name with the constants that specialise it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelKey {
    pub shader: &'static str,
    pub entry: &'static str,
    pub consts: Vec<(&'static str, Const)>,
}

impl KernelKey {
    pub fn new(shader: &'static str, entry: &'static str) -> Self {
        KernelKey { shader, entry, consts: Vec::new() }
    }
    pub fn with(mut self, name: &'static str, value: Const) -> Self {
        self.consts.push((name, value));
        self
    }
    pub fn u(self, name: &'static str, v: u32) -> Self {
        self.with(name, Const::U32(v))
    }
}

/// Replaces the value of each named `const NAME: T = value;` declaration.
/// Fails if a constant is not declared exactly once.
pub fn specialize(name: &str, src: &str, consts: &[(&str, Const)]) -> Result<String> {
    let mut out = src.to_string();
    for (cname, value) in consts {
        let pat = format!("const {cname}:");
        let mut hits = out.match_indices(&pat).map(|(i, _)| i);
        let start = hits.next().ok_or_else(|| Error::Shader {
            name: name.into(),
            msg: format!("constant {cname} is not declared"),
        })?;
        if hits.next().is_some() {
            return Err(Error::Shader { name: name.into(), msg: format!("constant {cname} declared twice") });
        }
        let eq = out[start..].find('=').map(|i| start + i);
        let semi = out[start..].find(';').map(|i| start + i);
        let (Some(eq), Some(semi)) = (eq, semi) else {
            return Err(Error::Shader { name: name.into(), msg: format!("constant {cname} has no value") });
        };
        if eq > semi {
            return Err(Error::Shader { name: name.into(), msg: format!("constant {cname} has no value") });
        }
        out.replace_range(eq + 1..semi, &format!(" {}", value.wgsl()));
    }
    Ok(out)
}

/// Compiled pipelines, made once per key.
#[derive(Default)]
pub struct PipelineCache {
    pipelines: HashMap<KernelKey, wgpu::ComputePipeline>,
}

impl PipelineCache {
    /// Returns the pipeline for `key`, compiling it on first use.
    pub fn get(&mut self, device: &wgpu::Device, key: &KernelKey) -> Result<wgpu::ComputePipeline> {
        if let Some(p) = self.pipelines.get(key) {
            return Ok(p.clone());
        }
        let src = specialize(key.shader, &source(key.shader)?, &key.consts)?;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(key.shader),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(key.shader),
            layout: None,
            module: &module,
            entry_point: Some(key.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        self.pipelines.insert(key.clone(), pipeline.clone());
        Ok(pipeline)
    }

    /// Number of distinct pipelines compiled so far.
    pub fn len(&self) -> usize {
        self.pipelines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn specialize_replaces_only_named_values() -> crate::Result<()> {
        let src = "const TM: u32 = 8u;\nconst EPS: f32 = 1e-5;\nfn f() {}";
        let out = specialize("t", src, &[("TM", Const::U32(4)), ("EPS", Const::f32(1e-6))])?;
        assert!(out.contains("const TM: u32 = 4u;"));
        assert!(out.contains("const EPS: f32 = 1e-6;"), "{out}");
        assert!(specialize("t", src, &[("NOPE", Const::U32(1))]).is_err());
        Ok(())
    }
}
