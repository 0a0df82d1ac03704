//! Reverse-mode automatic differentiation on the static graph.
//!
//! [`backward`] walks the forward nodes in reverse, asks each op for the
//! gradients of its inputs ([`Op::backward`], which adds ordinary nodes) and
//! sums gradients of tensors read more than once. The result is one graph,
//! forward then backward, planned and executed like any other: gradients
//! share the parameters' layout.

use crate::error::{Error, Result};
use crate::graph::{DType, DeviceCaps, Dispatch, Graph, Op, TensorId};

/// Stands in for an op while its own backward rule edits the graph.
#[derive(Debug)]
struct Taken;

impl Op for Taken {
    fn name(&self) -> &'static str {
        "taken"
    }
    fn bindings(&self) -> Vec<Option<TensorId>> {
        Vec::new()
    }
    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        Err(Error::shape("autodiff", "an op was not restored"))
    }
    fn cpu(&self, _g: &Graph, _get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        Vec::new()
    }
}

/// Folds `prev` into the kernel that writes the new gradient `gi`, when that is
/// safe: `gi` was made by this backward step (nodes from `start`), is returned
/// once and read by no other node, and its op can add (see [`Op::sum_into`]).
fn sum_into(g: &mut Graph, start: usize, grads: &[Option<TensorId>], gi: TensorId, prev: TensorId) -> bool {
    if grads.iter().filter(|x| **x == Some(gi)).count() != 1 || g.numel(prev) != g.numel(gi) {
        return false;
    }
    let Some(j) = (start..g.nodes.len()).find(|&j| g.nodes[j].out == gi) else { return false };
    if !g.nodes[j].extra.is_empty() || (start..g.nodes.len()).any(|k| g.nodes[k].op.bindings().contains(&Some(gi))) {
        return false;
    }
    g.nodes[j].op.sum_into(prev)
}

/// Adds the backward pass of `out` to `g`: `seed` is the gradient of `out`
/// (e.g. a tensor of ones, or an input), `wrt` the tensors wanted. Returns
/// their gradients in order; a tensor `out` does not depend on gets zeros.
pub fn backward(g: &mut Graph, out: TensorId, seed: TensorId, wrt: &[TensorId]) -> Result<Vec<TensorId>> {
    if g.shape(seed) != g.shape(out) {
        return Err(Error::shape("backward", format!("seed {:?} vs output {:?}", g.shape(seed), g.shape(out))));
    }
    let forward = g.nodes.len();
    // Tensors on a path from `wrt` (only those need gradients).
    let mut needs = vec![false; g.tensors.len()];
    for &t in wrt {
        needs[t] = true;
    }
    for node in &g.nodes[..forward] {
        // Integer outputs (indices) carry no gradient.
        if node.op.bindings().into_iter().flatten().any(|t| needs[t]) && g.tensors[node.out].dtype == DType::F32 {
            needs[node.out] = true;
        }
    }
    let mut grad: Vec<Option<TensorId>> = vec![None; g.tensors.len()];
    grad[out] = Some(seed);
    for i in (0..forward).rev() {
        let (node_out, scope) = (g.nodes[i].out, g.nodes[i].scope.clone());
        let Some(d) = grad.get(node_out).copied().flatten() else { continue };
        if !needs[node_out] {
            continue;
        }
        g.scope(format!("backward/{scope}"));
        let op = std::mem::replace(&mut g.nodes[i].op, Box::new(Taken));
        let start = g.nodes.len();
        let result = op.backward(g, node_out, d);
        let inputs = op.bindings();
        g.nodes[i].op = op;
        let grads = result?;
        for (input, gi) in inputs.into_iter().zip(grads.iter().copied()) {
            let (Some(t), Some(gi)) = (input, gi) else { continue };
            if !needs[t] {
                continue;
            }
            if grad.len() < g.tensors.len() {
                grad.resize(g.tensors.len(), None);
            }
            grad[t] = Some(match grad[t] {
                Some(prev) if sum_into(g, start, &grads, gi, prev) => gi,
                Some(prev) => g.add_scale(prev, gi, 1.0)?,
                None => gi,
            });
        }
    }
    g.scope("backward");
    wrt.iter()
        .map(|&t| match grad.get(t).copied().flatten() {
            Some(d) => Ok(d),
            None => {
                let s = g.shape(t).to_vec();
                g.fill(&s, 0.0)
            }
        })
        .collect()
}
