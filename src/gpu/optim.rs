//! Optimizer steps as kernels (`optim.wgsl`, `grad.wgsl`), recorded after a
//! training graph's forward and backward passes in the same submit.
//! Parameters are updated in place in the executable's buffers (f32 master
//! weights); moment buffers live here. Hyperparameters (learning rate, bias
//! corrections) go through uniforms, so a schedule never recompiles.
//!
//! Optional stages, all on the GPU: gradient accumulation over micro-batches
//! (a running sum per parameter) and clipping by global norm (one sum of
//! squares per tensor, then one factor every update multiplies by).

// The web build trains nothing and caches no pipelines on disk: the optimizer, the
// training entry points and the disk cache are native-only there.
#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

use super::buffers::{read_buffer, storage, Owned};
use super::exec::Executable;
use super::kernels::{KernelKey, PipelineCache};
use super::Context;
use crate::error::{Error, Result};
use crate::graph::{Dispatch, TensorId};

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptKind {
    /// torch.optim.AdamW: decoupled weight decay.
    AdamW {
        /// Decay rate of the first moment (torch's `betas[0]`, default 0.9).
        beta1: f32,
        /// Decay rate of the second moment (torch's `betas[1]`, default 0.999).
        beta2: f32,
        /// Added to the denominator's square root (torch's `eps`, default 1e-8).
        eps: f32,
    },
    /// torch.optim.SGD with momentum (weight decay added to the gradient);
    /// `nesterov` as torch's flag (timm's `sgd` is Nesterov, `momentum` is not).
    Sgd {
        /// Momentum factor (torch's `momentum`; timm's `--momentum`, default 0.9).
        momentum: f32,
        /// Nesterov momentum (torch's `nesterov`).
        nesterov: bool,
    },
}

/// Optimizer settings beyond the update rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptSettings {
    /// The update rule and its coefficients.
    pub kind: OptKind,
    /// Weight decay (timm's `--weight-decay`): decoupled for AdamW, added to
    /// the gradient for SGD; applied only to parameters with [`OptParam::decay`].
    pub weight_decay: f32,
    /// Clip gradients to this global L2 norm (torch's `clip_grad_norm_`).
    pub clip_grad: Option<f32>,
    /// Sum gradients over micro-batches before each update.
    pub accumulate: bool,
    /// Learning-rate multiplier of the [`OptParam::backbone`] group (1: none).
    pub backbone_lr_scale: f32,
}

impl OptSettings {
    /// AdamW with torch's default betas / eps, no clipping or accumulation.
    pub fn adamw(weight_decay: f32) -> Self {
        OptSettings {
            kind: OptKind::AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
            weight_decay,
            clip_grad: None,
            accumulate: false,
            backbone_lr_scale: 1.0,
        }
    }
}

/// A parameter the optimizer updates: its tensor, the index of its gradient
/// among the graph's kept tensors, and whether weight decay applies.
#[derive(Debug, Clone, Copy)]
pub struct OptParam {
    /// The parameter tensor, updated in place in the executable's buffer.
    pub param: TensorId,
    /// Index of its gradient among the graph's kept tensors (`Graph::keep` order).
    pub grad: usize,
    /// Whether weight decay applies (timm's rule, see `ModelConfig::decays`).
    pub decay: bool,
    /// Whether it belongs to the backbone group, trained at
    /// [`OptSettings::backbone_lr_scale`] times the rate, or not at all while
    /// [`Optimizer::set_backbone_frozen`] (DynamicViT's recipe: everything but the
    /// new predictors). False for every parameter of the other families.
    pub backbone: bool,
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
    pad: f32,
}

type Groups = Vec<(wgpu::BindGroup, [u32; 3])>;

struct Accumulate {
    pipeline: wgpu::ComputePipeline,
    groups: Groups,
    /// (this micro-batch's gradient, running sum)
    copies: Vec<(wgpu::Buffer, wgpu::Buffer)>,
}

struct Clip {
    sumsq: wgpu::ComputePipeline,
    sumsq_groups: Vec<wgpu::BindGroup>,
    factor: wgpu::ComputePipeline,
    factor_group: wgpu::BindGroup,
}

/// Optimizer state on the GPU for one executable.
pub struct Optimizer {
    settings: OptSettings,
    pipeline: wgpu::ComputePipeline,
    steps: Groups,
    accumulate: Option<Accumulate>,
    clip: Option<Clip>,
    /// [clip factor, global norm]
    scale: wgpu::Buffer,
    /// One uniform per (backbone group, weight decay applies) pair in use.
    hypers: Vec<(bool, bool, wgpu::Buffer)>,
    /// The backbone group is not updated (its rate is 0) while set.
    backbone_frozen: bool,
    /// Moment buffers (m, v) per parameter, in `params` order (v is a
    /// placeholder for SGD), and each parameter's length.
    state: Vec<(wgpu::Buffer, wgpu::Buffer, usize)>,
    /// Steps taken so far.
    pub t: u32,
    /// Every buffer this optimizer made (the fields above hold clones), destroyed with it.
    _owned: Vec<Owned>,
}

fn bind(dev: &wgpu::Device, layout: &wgpu::BindGroupLayout, label: &str, entries: &[(u32, &wgpu::Buffer)]) -> wgpu::BindGroup {
    let entries = entries.iter().map(|(i, b)| wgpu::BindGroupEntry { binding: *i, resource: b.as_entire_binding() }).collect::<Vec<_>>();
    dev.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(label), layout, entries: &entries })
}

fn uniform(ctx: &Context, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    let b = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.len().max(16) as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&b, 0, bytes);
    b
}

impl Optimizer {
    /// Builds the update (and, per `settings`, accumulation and clipping)
    /// pipelines and bind groups for `params` of `exe`, with zeroed moment
    /// buffers. Errors: a non-positive or non-finite clipping norm
    /// ([`Error::Config`]), a tensor that is not a parameter or a gradient
    /// index that is not kept ([`Error::Input`]), a kernel that fails to build
    /// ([`Error::Shader`]) or a wgpu error ([`Error::Gpu`]).
    pub fn new(ctx: &Context, cache: &mut PipelineCache, exe: &Executable, params: &[OptParam], settings: OptSettings) -> Result<Self> {
        let dev = &ctx.device;
        let mode = match settings.kind {
            OptKind::AdamW { .. } => 0,
            OptKind::Sgd { nesterov: false, .. } => 1,
            OptKind::Sgd { nesterov: true, .. } => 2,
        };
        let key = KernelKey::new("optim", "main").u("MODE", mode);
        let pipeline = cache.get(dev, &key)?;
        let layout = pipeline.get_bind_group_layout(0);
        let hyper_size = [0u8; std::mem::size_of::<Hyper>()];
        let mut hypers: Vec<(bool, bool, wgpu::Buffer)> = Vec::new();
        let scale = storage(dev, "clip factor", 8);
        let mut owned = vec![Owned::new(scale.clone())];
        ctx.queue.write_buffer(&scale, 0, bytemuck::cast_slice(&[1f32, 0.0, 0.0, 0.0]));

        let acc_key = KernelKey::new("grad", "accumulate");
        let acc_pipeline = if settings.accumulate { Some(cache.get(dev, &acc_key)?) } else { None };
        let mut accumulate = acc_pipeline.map(|pipeline| Accumulate { pipeline, groups: Vec::new(), copies: Vec::new() });
        let mut clip_state = match settings.clip_grad {
            Some(max) if !(max > 0.0 && max.is_finite()) => {
                return Err(Error::Config(format!("gradient clipping norm must be a positive number, got {max}")))
            }
            Some(max) => {
                let sumsq = cache.get(dev, &KernelKey::new("grad", "sumsq"))?;
                let factor = cache.get(dev, &KernelKey::new("grad", "factor"))?;
                let partial = storage(dev, "grad norms", params.len() as u64 * 4);
                ctx.queue.write_buffer(&partial, 0, &vec![0u8; partial.size() as usize]);
                let limit = uniform(ctx, "clip norm", bytemuck::cast_slice(&[max, 0.0, 0.0, 0.0]));
                owned.extend([Owned::new(partial.clone()), Owned::new(limit.clone())]);
                let factor_group = bind(dev, &factor.get_bind_group_layout(0), "clip factor", &[(3, &partial), (5, &scale), (6, &limit)]);
                Some((Clip { sumsq, sumsq_groups: Vec::new(), factor, factor_group }, partial))
            }
            None => None,
        };
        let mut steps = Vec::new();
        let mut state = Vec::new();
        for (k, p) in params.iter().enumerate() {
            let pb = exe.param_buffer(p.param).ok_or_else(|| Error::Input(format!("tensor {} is not a parameter", p.param)))?;
            let grad = exe.kept_buffer(p.grad).ok_or_else(|| Error::Input(format!("no kept gradient {}", p.grad)))?;
            let n = (pb.size() / 4) as usize;
            // With accumulation, the update reads the running sum.
            let gb = match &mut accumulate {
                Some(a) => {
                    let sum = storage(dev, "accumulated gradient", pb.size());
                    owned.push(Owned::new(sum.clone()));
                    let bg = bind(dev, &a.pipeline.get_bind_group_layout(0), "accumulate", &[(0, grad), (1, &sum)]);
                    a.groups.push((bg, Dispatch::linear(acc_key.clone(), n)?.workgroups));
                    a.copies.push((grad.clone(), sum.clone()));
                    sum
                }
                None => grad.clone(),
            };
            if let Some((c, partial)) = &mut clip_state {
                let idx = uniform(ctx, "tensor index", bytemuck::cast_slice(&[k as u32, 0, 0, 0]));
                owned.push(Owned::new(idx.clone()));
                c.sumsq_groups.push(bind(dev, &c.sumsq.get_bind_group_layout(0), "sumsq", &[(0, &gb), (2, pb), (3, partial), (4, &idx)]));
            }
            let m = zeroed(ctx, pb.size());
            let v = if mode == 0 { zeroed(ctx, pb.size()) } else { zeroed(ctx, 16) };
            owned.extend([Owned::new(m.clone()), Owned::new(v.clone())]);
            let at = match hypers.iter().position(|(b, d, _)| *b == p.backbone && *d == p.decay) {
                Some(i) => i,
                None => {
                    let h = uniform(ctx, "hyperparameters", &hyper_size);
                    owned.push(Owned::new(h.clone()));
                    hypers.push((p.backbone, p.decay, h));
                    hypers.len() - 1
                }
            };
            let bg = bind(dev, &layout, "optim", &[(0, &gb), (1, pb), (2, &m), (3, &v), (4, &hypers[at].2), (5, &scale)]);
            steps.push((bg, Dispatch::linear(key.clone(), n)?.workgroups));
            state.push((m, v, n));
        }
        ctx.check_errors("building the optimizer")?;
        let clip = clip_state.map(|(c, _)| c);
        Ok(Optimizer { settings, pipeline, steps, accumulate, clip, scale, hypers, backbone_frozen: false, state, t: 0, _owned: owned })
    }

    /// Freezes (rate 0; the moments still update, as a zero-rate group does in
    /// torch) or thaws the [`OptParam::backbone`] group from the next step on.
    pub fn set_backbone_frozen(&mut self, frozen: bool) {
        self.backbone_frozen = frozen;
    }

    /// Advances the step count and writes this step's hyperparameters.
    pub fn prepare(&mut self, ctx: &Context, lr: f32) {
        self.t += 1;
        let (b1, b2, eps, bc1, bc2) = match self.settings.kind {
            OptKind::AdamW { beta1, beta2, eps } => (beta1, beta2, eps, 1.0 - beta1.powi(self.t as i32), 1.0 - beta2.powi(self.t as i32)),
            OptKind::Sgd { momentum, .. } => (momentum, 0.0, 0.0, 1.0, 1.0),
        };
        for (backbone, decay, buf) in &self.hypers {
            let wd = if *decay { self.settings.weight_decay } else { 0.0 };
            let lr = match (*backbone, self.backbone_frozen) {
                (false, _) => lr,
                (true, false) => lr * self.settings.backbone_lr_scale,
                (true, true) => 0.0,
            };
            let h = Hyper { lr, wd, b1, b2, eps, bc1, bc2, pad: 0.0 };
            ctx.queue.write_buffer(buf, 0, bytemuck::bytes_of(&h));
        }
    }

    /// Adds this micro-batch's gradients to the running sums (`first`: start
    /// new sums). No-op without accumulation.
    pub(crate) fn record_accumulate(&self, enc: &mut wgpu::CommandEncoder, first: bool) {
        let Some(a) = &self.accumulate else { return };
        if first {
            for (g, sum) in &a.copies {
                enc.copy_buffer_to_buffer(g, 0, sum, 0, Some(sum.size()));
            }
            return;
        }
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("accumulate"), timestamp_writes: None });
        pass.set_pipeline(&a.pipeline);
        for (bg, w) in &a.groups {
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(w[0], w[1], w[2]);
        }
    }

    /// Records the clipping factor (when clipping) and the update of every parameter.
    pub(crate) fn record(&self, enc: &mut wgpu::CommandEncoder) {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("optimizer"), timestamp_writes: None });
        if let Some(c) = &self.clip {
            pass.set_pipeline(&c.sumsq);
            for bg in &c.sumsq_groups {
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(1, 1, 1);
            }
            pass.set_pipeline(&c.factor);
            pass.set_bind_group(0, &c.factor_group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        pass.set_pipeline(&self.pipeline);
        for (bg, w) in &self.steps {
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(w[0], w[1], w[2]);
        }
    }

    /// The global gradient norm of the last clipped update (0 without clipping).
    pub async fn last_grad_norm(&self, ctx: &Context) -> Result<f32> {
        Ok(read_buffer(&ctx.device, &ctx.queue, &self.scale, 2).await?[1])
    }

    /// Whether it was built to accumulate micro-batches (`OptSettings::accumulate`).
    pub fn accumulates(&self) -> bool {
        self.accumulate.is_some()
    }

    /// Whether the update rule is AdamW (two moment buffers per tensor).
    pub fn is_adam(&self) -> bool {
        matches!(self.settings.kind, OptKind::AdamW { .. })
    }

    /// Number of parameter tensors updated.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether no parameter is updated.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// The moment buffers, per parameter: `m` and (AdamW) `v`.
    pub async fn read_state(&self, ctx: &Context) -> Result<Vec<Vec<Vec<f32>>>> {
        let adam = self.is_adam();
        let mut out = Vec::with_capacity(self.state.len());
        for (m, v, n) in &self.state {
            let mut bufs = vec![read_buffer(&ctx.device, &ctx.queue, m, *n).await?];
            if adam {
                bufs.push(read_buffer(&ctx.device, &ctx.queue, v, *n).await?);
            }
            out.push(bufs);
        }
        Ok(out)
    }

    /// Restores what [`Optimizer::read_state`] returned and the step count.
    pub fn write_state(&mut self, ctx: &Context, state: &[Vec<Vec<f32>>], t: u32) -> Result<()> {
        let adam = self.is_adam();
        if state.len() != self.state.len() {
            return Err(Error::Input(format!("optimizer state has {} tensors, expected {}", state.len(), self.state.len())));
        }
        for (i, ((m, v, n), s)) in self.state.iter().zip(state).enumerate() {
            let want = if adam { 2 } else { 1 };
            if s.len() != want || s.iter().any(|x| x.len() != *n) {
                return Err(Error::Input(format!("optimizer state of tensor {i} does not match its parameter ({n} values)")));
            }
            ctx.queue.write_buffer(m, 0, bytemuck::cast_slice(&s[0]));
            if adam {
                ctx.queue.write_buffer(v, 0, bytemuck::cast_slice(&s[1]));
            }
        }
        self.t = t;
        Ok(())
    }
}

fn zeroed(ctx: &Context, bytes: u64) -> wgpu::Buffer {
    let b = storage(&ctx.device, "optimizer state", bytes);
    ctx.queue.write_buffer(&b, 0, &vec![0u8; b.size() as usize]);
    b
}
