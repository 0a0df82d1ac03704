//! Planning: buffer slots by liveness, and the dispatch list.
//!
//! Activations share a pool of slots: a slot is taken when a node writes a
//! tensor and returned after the tensor's last reader, so a 12-block ViT needs
//! a handful of activation buffers, not hundreds. A node's output never shares
//! a slot with its own inputs (WebGPU forbids read and read_write aliasing).

use super::{DeviceCaps, Dispatch, Graph, TensorId, TensorKind};
use crate::error::{Error, Result};

/// Where a binding's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// A pooled activation buffer.
    Slot(usize),
    /// A parameter tensor (its own buffer, uploaded once).
    Param(TensorId),
    /// The n-th graph input (its own buffer, written before each run).
    Input(usize),
    /// An unused binding slot of the kernel.
    Dummy,
    /// Not bound at all: this launch's entry point does not declare it
    /// (ops with several launches, see `Dispatch::without`).
    Unused,
}

/// One kernel launch.
#[derive(Debug, Clone)]
pub struct Step {
    /// The op's name ([`Op::name`](super::Op::name)), for errors and profiles.
    pub op: &'static str,
    /// The kernel, workgroup counts and uniform values.
    pub dispatch: Dispatch,
    /// Bindings in order; the node's outputs are the last ones.
    pub bindings: Vec<Binding>,
    /// Index into [`Plan::scopes`].
    pub scope: usize,
}

/// A graph ready to execute.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Kernel launches in execution order.
    pub steps: Vec<Step>,
    /// Size in bytes of each pooled activation buffer.
    pub slots: Vec<u64>,
    /// Layer names, in execution order.
    pub scopes: Vec<String>,
    /// Element count of each graph input.
    pub inputs: Vec<usize>,
    /// Parameter tensors, in graph order.
    pub params: Vec<TensorId>,
    /// Where each graph output lives, and its element count.
    pub outputs: Vec<(Binding, usize)>,
    /// Where each kept tensor lives (see `Graph::keep`).
    pub kept: Vec<Binding>,
}

impl Plan {
    /// Bytes of pooled activation memory.
    pub fn activation_bytes(&self) -> u64 {
        self.slots.iter().sum()
    }
}

/// Plans a graph for a device: one timed pass per layer (scope).
pub fn plan(g: &Graph, caps: &DeviceCaps) -> Result<Plan> {
    plan_with(g, caps, false)
}

/// Like [`plan`]; with `per_op`, every node gets its own pass and timestamp
/// pair, named `scope/op` (profiling).
// Over 80 lines on purpose: one pass over the nodes that takes, binds and
// releases slots in order; split, the six tables it updates would travel
// through every helper, which hides the aliasing rule instead of showing it.
pub fn plan_with(g: &Graph, caps: &DeviceCaps, per_op: bool) -> Result<Plan> {
    let n = g.tensors.len();
    for (id, t) in g.tensors.iter().enumerate() {
        let bytes = t.dtype.bytes(t.numel());
        if bytes > caps.max_binding_bytes {
            return Err(Error::Gpu(format!(
                "tensor {id} of shape {:?} needs {} MiB, more than the device's {} MiB storage binding limit \
                 (a smaller batch or input size needs less)",
                t.shape,
                bytes >> 20,
                caps.max_binding_bytes >> 20
            )));
        }
    }
    let mut last_use = vec![None::<usize>; n];
    for (i, node) in g.nodes.iter().enumerate() {
        for t in node.op.bindings().into_iter().flatten() {
            last_use[t] = Some(i);
        }
    }
    let is_output = |t: TensorId| g.outputs.contains(&t) || g.kept.contains(&t);
    let input_index = |t: TensorId| g.inputs.iter().position(|&x| x == t);

    let mut slots: Vec<u64> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut slot_of = vec![None::<usize>; n];
    let mut scopes: Vec<String> = Vec::new();
    let mut steps = Vec::with_capacity(g.nodes.len());

    for (i, node) in g.nodes.iter().enumerate() {
        let mut bindings = Vec::new();
        for b in node.op.bindings() {
            bindings.push(match b {
                None => Binding::Dummy,
                Some(t) => binding_of(g, t, &slot_of, input_index(t))?,
            });
        }
        for out in node.outputs() {
            let slot = take_slot(&mut slots, &mut free, g.dtype(out).bytes(g.numel(out)).max(16));
            slot_of[out] = Some(slot);
            bindings.push(Binding::Slot(slot));
        }
        // Release inputs read for the last time, and outputs nobody reads.
        let mut released: Vec<TensorId> = node.op.bindings().into_iter().flatten().collect();
        released.extend(node.outputs());
        released.sort_unstable();
        released.dedup();
        for t in released {
            let done = last_use[t].is_none_or(|l| l <= i);
            if done && !is_output(t) {
                if let Some(s) = slot_of[t] {
                    if !free.contains(&s) {
                        free.push(s);
                    }
                }
            }
        }
        if per_op {
            scopes.push(format!("{}/{}", node.scope, node.op.name()));
        } else if scopes.last() != Some(&node.scope) {
            scopes.push(node.scope.clone());
        }
        for dispatch in node.op.dispatches(g, caps)? {
            let mut bound = bindings.clone();
            for &k in &dispatch.unbound {
                if let Some(b) = bound.get_mut(k) {
                    *b = Binding::Unused;
                }
            }
            steps.push(Step { op: node.op.name(), dispatch, bindings: bound, scope: scopes.len() - 1 });
        }
    }
    let outputs = g.outputs.iter().map(|&t| Ok((binding_of(g, t, &slot_of, input_index(t))?, g.numel(t)))).collect::<Result<Vec<_>>>()?;
    let kept = g.kept.iter().map(|&t| binding_of(g, t, &slot_of, input_index(t))).collect::<Result<Vec<_>>>()?;
    Ok(Plan {
        kept,
        steps,
        slots,
        scopes,
        inputs: g.inputs.iter().map(|&t| g.numel(t)).collect(),
        params: (0..n).filter(|&t| matches!(g.tensors[t].kind, TensorKind::Param { .. })).collect(),
        outputs,
    })
}

/// Takes the best-fitting free slot, grows the largest free one, or adds one.
fn take_slot(slots: &mut Vec<u64>, free: &mut Vec<usize>, need: u64) -> usize {
    let pick = free
        .iter()
        .enumerate()
        .filter(|(_, &s)| slots[s] >= need)
        .min_by_key(|(_, &s)| slots[s])
        .map(|(k, _)| k)
        .or_else(|| (0..free.len()).max_by_key(|&k| slots[free[k]]));
    match pick {
        Some(k) => {
            let s = free.swap_remove(k);
            slots[s] = slots[s].max(need);
            s
        }
        None => {
            slots.push(need);
            slots.len() - 1
        }
    }
}

fn binding_of(g: &Graph, t: TensorId, slot_of: &[Option<usize>], input: Option<usize>) -> Result<Binding> {
    match &g.tensors[t].kind {
        TensorKind::Param { .. } => Ok(Binding::Param(t)),
        TensorKind::Input => input.map(Binding::Input).ok_or_else(|| Error::Input(format!("tensor {t} is not an input"))),
        TensorKind::Activation => {
            slot_of[t].map(Binding::Slot).ok_or_else(|| Error::Input(format!("tensor {t} is read before it is written")))
        }
    }
}
