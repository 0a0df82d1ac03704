//! Training parity with PyTorch/timm (fixtures from scripts/make_fixtures.py):
//! for a fixed batch, the label-smoothed loss and every parameter gradient.
//! Tolerance: loss within 1e-5 relative; each gradient tensor within
//! 1e-3 * max |timm's gradient of that tensor|.

mod common;
use common::*;
use std::path::Path;
use vitrine::graph::autodiff::backward;
use vitrine::graph::TensorKind;
use vitrine::models::Model;
use vitrine::weights::Weights as Ckpt;

#[test]
fn loss_and_every_parameter_gradient_match_timm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["vit_plain", "deit_distilled", "vit_avg_reg_ls"] {
        let model = Model::load(&root.join(name), None).unwrap();
        let r = Ckpt::load(&root.join(name).join("train_reference.safetensors")).expect("train fixture (scripts/make_fixtures.py)");
        let mut g = model.graph(2).unwrap();
        let logits = g.outputs.pop().unwrap();
        let target = g.input(&[2]);
        let rows = g.cross_entropy(logits, target, 0.1).unwrap();
        let mean = g.cross_entropy_mean(logits, target, 0.1).unwrap();
        g.output(mean);
        let params: Vec<usize> = (0..g.tensors.len()).filter(|&t| matches!(g.tensors[t].kind, TensorKind::Param { .. })).collect();
        let seed = g.fill(&[2], 0.5).unwrap(); // d mean / d row
        let grads = backward(&mut g, rows, seed, &params).unwrap();
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
