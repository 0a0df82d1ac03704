//! Executable: a plan made real. Buffers, pipelines and bind groups are made
//! once here; a run writes the inputs, records one compute pass per layer
//! (scope), submits once and reads the outputs back asynchronously.

// The web build trains nothing and caches no pipelines on disk: the optimizer, the
// training entry points and the disk cache are native-only there.
#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

use super::buffers::{read_buffer, read_f32, staging, storage, upload, work_done, Owned};
use super::kernels::PipelineCache;
use super::Context;
use crate::error::{Error, Result};
use crate::graph::plan::{Binding, Plan};
use crate::graph::TensorId;
use std::collections::HashMap;
use std::sync::Arc;

struct Step {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
    scope: usize,
}

struct Timer {
    queries: wgpu::QuerySet,
    resolve: Owned,
    read: Owned,
    period_ns: f64,
}

/// GPU time of one layer, from timestamp queries.
#[derive(Debug, Clone)]
pub struct LayerTime {
    /// Layer (scope) name, or `scope/op` when timed per op.
    pub scope: String,
    /// Milliseconds of GPU time.
    pub ms: f64,
}

/// GPU time summed by op kind, from a per-op timed run (`scope/op` names):
/// (kind, ms, dispatches), slowest first.
pub fn by_op_kind(layers: &[LayerTime]) -> Vec<(String, f64, usize)> {
    let mut kinds: Vec<(String, f64, usize)> = Vec::new();
    for l in layers {
        let kind = l.scope.rsplit('/').next().unwrap_or("").to_string();
        match kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => {
                k.1 += l.ms;
                k.2 += 1;
            }
            None => kinds.push((kind, l.ms, 1)),
        }
    }
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    kinds
}

/// Every step's uniform block in one buffer, each at an offset the device accepts.
struct UniformBlocks {
    buffer: Option<Owned>,
    /// Per step: (offset, size) in bytes, or None for a kernel without uniforms.
    ranges: Vec<Option<(u64, u64)>>,
}

impl UniformBlocks {
    fn new(ctx: &Context, plan: &Plan) -> Self {
        let align = (ctx.device.limits().min_uniform_buffer_offset_alignment as usize).max(16);
        let mut bytes: Vec<u8> = Vec::new();
        let mut ranges = Vec::with_capacity(plan.steps.len());
        for step in &plan.steps {
            let u = &step.dispatch.uniforms;
            if u.is_empty() {
                ranges.push(None);
                continue;
            }
            bytes.resize(bytes.len().next_multiple_of(align), 0);
            let offset = bytes.len() as u64;
            bytes.extend_from_slice(bytemuck::cast_slice(u));
            // Uniform structs are sized in multiples of 16 bytes.
            bytes.resize(bytes.len().next_multiple_of(16), 0);
            ranges.push(Some((offset, bytes.len() as u64 - offset)));
        }
        let buffer = (!bytes.is_empty()).then(|| {
            use wgpu::util::DeviceExt;
            Owned::new(ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("uniforms"),
                contents: &bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            }))
        });
        UniformBlocks { buffer, ranges }
    }

    /// The binding of step `i`'s uniform block, if it has one.
    fn binding(&self, i: usize) -> Option<wgpu::BindingResource<'_>> {
        let (offset, size) = (*self.ranges.get(i)?)?;
        let buffer = &**self.buffer.as_ref()?;
        Some(wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer, offset, size: std::num::NonZeroU64::new(size) }))
    }
}

/// A planned graph on a device, ready to run many times.
pub struct Executable {
    plan: Plan,
    inputs: Vec<Owned>,
    outputs: Vec<(wgpu::Buffer, u64)>,
    readback: Vec<Owned>,
    steps: Vec<Step>,
    slots: Vec<Owned>,
    /// Shared with the executables compiled on this one's weights; destroyed with the last.
    params: HashMap<TensorId, Arc<Owned>>,
    kept: Vec<wgpu::Buffer>,
    timer: Option<Timer>,
    /// Bound where a step has no buffer of its own.
    _dummy: Owned,
    /// The steps' uniform blocks (their bind groups refer to it).
    _uniforms: UniformBlocks,
}

/// Work recorded after the graph's passes in the same submit (an optimizer step).
pub(crate) type Epilogue<'a> = &'a dyn Fn(&mut wgpu::CommandEncoder);

impl Executable {
    /// Uploads parameter data (tensor id -> values) into new buffers.
    // wgpu buffers are Send + Sync natively; on wasm32 they are not, and nothing there crosses threads.
    #[allow(clippy::arc_with_non_send_sync)]
    /// `f16` tensors are rounded to halves and packed two per u32.
    pub fn upload_params(ctx: &Context, params: Vec<(TensorId, Vec<f32>, bool)>) -> HashMap<TensorId, Arc<Owned>> {
        params
            .into_iter()
            .map(|(t, data, f16)| {
                let buf =
                    if f16 { super::buffers::upload_f16(&ctx.device, "param f16", &data) } else { upload(&ctx.device, "param", &data) };
                (t, Arc::new(Owned::new(buf)))
            })
            .collect()
    }

    /// Creates activation buffers, compiles pipelines and makes every bind
    /// group; `params` holds a buffer per parameter tensor of the plan (new
    /// ones from [`Executable::upload_params`], or another executable's to share weights).
    pub fn new(ctx: &Context, cache: &mut PipelineCache, plan: Plan, params: HashMap<TensorId, Arc<Owned>>) -> Result<Self> {
        let dev = &ctx.device;
        let slots: Vec<Owned> = plan.slots.iter().map(|&b| Owned::new(storage(dev, "activation", b))).collect();
        let inputs: Vec<Owned> = plan.inputs.iter().map(|&n| Owned::new(storage(dev, "input", n as u64 * 4))).collect();
        let dummy = Owned::new(storage(dev, "unused", 16));
        let buffer = |b: &Binding| -> Result<&wgpu::Buffer> {
            match b {
                Binding::Slot(s) => slots.get(*s).map(|o| &**o),
                Binding::Param(t) => params.get(t).map(|o| &***o),
                Binding::Input(i) => inputs.get(*i).map(|o| &**o),
                Binding::Dummy | Binding::Unused => Some(&*dummy),
            }
            .ok_or_else(|| Error::Gpu(format!("plan refers to a missing buffer {b:?}")))
        };
        let uniforms = UniformBlocks::new(ctx, &plan);
        // Compile every distinct pipeline first (in parallel where the platform allows).
        let keys: Vec<_> = plan.steps.iter().map(|s| &s.dispatch.key).collect();
        cache.prepare(dev, &keys)?;
        let mut steps = Vec::with_capacity(plan.steps.len());
        for (i, step) in plan.steps.iter().enumerate() {
            let pipeline = cache.get(dev, &step.dispatch.key)?;
            let layout = pipeline.get_bind_group_layout(0);
            let mut entries = step
                .bindings
                .iter()
                .enumerate()
                .filter(|(_, b)| **b != Binding::Unused)
                .map(|(i, b)| Ok(wgpu::BindGroupEntry { binding: i as u32, resource: buffer(b)?.as_entire_binding() }))
                .collect::<Result<Vec<_>>>()?;
            if let Some(resource) = uniforms.binding(i) {
                entries.push(wgpu::BindGroupEntry { binding: step.bindings.len() as u32, resource });
            }
            let bind_group = dev.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(step.op), layout: &layout, entries: &entries });
            steps.push(Step { pipeline, bind_group, workgroups: step.dispatch.workgroups, scope: step.scope });
        }
        let kept = plan.kept.iter().map(|b| Ok(buffer(b)?.clone())).collect::<Result<Vec<_>>>()?;
        let mut outputs = Vec::new();
        let mut readback = Vec::new();
        for (b, n) in &plan.outputs {
            outputs.push((buffer(b)?.clone(), *n as u64));
            readback.push(Owned::new(staging(dev, *n as u64 * 4)));
        }
        let timer = if ctx.has(wgpu::Features::TIMESTAMP_QUERY) && !plan.scopes.is_empty() {
            let count = (plan.scopes.len() * 2) as u32;
            Some(Timer {
                queries: dev.create_query_set(&wgpu::QuerySetDescriptor { label: Some("layers"), ty: wgpu::QueryType::Timestamp, count }),
                resolve: Owned::new(dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamps"),
                    size: count as u64 * 8,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                })),
                read: Owned::new(staging(dev, count as u64 * 8)),
                period_ns: ctx.queue.get_timestamp_period() as f64,
            })
        } else {
            None
        };
        ctx.check_errors("building the executable")?;
        Ok(Executable { plan, inputs, outputs, readback, steps, slots, params, kept, timer, _dummy: dummy, _uniforms: uniforms })
    }

    /// The plan this executable runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Bytes of GPU memory held (parameters, activations, inputs).
    pub fn gpu_bytes(&self) -> u64 {
        let sum = |v: &mut dyn Iterator<Item = &Owned>| v.map(|b| b.size()).sum::<u64>();
        sum(&mut self.params.values().map(|b| &**b)) + sum(&mut self.slots.iter()) + sum(&mut self.inputs.iter())
    }

    /// Runs once: writes `inputs`, records and submits, reads the outputs.
    pub async fn run(&self, ctx: &Context, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        Ok(self.run_inner(ctx, inputs, false).await?.0)
    }

    /// Like [`Executable::run`], also returning GPU time per layer when the
    /// adapter supports timestamp queries.
    pub async fn run_timed(&self, ctx: &Context, inputs: &[&[f32]]) -> Result<(Vec<Vec<f32>>, Option<Vec<LayerTime>>)> {
        self.run_inner(ctx, inputs, true).await
    }

    /// Like [`Executable::run`], also timing the stages with `clock` (ms):
    /// returns (outputs, GPU ms from submit to completion, readback ms).
    pub async fn run_staged(&self, ctx: &Context, inputs: &[&[f32]], clock: &dyn Fn() -> f64) -> Result<(Vec<Vec<f32>>, f64, f64)> {
        let mut marks = Vec::new();
        let outs = self.run_inner_with(ctx, inputs, false, None, Some((clock, &mut marks))).await?.0;
        let [t0, t1, t2] = marks[..] else { return Err(Error::Gpu("stage clock not called".into())) };
        Ok((outs, t1 - t0, t2 - t1))
    }

    /// Records every step into `enc`: one compute pass per layer (scope),
    /// timestamped when `timer` is given.
    fn record(&self, enc: &mut wgpu::CommandEncoder, timer: Option<&Timer>) {
        let mut i = 0;
        while i < self.steps.len() {
            let scope = self.steps[i].scope;
            let tw = timer.map(|t| wgpu::ComputePassTimestampWrites {
                query_set: &t.queries,
                beginning_of_pass_write_index: Some(scope as u32 * 2),
                end_of_pass_write_index: Some(scope as u32 * 2 + 1),
            });
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(&self.plan.scopes[scope]), timestamp_writes: tw });
            while i < self.steps.len() && self.steps[i].scope == scope {
                let s = &self.steps[i];
                pass.set_pipeline(&s.pipeline);
                pass.set_bind_group(0, &s.bind_group, &[]);
                pass.dispatch_workgroups(s.workgroups[0], s.workgroups[1], s.workgroups[2]);
                i += 1;
            }
        }
    }

    /// The records of a run without its input writes or readbacks (a stage of a `Program`).
    pub(crate) fn record_passes(&self, enc: &mut wgpu::CommandEncoder) {
        self.record(enc, None);
    }

    /// The GPU buffer the i-th graph input is written to, and its element count.
    pub(crate) fn input_buffer(&self, i: usize) -> Option<(&wgpu::Buffer, usize)> {
        Some((&**self.inputs.get(i)?, *self.plan.inputs.get(i)?))
    }

    /// The GPU buffer holding the i-th graph output after a run, and its element count.
    pub(crate) fn output_buffer(&self, i: usize) -> Option<(&wgpu::Buffer, usize)> {
        self.outputs.get(i).map(|(b, n)| (b, *n as usize))
    }

    /// The GPU buffer of a parameter tensor (the optimizer updates it in place).
    pub(crate) fn param_buffer(&self, t: TensorId) -> Option<&wgpu::Buffer> {
        self.params.get(&t).map(|b| &***b)
    }

    /// A parameter's buffer as a shared owner (an executable compiled on these weights).
    pub(crate) fn param_owner(&self, t: TensorId) -> Option<Arc<Owned>> {
        self.params.get(&t).cloned()
    }

    /// The GPU buffer of the i-th kept tensor.
    pub(crate) fn kept_buffer(&self, i: usize) -> Option<&wgpu::Buffer> {
        self.kept.get(i)
    }

    /// Reads a parameter's current values back (checkpoints, tests).
    pub async fn read_param(&self, ctx: &Context, t: TensorId, len: usize) -> Result<Vec<f32>> {
        let buf = self.params.get(&t).ok_or_else(|| Error::Input(format!("tensor {t} is not a parameter")))?;
        read_buffer(&ctx.device, &ctx.queue, buf, len).await
    }

    /// Runs once and records `then` (e.g. an optimizer step) in the same submit.
    pub(crate) async fn run_then(&self, ctx: &Context, inputs: &[&[f32]], then: Epilogue<'_>) -> Result<Vec<Vec<f32>>> {
        Ok(self.run_inner_with(ctx, inputs, false, Some(then), None).await?.0)
    }

    async fn run_inner(&self, ctx: &Context, inputs: &[&[f32]], timed: bool) -> Result<(Vec<Vec<f32>>, Option<Vec<LayerTime>>)> {
        self.run_inner_with(ctx, inputs, timed, None, None).await
    }

    async fn run_inner_with(
        &self,
        ctx: &Context,
        inputs: &[&[f32]],
        timed: bool,
        then: Option<Epilogue<'_>>,
        mut stages: Option<(&dyn Fn() -> f64, &mut Vec<f64>)>,
    ) -> Result<(Vec<Vec<f32>>, Option<Vec<LayerTime>>)> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::Input(format!("expected {} inputs, got {}", self.inputs.len(), inputs.len())));
        }
        for (i, (buf, data)) in self.inputs.iter().zip(inputs).enumerate() {
            if data.len() != self.plan.inputs[i] {
                return Err(Error::Input(format!("input {i}: expected {} values, got {}", self.plan.inputs[i], data.len())));
            }
            ctx.queue.write_buffer(buf, 0, bytemuck::cast_slice(data));
        }
        let timer = if timed { self.timer.as_ref() } else { None };
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("forward") });
        self.record(&mut enc, timer);
        if let Some(then) = then {
            then(&mut enc);
        }
        for ((buf, n), rb) in self.outputs.iter().zip(&self.readback) {
            enc.copy_buffer_to_buffer(buf, 0, rb, 0, Some(n * 4));
        }
        if let Some(t) = timer {
            enc.resolve_query_set(&t.queries, 0..(self.plan.scopes.len() * 2) as u32, &t.resolve, 0);
            enc.copy_buffer_to_buffer(&t.resolve, 0, &t.read, 0, None);
        }
        if let Some((clock, marks)) = stages.as_mut() {
            marks.push(clock());
        }
        ctx.queue.submit([enc.finish()]);
        if let Some((clock, marks)) = stages.as_mut() {
            work_done(&ctx.device, &ctx.queue).await?;
            marks.push(clock());
        }
        let mut outs = Vec::with_capacity(self.outputs.len());
        for ((_, n), rb) in self.outputs.iter().zip(&self.readback) {
            outs.push(read_f32(&ctx.device, rb, *n as usize).await?);
        }
        if let Some((clock, marks)) = stages.as_mut() {
            marks.push(clock());
        }
        let times = match timer {
            Some(t) => Some(self.layer_times(ctx, t).await?),
            None => None,
        };
        ctx.check_errors("running the model")?;
        Ok((outs, times))
    }

    async fn layer_times(&self, ctx: &Context, t: &Timer) -> Result<Vec<LayerTime>> {
        let n = self.plan.scopes.len() * 2;
        let raw = read_f32(&ctx.device, &t.read, n * 2).await?;
        let ticks: Vec<u64> = raw.chunks(2).map(|c| (c[0].to_bits() as u64) | ((c[1].to_bits() as u64) << 32)).collect();
        Ok(self
            .plan
            .scopes
            .iter()
            .enumerate()
            .map(|(s, name)| LayerTime {
                scope: name.clone(),
                ms: ticks[2 * s + 1].saturating_sub(ticks[2 * s]) as f64 * t.period_ns / 1e6,
            })
            .collect())
    }
}
