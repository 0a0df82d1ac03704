//! Compiled pipelines: [`PipelineCache`] turns a [`KernelKey`] (see
//! `crate::kernel`) into a wgpu compute pipeline once, backed by the
//! driver's pipeline cache on disk ([`DiskCache`]).

// The web build trains nothing and caches no pipelines on disk: the optimizer, the
// training entry points and the disk cache are native-only there.
#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

use crate::error::{Error, Result};
use std::collections::HashMap;

pub use crate::kernel::{source, specialize, Const, KernelKey, SHADERS};

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

/// FNV-1a, 64 bits: file checksums and cache file names.
pub(crate) fn fnv1a(data: &[u8]) -> u64 {
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
