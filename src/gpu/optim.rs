//! Optimizer steps as kernels (`optim.wgsl`), recorded after a training
//! graph's forward and backward passes in the same submit. Parameters are
//! updated in place in the executable's buffers (f32 master weights); moment
//! buffers live here. Hyperparameters (learning rate, bias corrections,
//! clipping factor) go through uniforms, so a schedule never recompiles.

use super::buffers::storage;
use super::exec::Executable;
use super::kernels::{KernelKey, PipelineCache};
use super::Context;
use crate::error::{Error, Result};
use crate::graph::{Dispatch, TensorId};

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptKind {
    /// torch.optim.AdamW: decoupled weight decay.
    AdamW { beta1: f32, beta2: f32, eps: f32 },
    /// torch.optim.SGD with momentum (weight decay added to the gradient).
    Sgd { momentum: f32 },
}

/// A parameter the optimizer updates: its tensor, the index of its gradient
/// among the graph's kept tensors, and whether weight decay applies.
#[derive(Debug, Clone, Copy)]
pub struct OptParam {
    pub param: TensorId,
    pub grad: usize,
    pub decay: bool,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Hyper {
    lr: f32,
    wd: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    bc1: f32,
    bc2: f32,
    clip: f32,
}

/// Optimizer state on the GPU for one executable.
pub struct Optimizer {
    kind: OptKind,
    weight_decay: f32,
    pipeline: wgpu::ComputePipeline,
    steps: Vec<(wgpu::BindGroup, [u32; 3])>,
    hyper_decay: wgpu::Buffer,
    hyper_plain: wgpu::Buffer,
    /// Moment buffers (m, v) per parameter, in `params` order.
    state: Vec<(wgpu::Buffer, wgpu::Buffer)>,
    /// Steps taken so far.
    pub t: u32,
}

impl Optimizer {
    pub fn new(ctx: &Context, cache: &mut PipelineCache, exe: &Executable, params: &[OptParam], kind: OptKind, weight_decay: f32) -> Result<Self> {
        let dev = &ctx.device;
        let mode = match kind {
            OptKind::AdamW { .. } => 0,
            OptKind::Sgd { .. } => 1,
        };
        let key = KernelKey::new("optim", "main").u("MODE", mode);
        let pipeline = cache.get(dev, &key)?;
        let layout = pipeline.get_bind_group_layout(0);
        let uniform = |label| {
            dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: std::mem::size_of::<Hyper>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let (hyper_decay, hyper_plain) = (uniform("hyper decay"), uniform("hyper no decay"));
        let mut steps = Vec::new();
        let mut state = Vec::new();
        for p in params {
            let pb = exe.param_buffer(p.param).ok_or_else(|| Error::Input(format!("tensor {} is not a parameter", p.param)))?;
            let gb = exe.kept_buffer(p.grad).ok_or_else(|| Error::Input(format!("no kept gradient {}", p.grad)))?;
            let (m, v) = (zeroed(ctx, pb.size()), zeroed(ctx, pb.size()));
            let hyper = if p.decay { &hyper_decay } else { &hyper_plain };
            let entries = [gb, pb, &m, &v, hyper]
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
                .collect::<Vec<_>>();
            let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor { label: Some("optim"), layout: &layout, entries: &entries });
            let n = (pb.size() / 4) as usize;
            let d = Dispatch::linear(key.clone(), n)?;
            steps.push((bg, d.workgroups));
            state.push((m, v));
        }
        ctx.check_errors("building the optimizer")?;
        Ok(Optimizer { kind, weight_decay, pipeline, steps, hyper_decay, hyper_plain, state, t: 0 })
    }

    /// Advances the step count and writes this step's hyperparameters;
    /// `clip` scales every gradient (1 when clipping is off).
    pub fn prepare(&mut self, ctx: &Context, lr: f32, clip: f32) {
        self.t += 1;
        let (b1, b2, eps, bc1, bc2) = match self.kind {
            OptKind::AdamW { beta1, beta2, eps } => (beta1, beta2, eps, 1.0 - beta1.powi(self.t as i32), 1.0 - beta2.powi(self.t as i32)),
            OptKind::Sgd { momentum } => (momentum, 0.0, 0.0, 1.0, 1.0),
        };
        let h = |wd| Hyper { lr, wd, b1, b2, eps, bc1, bc2, clip };
        ctx.queue.write_buffer(&self.hyper_decay, 0, bytemuck::bytes_of(&h(self.weight_decay)));
        ctx.queue.write_buffer(&self.hyper_plain, 0, bytemuck::bytes_of(&h(0.0)));
    }

    /// Records the update of every parameter.
    pub(crate) fn record(&self, enc: &mut wgpu::CommandEncoder) {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("optimizer"), timestamp_writes: None });
        pass.set_pipeline(&self.pipeline);
        for (bg, w) in &self.steps {
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(w[0], w[1], w[2]);
        }
    }

    /// Number of parameter tensors updated.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }
}

fn zeroed(ctx: &Context, bytes: u64) -> wgpu::Buffer {
    let b = storage(&ctx.device, "optimizer state", bytes);
    ctx.queue.write_buffer(&b, 0, &vec![0u8; b.size() as usize]);
    b
}

/// Runs one training step: the executable's graph (forward + backward), then
/// the optimizer, in one submit; returns the graph's outputs (e.g. the loss).
pub async fn train_step(ctx: &Context, exe: &Executable, opt: &mut Optimizer, inputs: &[&[f32]], lr: f32) -> Result<Vec<Vec<f32>>> {
    opt.prepare(ctx, lr, 1.0);
    let o: &Optimizer = opt;
    exe.run_then(ctx, inputs, &|enc| o.record(enc)).await
}
