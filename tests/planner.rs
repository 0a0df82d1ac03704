//! The planner, the most aliasing-sensitive code: checked on whole model
//! graphs (forward and training) with no GPU. Steps are the graph's nodes in
//! order, so each binding maps back to its tensor.

use vitrine::graph::plan::{plan_with, Binding, Plan};
use vitrine::graph::{DeviceCaps, Graph, TensorId};
use vitrine::models::config::preset;
use vitrine::models::Model;
use vitrine::train::trainer::training_graph;

/// The slot each activation tensor lives in, from the plan's bindings.
fn slots_of(g: &Graph, plan: &Plan) -> Vec<Option<usize>> {
    let mut slot = vec![None; g.tensors.len()];
    assert_eq!(plan.steps.len(), g.nodes.len(), "one step per node");
    for (node, step) in g.nodes.iter().zip(&plan.steps) {
        let tensors: Vec<Option<TensorId>> = node.op.bindings().into_iter().chain([Some(node.out)]).collect();
        assert_eq!(tensors.len(), step.bindings.len(), "{}: bindings and tensors differ in number", step.op);
        for (t, b) in tensors.iter().zip(&step.bindings) {
            if let (Some(t), Binding::Slot(s)) = (t, b) {
                assert!(slot[*t].is_none_or(|old| old == *s), "tensor {t} is bound to two slots");
                slot[*t] = Some(*s);
            }
        }
    }
    slot
}

/// No step writes a slot its own inputs are in, and no slot is overwritten
/// while the tensor in it will still be read (or is an output or kept).
fn check_plan(what: &str, g: &Graph, plan: &Plan) {
    let slot = slots_of(g, plan);
    for (i, step) in plan.steps.iter().enumerate() {
        let (out, ins) = step.bindings.split_last().expect("an output binding");
        if let Binding::Slot(_) = out {
            assert!(!ins.contains(out), "{what}: step {i} ({}) writes a slot it reads", step.op);
        }
    }
    let n = g.nodes.len();
    let mut last_read = vec![None::<usize>; g.tensors.len()];
    for (i, node) in g.nodes.iter().enumerate() {
        for t in node.op.bindings().into_iter().flatten() {
            last_read[t] = Some(i);
        }
    }
    for t in g.outputs.iter().chain(&g.kept) {
        last_read[*t] = Some(n); // live past the last step: read back or kept
    }
    for (w, node) in g.nodes.iter().enumerate() {
        let t = node.out;
        let (Some(s), Some(end)) = (slot[t], last_read[t]) else { continue };
        for later in (w + 1)..end.min(n) {
            let other = g.nodes[later].out;
            assert!(
                other == t || slot[other] != Some(s),
                "{what}: slot {s} holds tensor {t} (written at step {w}, read until {end}) but step {later} ({}) overwrites it",
                plan.steps[later].op
            );
        }
    }
}

fn caps() -> DeviceCaps {
    DeviceCaps::default()
}

#[test]
fn forward_plans_never_alias_and_never_clobber_live_tensors() {
    for arch in ["vit_base_patch16_224", "deit_small_distilled_patch16_224", "swin_tiny_patch4_window7_224"] {
        for batch in [1, 3] {
            let g = vitrine::models::build(&preset(arch).unwrap(), batch).unwrap();
            let plan = plan_with(&g, &caps(), false).unwrap();
            check_plan(&format!("{arch} batch {batch}"), &g, &plan);
        }
    }
}

#[test]
fn training_plans_never_alias_and_never_clobber_live_tensors() {
    for arch in ["vit_tiny_patch16_224", "swin_tiny_patch4_window7_224"] {
        let model = Model::fresh(preset(arch).unwrap(), 1).unwrap();
        for (accum, freeze) in [(1, false), (2, true)] {
            let tg = training_graph(&model, 2, 0.1, accum, freeze).unwrap();
            let plan = plan_with(&tg.g, &caps(), false).unwrap();
            check_plan(&format!("{arch} training (accum {accum}, freeze {freeze})"), &tg.g, &plan);
        }
    }
}

#[test]
fn vit_b_needs_a_handful_of_activation_slots() {
    let g = vitrine::models::build(&preset("vit_base_patch16_224").unwrap(), 8).unwrap();
    let plan = plan_with(&g, &caps(), false).unwrap();
    // 12 blocks, ~160 activations: liveness reuse keeps a few slots, whatever the depth.
    assert!(plan.slots.len() <= 8, "ViT-B/16 uses {} activation slots", plan.slots.len());
    let largest = plan.slots.iter().max().copied().unwrap_or(0);
    let total = plan.activation_bytes();
    assert!(total <= 8 * largest, "activation memory {total} B for a largest slot of {largest} B");
}

#[test]
fn a_tensor_over_the_binding_limit_is_an_error_naming_it() {
    let g = vitrine::models::build(&preset("vit_base_patch16_224").unwrap(), 64).unwrap();
    let small = DeviceCaps { max_binding_bytes: 64 << 20, ..caps() };
    let err = plan_with(&g, &small, false).expect_err("ViT-B at batch 64 has tensors over 64 MiB").to_string();
    assert!(err.contains("storage binding limit") && err.contains("64 MiB") && err.contains("smaller batch"), "{err}");
}

#[test]
fn measured_choices_pick_the_kernel_per_shape_and_the_rule_covers_the_rest() {
    use std::sync::Arc;
    use vitrine::graph::MatmulKind;
    use vitrine::ops::Layout;
    use vitrine::tune::MatmulShape;
    let mut g = Graph::new();
    let x = g.input(&[2, 8, 16]);
    let w1 = g.param("w1", &[32, 16]);
    let w2 = g.param("w2", &[16, 32]);
    let h = g.linear(x, w1, None).unwrap();
    let y = g.linear(h, w2, None).unwrap();
    g.output(y);
    let tuned = MatmulShape { layout: Layout::ABt, z: 1, m: 16, n: 32, k: 16, w_batched: false };
    let choices = [(tuned, MatmulKind::Register)].into_iter().collect();
    let tuned_caps = DeviceCaps { matmul: MatmulKind::Subgroup, tuned: Some(Arc::new(choices)), ..caps() };
    let plan = plan_with(&g, &tuned_caps, false).unwrap();
    let shaders: Vec<&str> = plan.steps.iter().map(|s| s.dispatch.key.shader).collect();
    assert_eq!(shaders, ["matmul_reg", "matmul_subgroup"], "the stored shape runs its measured kernel, the other the rule's");
    // The rule: many small products go to the register kernel, unless a variant is forced.
    let mut g2 = Graph::new();
    let a = g2.input(&[512, 17, 16]);
    let b = g2.input(&[512, 17, 16]);
    let s = g2.bmm(a, b).unwrap();
    g2.output(s);
    for (auto, want) in [(true, "matmul_reg"), (false, "matmul_subgroup")] {
        let rule = DeviceCaps { matmul: MatmulKind::Subgroup, auto, ..caps() };
        assert_eq!(plan_with(&g2, &rule, false).unwrap().steps[0].dispatch.key.shader, want, "auto {auto}");
    }
    let shapes = vitrine::tune::shapes(&[&g]);
    assert_eq!(shapes.len(), 2);
    assert_eq!(shapes[0], tuned);
}
