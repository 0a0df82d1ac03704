//! Engine: a GPU context plus its pipeline cache; compiles graphs into executables.

use crate::error::Result;
use crate::gpu::context::AdapterOptions;
use crate::gpu::{Context, Executable, PipelineCache};
use crate::graph::{plan::plan_with, DeviceCaps, Graph, MatmulKind};
use std::collections::HashMap;
use std::path::PathBuf;

/// How an [`Engine`] opens its GPU and where it keeps compiled pipelines.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Which adapter to open.
    pub adapter: AdapterOptions,
    /// Folder of the persistent driver pipeline cache (Vulkan), `None` for
    /// none. [`EngineOptions::from_env`] picks the user's cache folder.
    pub pipeline_cache_dir: Option<PathBuf>,
    /// Forces a matmul kernel (`None`: the best for the adapter).
    pub matmul: Option<MatmulKind>,
}

impl EngineOptions {
    /// The defaults, with the environment's say: wgpu's `WGPU_BACKEND`,
    /// `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`; `VITRINE_CACHE_DIR` (empty:
    /// no disk cache; unset: `$XDG_CACHE_HOME/vitrine` or `~/.cache/vitrine`).
    pub fn from_env() -> Self {
        EngineOptions { adapter: AdapterOptions::from_env(), pipeline_cache_dir: default_cache_dir(), matmul: None }
    }
}

/// The user's cache folder for vitrine (native only).
fn default_cache_dir() -> Option<PathBuf> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        if let Some(d) = std::env::var_os("VITRINE_CACHE_DIR") {
            return (!d.is_empty()).then(|| PathBuf::from(d));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("vitrine"))
    }
    #[cfg(target_arch = "wasm32")]
    None
}

/// A GPU device and the pipelines compiled on it: what compiles graphs into
/// [`Executable`]s. Open one per process and reuse it for every model.
pub struct Engine {
    /// The GPU context (adapter facts, device, queue).
    pub ctx: Context,
    cache: PipelineCache,
    matmul: Option<MatmulKind>,
    /// Measured matmul choices (`vitrine tune`) and the file they live in.
    tuning: Option<std::sync::Arc<crate::tune::Choices>>,
    tune_path: Option<PathBuf>,
}

impl Engine {
    /// Opens the default adapter, honouring the environment ([`EngineOptions::from_env`]).
    pub async fn new() -> Result<Self> {
        Self::with_options(EngineOptions::from_env()).await
    }

    /// Opens the adapter `opts` asks for.
    pub async fn with_options(opts: EngineOptions) -> Result<Self> {
        let ctx = Context::with_options(&opts.adapter).await?;
        let mut engine = Self::from_context(ctx, &opts);
        engine.force_matmul(opts.matmul)?;
        Ok(engine)
    }

    /// An engine on a device the application already owns (its features and
    /// limits decide which kernels run; see [`Context::from_device`]). The
    /// pipeline cache folder comes from the environment as for [`Engine::new`].
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        Self::from_context(Context::from_device(device, queue), &EngineOptions::from_env())
    }

    fn from_context(ctx: Context, opts: &EngineOptions) -> Self {
        let cache = PipelineCache::with_disk(&ctx, opts.pipeline_cache_dir.as_deref());
        let tune_path = if cfg!(target_arch = "wasm32") {
            None
        } else {
            opts.pipeline_cache_dir.as_deref().map(|d| crate::tune::path(d, ctx.adapter()))
        };
        let mut engine = Engine { ctx, cache, matmul: None, tuning: None, tune_path };
        match engine.tune_path.as_deref().map(crate::tune::load).transpose() {
            Ok(Some(Some(file))) => engine.set_tuning(&file),
            Ok(_) => {}
            // Like a corrupt pipeline cache: warned about and ignored (`vitrine tune` rewrites it).
            Err(e) => log::warn!("{e}; using the rule-based matmul choice"),
        }
        engine
    }

    /// Uses the measured matmul choices of `file` (those this adapter can run).
    pub fn set_tuning(&mut self, file: &crate::tune::TuneFile) {
        let choices = file.choices(&self.matmul_variants());
        self.tuning = (!choices.is_empty()).then(|| std::sync::Arc::new(choices));
    }

    /// Where this adapter's measured choices are stored (next to the pipeline
    /// cache; `None` without a cache folder).
    pub fn tune_path(&self) -> Option<&std::path::Path> {
        self.tune_path.as_deref()
    }

    /// The measured choices in use: shapes stored, or 0 (the rule decides).
    pub fn tuned_shapes(&self) -> usize {
        if self.caps().tuned.is_some() {
            self.tuning.as_ref().map_or(0, |t| t.len())
        } else {
            0
        }
    }

    /// Blocking [`Engine::new`] for native code.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Self> {
        pollster::block_on(Self::new())
    }

    /// The GPU context (adapter facts, device, queue).
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Number of distinct compute pipelines compiled so far.
    pub fn pipeline_count(&self) -> usize {
        self.cache.len()
    }

    /// Forces a matmul variant (benchmarks, tests); `None` restores the per-adapter choice.
    /// Fails if the adapter cannot run the requested variant.
    pub fn force_matmul(&mut self, kind: Option<MatmulKind>) -> Result<()> {
        if kind == Some(MatmulKind::Subgroup) && !self.ctx.supports_subgroup_matmul() {
            return Err(crate::Error::Gpu("the subgroup matmul needs SUBGROUP with 8-lane subgroups".into()));
        }
        self.matmul = kind;
        Ok(())
    }

    /// The matmul variants this adapter can run (the subgroup one needs SUBGROUP, size 8).
    pub fn matmul_variants(&self) -> Vec<MatmulKind> {
        let mut v = vec![MatmulKind::Register, MatmulKind::Tiled];
        if self.ctx.supports_subgroup_matmul() {
            v.push(MatmulKind::Subgroup);
        }
        v
    }

    /// The device facts plans are made for.
    pub fn caps(&self) -> DeviceCaps {
        let mut caps = self.ctx.caps();
        if let Some(k) = self.matmul {
            caps.matmul = k;
            caps.auto = false;
        }
        // A forced variant (force_matmul, VITRINE_MATMUL) overrides measured choices.
        if caps.auto {
            caps.tuned = self.tuning.clone();
        }
        caps
    }

    /// Plans `g` for this device, uploads its parameters from `weights`
    /// (checkpoint name -> f32 data) and builds pipelines and bind groups.
    pub fn compile(&mut self, g: &Graph, weights: &HashMap<String, Vec<f32>>) -> Result<Executable> {
        self.compile_with(g, weights, false)
    }

    /// Like [`Engine::compile`]; `per_op` times every op separately (profiling).
    pub fn compile_with(&mut self, g: &Graph, weights: &HashMap<String, Vec<f32>>, per_op: bool) -> Result<Executable> {
        let plan = plan_with(g, &self.caps(), per_op)?;
        let params = plan
            .params
            .iter()
            .map(|&t| Ok((t, g.param_data(t, weights)?, g.dtype(t) == crate::graph::DType::F16)))
            .collect::<Result<Vec<_>>>()?;
        let buffers = Executable::upload_params(&self.ctx, params);
        Executable::new(&self.ctx, &mut self.cache, plan, buffers)
    }

    /// Compiles `g` on the parameter buffers of `src` (compiled from `src_g`):
    /// both see the same weights, e.g. an evaluation graph beside a training
    /// one whose optimizer updates them. Parameters are matched by their names.
    pub fn compile_sharing(&mut self, g: &Graph, src_g: &Graph, src: &Executable) -> Result<Executable> {
        let plan = plan_with(g, &self.caps(), false)?;
        let mut buffers = HashMap::new();
        for &t in &plan.params {
            let parts = g.param_parts(t);
            let found = (0..src_g.tensors.len())
                .find(|&s| src_g.param_parts(s).is_some() && src_g.param_parts(s) == parts && src_g.dtype(s) == g.dtype(t));
            let buf = found
                .and_then(|s| src.param_owner(s))
                .ok_or_else(|| crate::Error::Input(format!("parameter {:?} is not in the source executable", parts.map(|p| &p[0].0))))?;
            buffers.insert(t, buf);
        }
        Executable::new(&self.ctx, &mut self.cache, plan, buffers)
    }

    /// An optimizer updating `exe`'s parameters from its kept gradients.
    pub fn optimizer(
        &mut self,
        exe: &Executable,
        params: &[crate::gpu::optim::OptParam],
        settings: crate::gpu::optim::OptSettings,
    ) -> Result<crate::gpu::optim::Optimizer> {
        crate::gpu::optim::Optimizer::new(&self.ctx, &mut self.cache, exe, params, settings)
    }

    /// Compiles and runs `g` once (tests, one-off use).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_once(&mut self, g: &Graph, weights: &HashMap<String, Vec<f32>>, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let exe = self.compile(g, weights)?;
        pollster::block_on(exe.run(&self.ctx, inputs))
    }
}
