//! The static graph that model code builds once per (model, batch size).
//!
//! Tensors are f32 or u32 ([`DType`]: 4 bytes each; indices are u32),
//! identified by [`TensorId`]; each is an input, a parameter (named as in the
//! checkpoint) or an activation produced by exactly one node. A node writes
//! one tensor or several (top-k: values and indices), with one kernel launch
//! or several ([`Op::dispatches`]).
//! Nodes hold an [`Op`] (see `ops/`), which knows its kernel and its CPU
//! reference. Nothing here touches the GPU: [`plan`] turns a graph into
//! buffer slots and dispatches, and `gpu::exec` runs that plan.

pub mod plan;

use crate::error::{Error, Result};
use crate::kernel::KernelKey;
use std::collections::HashMap;
use std::fmt::Debug;

/// Index of a tensor in its graph.
pub type TensorId = usize;

/// What a tensor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorKind {
    /// Written by the caller before each run.
    Input,
    /// Model weights: the concatenation of `parts` from the checkpoint.
    Param {
        /// (checkpoint name, shape in the file) of each part, in order.
        parts: Vec<(String, Vec<usize>)>,
    },
    /// Produced by a node.
    Activation,
}

/// The element type of a tensor. Inputs are 4-byte types; parameters
/// ([`Graph::store_weights_f16`]) and matmul-to-matmul activations
/// ([`Graph::store_activations_f16`]) can be `F16` (two per u32 on the GPU). On the CPU side (reference evaluation, inputs and read-back
/// outputs) a u32 tensor travels in a `Vec<f32>` holding the u32 bit
/// patterns: see [`u32_as_f32_bits`] and [`f32_bits_as_u32`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DType {
    /// 32-bit float (activations, parameters).
    #[default]
    F32,
    /// 32-bit unsigned integer (token indices).
    U32,
    /// 16-bit float, packed two per u32: matmul weights at `--precision f16`
    /// (the CPU side and the file keep f32; rounding happens at upload) and the
    /// activations the GPU then writes in f16 (the CPU reference keeps f32).
    F16,
}

impl DType {
    /// Bytes of `n` elements on the GPU (f16 rounded up to whole 8-byte pairs of
    /// u32s: the kernels read them as `vec2<u32>`).
    pub fn bytes(self, n: usize) -> u64 {
        match self {
            DType::F16 => n.div_ceil(4) as u64 * 8,
            _ => n as u64 * 4,
        }
    }
}

/// Arithmetic precision of a model's weights on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 everywhere (exact to the reference).
    #[default]
    F32,
    /// Matmul weights stored as f16 (half the memory), widened to f32 as the
    /// kernels load them; on adapters with SHADER_F16 also the activations that
    /// only matmuls read ([`Graph::store_activations_f16`]). Accumulation,
    /// LayerNorm, softmax, the residual stream and the loss stay f32.
    F16,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" | "fp32" => Ok(Precision::F32),
            "f16" | "fp16" => Ok(Precision::F16),
            _ => Err(format!("precision {s:?}: expected f32 or f16")),
        }
    }
}

/// u32 values as the f32 bit patterns the CPU side carries them in.
pub fn u32_as_f32_bits(v: &[u32]) -> Vec<f32> {
    v.iter().map(|&x| f32::from_bits(x)).collect()
}

/// The u32 values a u32 tensor's f32-carried data holds.
pub fn f32_bits_as_u32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A tensor's shape, role and element type.
#[derive(Debug, Clone)]
pub struct Tensor {
    /// Dimensions, outermost first (row-major data).
    pub shape: Vec<usize>,
    /// Input, parameter or activation.
    pub kind: TensorKind,
    /// f32 or u32.
    pub dtype: DType,
}

impl Tensor {
    /// Number of f32 elements (product of the shape).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Which matmul kernel a device prefers (chosen per adapter, see `gpu::exec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatmulKind {
    /// Workgroup-memory tiles with register micro-tiles: real GPUs.
    Tiled,
    /// Barrier-free register tiles: CPU-like adapters (lavapipe, SwiftShader).
    Register,
    /// 8-lane subgroup broadcast tiles: adapters with SUBGROUP and subgroup size 8.
    Subgroup,
}

impl MatmulKind {
    /// Every family, by the name [`MatmulKind::parse`] reads.
    pub const ALL: [MatmulKind; 3] = [MatmulKind::Tiled, MatmulKind::Register, MatmulKind::Subgroup];

    /// The lowercase name used by `VITRINE_MATMUL`, `WebEngine.setMatmul` and tune files.
    pub fn name(self) -> &'static str {
        match self {
            MatmulKind::Tiled => "tiled",
            MatmulKind::Register => "register",
            MatmulKind::Subgroup => "subgroup",
        }
    }

    /// The family named `name` (`tiled`, `register` or `subgroup`), if any.
    pub fn parse(name: &str) -> Option<MatmulKind> {
        MatmulKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Device facts that decide kernel choice and shape limits.
#[derive(Debug, Clone)]
pub struct DeviceCaps {
    /// The matmul kernel family linear and batched-matmul ops dispatch.
    pub matmul: MatmulKind,
    /// The device's largest storage buffer binding in bytes; planning fails
    /// for a tensor larger than this. Default 128 MiB (WebGPU's default limit).
    pub max_binding_bytes: u64,
    /// Measured choices per matmul shape (`vitrine tune`), before `matmul`.
    pub tuned: Option<std::sync::Arc<crate::tune::Choices>>,
    /// `matmul` is the per-adapter rule's choice rather than a forced one: the
    /// rule then also sends many small products (attention over few tokens),
    /// which the subgroup kernel's blocks would mostly pad, to the
    /// register kernel (it packs products into full workgroups).
    pub auto: bool,
}

impl Default for DeviceCaps {
    fn default() -> Self {
        DeviceCaps { matmul: MatmulKind::Tiled, max_binding_bytes: 128 << 20, tuned: None, auto: false }
    }
}

impl DeviceCaps {
    /// The matmul kernel for `shape`: the measured choice, else `matmul`.
    pub fn matmul_for(&self, shape: &crate::tune::MatmulShape) -> MatmulKind {
        if let Some(k) = self.tuned.as_ref().and_then(|t| t.get(shape).copied()) {
            return k;
        }
        let (m, n) = (shape.m, shape.n);
        let (_, _, _, padded) = crate::ops::linear::subgroup_block(shape.layout, m, n);
        // Measured on lavapipe (vitrine tune): 17 x 17 products x512 run 5x faster
        // on the register kernel; 49 x 49 windows stay on subgroups (56 x 32 blocks).
        if self.auto && self.matmul == MatmulKind::Subgroup && shape.z > 1 && padded > 3 * m * n {
            return MatmulKind::Register;
        }
        self.matmul
    }
}

/// A kernel launch: which specialised shader, how many workgroups, and the
/// values of its uniform block (shapes that need not be compiled in: kernels
/// reading them share one pipeline across shapes), bound after its storage buffers.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// The shader, entry point and specialisation constants.
    pub key: KernelKey,
    /// Workgroup counts (x, y, z), each at most [`MAX_GROUPS`].
    pub workgroups: [u32; 3],
    /// The uniform block's values in WGSL field order; empty for kernels without one.
    pub uniforms: Vec<u32>,
    /// Positions in the op's binding list (inputs, then outputs) that this
    /// launch's entry point does not declare: they are left out of its bind
    /// group (pipelines use the layout the shader declares). Empty: all bound.
    pub unbound: Vec<usize>,
}

/// Largest workgroup count per dispatch dimension (WebGPU default limit).
pub const MAX_GROUPS: u32 = 65535;

impl Dispatch {
    /// `invocations` spread over 1-D workgroups of 64, folded into (x, y)
    /// when x would pass the limit; kernels index with `gid.x + gid.y * nwg.x * 64`.
    pub fn linear(key: KernelKey, invocations: usize) -> Result<Self> {
        Self::groups(key, invocations.div_ceil(64))
    }

    /// `groups` workgroups indexed linearly, folded into (x, y) past the limit;
    /// kernels index with `wid.x + wid.y * nwg.x`.
    pub fn groups(key: KernelKey, groups: usize) -> Result<Self> {
        let groups = groups.max(1);
        let x = groups.min(MAX_GROUPS as usize);
        let y = groups.div_ceil(x);
        if y > MAX_GROUPS as usize {
            return Err(Error::Gpu(format!("{}: {groups} workgroups exceed the dispatch limit", key.shader)));
        }
        Ok(Dispatch { key, workgroups: [x as u32, y as u32, 1], uniforms: Vec::new(), unbound: Vec::new() })
    }

    /// A 2-D grid of workgroups, each dimension within the limit.
    pub fn grid(key: KernelKey, x: usize, y: usize) -> Result<Self> {
        if x > MAX_GROUPS as usize || y > MAX_GROUPS as usize {
            return Err(Error::Gpu(format!("{}: a {x} x {y} grid exceeds the dispatch limit", key.shader)));
        }
        Ok(Dispatch { key, workgroups: [x as u32, y as u32, 1], uniforms: Vec::new(), unbound: Vec::new() })
    }

    /// Sets the kernel's uniform block (u32 values in the WGSL struct's order).
    pub fn with_uniforms(mut self, values: Vec<u32>) -> Self {
        self.uniforms = values;
        self
    }

    /// Leaves these binding positions (inputs, then outputs) out of this launch.
    pub fn without(mut self, positions: &[usize]) -> Self {
        self.unbound = positions.to_vec();
        self
    }
}

/// An operation: its bindings, its kernel and its plain CPU reference.
pub trait Op: Debug {
    /// Short name for errors and profiles.
    fn name(&self) -> &'static str;
    /// Tensors bound to the kernel, in binding order, before the outputs
    /// (the node's `out`, then its `extra` outputs, are always the last
    /// bindings). `None` binds a dummy buffer.
    fn bindings(&self) -> Vec<Option<TensorId>>;
    /// The kernel and launch size for this op on a device.
    fn dispatch(&self, g: &Graph, caps: &DeviceCaps) -> Result<Dispatch>;
    /// Every launch of this op, in order (default: the one [`Op::dispatch`]
    /// gives). Each may bind a subset of the bindings ([`Dispatch::without`]).
    fn dispatches(&self, g: &Graph, caps: &DeviceCaps) -> Result<Vec<Dispatch>> {
        Ok(vec![self.dispatch(g, caps)?])
    }
    /// Reference implementation on the CPU (plain loops) of the op's one output.
    fn cpu(&self, g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32>;
    /// Reference values of every output, `out` first then the extra ones
    /// (default: [`Op::cpu`] alone). u32 outputs carry bit patterns.
    fn cpu_outputs(&self, g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<Vec<f32>> {
        vec![self.cpu(g, get)]
    }
    /// Adds `prev` (a tensor of the output's size) to this op's output inside
    /// its own kernel, so that autodiff sums a gradient without an extra pass
    /// (the matmul epilogue's residual, the head scatter's accumulator).
    /// Returns false, changing nothing, where the op cannot.
    fn sum_into(&mut self, _prev: TensorId) -> bool {
        false
    }
    /// Writes this op's output as f16 elements ([`Graph::store_activations_f16`]).
    /// Returns false, changing nothing, where the op cannot (all but the matmuls).
    fn store_output_f16(&mut self) -> bool {
        false
    }
    /// The shape of a matmul op (its kernel is a tunable choice); `None` for others.
    fn matmul_shape(&self) -> Option<crate::tune::MatmulShape> {
        None
    }
    /// Multiply-adds of one run of this op, as PyTorch's FlopCounter counts them
    /// (matmuls only; default 0).
    fn macs(&self, _g: &Graph) -> u64 {
        0
    }
    /// Adds the nodes computing the gradient of each binding (same order as
    /// [`Op::bindings`]) from `dout`, the gradient of this op's output `out`.
    /// `None` where an input needs no gradient.
    fn backward(&self, _g: &mut Graph, _out: TensorId, _dout: TensorId) -> Result<Vec<Option<TensorId>>> {
        Err(Error::shape(self.name(), "has no backward rule yet"))
    }
}

/// One step of the graph: an op and the tensors it writes.
#[derive(Debug)]
pub struct Node {
    /// The operation, with its input tensors.
    pub op: Box<dyn Op>,
    /// The (first) activation this node writes; gradients flow through it.
    pub out: TensorId,
    /// Further activations the same op writes (bound after `out`), e.g. top-k's indices.
    pub extra: Vec<TensorId>,
    /// The layer this node belongs to (`patch_embed`, `blocks.3`, `head`):
    /// dispatches of a scope are recorded together and timed together.
    pub scope: String,
}

impl Node {
    /// Every tensor this node writes: `out`, then the extra outputs.
    pub fn outputs(&self) -> impl Iterator<Item = TensorId> + '_ {
        std::iter::once(self.out).chain(self.extra.iter().copied())
    }
}

/// A static computation graph.
#[derive(Debug, Default)]
pub struct Graph {
    /// Every tensor; a [`TensorId`] indexes this.
    pub tensors: Vec<Tensor>,
    /// Nodes in execution order (each reads only earlier tensors).
    pub nodes: Vec<Node>,
    /// Input tensors, in the order a run's input slices are given.
    pub inputs: Vec<TensorId>,
    /// Output tensors, in the order a run returns them.
    pub outputs: Vec<TensorId>,
    /// Tensors kept on the GPU after a run without being read back (gradients for the optimizer).
    pub kept: Vec<TensorId>,
    scope: String,
}

impl Graph {
    /// An empty graph (root scope).
    pub fn new() -> Self {
        Self::default()
    }

    /// The shape of tensor `t`. Panics if `t` is not in this graph.
    pub fn shape(&self, t: TensorId) -> &[usize] {
        &self.tensors[t].shape
    }

    /// The element count of tensor `t`. Panics if `t` is not in this graph.
    pub fn numel(&self, t: TensorId) -> usize {
        self.tensors[t].numel()
    }

    /// Sets the scope (layer name) of the nodes added next.
    pub fn scope(&mut self, s: impl Into<String>) {
        self.scope = s.into();
    }

    /// Declares an input tensor.
    pub fn input(&mut self, shape: &[usize]) -> TensorId {
        let id = self.add(shape, TensorKind::Input);
        self.inputs.push(id);
        id
    }

    /// Declares a parameter stored under `name` with `shape` in the checkpoint.
    pub fn param(&mut self, name: &str, shape: &[usize]) -> TensorId {
        self.param_view(name, shape, shape)
    }

    /// A parameter stored as `file_shape`, used with `shape` (same element count).
    pub fn param_view(&mut self, name: &str, file_shape: &[usize], shape: &[usize]) -> TensorId {
        self.add(shape, TensorKind::Param { parts: vec![(name.to_string(), file_shape.to_vec())] })
    }

    /// A parameter made of several checkpoint tensors concatenated in order.
    pub fn param_concat(&mut self, parts: Vec<(String, Vec<usize>)>, shape: &[usize]) -> TensorId {
        self.add(shape, TensorKind::Param { parts })
    }

    /// Marks a tensor as a graph output (read back after a run).
    pub fn output(&mut self, t: TensorId) {
        self.outputs.push(t);
    }

    /// Keeps a tensor alive to the end of a run, on the GPU only.
    pub fn keep(&mut self, t: TensorId) {
        self.kept.push(t);
    }

    /// Adds a node computing a new f32 activation of `shape`.
    pub fn push(&mut self, op: Box<dyn Op>, shape: &[usize]) -> TensorId {
        self.push_outputs(op, &[(shape, DType::F32)])[0]
    }

    /// Adds a node writing several activations (shape, type), in binding order;
    /// returns their ids (the first is the node's `out`).
    pub fn push_outputs(&mut self, op: Box<dyn Op>, outputs: &[(&[usize], DType)]) -> Vec<TensorId> {
        let ids: Vec<TensorId> = outputs.iter().map(|(s, d)| self.add_typed(s, TensorKind::Activation, *d)).collect();
        let (out, extra) = (ids[0], ids[1..].to_vec());
        self.nodes.push(Node { op, out, extra, scope: self.scope.clone() });
        ids
    }

    /// Declares an input tensor of a given element type (u32 indices, for example).
    pub fn input_typed(&mut self, shape: &[usize], dtype: DType) -> TensorId {
        let id = self.add_typed(shape, TensorKind::Input, dtype);
        self.inputs.push(id);
        id
    }

    /// The element type of tensor `t`. Panics if `t` is not in this graph.
    pub fn dtype(&self, t: TensorId) -> DType {
        self.tensors[t].dtype
    }

    fn add(&mut self, shape: &[usize], kind: TensorKind) -> TensorId {
        self.add_typed(shape, kind, DType::F32)
    }

    fn add_typed(&mut self, shape: &[usize], kind: TensorKind, dtype: DType) -> TensorId {
        self.tensors.push(Tensor { shape: shape.to_vec(), kind, dtype });
        self.tensors.len() - 1
    }

    /// Stores as f16 every parameter whose only readers are `A . W^T` matmuls
    /// reading it as their weight (nn.Linear layers, the patch embedding, the
    /// heads): they then load it as packed halves and widen it to f32. Other
    /// parameters (norms, biases, tokens, position embeddings) stay f32.
    /// Returns how many tensors changed.
    pub fn store_weights_f16(&mut self) -> usize {
        // Per tensor: read at all, and every read as an A . W^T product's weight.
        let n = self.tensors.len();
        let (mut read, mut weight_only) = (vec![false; n], vec![true; n]);
        for node in &self.nodes {
            let b = node.op.bindings();
            let as_weight = node.op.matmul_shape().is_some_and(|s| s.layout == crate::ops::Layout::ABt && !s.w_batched);
            for (pos, t) in b.iter().enumerate() {
                let Some(t) = *t else { continue };
                read[t] = true;
                weight_only[t] &= as_weight && pos == 1 && b.iter().filter(|x| **x == Some(t)).count() == 1;
            }
        }
        for &t in &self.outputs {
            weight_only[t] = false;
        }
        let mut changed = 0;
        for (t, tensor) in self.tensors.iter_mut().enumerate() {
            if matches!(tensor.kind, TensorKind::Param { .. }) && tensor.dtype == DType::F32 && read[t] && weight_only[t] {
                tensor.dtype = DType::F16;
                changed += 1;
            }
        }
        changed
    }

    /// Stores as f16 every activation that a matmul writes and only matmuls read,
    /// each as its left operand (a ViT's MLP hidden layer: fc1 + GELU, read by fc2):
    /// the writer rounds each final value to f16, the readers widen it to f32, and
    /// the products, LayerNorm, softmax and the residual stream stay f32. Needs
    /// [`store_weights_f16`](Self::store_weights_f16) first (the kernels exist with
    /// f16 weights only) and an adapter with SHADER_F16 (the writer stores f16
    /// elements). Returns how many tensors changed.
    pub fn store_activations_f16(&mut self) -> usize {
        let n = self.tensors.len();
        // A matmul with f16 weights (binding 1): the kernels with f16 activations.
        let half_weights = |g: &Graph, op: &dyn Op| {
            op.matmul_shape().is_some() && op.bindings().get(1).copied().flatten().is_some_and(|w| g.tensors[w].dtype == DType::F16)
        };
        // Per tensor: read at all, and every read as such a matmul's left operand.
        let (mut read, mut a_only) = (vec![false; n], vec![true; n]);
        let writers: Vec<bool> = self.nodes.iter().map(|node| half_weights(self, node.op.as_ref())).collect();
        for node in &self.nodes {
            let b = node.op.bindings();
            let is_matmul = half_weights(self, node.op.as_ref());
            for (pos, t) in b.iter().enumerate() {
                let Some(t) = *t else { continue };
                read[t] = true;
                a_only[t] &= is_matmul && pos == 0 && b.iter().filter(|x| **x == Some(t)).count() == 1;
            }
        }
        for &t in self.outputs.iter().chain(&self.kept) {
            a_only[t] = false;
        }
        let mut changed = 0;
        for (node, writer) in self.nodes.iter_mut().zip(writers) {
            let t = node.out;
            let tensor = &mut self.tensors[t];
            if matches!(tensor.kind, TensorKind::Activation)
                && tensor.dtype == DType::F32
                && read[t]
                && a_only[t]
                && writer
                && node.op.store_output_f16()
            {
                tensor.dtype = DType::F16;
                changed += 1;
            }
        }
        changed
    }

    /// Stores this graph as `precision` asks: at `Precision::F16` the matmul weights in
    /// f16 ([`store_weights_f16`](Self::store_weights_f16)) and, where the adapter has
    /// SHADER_F16, the activations between matmuls too
    /// ([`store_activations_f16`](Self::store_activations_f16)); nothing at F32.
    pub fn apply_precision(&mut self, precision: Precision, shader_f16: bool) {
        if precision == Precision::F16 {
            self.store_weights_f16();
            if shader_f16 {
                self.store_activations_f16();
            }
        }
    }

    /// GPU bytes of the parameters: (all, of which f16).
    pub fn param_bytes(&self) -> (u64, u64) {
        let params = self.tensors.iter().filter(|t| matches!(t.kind, TensorKind::Param { .. }));
        params.fold((0, 0), |(all, half), t| {
            let b = t.dtype.bytes(t.numel());
            (all + b, half + if t.dtype == DType::F16 { b } else { 0 })
        })
    }

    /// Every checkpoint tensor the graph needs: (name, shape), in graph order.
    pub fn param_table(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for t in &self.tensors {
            if let TensorKind::Param { parts } = &t.kind {
                out.extend(parts.iter().cloned());
            }
        }
        out
    }

    /// The checkpoint tensors a parameter tensor is made of (`None` for other tensors).
    pub fn param_parts(&self, t: TensorId) -> Option<&[(String, Vec<usize>)]> {
        match &self.tensors.get(t)?.kind {
            TensorKind::Param { parts } => Some(parts),
            _ => None,
        }
    }

    /// Every parameter tensor, in graph order.
    pub fn params(&self) -> Vec<TensorId> {
        (0..self.tensors.len()).filter(|&t| self.param_parts(t).is_some()).collect()
    }

    /// Number of f32 values in all parameters.
    pub fn param_count(&self) -> usize {
        self.param_table().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    /// The data of a parameter tensor, assembled from the named weights.
    pub fn param_data(&self, t: TensorId, weights: &HashMap<String, Vec<f32>>) -> Result<Vec<f32>> {
        let TensorKind::Param { parts } = &self.tensors[t].kind else {
            return Err(Error::Internal(format!("tensor {t} is not a parameter")));
        };
        let mut data = Vec::with_capacity(self.numel(t));
        for (name, _) in parts {
            let w = weights.get(name).ok_or_else(|| Error::Weights {
                missing: vec![name.clone()],
                unexpected: Vec::new(),
                misshaped: Vec::new(),
            })?;
            data.extend_from_slice(w);
        }
        Ok(data)
    }

    /// Runs the whole graph on the CPU with the reference implementations.
    /// `inputs` follow [`Graph::inputs`]; returns the outputs' values.
    pub fn eval_cpu(&self, inputs: &[Vec<f32>], weights: &HashMap<String, Vec<f32>>) -> Result<Vec<Vec<f32>>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::Input(format!("expected {} inputs, got {}", self.inputs.len(), inputs.len())));
        }
        let mut vals: Vec<Option<Vec<f32>>> = vec![None; self.tensors.len()];
        for (&id, v) in self.inputs.iter().zip(inputs) {
            if v.len() != self.numel(id) {
                return Err(Error::shape("input", format!("expected {:?}, got {} values", self.shape(id), v.len())));
            }
            vals[id] = Some(v.clone());
        }
        for (id, t) in self.tensors.iter().enumerate() {
            if matches!(t.kind, TensorKind::Param { .. }) {
                vals[id] = Some(self.param_data(id, weights)?);
            }
        }
        for node in &self.nodes {
            let get = |t: TensorId| vals[t].clone().unwrap_or_default();
            let outs = node.op.cpu_outputs(self, &get);
            for (t, v) in node.outputs().zip(outs) {
                vals[t] = Some(v);
            }
        }
        Ok(self.outputs.iter().map(|&o| vals[o].clone().unwrap_or_default()).collect())
    }
}
