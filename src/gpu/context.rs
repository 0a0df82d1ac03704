//! Instance, adapter, device and queue: feature and limit negotiation.
//!
//! Honours wgpu's standard environment variables: `WGPU_BACKEND`
//! (vulkan, metal, dx12, gl, webgpu), `WGPU_ADAPTER_NAME` (substring of the
//! adapter name, case-insensitive) and `WGPU_POWER_PREF` (low, high, none).

// The web build trains nothing and caches no pipelines on disk: the optimizer, the
// training entry points and the disk cache are native-only there.
#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

use crate::error::{Error, Result};

/// Facts about the adapter the engine runs on, for logs, `inspect` and the demo page.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AdapterSummary {
    /// Adapter name as the driver reports it.
    pub name: String,
    /// wgpu backend: Vulkan, Metal, Dx12, Gl or BrowserWebGpu.
    pub backend: String,
    /// Driver name.
    pub driver: String,
    /// Driver version and details.
    pub driver_info: String,
    /// DiscreteGpu, IntegratedGpu, Cpu (software), VirtualGpu or Other.
    pub device_type: String,
    /// SHADER_F16 is enabled.
    pub shader_f16: bool,
    /// SUBGROUP is enabled.
    pub subgroups: bool,
    /// TIMESTAMP_QUERY is enabled (per-layer GPU times).
    pub timestamps: bool,
    /// Subgroup size range (min, max) the adapter reports.
    pub subgroup_size: (u32, u32),
}

/// A GPU device with the features vitrine asked for.
pub struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) features: wgpu::Features,
    pub(crate) limits: wgpu::Limits,
    pub(crate) summary: AdapterSummary,
    pub(crate) info: wgpu::AdapterInfo,
    /// wgpu errors not caught elsewhere, collected instead of panicking.
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Why the device was lost, once it is (set by wgpu's device-lost callback).
    lost: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// Features vitrine uses when the adapter offers them; none is required.
fn wanted_features() -> wgpu::Features {
    wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::PIPELINE_CACHE
}

/// How to pick the GPU: which backends, which adapter, what power preference.
/// [`AdapterOptions::from_env`] reads wgpu's standard environment variables.
#[derive(Debug, Clone, Default)]
pub struct AdapterOptions {
    /// Backends to consider (`None`: all the platform has).
    pub backends: Option<wgpu::Backends>,
    /// A case-insensitive substring of the adapter's name.
    pub adapter_name: Option<String>,
    /// Low-power or high-performance adapter (`None`: the platform's default).
    pub power_preference: Option<wgpu::PowerPreference>,
}

impl AdapterOptions {
    /// `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and `WGPU_POWER_PREF` where set.
    pub fn from_env() -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        {
            AdapterOptions {
                backends: wgpu::Backends::from_env(),
                adapter_name: std::env::var("WGPU_ADAPTER_NAME").ok(),
                power_preference: wgpu::PowerPreference::from_env(),
            }
        }
        #[cfg(target_arch = "wasm32")]
        AdapterOptions::default()
    }
}

impl Context {
    /// Opens the default adapter (or the one the environment names) and a device on it.
    pub async fn new() -> Result<Self> {
        Self::with_options(&AdapterOptions::from_env()).await
    }

    /// Opens the adapter `opts` selects and a device on it.
    pub async fn with_options(opts: &AdapterOptions) -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
        if let Some(b) = opts.backends {
            desc.backends = b;
        }
        let instance = wgpu::Instance::new(desc);
        let adapter = select_adapter(&instance, opts).await?;
        Self::from_adapter(adapter).await
    }

    /// Blocking version of [`Context::new`] for native code.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Self> {
        pollster::block_on(Self::new())
    }

    async fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let features = adapter.features() & wanted_features();
        // WebGPU's default limits, raised to what the adapter offers for the
        // few limits that decide which models fit.
        let alimits = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: alimits.max_storage_buffer_binding_size,
            max_buffer_size: alimits.max_buffer_size,
            max_storage_buffers_per_shader_stage: alimits.max_storage_buffers_per_shader_stage.min(10),
            ..wgpu::Limits::default()
        };
        let desc =
            wgpu::DeviceDescriptor { label: Some("vitrine"), required_features: features, required_limits: limits, ..Default::default() };
        let (device, queue) =
            adapter.request_device(&desc).await.map_err(|e| Error::Gpu(format!("cannot open a device on {:?}: {e}", info.name)))?;
        Ok(Self::from_device(device, queue))
    }

    /// Wraps a device an application already has. vitrine uses the optional
    /// features it finds enabled on it (SHADER_F16, SUBGROUP, TIMESTAMP_QUERY,
    /// PIPELINE_CACHE) and its limits; it installs an uncaptured-error
    /// handler on the device so that wgpu errors become [`Error::Gpu`] values.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let info = device.adapter_info();
        let features = device.features();
        let limits = device.limits();
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            device_type: format!("{:?}", info.device_type),
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            subgroup_size: (info.subgroup_min_size, info.subgroup_max_size),
        };
        log::info!(
            "adapter: {} ({}, driver {} {}), f16={} subgroups={} timestamps={}",
            summary.name,
            summary.backend,
            summary.driver,
            summary.driver_info,
            summary.shader_f16,
            summary.subgroups,
            summary.timestamps
        );
        let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(std::sync::Arc::new(move |e: wgpu::Error| {
            let msg = e.to_string();
            log::error!("wgpu: {msg}");
            if let Ok(mut v) = sink.lock() {
                // One line: wgpu's report spans several ("Validation Error", "Caused by: ...").
                let one: Vec<&str> = msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                v.push(one.join(" "));
            }
        }));
        let lost = std::sync::Arc::new(std::sync::Mutex::new(None));
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            log::error!("wgpu: device lost ({reason:?}): {msg}");
            if let Ok(mut l) = flag.lock() {
                *l = Some(format!("{reason:?}{}{msg}", if msg.is_empty() { "" } else { ": " }));
            }
        });
        Context { device, queue, features, limits, summary, info, errors, lost }
    }

    /// Why the GPU device was lost (destroyed, a driver reset), or `None` while it works:
    /// every later request fails, and only a new `Engine` recovers.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// `e`, or a device-lost error naming the reason when the device is gone (a failed
    /// readback or submit is only the symptom then).
    pub fn explain_error(&self, e: crate::Error) -> crate::Error {
        match self.lost() {
            Some(why) => crate::Error::Gpu(format!("the GPU device was lost ({why}); create a new engine")),
            None => e,
        }
    }

    /// What the engine runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// GPU buffers alive on the device and their bytes, as wgpu counts them (its `counters`
    /// feature; the leak checks read it). `None` where the backend keeps no count (the
    /// browser's WebGPU: the demo's worker counts there).
    pub fn live_buffers(&self) -> Option<(usize, u64)> {
        let c = self.device.get_internal_counters();
        let n = usize::try_from(c.hal.buffers.read()).ok().filter(|&n| n > 0)?;
        Some((n, u64::try_from(c.hal.buffer_memory.read()).unwrap_or(0)))
    }

    /// The device limits in force (WebGPU defaults, storage sizes from the adapter).
    pub fn max_storage_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size
    }

    /// The device keeps driver pipeline caches (`PIPELINE_CACHE`, Vulkan), so
    /// an engine's pipelines persist on disk (see `EngineOptions::pipeline_cache_dir`).
    pub fn has_pipeline_cache(&self) -> bool {
        self.has(wgpu::Features::PIPELINE_CACHE)
    }

    pub(crate) fn has(&self, f: wgpu::Features) -> bool {
        self.features.contains(f)
    }

    /// The subgroup matmul needs SUBGROUP and subgroups of exactly 8 lanes.
    pub fn supports_subgroup_matmul(&self) -> bool {
        self.summary.subgroups && self.summary.subgroup_size == (8, 8)
    }

    /// Fails with the first wgpu error raised since the last check, if any.
    pub(crate) fn check_errors(&self, during: &str) -> Result<()> {
        let mut v = match self.errors.lock() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        if v.is_empty() {
            return Ok(());
        }
        let first = v[0].clone();
        v.clear();
        Err(Error::Gpu(format!("{during}: {first}")))
    }

    /// Device facts for planning: matmul variant and binding size limit.
    /// `VITRINE_MATMUL=tiled|register|subgroup` overrides the per-adapter choice
    /// (subgroup only where the adapter allows it).
    pub fn caps(&self) -> crate::graph::DeviceCaps {
        use crate::graph::MatmulKind;
        let subgroup_ok = self.supports_subgroup_matmul();
        let auto = if self.summary.device_type != "Cpu" {
            MatmulKind::Tiled
        } else if subgroup_ok {
            MatmulKind::Subgroup
        } else {
            MatmulKind::Register
        };
        let forced = forced_matmul(subgroup_ok);
        crate::graph::DeviceCaps {
            matmul: forced.unwrap_or(auto),
            max_binding_bytes: self.max_storage_binding(),
            tuned: None,
            auto: forced.is_none(),
        }
    }
}

/// The kernel `VITRINE_MATMUL` names, where this adapter can run it; otherwise
/// `None` (the rule), with one warning per process (plans are made per graph).
#[cfg(not(target_arch = "wasm32"))]
fn forced_matmul(subgroup_ok: bool) -> Option<crate::graph::MatmulKind> {
    use crate::graph::MatmulKind;
    static WARNED: std::sync::Once = std::sync::Once::new();
    let v = std::env::var("VITRINE_MATMUL").ok().filter(|v| !v.is_empty())?;
    let why = match MatmulKind::parse(&v) {
        Some(MatmulKind::Subgroup) if !subgroup_ok => "this adapter has no 8-lane subgroups",
        Some(kind) => return Some(kind),
        None => "not tiled, register or subgroup",
    };
    WARNED.call_once(|| log::warn!("VITRINE_MATMUL={v:?}: {why}; using the rule"));
    None
}

/// The browser has no environment: always the rule.
#[cfg(target_arch = "wasm32")]
fn forced_matmul(_subgroup_ok: bool) -> Option<crate::graph::MatmulKind> {
    None
}

async fn select_adapter(instance: &wgpu::Instance, opts: &AdapterOptions) -> Result<wgpu::Adapter> {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(want) = &opts.adapter_name {
        let want = want.to_lowercase();
        let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&want)).ok_or_else(|| {
            Error::Gpu(format!(
                "WGPU_ADAPTER_NAME={want:?} matches no adapter (found: {})",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ))
        });
    }
    let opts = wgpu::RequestAdapterOptions { power_preference: opts.power_preference.unwrap_or_default(), ..Default::default() };
    instance.request_adapter(&opts).await.map_err(|e| {
        Error::Gpu(format!(
            "no GPU adapter found ({e}); install a Vulkan driver (Debian: apt-get install \
             mesa-vulkan-drivers) or set WGPU_BACKEND=gl"
        ))
    })
}
