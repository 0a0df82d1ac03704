//! Training parity with PyTorch/timm and the official HVT code (fixtures from
//! scripts/make_fixtures.py and scripts/make_hvt_fixtures.py):
//! for a fixed batch, the label-smoothed loss and every parameter gradient.
//! Tolerance: loss within 1e-5 relative; each gradient tensor within
//! 1e-3 * max |timm's gradient of that tensor|.

mod common;
use common::*;
use std::path::Path;
use vitrine::autodiff::backward;
use vitrine::graph::TensorKind;
use vitrine::models::Model;
use vitrine::weights::Weights as Ckpt;

/// Forward (batch 2) + label-smoothed loss (0.1; the mean is the one output) +
/// backward to every parameter: (graph, parameter tensors, their gradients).
fn training_graph(model: &Model) -> (vitrine::graph::Graph, Vec<usize>, Vec<usize>) {
    let mut g = model.graph(2).unwrap();
    let logits = g.outputs.pop().unwrap();
    let target = g.input(&[2]);
    let rows = g.cross_entropy(logits, target, 0.1).unwrap();
    let mean = g.cross_entropy_mean(logits, target, 0.1).unwrap();
    g.output(mean);
    // Every parameter the reference trains (T2T's sinusoid pos_embed is frozen there).
    let trained = |t: usize| match &g.tensors[t].kind {
        TensorKind::Param { parts } => !parts.iter().any(|(n, _)| model.config.arch.frozen(n)),
        _ => false,
    };
    let params: Vec<usize> = (0..g.tensors.len()).filter(|&t| trained(t)).collect();
    let seed = g.fill(&[2], 0.5).unwrap(); // d mean / d row
    let grads = backward(&mut g, rows, seed, &params).unwrap();
    (g, params, grads)
}

#[test]
fn loss_and_every_parameter_gradient_match_timm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in [
        "vit_plain",
        "deit_distilled",
        "vit_avg_reg_ls",
        "swin_2stage",
        "swin_3stage_pad",
        "hvt_2pool",
        "hvt_3pool",
        "t2t_transformer",
        "t2t_performer",
    ] {
        let model = Model::load(&root.join(name), None).unwrap();
        let r = Ckpt::load(&root.join(name).join("train_reference.safetensors")).expect("train fixture (scripts/make_fixtures.py)");
        let (mut g, params, grads) = training_graph(&model);
        for &d in &grads {
            g.output(d);
        }
        let input = &r.tensors["input"].1;
        let tgt = &r.tensors["target"].1;
        let outs = engine().run_once(&g, &model.weights.data(), &[input, tgt]).unwrap();

        let want_loss = r.tensors["loss"].1[0];
        assert!((outs[0][0] - want_loss).abs() <= 1e-5 * want_loss.abs().max(1.0), "{name}: loss {} vs timm {want_loss}", outs[0][0]);

        let mut checked = 0;
        for (k, &p) in params.iter().enumerate() {
            let TensorKind::Param { parts } = &g.tensors[p].kind else { unreachable!() };
            let mut offset = 0;
            for (pname, shape) in parts {
                let n: usize = shape.iter().product();
                let ours = &outs[1 + k][offset..offset + n];
                let (_, want) = r.tensors.get(&format!("grad.{pname}")).unwrap_or_else(|| panic!("{name}: no timm gradient for {pname}"));
                let (d, m) = max_diff(ours, want);
                assert!(d <= 1e-3 * m.max(1e-6), "{name}: gradient of {pname}: max |diff| {d}, max |timm| {m}");
                offset += n;
                checked += 1;
            }
        }
        let expected = r.tensors.keys().filter(|k| k.starts_with("grad.")).count();
        assert_eq!(checked, expected, "{name}: every timm parameter gradient must be compared");
    }
}

#[test]
fn three_adamw_steps_match_torch() {
    use vitrine::gpu::optim::{OptParam, OptSettings};
    use vitrine::train::step::train_step;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["deit_distilled", "vit_avg_reg_ls", "swin_3stage_pad", "hvt_3pool", "t2t_transformer", "t2t_performer"] {
        let model = Model::load(&root.join(name), None).unwrap();
        let r = Ckpt::load(&root.join(name).join("train_reference.safetensors")).unwrap();
        let (mut g, params, grads) = training_graph(&model);
        let mut specs = Vec::new();
        for (i, (&p, &d)) in params.iter().zip(&grads).enumerate() {
            g.keep(d);
            let TensorKind::Param { parts } = &g.tensors[p].kind else { unreachable!() };
            specs.push(OptParam { param: p, grad: i, decay: model.config.decays(parts), backbone: false });
        }
        let mut e = engine();
        let exe = e.compile(&g, &model.weights.data()).unwrap();
        let mut opt = e.optimizer(&exe, &specs, OptSettings::adamw(0.05)).unwrap();
        let (input, tgt) = (&r.tensors["input"].1, &r.tensors["target"].1);
        let want_losses = &r.tensors["adamw.losses"].1;
        for (step, want) in want_losses.iter().enumerate() {
            let out = pollster::block_on(train_step(&e.ctx, &exe, &mut opt, &[input, tgt], 2e-3)).unwrap();
            assert!((out[0][0] - want).abs() <= 1e-4 * want.abs().max(1.0), "{name}: loss at step {step}: {} vs torch {want}", out[0][0]);
        }
        for &p in &params {
            let TensorKind::Param { parts } = &g.tensors[p].kind else { unreachable!() };
            let got = pollster::block_on(exe.read_param(&e.ctx, p, g.numel(p))).unwrap();
            let mut offset = 0;
            for (pname, shape) in parts {
                let n: usize = shape.iter().product();
                let want = &r.tensors[&format!("adamw.step3.{pname}")].1;
                let before = &model.weights.tensors[pname].1;
                let ours = &got[offset..offset + n];
                // Where a coordinate's gradient is (near) zero, Adam's m/sqrt(v) turns rounding
                // noise into +-lr steps in both frameworks, so those coordinates are left out:
                // the whole key third of attn.qkv.bias (exactly zero in exact arithmetic: softmax
                // ignores a constant added to a row of scores) and, by chance, at most 0.1 % of
                // any other tensor (|grad| <= 1e-5 max|grad| at step 1).
                let g0 = &r.tensors[&format!("grad.{pname}")].1;
                let gmax = g0.iter().fold(0f32, |a, b| a.max(b.abs()));
                let noise: Vec<usize> = (0..n).filter(|&i| g0[i].abs() <= 1e-5 * gmax).collect();
                let key_bias: Vec<usize> = if pname.ends_with("attn.qkv.bias") { (n / 3..2 * n / 3).collect() } else { Vec::new() };
                assert!(key_bias.iter().all(|i| noise.contains(i)), "{name}: {pname}: the key bias must have zero gradient");
                let chance = noise.len() - key_bias.len();
                assert!(chance * 1000 <= n.max(1000), "{name}: {pname}: {chance} near-zero gradients of {n}");
                let kept: Vec<usize> = (0..n).filter(|i| !noise.contains(i)).collect();
                let d = kept.iter().map(|&i| (ours[i] - want[i]).abs()).fold(0f32, f32::max);
                let mean = kept.iter().map(|&i| (ours[i] - want[i]).abs() as f64).sum::<f64>() / kept.len().max(1) as f64;
                // Each AdamW update is lr * m/(sqrt(v) + eps), at most ~lr = 2e-3 per step. Gradients
                // agree to ~1e-5 relative, but where a coordinate's gradient is near zero the ratio
                // m/sqrt(v) amplifies that: every weight must agree within 2.5 % of one step (5e-5),
                // and the mean difference must stay below 1e-6.
                assert!(d <= 5e-5 && mean <= 1e-6, "{name}: {pname} after 3 AdamW steps: max |diff| {d}, mean {mean}");
                let (moved, _) = max_diff(want, before);
                assert!(moved > 1e-3, "{name}: {pname} did not move in torch ({moved})");
                offset += n;
            }
        }
    }
}

/// DynamicViT's training step against the official code (scripts/make_dynamicvit_fixtures.py):
/// the dense teacher's logits, then, with the fixture's Gumbel noise injected, the hard
/// decisions of every stage (exactly), the loss and each of its four terms, every trainable
/// gradient (1e-3 * max |official gradient|; cls_token and pos_embed are frozen as the
/// official optimizer factory leaves them out), and three AdamW steps.
#[test]
fn dynamicvit_training_step_matches_the_official_code() {
    use vitrine::gpu::optim::{OptParam, OptSettings};
    use vitrine::models::families::dynamicvit::{DynVitConfig, LossWeights};
    use vitrine::train::step::train_step;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["dynvit_small", "dynvit_2stage"] {
        let model = Model::load(&root.join(name), None).unwrap();
        let cfg = model.config.arch_as::<DynVitConfig>().unwrap().clone();
        let r =
            Ckpt::load(&root.join(name).join("train_reference.safetensors")).expect("train fixture (scripts/make_dynamicvit_fixtures.py)");
        let weights = model.weights.data();
        let (input, target) = (&r.tensors["input"].1, &r.tensors["target"].1);
        let mut e = engine();
        let teacher = e.run_once(&cfg.teacher_graph(2).unwrap(), &weights, &[input]).unwrap();
        let (t_feat, t_logits) = (&teacher[0], &teacher[1]);
        let (d, m) = max_diff(t_logits, &r.tensors["teacher.logits"].1);
        assert!(d <= 1e-4 * m.max(1.0), "{name}: teacher logits differ by {d}");

        let mut t = cfg.training_graph(2, &LossWeights::default()).unwrap();
        let params: Vec<usize> = t
            .g
            .params()
            .into_iter()
            .filter(
                |&p| matches!(&t.g.tensors[p].kind, TensorKind::Param { parts } if !parts.iter().any(|(n, _)| model.config.arch.frozen(n))),
            )
            .collect();
        let seed = t.g.fill(&[1], 1.0).unwrap();
        let grads = backward(&mut t.g, t.loss, seed, &params).unwrap();
        let stages = t.decisions.len();
        let mut inputs: Vec<&[f32]> = vec![input];
        let gumbels: Vec<Vec<f32>> = (0..stages).map(|p| r.tensors[&format!("gumbel.{p}")].1.clone()).collect();
        inputs.extend(gumbels.iter().map(|v| v.as_slice()));
        inputs.extend([target.as_slice(), t_feat.as_slice(), t_logits.as_slice()]);

        let mut g = std::mem::take(&mut t.g);
        g.output(t.loss);
        for term in t.terms {
            g.output(term);
        }
        for &d in &t.decisions {
            g.output(d);
        }
        for &d in &grads {
            g.output(d);
        }
        let outs = e.run_once(&g, &weights, &inputs).unwrap();
        for (i, term) in ["loss", "loss.cls", "loss.ratio", "loss.kl", "loss.token"].iter().enumerate() {
            let want = r.tensors[*term].1[0];
            assert!((outs[i][0] - want).abs() <= 1e-5 * want.abs().max(1.0), "{name}: {term} {} vs official {want}", outs[i][0]);
        }
        for p in 0..stages {
            assert_eq!(outs[5 + p], r.tensors[&format!("keep.{p}")].1, "{name}: decisions of stage {p}");
        }
        // --ratio-weight 5 (the official README's for DeiT-B) adds 3 / S of the ratio term.
        let mut heavy = cfg.training_graph(2, &LossWeights { ratio: 5.0, ..LossWeights::default() }).unwrap();
        let heavy_loss = heavy.loss;
        heavy.g.output(heavy_loss);
        let l5 = e.run_once(&heavy.g, &weights, &inputs).unwrap()[0][0];
        let want = outs[0][0] + 3.0 / stages as f32 * outs[2][0];
        assert!((l5 - want).abs() <= 1e-5 * want.abs().max(1.0), "{name}: loss with ratio weight 5: {l5} vs {want}");
        let mut checked = 0;
        for (k, &p) in params.iter().enumerate() {
            let TensorKind::Param { parts } = &g.tensors[p].kind else { unreachable!() };
            let (pname, _) = &parts[0];
            let (_, want) = r.tensors.get(&format!("grad.{pname}")).unwrap_or_else(|| panic!("{name}: no official gradient for {pname}"));
            let (d, m) = max_diff(&outs[5 + stages + k], want);
            assert!(d <= 1e-3 * m.max(1e-6), "{name}: gradient of {pname}: max |diff| {d}, max |official| {m}");
            checked += 1;
        }
        let official = r.tensors.keys().filter(|k| k.starts_with("grad.")).count();
        assert_eq!(checked, official, "{name}: every official gradient compared");

        // Three AdamW steps (lr 2e-3, wd 0.05 except 1-d tensors and biases), same noise and teacher.
        let t = cfg.training_graph(2, &LossWeights::default()).unwrap();
        let mut g2 = t.g;
        let seed = g2.fill(&[1], 1.0).unwrap();
        let grads = backward(&mut g2, t.loss, seed, &params).unwrap();
        g2.output(t.loss);
        let mut specs = Vec::new();
        for (i, (&p, &d)) in params.iter().zip(&grads).enumerate() {
            g2.keep(d);
            let TensorKind::Param { parts } = &g2.tensors[p].kind else { unreachable!() };
            specs.push(OptParam { param: p, grad: i, decay: model.config.decays(parts), backbone: false });
        }
        let exe = e.compile(&g2, &weights).unwrap();
        let mut opt = e.optimizer(&exe, &specs, OptSettings::adamw(0.05)).unwrap();
        for (step, want) in r.tensors["adamw.losses"].1.iter().enumerate() {
            let out = pollster::block_on(train_step(&e.ctx, &exe, &mut opt, &inputs, 2e-3)).unwrap();
            assert!(
                (out[0][0] - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{name}: loss at step {step}: {} vs official {want}",
                out[0][0]
            );
        }
        for &p in &params {
            let TensorKind::Param { parts } = &g2.tensors[p].kind else { unreachable!() };
            let pname = &parts[0].0;
            let got = pollster::block_on(exe.read_param(&e.ctx, p, g2.numel(p))).unwrap();
            let want = &r.tensors[&format!("adamw.step3.{pname}")].1;
            let g0 = &r.tensors[&format!("grad.{pname}")].1;
            let gmax = g0.iter().fold(0f32, |a, b| a.max(b.abs()));
            // As in three_adamw_steps_match_torch: coordinates whose gradient is (near) zero are
            // rounding noise amplified by Adam in both frameworks.
            let kept: Vec<usize> = (0..got.len()).filter(|&i| g0[i].abs() > 1e-5 * gmax).collect();
            let d = kept.iter().map(|&i| (got[i] - want[i]).abs()).fold(0f32, f32::max);
            assert!(d <= 5e-5, "{name}: {pname} after 3 AdamW steps: max |diff| {d}");
        }
    }
}
