//! Every kernel against its plain CPU reference, on awkward shapes: sizes that
//! are not multiples of the tile, one token, batch > 1, head dims 15/24/64.
//! Tolerance: max |gpu - cpu| <= 1e-4 * max(1, max |cpu|) unless stated.

mod common;
use common::*;
use vitrine::graph::{Graph, MatmulKind};
use vitrine::ops::{Act, PoolMode, PosMode};

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
        for &(z, m, n, k) in &[(1, 3, 5, 8), (6, 17, 9, 64), (4, 33, 70, 20), (3, 5, 7, 15)] {
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
    use vitrine::graph::autodiff::backward;
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
