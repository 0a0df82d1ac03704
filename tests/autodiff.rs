//! Backward rules against finite differences (f32, small shapes).
//! For L = sum(out * r) with a random r, each gradient computed on the GPU by
//! the backward graph must match (a) the same backward graph evaluated on the
//! CPU within 1e-4 * max(1, max|g|), and (b) central differences of the CPU
//! forward, dL/dp ~ (L(p + e) - L(p - e)) / 2e with e = 1e-2, within
//! 2e-2 * max(1, |g|) (f32 forward; the error is dominated by rounding).

mod common;
use common::*;
use vitrine::autodiff::backward;
use vitrine::graph::{Graph, TensorId};
use vitrine::ops::Act;

/// Builds the forward graph; returns (graph, output, tensors to differentiate).
type Build = dyn Fn(&mut Graph) -> (TensorId, Vec<TensorId>);

fn loss(g: &Graph, inputs: &[Vec<f32>], w: &Weights, r: &[f32]) -> f64 {
    let out = g.eval_cpu(inputs, w).unwrap();
    out[0].iter().zip(r).map(|(a, b)| *a as f64 * *b as f64).sum()
}

fn check_grads(name: &str, build: &Build, weights: Weights, inputs: Vec<Vec<f32>>) {
    // Forward-only graph for finite differences.
    let mut fwd = Graph::new();
    let (out, _) = build(&mut fwd);
    fwd.output(out);
    let r = rand_vec(fwd.numel(out), 99, 1.0);

    // Forward + backward graph.
    let mut g = Graph::new();
    let (out, wrt) = build(&mut g);
    let seed = g.input(g.shape(out).to_vec().as_slice());
    let grads = backward(&mut g, out, seed, &wrt).unwrap();
    for &d in &grads {
        g.output(d);
    }
    let mut all_inputs = inputs.clone();
    all_inputs.push(r.clone());
    let refs: Vec<&[f32]> = all_inputs.iter().map(|v| v.as_slice()).collect();
    let gpu = engine().run_once(&g, &weights, &refs).unwrap();
    let cpu = g.eval_cpu(&all_inputs, &weights).unwrap();

    for (k, &t) in wrt.iter().enumerate() {
        let (d, m) = max_diff(&gpu[k], &cpu[k]);
        assert!(d <= 1e-4 * m.max(1.0), "{name}: grad {k}: GPU vs CPU backward differ by {d} (max {m})");
        assert!(gpu[k].iter().any(|v| *v != 0.0), "{name}: grad {k} is all zeros");
        // Central differences on a few elements of the same tensor.
        let n = g.numel(t);
        let picks: Vec<usize> = (0..n).step_by((n / 6).max(1)).take(6).collect();
        for i in picks {
            let eps = 1e-2f32;
            let eval = |delta: f32| {
                let mut w2 = weights.clone();
                let mut in2 = inputs.clone();
                match &g.tensors[t].kind {
                    vitrine::graph::TensorKind::Param { parts } => {
                        // Find the checkpoint tensor (part) holding element i.
                        let mut j = i;
                        for (name, shape) in parts {
                            let n: usize = shape.iter().product();
                            if j < n {
                                w2.get_mut(name).unwrap()[j] += delta;
                                break;
                            }
                            j -= n;
                        }
                    }
                    vitrine::graph::TensorKind::Input => {
                        let pos = g.inputs.iter().position(|&x| x == t).unwrap();
                        in2[pos][i] += delta;
                    }
                    _ => unreachable!(),
                }
                loss(&fwd, &in2, &w2, &r)
            };
            let fd = (eval(eps) - eval(-eps)) / (2.0 * eps as f64);
            let got = gpu[k][i] as f64;
            assert!((fd - got).abs() <= 2e-2 * got.abs().max(1.0), "{name}: grad {k}[{i}]: backward {got}, finite difference {fd}");
        }
    }
}

fn params(names: &[(&str, usize, u64, f32)]) -> Weights {
    names.iter().map(|(n, len, seed, s)| (n.to_string(), rand_vec(*len, *seed, *s))).collect()
}

#[test]
fn linear_with_every_epilogue() {
    let (b, t, k, n) = (2, 3, 8, 6);
    for (act, gamma, res) in [(Act::None, false, false), (Act::Gelu, false, false), (Act::None, true, true), (Act::Gelu, true, true)] {
        let build = move |g: &mut Graph| {
            let x = g.input(&[b, t, k]);
            let r = res.then(|| g.input(&[b, t, n]));
            let w = g.param("w", &[n, k]);
            let bias = g.param("b", &[n]);
            let ga = gamma.then(|| g.param("g", &[n]));
            let y = g.linear_fused(x, w, Some(bias), act, ga, r).unwrap();
            let mut wrt = vec![x, w, bias];
            wrt.extend(ga);
            wrt.extend(r);
            (y, wrt)
        };
        let weights = params(&[("w", n * k, 1, 0.5), ("b", n, 2, 0.5), ("g", n, 3, 1.0)]);
        let mut inputs = vec![rand_vec(b * t * k, 4, 1.0)];
        if res {
            inputs.push(rand_vec(b * t * n, 5, 1.0));
        }
        check_grads(&format!("linear {act:?} gamma={gamma} res={res}"), &build, weights, inputs);
    }
}

#[test]
fn batched_matmul_and_a_two_layer_chain() {
    let build = |g: &mut Graph| {
        let a = g.input(&[3, 4, 8]);
        let b = g.input(&[3, 5, 8]);
        (g.bmm(a, b).unwrap(), vec![a, b])
    };
    check_grads("bmm", &build, Weights::new(), vec![rand_vec(96, 1, 1.0), rand_vec(120, 2, 1.0)]);
    // x used twice (residual and matmul input): gradients must add up.
    let build = |g: &mut Graph| {
        let x = g.input(&[5, 8]);
        let w1 = g.param("w1", &[8, 8]);
        let w2 = g.param("w2", &[8, 8]);
        let h = g.linear_fused(x, w1, None, Act::Gelu, None, None).unwrap();
        let y = g.linear_fused(h, w2, None, Act::None, None, Some(x)).unwrap();
        let z = g.add_scale(y, x, 0.5).unwrap();
        (z, vec![x, w1, w2])
    };
    let weights = params(&[("w1", 64, 3, 0.6), ("w2", 64, 4, 0.6)]);
    check_grads("chain", &build, weights, vec![rand_vec(40, 5, 1.0)]);
}

#[test]
fn layernorm_attention_pool_tokens_im2col() {
    let build = |g: &mut Graph| {
        let x = g.input(&[3, 10]);
        let w = g.param("w", &[10]);
        let b = g.param("b", &[10]);
        (g.layernorm(x, w, b, 1e-6).unwrap(), vec![x, w, b])
    };
    let weights = params(&[("w", 10, 1, 1.0), ("b", 10, 2, 1.0)]);
    check_grads("layernorm", &build, weights, vec![rand_vec(30, 3, 2.0)]);

    for (b, t, h, d) in [(2, 5, 2, 4), (1, 7, 3, 3)] {
        let build = move |g: &mut Graph| {
            let qkv = g.input(&[b, t, 3 * h * d]);
            (g.attention(qkv, h).unwrap(), vec![qkv])
        };
        check_grads(&format!("attention {b}x{t} h{h} d{d}"), &build, Weights::new(), vec![rand_vec(b * t * 3 * h * d, 4, 1.0)]);
    }

    use vitrine::ops::{PoolMode, PosMode};
    for mode in [PoolMode::Token(1), PoolMode::Avg(1), PoolMode::Max(0)] {
        let build = move |g: &mut Graph| {
            let x = g.input(&[2, 5, 4]);
            (g.pool(x, mode).unwrap(), vec![x])
        };
        // Values 0.1 apart (>> the 1e-2 step), so no difference crosses the max's kink.
        let x: Vec<f32> = (0..40).map(|i| ((i * 17) % 40) as f32 * 0.1 - 2.0).collect();
        check_grads(&format!("pool {mode:?}"), &build, Weights::new(), vec![x]);
    }

    for (npre, mode) in [(2, PosMode::All), (3, PosMode::PatchesOnly)] {
        let build = move |g: &mut Graph| {
            let x = g.input(&[2, 4, 3]);
            let pre = g.param("pre", &[npre, 3]);
            let len = if mode == PosMode::All { npre + 4 } else { 4 };
            let pos = g.param("pos", &[len, 3]);
            (g.tokens(x, Some(pre), Some(pos), mode).unwrap(), vec![x, pre, pos])
        };
        let weights = params(&[("pre", npre * 3, 6, 1.0), ("pos", (npre + 4) * 3, 7, 1.0)]);
        let mut w = weights;
        if mode == PosMode::PatchesOnly {
            w.get_mut("pos").unwrap().truncate(12);
        }
        check_grads(&format!("tokens {mode:?}"), &build, w, vec![rand_vec(24, 8, 1.0)]);
    }

    let build = |g: &mut Graph| {
        let img = g.input(&[2, 3, 9, 7]);
        (g.im2col(img, 3).unwrap(), vec![img])
    };
    check_grads("im2col (ragged edge)", &build, Weights::new(), vec![rand_vec(2 * 3 * 9 * 7, 9, 1.0)]);
}

/// Gradients of a fixture model's output with respect to its input and the named parameters.
fn fixture_grads(name: &str, params: &'static [&'static str]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let model = vitrine::models::Model::load(&root.join(name), None).unwrap();
    let weights = model.weights.data();
    let cfg = model.config.clone();
    let input = vitrine::weights::Weights::load(&root.join(name).join("reference.safetensors")).unwrap().tensors["input"].clone();
    let batch = input.0[0];
    let build = move |g: &mut Graph| {
        *g = vitrine::models::build(&cfg, batch).unwrap();
        // The logits (the last output; DVT's earlier exits are not differentiated here).
        let out = g.outputs.pop().unwrap();
        g.outputs.clear();
        let find = |g: &Graph, n: &str| {
            (0..g.tensors.len())
                .find(|&t| matches!(&g.tensors[t].kind, vitrine::graph::TensorKind::Param { parts } if parts[0].0 == n))
                .unwrap()
        };
        let mut wrt = vec![g.inputs[0]];
        for n in params {
            wrt.push(find(g, n));
        }
        (out, wrt)
    };
    check_grads(name, &build, weights, vec![input.1]);
}

#[test]
fn whole_vit_fixtures() {
    // Every op of the forward pass composed: distilled heads and pos over all
    // tokens (DeiT), registers, no_embed_class, layer scale, avg pool, fc_norm.
    for name in ["deit_distilled", "vit_avg_reg_ls"] {
        fixture_grads(
            name,
            &["patch_embed.proj.weight", "pos_embed", "blocks.0.attn.qkv.weight", "blocks.1.norm2.weight", "blocks.1.mlp.fc1.bias"],
        );
    }
}

#[test]
fn swin_window_partition_reverse_and_merge() {
    use vitrine::ops::WindowGeom;
    // 5x7 map, 3x4 windows (padded to 6x8), shift (1, 2): every index path of the kernels.
    let geom = WindowGeom { b: 2, h: 5, w: 7, c: 3, wh: 3, ww: 4, sh: 1, sw: 2 };
    let build = move |g: &mut Graph| {
        let x = g.input(&[2, 35, 3]);
        let r = g.input(&[2, 35, 3]);
        let w = g.param("w", &[3, 3]);
        let win = g.window_partition(x, geom).unwrap();
        let y = g.linear(win, w, None).unwrap();
        (g.window_reverse(y, Some(r), geom).unwrap(), vec![x, r, w])
    };
    let weights = params(&[("w", 9, 1, 0.8)]);
    check_grads("window partition/reverse", &build, weights, vec![rand_vec(210, 2, 1.0), rand_vec(210, 3, 1.0)]);
    // Patch merging of an odd 5x7 map (zero-padded to 6x8) into [2, 3*4, 12].
    let build = |g: &mut Graph| {
        let x = g.input(&[2, 35, 3]);
        let w = g.param("w", &[5, 12]);
        let m = g.patch_merge(x, 2, 5, 7).unwrap();
        (g.linear(m, w, None).unwrap(), vec![x, w])
    };
    let weights = params(&[("w", 60, 4, 0.5)]);
    check_grads("patch merge", &build, weights, vec![rand_vec(210, 5, 1.0)]);
}

#[test]
fn swin_window_attention_with_relative_bias_and_mask() {
    use vitrine::ops::{AttnBias, WindowMask};
    // 2 images of a 5x4 map in 3x2 windows (padded to 6x4: 2x2 windows), shift (1, 1), 2 heads of 4.
    let (wh, ww, heads, d) = (3, 2, 2, 4);
    let n = wh * ww;
    let mask = WindowMask { nw: 4, nww: 2, wh, ww, hp: 6, wp: 4, sh: 1, sw: 1 };
    for masked in [false, true] {
        let build = move |g: &mut Graph| {
            let qkv = g.input(&[8, n, 3 * heads * d]);
            let table = g.param("table", &[(2 * wh - 1) * (2 * ww - 1), heads]);
            let bias = g.rel_pos_bias(table, wh, ww).unwrap();
            let ab = AttnBias { bias, heads, mask: masked.then_some(mask) };
            (g.attention_biased(qkv, heads, Some(ab)).unwrap(), vec![qkv, table])
        };
        let weights = params(&[("table", 30, 6, 1.0)]);
        check_grads(&format!("window attention masked={masked}"), &build, weights, vec![rand_vec(8 * n * 24, 7, 1.0)]);
    }
}

#[test]
fn whole_swin_fixture() {
    // Patch embedding, padded shifted windows, relative bias, masks, odd patch merging.
    fixture_grads(
        "swin_3stage_pad",
        &[
            "patch_embed.proj.weight",
            "layers.0.blocks.1.attn.relative_position_bias_table",
            "layers.1.blocks.1.attn.qkv.weight",
            "layers.2.downsample.reduction.weight",
            "layers.2.blocks.0.norm1.bias",
        ],
    );
}

#[test]
fn cross_entropy_with_label_smoothing() {
    for smoothing in [0.0f32, 0.1] {
        let build = move |g: &mut Graph| {
            let x = g.input(&[3, 7]);
            let t = g.input(&[3]);
            (g.cross_entropy(x, t, smoothing).unwrap(), vec![x])
        };
        let logits = rand_vec(21, 11, 3.0);
        check_grads(&format!("cross_entropy s={smoothing}"), &build, Weights::new(), vec![logits.clone(), vec![2.0, 0.0, 6.0]]);
        // The value itself: against the formula evaluated here in f64.
        let mut g = Graph::new();
        let x = g.input(&[3, 7]);
        let t = g.input(&[3]);
        let m = g.cross_entropy_mean(x, t, smoothing).unwrap();
        g.output(m);
        let targets = [2.0f32, 0.0, 6.0];
        let got = engine().run_once(&g, &Weights::new(), &[&logits, &targets]).unwrap()[0][0] as f64;
        let mut want = 0.0;
        for b in 0..3 {
            let row: Vec<f64> = logits[b * 7..(b + 1) * 7].iter().map(|&v| v as f64).collect();
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            let logp: Vec<f64> = row.iter().map(|v| v - lse).collect();
            let s = smoothing as f64;
            want += -(1.0 - s) * logp[targets[b] as usize] - s * logp.iter().sum::<f64>() / 7.0;
        }
        want /= 3.0;
        assert!((got - want).abs() < 1e-5 * want.abs().max(1.0), "loss {got} vs {want}");
    }
}

#[test]
fn token_pool_max_and_avg() {
    use vitrine::ops::TokenPoolKind;
    // [2, 8, 3], k = 3, s = 2: windows 0..3, 2..5, 4..7 overlap by one token; token 7 is dropped.
    for kind in [TokenPoolKind::Max, TokenPoolKind::Avg] {
        let build = move |g: &mut Graph| {
            let x = g.input(&[2, 8, 3]);
            (g.token_pool(x, kind, 3, 2).unwrap(), vec![x])
        };
        // A permutation of values 0.1 apart (>> the 1e-2 step): every window's argmax is stable.
        let x: Vec<f32> = (0..48).map(|i| ((i * 29) % 48) as f32 * 0.1 - 2.4).collect();
        check_grads(&format!("token_pool {kind:?}"), &build, Weights::new(), vec![x]);
    }
}

#[test]
fn token_pool_max_backward_sums_overlapping_windows() {
    use vitrine::graph::Op;
    use vitrine::ops::{TokenPoolGrad, TokenPoolKind};
    // x [1, 6, 2], k = 3, s = 2: windows over tokens 0..3 and 2..5; token 5 dropped.
    // Channel 0: [1, 5, 5, 2, 0, 9]: window 0 ties at tokens 1 and 2 (the first
    // wins), window 1's max is token 2. Channel 1: [-1, -2, 3, -4, -5, 7]: token 2
    // is the max of both windows and receives both gradients.
    let ch0 = [1.0f32, 5.0, 5.0, 2.0, 0.0, 9.0];
    let ch1 = [-1.0f32, -2.0, 3.0, -4.0, -5.0, 7.0];
    let x: Vec<f32> = (0..6).flat_map(|t| [ch0[t], ch1[t]]).collect();
    let dy = [10.0f32, 100.0, 20.0, 200.0];
    let want_max = [0.0f32, 0.0, 10.0, 0.0, 20.0, 300.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let (a, b) = (10.0f32 / 3.0, 20.0f32 / 3.0);
    let want_avg = [a, 100.0 / 3.0, a, 100.0 / 3.0, a + b, 300.0 / 3.0, b, 200.0 / 3.0, b, 200.0 / 3.0, 0.0, 0.0];
    for (kind, want) in [(TokenPoolKind::Max, want_max), (TokenPoolKind::Avg, want_avg)] {
        let mut g = Graph::new();
        let xi = g.input(&[1, 6, 2]);
        let y = g.token_pool(xi, kind, 3, 2).unwrap();
        let seed = g.input(&[1, 2, 2]);
        let dx = backward(&mut g, y, seed, &[xi]).unwrap()[0];
        g.output(dx);
        let cpu = g.eval_cpu(&[x.clone(), dy.to_vec()], &Weights::new()).unwrap().remove(0);
        let gpu = engine().run_once(&g, &Weights::new(), &[&x, &dy]).unwrap().remove(0);
        for (what, got) in [("cpu", &cpu), ("gpu", &gpu)] {
            let (d, _) = max_diff(got, &want);
            assert!(d <= 1e-4, "token_pool {kind:?} backward {what}: {got:?}, want {want:?}");
        }
        if kind == TokenPoolKind::Max {
            assert_eq!(gpu, want, "max routing adds the routed values exactly");
        }
        // No second derivative.
        let grad = TokenPoolGrad {
            x: xi,
            dy: seed,
            kind,
            dims: vitrine::ops::TokenPoolDims { batch: 1, tokens: 6, channels: 2, kernel: 3, stride: 2 },
        };
        assert!(grad.backward(&mut g, dx, seed).is_err());
    }
}

#[test]
fn unfold_image_and_tokens() {
    use vitrine::ops::UnfoldInput;
    // [2, 3, 7, 6], k = 3, s = 2, p = 1: windows overlap by one pixel and read the padding.
    for input in [UnfoldInput::Image, UnfoldInput::Tokens] {
        let shape = match input {
            UnfoldInput::Image => vec![2, 3, 7, 6],
            UnfoldInput::Tokens => vec![2, 42, 3],
        };
        let build = move |g: &mut Graph| {
            let x = g.input(&shape);
            (g.unfold(x, input, [7, 6], 3, 2, 1).unwrap(), vec![x])
        };
        check_grads(&format!("unfold {input:?}"), &build, Weights::new(), vec![rand_vec(252, 61, 1.0)]);
    }
}

#[test]
fn fold_backward_is_unfold() {
    use vitrine::ops::{Fold, UnfoldDims, UnfoldInput};
    // Fold as a forward op: [1, 2, 5, 5] from k = 3, s = 2, p = 1 windows (overlapping, padded).
    let dims = UnfoldDims { batch: 1, channels: 2, height: 5, width: 5, kernel: 3, stride: 2, padding: 1 };
    assert_eq!(dims.out_hw(), [3, 3]);
    for input in [UnfoldInput::Image, UnfoldInput::Tokens] {
        let build = move |g: &mut Graph| {
            let dcols = g.input(&dims.output_shape());
            (g.push(Box::new(Fold { dcols, dims, input }), &dims.input_shape(input)), vec![dcols])
        };
        check_grads(&format!("fold {input:?}"), &build, Weights::new(), vec![rand_vec(9 * 18, 62, 1.0)]);
    }
}

#[test]
fn masked_softmax_scores_and_policy() {
    // Policy values in (0.2, 0.8): every perturbation changes the weights.
    // (B, H, N, flat): N = 70 spans two key blocks of the policy gradient.
    for &(b, h, n, flat) in &[(2, 3, 5, false), (1, 2, 70, true)] {
        let build = move |g: &mut Graph| {
            let a = g.input(&if flat { vec![b * h, n, n] } else { vec![b, h, n, n] });
            let p = g.input(&[b, n]);
            (g.masked_softmax(a, p).unwrap(), vec![a, p])
        };
        let policy: Vec<f32> = rand_vec(b * n, 72, 0.29).iter().map(|v| 0.5 + v).collect();
        let inputs = vec![rand_vec(b * h * n * n, 71, 2.0), policy];
        check_grads(&format!("masked_softmax b={b} h={h} n={n} flat={flat}"), &build, Weights::new(), inputs);
    }
}

#[test]
fn masked_softmax_rows_sum_to_one_so_a_uniform_dout_has_no_gradient() {
    use vitrine::graph::Op;
    use vitrine::ops::{MaskedSoftmaxDims, MaskedSoftmaxGrad, MaskedSoftmaxPolicyGrad};
    // sum_k out[q, k] = 1 for any scores and policy (eps terms included), so
    // dout = 1 everywhere gives zero gradients, through the max too.
    let (b, h, n) = (2, 2, 9);
    let mut g = Graph::new();
    let a = g.input(&[b, h, n, n]);
    let p = g.input(&[b, n]);
    let y = g.masked_softmax(a, p).unwrap();
    let seed = g.input(&[b, h, n, n]);
    let grads = backward(&mut g, y, seed, &[a, p]).unwrap();
    g.output(grads[0]);
    g.output(grads[1]);
    let policy: Vec<f32> = (0..b * n).map(|i| [0.0f32, 1.0, 0.3][i % 3]).collect();
    let inputs = [rand_vec(b * h * n * n, 81, 5.0), policy, vec![1.0f32; b * h * n * n]];
    let cpu = g.eval_cpu(&inputs, &Weights::new()).unwrap();
    let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
    let gpu = engine().run_once(&g, &Weights::new(), &refs).unwrap();
    for (what, got) in [("cpu", &cpu), ("gpu", &gpu)] {
        for (k, grad) in got.iter().enumerate() {
            let m = grad.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(m <= 1e-5, "masked_softmax {what}: grad {k} of a uniform dout reaches {m}");
        }
    }
    // No second derivatives.
    let dims = MaskedSoftmaxDims { batch: b, heads: h, tokens: n };
    assert!(MaskedSoftmaxGrad { scores: a, policy: p, dout: seed, dims }.backward(&mut g, grads[0], seed).is_err());
    assert!(MaskedSoftmaxPolicyGrad { scores: a, policy: p, dout: seed, stats: seed, dims }.backward(&mut g, grads[1], seed).is_err());
}

#[test]
fn masked_softmax_gradient_through_the_max_where_the_eps_terms_matter() {
    // The max is over all keys, so it enters the output through the eps terms:
    // negligible in general, but not when a dropped key holds the max and the
    // kept keys' e = exp(a - m) are of order eps. Here key 0 (score ~10) is
    // dropped: queries 1 and 2 see keys 1 and 2 with e ~ exp(-10) ~ 4.5e-5.
    // Both gradients against f64 central differences of the definition (step
    // 1e-7: d/dp[0] is ~1e4 and curved on the scale of S ~ 1e-4).
    let (n, eps) = (3usize, 1e-6f64);
    let a: Vec<f32> = vec![10.0, 0.3, -0.2, 10.1, 0.1, -0.3, 9.9, 0.2, 0.05];
    let p: Vec<f32> = vec![0.0, 1.0, 0.7];
    let r = rand_vec(n * n, 91, 1.0);
    let loss = |a: &[f64], p: &[f64]| -> f64 {
        let mut l = 0.0;
        for q in 0..n {
            let row = &a[q * n..(q + 1) * n];
            let m = row.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = (0..n).map(|k| (row[k] - m).exp() * if k == q { 1.0 } else { p[k] }).collect();
            let s: f64 = e.iter().sum();
            l += (0..n).map(|k| (e[k] + eps / n as f64) / (s + eps) * r[q * n + k] as f64).sum::<f64>();
        }
        l
    };
    let (a64, p64): (Vec<f64>, Vec<f64>) = (a.iter().map(|&v| v as f64).collect(), p.iter().map(|&v| v as f64).collect());
    let h = 1e-7;
    let fd = |x: &[f64], i: usize, wrt_a: bool| {
        let (mut hi, mut lo) = (x.to_vec(), x.to_vec());
        hi[i] += h;
        lo[i] -= h;
        let (lh, ll) = if wrt_a { (loss(&hi, &p64), loss(&lo, &p64)) } else { (loss(&a64, &hi), loss(&a64, &lo)) };
        (lh - ll) / (2.0 * h)
    };
    let want_a: Vec<f64> = (0..n * n).map(|i| fd(&a64, i, true)).collect();
    let want_p: Vec<f64> = (0..n).map(|i| fd(&p64, i, false)).collect();

    let mut g = Graph::new();
    let ai = g.input(&[1, 1, n, n]);
    let pi = g.input(&[1, n]);
    let y = g.masked_softmax(ai, pi).unwrap();
    let seed = g.input(&[1, 1, n, n]);
    let grads = backward(&mut g, y, seed, &[ai, pi]).unwrap();
    g.output(grads[0]);
    g.output(grads[1]);
    let cpu = g.eval_cpu(&[a.clone(), p.clone(), r.clone()], &Weights::new()).unwrap();
    let gpu = engine().run_once(&g, &Weights::new(), &[&a, &p, &r]).unwrap();
    for (what, got) in [("cpu", &cpu), ("gpu", &gpu)] {
        for (k, want) in [(0, &want_a), (1, &want_p)] {
            for (i, (&gv, &w)) in got[k].iter().zip(want.iter()).enumerate() {
                assert!((gv as f64 - w).abs() <= 1e-4 * w.abs().max(1.0), "{what}: grad {k}[{i}] = {gv}, finite difference {w}");
            }
        }
    }
}

#[test]
fn performer_row_ops() {
    // row_dot (with itself too: both bindings' gradients add), and the row-broadcast
    // scale, divide and feature map the Performer is made of.
    let (r, n) = (6, 5);
    let build = move |g: &mut Graph| {
        let a = g.input(&[2, 3, n]);
        let b = g.input(&[2, 3, n]);
        let s = g.input(&[2, 3, 1]);
        let sq = g.row_dot(a, a).unwrap();
        let ab = g.row_dot(a, b).unwrap();
        let m = g.mul_row(b, ab, 0.7).unwrap();
        let e = g.prm_exp(m, sq, 0.5).unwrap();
        let d = g.div_row(e, s, 0.1).unwrap();
        (d, vec![a, b, s])
    };
    let inputs = vec![rand_vec(r * n, 63, 0.6), rand_vec(r * n, 64, 0.6), rand_vec(r, 65, 0.3).iter().map(|v| v + 1.0).collect()];
    check_grads("performer row ops", &build, Weights::new(), inputs);
}

#[test]
fn whole_t2t_fixtures() {
    // The soft splits (unfold and its fold), the Performer (feature map, normaliser,
    // linear attention, value residual) and the token transformer; the frozen w and
    // pos_embed are read, not differentiated.
    fixture_grads(
        "t2t_performer",
        &[
            "tokens_to_token.attention1.kqv.weight",
            "tokens_to_token.attention2.proj.bias",
            "tokens_to_token.project.weight",
            "blocks.0.attn.qkv.weight",
        ],
    );
    fixture_grads(
        "t2t_transformer",
        &[
            "tokens_to_token.attention1.attn.qkv.weight",
            "tokens_to_token.attention2.attn.proj.bias",
            "tokens_to_token.project.weight",
            "blocks.0.attn.qkv.weight",
        ],
    );
}

#[test]
fn dynamicvit_training_rules() {
    // The predictor's masked local / global mix (gradients to the features and to a
    // fractional policy, odd C), the class-token policy prefix feeding the masked
    // attention (to qkv and the decisions), the distillation KL (to the student) and a
    // loss total (sum_rows_as).
    let (b, n, c, heads) = (2, 5, 7, 2);
    let policy: Vec<f32> = rand_vec(b * n, 81, 0.4).iter().map(|v| 0.6 + v).collect();
    let build = move |g: &mut Graph| {
        let h = g.input(&[b, n, c]);
        let keep = g.input(&[b, n, 1]);
        (g.local_global(h, Some(keep)).unwrap(), vec![h, keep])
    };
    check_grads("local_global with a policy", &build, Weights::new(), vec![rand_vec(b * n * c, 82, 1.0), policy.clone()]);
    let build = move |g: &mut Graph| {
        let qkv = g.input(&[b, n + 1, 3 * 4]);
        let keep = g.input(&[b, n, 1]);
        let p = g.policy_prefix(keep).unwrap();
        (g.attention_policy(qkv, heads, p).unwrap(), vec![qkv, keep])
    };
    check_grads("policy prefix + masked attention", &build, Weights::new(), vec![rand_vec(b * (n + 1) * 12, 83, 1.0), policy]);
    let build = move |g: &mut Graph| {
        let s = g.input(&[b, 6]);
        let t = g.input(&[b, 6]);
        (g.kl_div(s, t).unwrap(), vec![s])
    };
    check_grads("kl_div", &build, Weights::new(), vec![rand_vec(b * 6, 84, 2.0), rand_vec(b * 6, 85, 2.0)]);
    let build = move |g: &mut Graph| {
        let x = g.input(&[b, n, 1]);
        (g.sum_rows_as(x, b * n, 1).unwrap(), vec![x])
    };
    check_grads("sum_rows_as", &build, Weights::new(), vec![rand_vec(b * n, 86, 1.0)]);
}

#[test]
fn dvt_reuse_ops() {
    // DVT's reuse plumbing: the token resample (7x7 -> 14 -> 10x10 with the class token zeroed,
    // and 3x3 -> 6 -> 5x5 keeping it, both bins of 2 and 3), concat along the last dimension,
    // the relation-reuse attention (scores + rel_in, the logits as a second
    // result) and the relation transpose into [B*H, T, T].
    use vitrine::ops::ResampleDims;
    let build = move |g: &mut Graph| {
        let f = g.input(&[2, 50, 3]);
        let x = g.input(&[2, 101, 4]);
        let d = ResampleDims { outer: 2, inner: 3, s_in: 7, up: 14, s_out: 10, keep_cls: false };
        let r = g.token_resample(f, d, &[2, 101, 3]).unwrap();
        let h = g.concat_last(x, r).unwrap();
        let a = g.input(&[2, 10, 10, 2]);
        let d2 = ResampleDims { outer: 2, inner: 10 * 2, s_in: 3, up: 6, s_out: 5, keep_cls: true };
        let a = g.token_resample(a, d2, &[2, 26, 10, 2]).unwrap();
        let s = g.slice_last(a, 0, 1).unwrap();
        let s = g.transpose_shaped(s, [2, 26 * 10, 1], &[2, 260]).unwrap();
        let s = g.slice_last(s, 0, 7).unwrap();
        let hs = g.slice_last(h, 0, 7).unwrap();
        let hs = g.pool(hs, vitrine::ops::PoolMode::Avg(0)).unwrap();
        let out = g.add_scale(hs, s, 1.0).unwrap();
        (out, vec![f, x])
    };
    let inputs = vec![rand_vec(2 * 50 * 3, 71, 0.8), rand_vec(2 * 101 * 4, 72, 0.8), rand_vec(2 * 10 * 10 * 2, 73, 0.8)];
    check_grads("dvt resample / concat", &build, Weights::new(), inputs);

    let build = move |g: &mut Graph| {
        let qkv = g.input(&[2, 5, 3 * 2 * 3]);
        let rel = g.input(&[2 * 2, 5, 5]);
        let (o, a) = g.attention_relation(qkv, 2, Some(rel)).unwrap();
        let a = g.transpose_shaped(a, [2, 2, 25], &[2, 25, 2]).unwrap();
        let a = g.pool(a, vitrine::ops::PoolMode::Avg(0)).unwrap();
        let o = g.pool(o, vitrine::ops::PoolMode::Avg(0)).unwrap();
        let o = g.slice_last(o, 0, 2).unwrap();
        let out = g.add_scale(o, a, 1.0).unwrap();
        (out, vec![qkv, rel])
    };
    let inputs = vec![rand_vec(2 * 5 * 18, 74, 0.8), rand_vec(4 * 25, 75, 0.8)];
    check_grads("dvt relation attention", &build, Weights::new(), inputs);
}

#[test]
fn whole_dvt_fixture() {
    // Both reuse paths of exit 1 and 2 (feature MLP, relation convs), through the summed loss's
    // graph: gradients reach exit 0 through them.
    fixture_grads(
        "dvt_deit_tiny",
        &[
            "less_token.relation_reuse_conv.0.weight",
            "normal_token.blocks.0.feature_resuse_mlp.1.fc2.weight",
            "less_less_token.blocks.1.attn.qkv.weight",
        ],
    );
}
