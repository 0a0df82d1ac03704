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
    ("matmul_scalar", &[GELU, MATMUL_IO, include_str!("../../shaders/matmul_scalar.wgsl"), EPILOGUE]),
    ("layernorm", &[include_str!("../../shaders/layernorm.wgsl")]),
    ("attention", &[include_str!("../../shaders/attention.wgsl")]),
    ("heads", &[include_str!("../../shaders/heads.wgsl")]),
    ("softmax", &[include_str!("../../shaders/softmax.wgsl")]),
    ("im2col", &[include_str!("../../shaders/im2col.wgsl")]),
    ("tokens", &[include_str!("../../shaders/tokens.wgsl")]),
    ("pool", &[include_str!("../../shaders/pool.wgsl")]),
    ("token_pool", &[include_str!("../../shaders/token_pool.wgsl")]),
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
    /// A `u32` constant.
    U32(u32),
    /// An `f32` constant, by its bits (so that keys hash and compare exactly).
    F32Bits(u32),
}

impl Const {
    /// An `f32` constant.
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
    /// Shader name in [`SHADERS`].
    pub shader: &'static str,
    /// Entry point.
    pub entry: &'static str,
    /// Constants replaced in the source, in order.
    pub consts: Vec<(&'static str, Const)>,
}

impl KernelKey {
    /// A key without constants.
    pub fn new(shader: &'static str, entry: &'static str) -> Self {
        KernelKey { shader, entry, consts: Vec::new() }
    }
    /// Adds a constant.
    pub fn with(mut self, name: &'static str, value: Const) -> Self {
        self.consts.push((name, value));
        self
    }
    /// Adds a `u32` constant.
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
        let start = hits.next().ok_or_else(|| Error::Shader { name: name.into(), msg: format!("constant {cname} is not declared") })?;
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

/// Compiled pipelines, made once per key, backed (on backends that support
/// it: Vulkan) by a driver pipeline cache persisted on disk; see [`DiskCache`].
#[derive(Default)]
pub struct PipelineCache {
    pipelines: HashMap<KernelKey, wgpu::ComputePipeline>,
    disk: Option<DiskCache>,
}

/// Compiles one pipeline.
fn compile(device: &wgpu::Device, key: &KernelKey, cache: Option<&wgpu::PipelineCache>) -> Result<wgpu::ComputePipeline> {
    #[cfg(not(target_arch = "wasm32"))]
    let t = std::time::Instant::now();
    let src = specialize(key.shader, &source(key.shader)?, &key.consts)?;
    let module =
        device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(key.shader), source: wgpu::ShaderSource::Wgsl(src.into()) });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(key.shader),
        layout: None,
        module: &module,
        entry_point: Some(key.entry),
        compilation_options: Default::default(),
        cache,
    });
    #[cfg(not(target_arch = "wasm32"))]
    log::debug!("pipeline {}:{} {:?} created in {:.1} ms", key.shader, key.entry, key.consts, t.elapsed().as_secs_f64() * 1e3);
    Ok(pipeline)
}

impl PipelineCache {
    /// A cache persisted in `dir` (created if needed) when the device supports
    /// driver pipeline caches; an in-memory one otherwise.
    pub fn with_disk(ctx: &super::Context, dir: Option<&std::path::Path>) -> Self {
        PipelineCache { pipelines: HashMap::new(), disk: dir.and_then(|d| DiskCache::open(ctx, d)) }
    }

    /// Returns the pipeline for `key`, compiling it on first use.
    pub fn get(&mut self, device: &wgpu::Device, key: &KernelKey) -> Result<wgpu::ComputePipeline> {
        if let Some(p) = self.pipelines.get(key) {
            return Ok(p.clone());
        }
        let pipeline = compile(device, key, self.disk.as_ref().map(|d| &d.cache))?;
        self.pipelines.insert(key.clone(), pipeline.clone());
        Ok(pipeline)
    }

    /// Compiles every pipeline of `keys` not compiled yet: on native targets on
    /// several threads (drivers that compile at creation run them in parallel),
    /// then saves the disk cache if anything was added.
    pub fn prepare(&mut self, device: &wgpu::Device, keys: &[&KernelKey]) -> Result<()> {
        let mut missing: Vec<&KernelKey> = Vec::new();
        for &k in keys {
            if !self.pipelines.contains_key(k) && !missing.contains(&k) {
                missing.push(k);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let cache = self.disk.as_ref().map(|d| &d.cache);
        let compiled = compile_all(device, &missing, cache)?;
        for (k, p) in missing.into_iter().zip(compiled) {
            self.pipelines.insert(k.clone(), p);
        }
        if let Some(d) = &self.disk {
            d.save();
        }
        Ok(())
    }

    /// Number of distinct pipelines compiled so far.
    pub fn len(&self) -> usize {
        self.pipelines.len()
    }

    /// No pipeline compiled yet.
    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn compile_all(device: &wgpu::Device, keys: &[&KernelKey], cache: Option<&wgpu::PipelineCache>) -> Result<Vec<wgpu::ComputePipeline>> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(keys.len()).max(1);
    let chunk = keys.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|k| compile(device, k, cache)).collect::<Result<Vec<_>>>()))
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for h in handles {
            let part = h.join().map_err(|_| Error::Gpu("a pipeline compile thread panicked".into()))??;
            out.extend(part);
        }
        Ok(out)
    })
}

#[cfg(target_arch = "wasm32")]
fn compile_all(device: &wgpu::Device, keys: &[&KernelKey], cache: Option<&wgpu::PipelineCache>) -> Result<Vec<wgpu::ComputePipeline>> {
    keys.iter().map(|k| compile(device, k, cache)).collect()
}

/// A driver pipeline cache (`Features::PIPELINE_CACHE`, Vulkan) kept in one
/// file per adapter and driver. The file is `MAGIC`, an FNV-1a checksum of the
/// payload, then wgpu's data (whose own header names the backend, device and
/// driver): a corrupt, truncated or foreign file is ignored and replaced, and
/// writes are atomic (temporary file + rename).
pub struct DiskCache {
    cache: wgpu::PipelineCache,
    path: std::path::PathBuf,
}

const MAGIC: &[u8; 8] = b"VTRNPC01";

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

impl DiskCache {
    #[cfg(not(target_arch = "wasm32"))]
    fn open(ctx: &super::Context, dir: &std::path::Path) -> Option<Self> {
        if !ctx.has(wgpu::Features::PIPELINE_CACHE) {
            return None;
        }
        let key = wgpu::util::pipeline_cache_key(&ctx.info)?;
        // The driver version is in the name too: an updated driver starts a new file.
        let driver: String = ctx.info.driver_info.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let path = dir.join(format!("{key}_{}.bin", fnv1a(driver.as_bytes())));
        let data = std::fs::read(&path).ok().and_then(|bytes| {
            let (head, payload) = (bytes.get(..16)?, bytes.get(16..)?);
            let sum = u64::from_le_bytes(head[8..16].try_into().ok()?);
            (&head[..8] == MAGIC && sum == fnv1a(payload)).then(|| payload.to_vec()).or_else(|| {
                log::warn!("{}: not a valid pipeline cache; starting a new one", path.display());
                None
            })
        });
        // SAFETY: the data was written by `save` from this adapter's cache
        // (checksum verified) and wgpu validates its header against the
        // adapter and driver; with `fallback` an invalid cache starts empty.
        let cache = unsafe {
            ctx.device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("vitrine"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        log::info!("pipeline cache: {} ({})", path.display(), if data.is_some() { "loaded" } else { "new" });
        Some(DiskCache { cache, path })
    }

    #[cfg(target_arch = "wasm32")]
    fn open(_ctx: &super::Context, _dir: &std::path::Path) -> Option<Self> {
        None
    }

    /// Writes the cache's current data, atomically; failures are logged, never fatal.
    fn save(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let Some(data) = self.cache.get_data() else { return };
            let mut bytes = Vec::with_capacity(data.len() + 16);
            bytes.extend_from_slice(MAGIC);
            bytes.extend_from_slice(&fnv1a(&data).to_le_bytes());
            bytes.extend_from_slice(&data);
            let write = || -> std::io::Result<()> {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = self.path.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, &bytes)?;
                std::fs::rename(&tmp, &self.path)
            };
            if let Err(e) = write() {
                log::warn!("{}: cannot save the pipeline cache: {e}", self.path.display());
            }
        }
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
