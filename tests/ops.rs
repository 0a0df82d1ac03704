//! Every kernel against its plain CPU reference, on awkward shapes: sizes that
//! are not multiples of the tile, one token, batch > 1, head dims 15/24/64.
//! Tolerance: max |gpu - cpu| <= 1e-4 * max(1, max |cpu|) unless stated.

mod common;
use common::*;
use vitrine::graph::{Graph, MatmulKind};
use vitrine::ops::{Act, Layout, PoolMode, PosMode};

fn check(g: &Graph, w: &Weights, inputs: &[Vec<f32>], what: &str) {
    check_with(g, w, inputs, what, None)
}

fn check_with(g: &Graph, w: &Weights, inputs: &[Vec<f32>], what: &str, kind: Option<MatmulKind>) {
    let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
    let cpu = g.eval_cpu(inputs, w).unwrap();
    let gpu = {
        let mut e = engine();
        e.force_matmul(kind).unwrap();
        let r = e.run_once(g, w, &refs);
        e.force_matmul(None).unwrap();
        r.unwrap()
    };
    for (c, gv) in cpu.iter().zip(&gpu) {
        let (d, m) = max_diff(gv, c);
        assert!(d <= 1e-4 * m.max(1.0), "{what}: max diff {d} (max |ref| {m})");
        assert!(c.iter().any(|v| *v != 0.0), "{what}: reference is all zeros");
    }
}

fn linear_case(m: usize, n: usize, k: usize, act: Act, gamma: bool, res: bool, kind: Option<MatmulKind>) {
    let mut g = Graph::new();
    let x = g.input(&[m, k]);
    let wt = g.param("w", &[n, k]);
    let b = g.param("b", &[n]);
    let ga = gamma.then(|| g.param("g", &[n]));
    let r = res.then(|| g.input(&[m, n]));
    let y = g.linear_fused(x, wt, Some(b), act, ga, r).unwrap();
    g.output(y);
    let mut w = Weights::new();
    w.insert("w".into(), rand_vec(n * k, 1, 0.5));
    w.insert("b".into(), rand_vec(n, 2, 0.5));
    w.insert("g".into(), rand_vec(n, 3, 1.0));
    let mut inputs = vec![rand_vec(m * k, 4, 1.0)];
    if res {
        inputs.push(rand_vec(m * n, 5, 1.0));
    }
    let what = format!("linear m={m} n={n} k={k} {act:?} gamma={gamma} res={res} {kind:?}");
    check_with(&g, &w, &inputs, &what, kind);
}

#[test]
fn linear_all_variants_awkward_shapes() {
    let kinds = engine().matmul_variants();
    assert!(
        kinds.contains(&MatmulKind::Subgroup) || std::env::var("CI").is_err() || !cfg!(target_os = "linux"),
        "lavapipe in CI must offer the subgroup matmul"
    );
    for kind in kinds {
        for &(m, n, k) in &[(1, 1, 4), (7, 9, 12), (65, 130, 68), (197, 72, 64), (3, 200, 100)] {
            linear_case(m, n, k, Act::None, false, false, Some(kind));
        }
        linear_case(37, 41, 24, Act::Gelu, true, true, Some(kind));
        linear_case(70, 66, 36, Act::Gelu, false, true, Some(kind));
    }
}

/// `--precision f16` on an adapter with SHADER_F16: an MLP (fc1 + GELU, fc2 with a
/// residual) whose hidden activation is stored as f16 by fc1 and read as f16 by
/// fc2, on every kernel family and the scalar kernel (K = 13). Tolerance: 1e-2 *
/// max |ref| against the f32 CPU reference (f16 has 11 significant bits); the
/// f16 GPU result must also differ from the f32 GPU one, or the halves did not apply.
#[test]
fn f16_activations_between_matmuls_every_variant() {
    let (kinds, has_f16) = {
        let e = engine();
        (e.matmul_variants(), e.ctx.adapter().shader_f16)
    };
    if !has_f16 {
        assert!(std::env::var("CI").is_err(), "lavapipe in CI must offer SHADER_F16");
        eprintln!("this adapter has no SHADER_F16: f16 activations are not used on it");
        return;
    }
    for kind in kinds {
        for &(m, k, hidden, n) in &[(7, 12, 20, 9), (65, 68, 132, 36), (197, 64, 256, 64), (5, 12, 13, 12)] {
            let mut g = Graph::new();
            let x = g.input(&[m, k]);
            let (w1, b1) = (g.param("w1", &[hidden, k]), g.param("b1", &[hidden]));
            let (w2, b2) = (g.param("w2", &[n, hidden]), g.param("b2", &[n]));
            let r = g.input(&[m, n]);
            let h = g.linear_fused(x, w1, Some(b1), Act::Gelu, None, None).unwrap();
            let y = g.linear_fused(h, w2, Some(b2), Act::None, None, Some(r)).unwrap();
            g.output(y);
            let mut w = Weights::new();
            w.insert("w1".into(), rand_vec(hidden * k, 1, 0.5));
            w.insert("b1".into(), rand_vec(hidden, 2, 0.5));
            w.insert("w2".into(), rand_vec(n * hidden, 3, 0.5));
            w.insert("b2".into(), rand_vec(n, 4, 0.5));
            let inputs = [rand_vec(m * k, 5, 1.0), rand_vec(m * n, 6, 1.0)];
            let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
            let want = g.eval_cpu(&inputs, &w).unwrap().remove(0);
            let what = format!("mlp m={m} k={k} hidden={hidden} n={n} {kind:?}");
            let mut e = engine();
            e.force_matmul(Some(kind)).unwrap();
            assert_eq!(g.store_weights_f16(), 2, "{what}: f16 weights");
            let f16_w = e.run_once(&g, &w, &refs).unwrap().remove(0);
            assert_eq!(g.store_activations_f16(), 1, "{what}: the hidden activation alone");
            assert_eq!(g.dtype(h), vitrine::graph::DType::F16, "{what}");
            let got = e.run_once(&g, &w, &refs).unwrap().remove(0);
            e.force_matmul(None).unwrap();
            let (d, mx) = max_diff(&got, &want);
            assert!(d <= 1e-2 * mx.max(1.0), "{what}: f16 activations off the f32 reference by {d} (max |ref| {mx})");
            assert!(got != f16_w, "{what}: f16 activations changed nothing");
        }
    }
}

#[test]
fn linear_scalar_k_not_multiple_of_4() {
    for &(m, n, k) in &[(1, 1, 1), (5, 7, 147), (49, 33, 27)] {
        linear_case(m, n, k, Act::Gelu, true, true, None);
        linear_case(m, n, k, Act::None, false, false, None);
    }
}

#[test]
fn layernorm_rows() {
    for &(r, c) in &[(1, 1), (1, 5), (197, 64), (10, 768)] {
        let mut g = Graph::new();
        let x = g.input(&[r, c]);
        let w = g.param("w", &[c]);
        let b = g.param("b", &[c]);
        let y = g.layernorm(x, w, b, 1e-6).unwrap();
        g.output(y);
        let mut wt = Weights::new();
        wt.insert("w".into(), rand_vec(c, 1, 1.0));
        wt.insert("b".into(), rand_vec(c, 2, 1.0));
        let mut xv = rand_vec(r * c, 3, 2.0);
        xv.iter_mut().for_each(|v| *v += 3.0); // non-zero mean
        check(&g, &wt, &[xv], &format!("layernorm {r}x{c}"));
    }
}

#[test]
fn attention_token_counts_and_head_dims() {
    // Both implementations against attention computed from its definition.
    for &(b, t, h, d) in &[(1, 1, 1, 15), (2, 5, 3, 24), (1, 50, 2, 64), (3, 17, 4, 15), (1, 197, 1, 8), (2, 197, 3, 64)] {
        let x = rand_vec(b * t * 3 * h * d, 7, 2.0);
        let want = vitrine::ops::attention::reference(&x, b, t, h, d);
        for fused in [false, true] {
            let mut g = Graph::new();
            let qkv = g.input(&[b, t, 3 * h * d]);
            let y = if fused { g.attention_fused(qkv, h) } else { g.attention(qkv, h) }.unwrap();
            g.output(y);
            let what = format!("attention fused={fused} b={b} t={t} h={h} d={d}");
            let cpu = g.eval_cpu(std::slice::from_ref(&x), &Weights::new()).unwrap();
            let (dc, _) = max_diff(&cpu[0], &want);
            assert!(dc <= 1e-5, "{what}: graph CPU reference differs from the definition by {dc}");
            check(&g, &Weights::new(), std::slice::from_ref(&x), &what);
        }
    }
}

#[test]
fn batched_matmul() {
    let kinds = engine().matmul_variants();
    for kind in kinds {
        // (6, 49, 49, 32) and (6, 49, 32, 52): Swin's window products (the subgroup
        // kernel's 56 x 32 blocks); (2, 105, 40, 8): two row and two column blocks of
        // them; (1, 500, 32, 8): nine row blocks (more than one group of 8).
        let shapes = [
            (1, 3, 5, 8),
            (6, 17, 9, 64),
            (4, 33, 70, 20),
            (3, 5, 7, 15),
            (6, 49, 49, 32),
            (6, 49, 32, 52),
            (2, 105, 40, 8),
            (1, 500, 32, 8),
        ];
        for &(z, m, n, k) in &shapes {
            let mut g = Graph::new();
            let a = g.input(&[z, m, k]);
            let b = g.input(&[z, n, k]);
            let y = g.bmm(a, b).unwrap();
            g.output(y);
            let inputs = [rand_vec(z * m * k, 1, 1.0), rand_vec(z * n * k, 2, 1.0)];
            check_with(&g, &Weights::new(), &inputs, &format!("bmm z={z} m={m} n={n} k={k} {kind:?}"), Some(kind));
        }
    }
}

/// `[M, K] . [K, N]` per z from operands in `layout`, by its definition.
fn product_ref(a: &[f32], w: &[f32], layout: Layout, [z, m, n, k]: [usize; 4], w_batched: bool) -> Vec<f32> {
    let mut out = vec![0f32; z * m * n];
    for zi in 0..z {
        let (az, wz) = (&a[zi * m * k..][..m * k], &w[if w_batched { zi * n * k } else { 0 }..][..n * k]);
        for r in 0..m {
            for c in 0..n {
                let mut acc = 0f64;
                for i in 0..k {
                    let av = if layout == Layout::AtB { az[i * m + r] } else { az[r * k + i] };
                    let wv = if layout == Layout::ABt { wz[c * k + i] } else { wz[i * n + c] };
                    acc += av as f64 * wv as f64;
                }
                out[(zi * m + r) * n + c] = acc as f32;
            }
        }
    }
    out
}

#[test]
fn products_in_every_layout_and_variant() {
    // The backward pass's layouts (A . W, A^T . W) on every kernel family, on
    // shapes where the vec4 kernels apply and where the scalar kernel takes over (m >= 64:
    // the register kernel's 16-row blocks, 77 rows leaving a partial one).
    let mut kinds: Vec<Option<MatmulKind>> = engine().matmul_variants().into_iter().map(Some).collect();
    kinds.push(None);
    let shapes = [
        (1, 4, 4, 4),
        (1, 7, 9, 12),
        (1, 64, 136, 68),
        (3, 20, 12, 17),
        (2, 33, 40, 8),
        (1, 10, 64, 130),
        (4, 16, 8, 197),
        (2, 77, 24, 20),
    ];
    for kind in kinds {
        for layout in [Layout::ABt, Layout::AB, Layout::AtB] {
            for &(z, m, n, k) in &shapes {
                for w_batched in [false, true] {
                    let mut g = Graph::new();
                    let a = g.input(&[z * m * k]);
                    let w = g.input(&[if w_batched { z } else { 1 } * n * k]);
                    let y = g.product(a, w, layout, [z, m, n, k], w_batched, &[z, m, n]).unwrap();
                    g.output(y);
                    let inputs = [rand_vec(z * m * k, 11, 1.0), rand_vec(g.numel(w), 12, 1.0)];
                    let want = product_ref(&inputs[0], &inputs[1], layout, [z, m, n, k], w_batched);
                    let what = format!("{layout:?} z={z} m={m} n={n} k={k} w_batched={w_batched} {kind:?}");
                    let cpu = g.eval_cpu(&inputs, &Weights::new()).unwrap();
                    let (d, mx) = max_diff(&cpu[0], &want);
                    assert!(d <= 1e-5 * mx.max(1.0), "{what}: graph CPU reference off the definition by {d}");
                    check_with(&g, &Weights::new(), &inputs, &what, kind);
                }
            }
        }
    }
}

/// `p . v` over B * H heads written with the heads merged (`Graph::bmm_heads`, no merge
/// pass) equals the per-head products merged by hand (timm's `transpose(1, 2).reshape`),
/// on every kernel family and in the graph's CPU reference; 1e-4 relative.
#[test]
fn bmm_heads_writes_the_heads_merged() {
    let mut kinds: Vec<Option<MatmulKind>> = engine().matmul_variants().into_iter().map(Some).collect();
    kinds.push(None);
    for &(b, h, m, n, k) in &[(2, 3, 17, 8, 20), (1, 6, 197, 64, 200), (4, 2, 49, 32, 52), (1, 1, 5, 4, 8)] {
        let z = b * h;
        let mut g = Graph::new();
        let a = g.input(&[z, m, k]);
        let w = g.input(&[z, n, k]);
        let y = g.bmm_heads(a, w, h).unwrap();
        assert_eq!(g.shape(y), [b, m, h * n]);
        g.output(y);
        let inputs = [rand_vec(z * m * k, 21, 1.0), rand_vec(z * n * k, 22, 1.0)];
        let per_head = product_ref(&inputs[0], &inputs[1], Layout::ABt, [z, m, n, k], true);
        let mut want = vec![0f32; z * m * n];
        for bi in 0..b {
            for hi in 0..h {
                for r in 0..m {
                    for c in 0..n {
                        want[((bi * m + r) * h + hi) * n + c] = per_head[(((bi * h + hi) * m) + r) * n + c];
                    }
                }
            }
        }
        let what = format!("bmm_heads b={b} h={h} m={m} n={n} k={k}");
        let (d, mx) = max_diff(&g.eval_cpu(&inputs, &Weights::new()).unwrap()[0], &want);
        assert!(d <= 1e-5 * mx.max(1.0), "{what}: CPU reference off by {d}");
        for kind in &kinds {
            let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
            let mut e = engine();
            e.force_matmul(*kind).unwrap();
            let got = e.run_once(&g, &Weights::new(), &refs);
            e.force_matmul(None).unwrap();
            let (d, mx) = max_diff(&got.unwrap()[0], &want);
            assert!(d <= 1e-4 * mx.max(1.0), "{what} {kind:?}: off by {d} (max {mx})");
        }
    }
    let mut g = Graph::new();
    let (a, w) = (g.input(&[6, 4, 8]), g.input(&[6, 4, 8]));
    assert!(g.bmm_heads(a, w, 4).is_err(), "6 products are not a whole number of 4 heads");
}

#[test]
fn product_shape_errors() {
    let mut g = Graph::new();
    let a = g.input(&[12]);
    let w = g.input(&[7]);
    let e = g.product(a, w, Layout::AB, [1, 3, 2, 4], false, &[3, 2]).unwrap_err().to_string();
    assert!(e.contains("AB product") && e.contains("K=4"), "{e}");
}

#[test]
fn im2col_tokens_pool_elementwise() {
    for &(b, c, hh, ww, p) in &[(1, 3, 16, 16, 4), (2, 3, 30, 28, 7), (1, 1, 9, 9, 3)] {
        let mut g = Graph::new();
        let img = g.input(&[b, c, hh, ww]);
        let y = g.im2col(img, p).unwrap();
        g.output(y);
        check(&g, &Weights::new(), &[rand_vec(b * c * hh * ww, 9, 1.0)], "im2col");
    }
    for (npre, mode) in [(0, PosMode::All), (1, PosMode::All), (2, PosMode::All), (5, PosMode::PatchesOnly), (1, PosMode::None)] {
        let (b, np, c) = (2, 6, 10);
        let mut g = Graph::new();
        let x = g.input(&[b, np, c]);
        let pre = (npre > 0).then(|| g.param("pre", &[npre, c]));
        let plen = if mode == PosMode::All { npre + np } else { np };
        let pos = (mode != PosMode::None).then(|| g.param("pos", &[plen, c]));
        let y = g.tokens(x, pre, pos, mode).unwrap();
        g.output(y);
        let mut w = Weights::new();
        w.insert("pre".into(), rand_vec(npre * c, 1, 1.0));
        w.insert("pos".into(), rand_vec(plen * c, 2, 1.0));
        check(&g, &w, &[rand_vec(b * np * c, 3, 1.0)], &format!("tokens {npre} {mode:?}"));
    }
    for mode in [PoolMode::Token(0), PoolMode::Token(1), PoolMode::Avg(0), PoolMode::Avg(3), PoolMode::Max(1)] {
        let mut g = Graph::new();
        let x = g.input(&[3, 7, 11]);
        let y = g.pool(x, mode).unwrap();
        g.output(y);
        check(&g, &Weights::new(), &[rand_vec(3 * 7 * 11, 4, 1.0)], &format!("pool {mode:?}"));
    }
    let mut g = Graph::new();
    let a = g.input(&[5, 3]);
    let b = g.input(&[5, 3]);
    let y = g.add_scale(a, b, 0.5).unwrap();
    g.output(y);
    check(&g, &Weights::new(), &[rand_vec(15, 1, 1.0), rand_vec(15, 2, 1.0)], "add_scale");
}

#[test]
fn shape_errors_are_reported_not_panicked() {
    let mut g = Graph::new();
    let x = g.input(&[4, 8]);
    let w = g.param("w", &[3, 7]);
    let e = g.linear(x, w, None).unwrap_err().to_string();
    assert!(e.contains("K = 8") && e.contains("K = 7"), "{e}");
    let q = g.input(&[1, 4, 10]);
    assert!(g.attention(q, 4).is_err());
}

#[test]
fn token_pool_awkward_shapes_forward_and_backward() {
    use vitrine::autodiff::backward;
    use vitrine::ops::TokenPoolKind;
    // (B, N, C, k, s): 196 -> 97 tokens with token 195 uncovered (HVT's first
    // stage), overlapping windows, gaps between windows (s > k), one window.
    for &(b, n, c, k, s) in &[(2, 196, 5, 3, 2), (3, 48, 7, 3, 2), (1, 11, 33, 2, 3), (2, 9, 1, 9, 1)] {
        let no = (n - k) / s + 1;
        for kind in [TokenPoolKind::Max, TokenPoolKind::Avg] {
            let mut g = Graph::new();
            let x = g.input(&[b, n, c]);
            let y = g.token_pool(x, kind, k, s).unwrap();
            assert_eq!(g.shape(y), [b, no, c]);
            let dy = g.input(&[b, no, c]);
            let dx = backward(&mut g, y, dy, &[x]).unwrap()[0];
            g.output(y);
            g.output(dx);
            let inputs = [rand_vec(b * n * c, 11, 1.0), rand_vec(b * no * c, 12, 1.0)];
            check(&g, &Weights::new(), &inputs, &format!("token_pool {kind:?} b={b} n={n} c={c} k={k} s={s}"));
        }
    }
}

#[test]
fn token_pool_hand_computed() {
    use vitrine::ops::TokenPoolKind;
    // x [1, 6, 2], k = 3, s = 2: windows over tokens 0..3 and 2..5; token 5 is
    // dropped (its 9 and 7 would be the maxima were it covered). Channel 0 has
    // a tie (tokens 1 and 2 hold 5) in window 0.
    let ch0 = [1.0f32, 5.0, 5.0, 2.0, 0.0, 9.0];
    let ch1 = [-1.0f32, -2.0, 3.0, -4.0, -5.0, 7.0];
    let x: Vec<f32> = (0..6).flat_map(|t| [ch0[t], ch1[t]]).collect();
    let want_max = [5.0f32, 3.0, 5.0, 3.0];
    let want_avg = [11.0f32 / 3.0, 0.0, 7.0 / 3.0, -2.0];
    for (kind, want) in [(TokenPoolKind::Max, want_max), (TokenPoolKind::Avg, want_avg)] {
        let mut g = Graph::new();
        let xi = g.input(&[1, 6, 2]);
        let y = g.token_pool(xi, kind, 3, 2).unwrap();
        assert_eq!(g.shape(y), [1, 2, 2]);
        g.output(y);
        let cpu = g.eval_cpu(std::slice::from_ref(&x), &Weights::new()).unwrap().remove(0);
        let gpu = engine().run_once(&g, &Weights::new(), &[&x]).unwrap().remove(0);
        for (what, got) in [("cpu", &cpu), ("gpu", &gpu)] {
            let (d, _) = max_diff(got, &want);
            assert!(d <= 1e-5, "token_pool {kind:?} {what}: {got:?}, want {want:?}");
        }
        if kind == TokenPoolKind::Max {
            assert_eq!(gpu, want, "max pooling copies values exactly");
        }
    }
}

#[test]
fn token_pool_shape_errors_are_reported_not_panicked() {
    use vitrine::ops::TokenPoolKind::{Avg, Max};
    let mut g = Graph::new();
    let flat = g.input(&[4, 8]);
    let x = g.input(&[2, 5, 3]);
    for (t, kind, k, s, needle) in
        [(flat, Max, 2, 2, "[B, N, C]"), (x, Max, 0, 2, "kernel 0"), (x, Avg, 2, 0, "stride 0"), (x, Max, 6, 1, "larger than")]
    {
        let e = g.token_pool(t, kind, k, s).unwrap_err().to_string();
        assert!(e.contains("token_pool") && e.contains(needle), "k={k} s={s}: {e}");
    }
    // A window as long as the sequence is fine: one output token.
    let y = g.token_pool(x, Avg, 5, 3).unwrap();
    assert_eq!(g.shape(y), [2, 1, 3]);
}

/// `nn.Unfold(k, s, p)(x).transpose(1, 2)` from its definition, on an image
/// `[B, C, H, W]`: `[B, OH * OW, C * k * k]`, zero padding, channel-major features.
fn unfold_definition(x: &[f32], [b, c, h, w]: [usize; 4], k: usize, s: usize, p: usize) -> Vec<f32> {
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    let f = c * k * k;
    let mut out = vec![0f32; b * oh * ow * f];
    for bi in 0..b {
        for l in 0..oh * ow {
            for fi in 0..f {
                let (ci, ki, kj) = (fi / (k * k), fi / k % k, fi % k);
                let y = ((l / ow) * s + ki) as isize - p as isize;
                let xx = ((l % ow) * s + kj) as isize - p as isize;
                if (0..h as isize).contains(&y) && (0..w as isize).contains(&xx) {
                    out[(bi * oh * ow + l) * f + fi] = x[((bi * c + ci) * h + y as usize) * w + xx as usize];
                }
            }
        }
    }
    out
}

/// An image `[B, C, H, W]` as tokens `[B, H * W, C]` (`t[b, h * W + w, c] = x[b, c, h, w]`).
fn image_to_tokens(x: &[f32], [b, c, h, w]: [usize; 4]) -> Vec<f32> {
    let mut t = vec![0f32; x.len()];
    for bi in 0..b {
        for ci in 0..c {
            for p in 0..h * w {
                t[(bi * h * w + p) * c + ci] = x[(bi * c + ci) * h * w + p];
            }
        }
    }
    t
}

#[test]
fn unfold_awkward_shapes_forward_and_backward() {
    use vitrine::autodiff::backward;
    use vitrine::ops::UnfoldInput;
    // (B, C, H, W, k, s, p): T2T's first split on a non-square image, its later
    // splits, overlapping windows without padding, a window as large as the
    // padded image minus 4 (padding only), gaps between windows (s > k).
    for &(b, c, h, w, k, s, p) in
        &[(2, 3, 13, 11, 7, 4, 2), (1, 5, 9, 9, 3, 2, 1), (2, 4, 8, 6, 3, 1, 0), (1, 2, 5, 5, 5, 1, 2), (2, 3, 7, 7, 2, 3, 0)]
    {
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let (l, f) = (oh * ow, c * k * k);
        let img = rand_vec(b * c * h * w, 21, 1.0);
        let want = unfold_definition(&img, [b, c, h, w], k, s, p);
        for input in [UnfoldInput::Image, UnfoldInput::Tokens] {
            let (shape, x0) = match input {
                UnfoldInput::Image => (vec![b, c, h, w], img.clone()),
                UnfoldInput::Tokens => (vec![b, h * w, c], image_to_tokens(&img, [b, c, h, w])),
            };
            let what = format!("unfold {input:?} b={b} c={c} {h}x{w} k={k} s={s} p={p}");
            let mut g = Graph::new();
            let x = g.input(&shape);
            let y = g.unfold(x, input, [h, w], k, s, p).unwrap();
            assert_eq!(g.shape(y), [b, l, f], "{what}");
            let dy = g.input(&[b, l, f]);
            let dx = backward(&mut g, y, dy, &[x]).unwrap()[0];
            assert_eq!(g.shape(dx), shape.as_slice(), "{what}");
            g.output(y);
            g.output(dx);
            let inputs = [x0, rand_vec(b * l * f, 22, 1.0)];
            let cpu = g.eval_cpu(&inputs, &Weights::new()).unwrap();
            assert_eq!(cpu[0], want, "{what}: CPU reference differs from the definition");
            check(&g, &Weights::new(), &inputs, &what);
        }
    }
}

#[test]
fn unfold_hand_computed() {
    use vitrine::ops::UnfoldInput;
    // x [1, 2, 3, 3]: channel 0 is 1..9, channel 1 ten times it; k = 2, s = 2,
    // p = 1: a 5x5 padded image, 2x2 windows over padded rows / columns 0..2, 2..4.
    let ch0: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let img: Vec<f32> = ch0.iter().copied().chain(ch0.iter().map(|v| v * 10.0)).collect();
    #[rustfmt::skip]
    let want = [
        0.0, 0.0, 0.0, 1.0, /* | */ 0.0, 0.0, 0.0, 10.0,  // l = 0: padding above and left
        0.0, 0.0, 2.0, 3.0, /* | */ 0.0, 0.0, 20.0, 30.0, // l = 1: padding above
        0.0, 4.0, 0.0, 7.0, /* | */ 0.0, 40.0, 0.0, 70.0, // l = 2: padding left
        5.0, 6.0, 8.0, 9.0, /* | */ 50.0, 60.0, 80.0, 90.0,
    ];
    for input in [UnfoldInput::Image, UnfoldInput::Tokens] {
        let (shape, x) = match input {
            UnfoldInput::Image => (vec![1, 2, 3, 3], img.clone()),
            UnfoldInput::Tokens => (vec![1, 9, 2], image_to_tokens(&img, [1, 2, 3, 3])),
        };
        let mut g = Graph::new();
        let xi = g.input(&shape);
        let y = g.unfold(xi, input, [3, 3], 2, 2, 1).unwrap();
        assert_eq!(g.shape(y), [1, 4, 8]);
        g.output(y);
        let cpu = g.eval_cpu(std::slice::from_ref(&x), &Weights::new()).unwrap().remove(0);
        let gpu = engine().run_once(&g, &Weights::new(), &[&x]).unwrap().remove(0);
        assert_eq!(cpu, want, "unfold {input:?} cpu");
        assert_eq!(gpu, want, "unfold {input:?} gpu: unfold copies values exactly");
    }
}

#[test]
fn fold_hand_computed_sums_overlapping_windows() {
    use vitrine::autodiff::backward;
    use vitrine::ops::UnfoldInput;
    // x [1, 2, 3, 3], k = 3, s = 2, p = 1: windows over image rows / columns
    // -1..=1 and 1..=3, so row and column 1 are read by two windows each. Window
    // l's gradient is 10^l on every channel-0 feature and 2 * 10^l on channel 1's:
    // each pixel sums the windows covering it.
    let dcols: Vec<f32> = (0..4).flat_map(|l| (0..18).map(move |f| 10f32.powi(l) * if f < 9 { 1.0 } else { 2.0 })).collect();
    let want_img = [1.0f32, 11.0, 10.0, 101.0, 1111.0, 1010.0, 100.0, 1100.0, 1000.0];
    let want_image: Vec<f32> = want_img.iter().copied().chain(want_img.iter().map(|v| v * 2.0)).collect();
    for input in [UnfoldInput::Image, UnfoldInput::Tokens] {
        let (shape, want) = match input {
            UnfoldInput::Image => (vec![1, 2, 3, 3], want_image.clone()),
            UnfoldInput::Tokens => (vec![1, 9, 2], image_to_tokens(&want_image, [1, 2, 3, 3])),
        };
        let mut g = Graph::new();
        let xi = g.input(&shape);
        let y = g.unfold(xi, input, [3, 3], 3, 2, 1).unwrap();
        assert_eq!(g.shape(y), [1, 4, 18]);
        let seed = g.input(&[1, 4, 18]);
        let dx = backward(&mut g, y, seed, &[xi]).unwrap()[0];
        g.output(dx);
        let x = vec![0f32; 18];
        let cpu = g.eval_cpu(&[x.clone(), dcols.clone()], &Weights::new()).unwrap().remove(0);
        let gpu = engine().run_once(&g, &Weights::new(), &[&x, &dcols]).unwrap().remove(0);
        assert_eq!(cpu, want, "fold {input:?} cpu");
        assert_eq!(gpu, want, "fold {input:?} gpu");
    }
}

#[test]
fn unfold_equals_im2col_when_kernel_is_stride() {
    use vitrine::autodiff::backward;
    use vitrine::ops::UnfoldInput;
    // im2col's layout is [B, GH * GW, CIN * P * P] with features (c, ky, kx):
    // the same as unfold's with k = s = P, p = 0 (trailing pixels dropped by both).
    for &(b, c, h, w, p) in &[(2, 3, 13, 11, 4), (1, 5, 16, 16, 16), (2, 2, 9, 7, 3), (1, 1, 4, 6, 1)] {
        let what = format!("unfold vs im2col b={b} c={c} {h}x{w} p={p}");
        let (l, f) = ((h / p) * (w / p), c * p * p);
        let mut g = Graph::new();
        let x = g.input(&[b, c, h, w]);
        let a = g.unfold(x, UnfoldInput::Image, [h, w], p, p, 0).unwrap();
        let i = g.im2col(x, p).unwrap();
        assert_eq!(g.shape(a), g.shape(i), "{what}");
        let dy = g.input(&[b, l, f]);
        let da = backward(&mut g, a, dy, &[x]).unwrap()[0];
        let di = backward(&mut g, i, dy, &[x]).unwrap()[0];
        for t in [a, i, da, di] {
            g.output(t);
        }
        let inputs = [rand_vec(b * c * h * w, 31, 1.0), rand_vec(b * l * f, 32, 1.0)];
        let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        let cpu = g.eval_cpu(&inputs, &Weights::new()).unwrap();
        let gpu = engine().run_once(&g, &Weights::new(), &refs).unwrap();
        for out in [&cpu, &gpu] {
            assert_eq!(out[0], out[1], "{what}: forward");
            assert_eq!(out[2], out[3], "{what}: backward");
        }
    }
}

#[test]
fn unfold_t2t_soft_split_chain() {
    use vitrine::autodiff::backward;
    use vitrine::ops::UnfoldInput;
    // T2T's splits at a quarter of the resolution: a 56x56 image -> 14x14 tokens of
    // 3 * 49 features (k7 s4 p2), read back as a 14x14 image by the next split
    // (k3 s2 p1) -> 7x7 tokens of 147 * 9 features, with the backward through both.
    let mut g = Graph::new();
    let x = g.input(&[1, 3, 56, 56]);
    let t1 = g.unfold(x, UnfoldInput::Image, [56, 56], 7, 4, 2).unwrap();
    assert_eq!(g.shape(t1), [1, 196, 147]);
    let t2 = g.unfold(t1, UnfoldInput::Tokens, [14, 14], 3, 2, 1).unwrap();
    assert_eq!(g.shape(t2), [1, 49, 1323]);
    let dy = g.input(&[1, 49, 1323]);
    let dx = backward(&mut g, t2, dy, &[x]).unwrap()[0];
    g.output(t2);
    g.output(dx);
    let inputs = [rand_vec(3 * 56 * 56, 41, 1.0), rand_vec(49 * 1323, 42, 1.0)];
    check(&g, &Weights::new(), &inputs, "unfold t2t chain");
}

#[test]
fn unfold_shape_errors_are_reported_not_panicked() {
    use vitrine::ops::UnfoldInput::{Image, Tokens};
    let mut g = Graph::new();
    let img = g.input(&[2, 3, 5, 4]);
    let tok = g.input(&[2, 20, 3]);
    let empty = g.input(&[2, 0, 3]);
    for (t, input, hw, k, s, p, needle) in [
        (tok, Image, [5, 4], 3, 1, 0, "[B, C, H, W]"),
        (img, Tokens, [5, 4], 3, 1, 0, "[B, H * W, C]"),
        (img, Image, [4, 5], 3, 1, 0, "does not match"),
        (tok, Tokens, [4, 4], 3, 1, 0, "H * W"),
        (empty, Tokens, [0, 20], 1, 1, 1, "empty"),
        (img, Image, [5, 4], 0, 1, 0, "kernel 0"),
        (tok, Tokens, [5, 4], 3, 0, 1, "stride 0"),
        (img, Image, [5, 4], 5, 1, 0, "larger than the padded image 5x4"),
        (tok, Tokens, [4, 5], 9, 2, 2, "larger than the padded image 8x9"),
        (img, Image, [5, 4], 3, 1, usize::MAX / 2, "exceeds u32"),
        (img, Image, [5, 4], 1, 1, 40_000, "exceeds u32"),
    ] {
        let what = format!("{input:?} hw={hw:?} k={k} s={s} p={p}");
        let e = g.unfold(t, input, hw, k, s, p).unwrap_err().to_string();
        assert!(e.contains("unfold") && e.contains(needle), "{what}: {e}");
    }
    // A window as large as the padded image is fine: one output token.
    let y = g.unfold(img, Image, [5, 4], 6, 3, 1).unwrap();
    assert_eq!(g.shape(y), [2, 1, 108]);
}

/// A policy [B, N] mixing dropped (0), kept (1) and fractional keys; token 0
/// (the class token in DynamicViT) is always kept.
fn masked_softmax_policy(b: usize, n: usize, seed: u64) -> Vec<f32> {
    let frac = rand_vec(b * n, seed, 0.45);
    (0..b * n)
        .map(|i| match (i % n, i % 3) {
            (0, _) => 1.0,
            (_, 0) => 0.0,
            (_, 1) => 1.0,
            _ => 0.5 + frac[i],
        })
        .collect()
}

#[test]
fn masked_softmax_awkward_shapes_forward_and_backward() {
    use vitrine::autodiff::backward;
    // (B, H, N, scores given as [B * H, N, N]): N = 70 and 197 span two and four
    // key blocks of the policy gradient's workgroups.
    for &(b, h, n, flat) in &[(2, 3, 13, false), (2, 3, 50, true), (1, 2, 70, false), (3, 1, 2, true), (1, 2, 197, true)] {
        let mut g = Graph::new();
        let shape = if flat { vec![b * h, n, n] } else { vec![b, h, n, n] };
        let a = g.input(&shape);
        let p = g.input(&[b, n]);
        let y = g.masked_softmax(a, p).unwrap();
        assert_eq!(g.shape(y), shape.as_slice());
        let dy = g.input(&shape);
        let grads = backward(&mut g, y, dy, &[a, p]).unwrap();
        assert_eq!(g.shape(grads[0]), shape.as_slice());
        assert_eq!(g.shape(grads[1]), [b, n]);
        g.output(y);
        g.output(grads[0]);
        g.output(grads[1]);
        let len = b * h * n * n;
        let inputs = [rand_vec(len, 21, 4.0), masked_softmax_policy(b, n, 22), rand_vec(len, 23, 1.0)];
        check(&g, &Weights::new(), &inputs, &format!("masked_softmax b={b} h={h} n={n} flat={flat}"));
        // Every row of the GPU's output sums to 1.
        let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        let out = engine().run_once(&g, &Weights::new(), &refs).unwrap().remove(0);
        for (r, row) in out.chunks(n).enumerate() {
            let s: f64 = row.iter().map(|&v| v as f64).sum();
            assert!((s - 1.0).abs() <= 1e-6 * n.max(4) as f64, "masked_softmax b={b} h={h} n={n}: row {r} sums to {s}");
        }
    }
}

#[test]
fn masked_softmax_one_token() {
    use vitrine::autodiff::backward;
    // N = 1: the only key is the query itself, out = (e + eps) / (e + eps) = 1
    // whatever the policy, and nothing flows back.
    let mut g = Graph::new();
    let a = g.input(&[2, 1, 1, 1]);
    let p = g.input(&[2, 1]);
    let y = g.masked_softmax(a, p).unwrap();
    let dy = g.input(&[2, 1, 1, 1]);
    let grads = backward(&mut g, y, dy, &[a, p]).unwrap();
    g.output(y);
    g.output(grads[0]);
    g.output(grads[1]);
    let inputs = [vec![3.0f32, -7.0], vec![0.0f32, 0.25], vec![1.5f32, -2.0]];
    let cpu = g.eval_cpu(&inputs, &Weights::new()).unwrap();
    let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
    let gpu = engine().run_once(&g, &Weights::new(), &refs).unwrap();
    for (what, got) in [("cpu", &cpu), ("gpu", &gpu)] {
        assert_eq!(got[0], [1.0, 1.0], "{what}: out");
        assert!(got[1].iter().chain(&got[2]).all(|v| v.abs() <= 1e-12), "{what}: gradients {:?} {:?}", got[1], got[2]);
    }
}

#[test]
fn masked_softmax_hand_computed() {
    let eps = 1e-6f64;
    let run = |shape: &[usize], a: &[f32], b: usize, n: usize, p: &[f32]| {
        let mut g = Graph::new();
        let ai = g.input(shape);
        let pi = g.input(&[b, n]);
        let y = g.masked_softmax(ai, pi).unwrap();
        g.output(y);
        let cpu = g.eval_cpu(&[a.to_vec(), p.to_vec()], &Weights::new()).unwrap().remove(0);
        let gpu = engine().run_once(&g, &Weights::new(), &[a, p]).unwrap().remove(0);
        (cpu, gpu)
    };

    // Equal scores, N = 3, p = [1, 0, 0.5]: e = P. Row q: P[q, k] = p[k], or 1 at k = q.
    //   q = 0: P = [1, 0, 0.5], S = 1.5     q = 1: P = [1, 1, 0.5], S = 2.5
    //   q = 2: P = [1, 0, 1],   S = 2
    let p = [1.0f32, 0.0, 0.5];
    let weights = [[1.0, 0.0, 0.5], [1.0, 1.0, 0.5], [1.0, 0.0, 1.0]];
    let want: Vec<f32> = weights
        .iter()
        .flat_map(|w: &[f64; 3]| {
            let s: f64 = w.iter().sum();
            w.map(|e| ((e + eps / 3.0) / (s + eps)) as f32)
        })
        .collect();
    let (cpu, gpu) = run(&[1, 1, 3, 3], &[0.25f32; 9], 1, 3, &p);
    for (what, got) in [("cpu", &cpu), ("gpu", &gpu)] {
        let (d, _) = max_diff(got, &want);
        assert!(d <= 1e-6, "masked_softmax equal scores {what}: {got:?}, want {want:?}");
        // The dropped key 1 is seen by query 1 only: elsewhere just the eps floor.
        for q in [0, 2] {
            assert!(got[q * 3 + 1] <= 1e-6, "{what}: query {q} sees dropped key 1: {got:?}");
        }
        assert!(got[4] > 0.39, "{what}: query 1 must see itself: {got:?}");
        for (q, row) in got.chunks(3).enumerate() {
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() <= 1e-6, "{what}: row {q} sums to {s}");
        }
    }

    // p all ones: (softmax * S + eps / N) / (S + eps), S = sum_k exp(a_k - max a),
    // on random scores [B * H = 4, 5, 5] with B = 2.
    let (b, h, n) = (2, 2, 5);
    let a = rand_vec(b * h * n * n, 31, 3.0);
    let (cpu, gpu) = run(&[b * h, n, n], &a, b, n, &vec![1.0f32; b * n]);
    let mut want = Vec::new();
    for row in a.chunks(n) {
        let m = row.iter().fold(f32::MIN, |x, &v| x.max(v)) as f64;
        let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        want.extend(row.iter().map(|&v| {
            let softmax = (v as f64 - m).exp() / s;
            ((softmax * s + eps / n as f64) / (s + eps)) as f32
        }));
    }
    for (what, got) in [("cpu", &cpu), ("gpu", &gpu)] {
        let (d, _) = max_diff(got, &want);
        assert!(d <= 1e-6, "masked_softmax all kept {what}: max diff {d}");
        for (r, row) in got.chunks(n).enumerate() {
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() <= 1e-6, "all kept {what}: row {r} sums to {s}");
        }
    }

    // A dropped key with the largest score still sets the max (it is over ALL
    // keys): a = [10, 0, 0] for every query, p = [0, 1, 1]. Query 0 sees itself;
    // queries 1 and 2 see keys 1 and 2 with e = exp(-10) each, so the eps terms
    // weigh in: out = (exp(-10) + eps / 3) / (2 exp(-10) + eps).
    let a: Vec<f32> = (0..3).flat_map(|_| [10.0f32, 0.0, 0.0]).collect();
    let (cpu, gpu) = run(&[1, 1, 3, 3], &a, 1, 3, &[0.0, 1.0, 1.0]);
    let u = (-10f64).exp();
    let (kept, floor) = (((u + eps / 3.0) / (2.0 * u + eps)) as f32, ((eps / 3.0) / (2.0 * u + eps)) as f32);
    let row0_den = 1.0 + 2.0 * u + eps;
    let row0 = [(1.0 + eps / 3.0) / row0_den, (u + eps / 3.0) / row0_den, (u + eps / 3.0) / row0_den].map(|v| v as f32);
    let want = [row0[0], row0[1], row0[2], floor, kept, kept, floor, kept, kept];
    for (what, got) in [("cpu", &cpu), ("gpu", &gpu)] {
        let (d, _) = max_diff(got, &want);
        assert!(d <= 1e-5, "masked_softmax dropped max {what}: {got:?}, want {want:?}");
    }
}

#[test]
fn masked_softmax_shape_errors_are_reported_not_panicked() {
    let mut g = Graph::new();
    let a4 = g.input(&[2, 3, 5, 5]);
    let a3 = g.input(&[6, 5, 5]);
    let p = g.input(&[2, 5]);
    let cases = [
        (a4, g.input(&[2, 5, 1]), "must be [B, N]"),
        (a4, g.input(&[0, 5]), "empty"),
        (g.input(&[5, 5]), p, "[B, H, N, N] or [B * H, N, N]"),
        (g.input(&[1, 2, 3, 5, 5]), p, "[B, H, N, N] or [B * H, N, N]"),
        (g.input(&[3, 3, 5, 5]), p, "batches 3 and 2"),
        (g.input(&[5, 5, 5]), p, "not a multiple"),
        (g.input(&[2, 3, 4, 5]), p, "square"),
        (g.input(&[6, 4, 4]), p, "4 keys"),
        (g.input(&[2, 0, 5, 5]), p, "no heads"),
    ];
    for (a, pol, needle) in cases {
        let e = g.masked_softmax(a, pol).unwrap_err().to_string();
        assert!(e.contains("masked_softmax") && e.contains(needle), "{:?} {:?}: {e}", g.shape(a), g.shape(pol));
    }
    // Both layouts of the scores are accepted; the output keeps the given shape.
    let y4 = g.masked_softmax(a4, p).unwrap();
    assert_eq!(g.shape(y4), [2, 3, 5, 5]);
    let y3 = g.masked_softmax(a3, p).unwrap();
    assert_eq!(g.shape(y3), [6, 5, 5]);
}

#[test]
fn dynamicvit_pruning_ops() {
    use vitrine::autodiff::backward;
    // [B=2, 1 + 13, C=7] tokens: the patch tokens (slice_tokens), the predictor's local /
    // global mix (odd C: 3 local, 4 global channels; with and without a 0/1 policy), the
    // keep score, top-k and the gather that keeps the class token first; the gather's
    // backward with a prefix (class token copied, picked rows scattered back).
    let (b, n, c, k) = (2, 13, 7, 5);
    let mut g = Graph::new();
    let x = g.input(&[b, n + 1, c]);
    let policy = g.input(&[b, n, 1]);
    let patches = g.slice_tokens(x, 1, n).unwrap();
    let mixed = g.local_global(patches, None).unwrap();
    let masked = g.local_global(patches, Some(policy)).unwrap();
    let z = g.slice_last(masked, 0, 2).unwrap();
    let score = g.keep_score(z).unwrap();
    assert_eq!(g.shape(score), [b, n]);
    let (_, idx) = g.top_k(score, k).unwrap();
    let kept = g.gather_tokens_after(x, idx, 1).unwrap();
    assert_eq!(g.shape(kept), [b, 1 + k, c]);
    let dy = g.input(&[b, 1 + k, c]);
    let dx = backward(&mut g, kept, dy, &[x]).unwrap()[0];
    for t in [patches, mixed, masked, score, kept, dx] {
        g.output(t);
    }
    let pol: Vec<f32> = (0..b * n).map(|i| if i % 3 == 1 { 0.0 } else { 1.0 }).collect();
    let inputs = [rand_vec(b * (n + 1) * c, 71, 1.0), pol, rand_vec(b * (1 + k) * c, 72, 1.0)];
    check(&g, &Weights::new(), &inputs, "dynamicvit pruning ops");
    // The mix by hand for one global channel of image 1: the mean over the policy's tokens.
    let out = g.eval_cpu(&inputs, &Weights::new()).unwrap();
    let xs = &inputs[0];
    let (ch, img) = (5, 1);
    let kept_rows: Vec<usize> = (0..n).filter(|t| inputs[1][img * n + t] == 1.0).collect();
    let want: f32 = kept_rows.iter().map(|t| xs[(img * (n + 1) + 1 + t) * c + ch]).sum::<f32>() / kept_rows.len() as f32;
    assert!((out[2][(img * n + 4) * c + ch] - want).abs() < 1e-6, "masked mean");
    assert_eq!(out[2][(img * n + 4) * c + 1], xs[(img * (n + 1) + 5) * c + 1], "local channel copied");
    // keep_score is log_softmax(z)[0].
    let (z0, z1) = (out[2][0], out[2][1]);
    let want = z0 - (z0.exp() + z1.exp()).ln();
    assert!((out[3][0] - want).abs() < 1e-6, "keep score");
}

#[test]
fn gumbel_decisions_and_their_straight_through_gradient() {
    use vitrine::autodiff::backward;
    // Decisions are 1 where z0 + g0 >= z1 + g1 (a tie keeps), their gradient the straight-through
    // one of softmax(z + g)[0]: dz = dy * y0 (1 - y0) * (1, -1); the noise gets none.
    let rows = 9;
    let mut g = Graph::new();
    let z = g.input(&[1, rows, 2]);
    let noise = g.input(&[1, rows, 2]);
    let keep = g.gumbel_keep(z, noise).unwrap();
    assert_eq!(g.shape(keep), [1, rows, 1]);
    let dy = g.input(&[1, rows, 1]);
    let dz = backward(&mut g, keep, dy, &[z]).unwrap()[0];
    g.output(keep);
    g.output(dz);
    let mut zv = rand_vec(2 * rows, 91, 2.0);
    let gv = rand_vec(2 * rows, 92, 1.0);
    // Row 0: an exact tie.
    zv[0] = 0.5 - gv[0] + gv[1];
    zv[1] = 0.5;
    let dyv = rand_vec(rows, 93, 1.0);
    let inputs = [zv.clone(), gv.clone(), dyv.clone()];
    check(&g, &Weights::new(), &inputs, "gumbel keep");
    let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
    let out = engine().run_once(&g, &Weights::new(), &refs).unwrap();
    for r in 0..rows {
        let (a, b) = (zv[2 * r] + gv[2 * r], zv[2 * r + 1] + gv[2 * r + 1]);
        assert_eq!(out[0][r], if a >= b { 1.0 } else { 0.0 }, "row {r}");
        let y0 = 1.0 / (1.0 + (b - a).exp());
        let want = dyv[r] * y0 * (1.0 - y0);
        assert!((out[1][2 * r] - want).abs() < 1e-6 && (out[1][2 * r + 1] + want).abs() < 1e-6, "row {r} gradient");
    }
    assert_eq!(out[0][0], 1.0, "a tie keeps");
}
