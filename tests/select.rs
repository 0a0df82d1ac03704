//! Token selection with u32 indices (DynamicViT's pruning): per-row top-k (a
//! node with two outputs, one of them u32), token gathers by index, and their
//! backward rules (a scatter made of two launches, a gather-form scatter-add).
//! GPU results are compared with the CPU references exactly (these ops move
//! values, they do no arithmetic), gradients also with their closed forms and
//! with central differences of the CPU forward.

mod common;
use common::*;
use vitrine::autodiff::backward;
use vitrine::graph::plan::{plan, Binding};
use vitrine::graph::{f32_bits_as_u32, u32_as_f32_bits, DType, DeviceCaps, Graph};

/// Scores with many ties (quantised to 1/4) in rows of `cols`.
fn tied_scores(n: usize, seed: u64) -> Vec<f32> {
    rand_vec(n, seed, 2.0).into_iter().map(|v| (v * 4.0).round() / 4.0).collect()
}

fn run(g: &Graph, inputs: &[Vec<f32>]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
    let gpu = engine().run_once(g, &Weights::new(), &refs).unwrap();
    let cpu = g.eval_cpu(inputs, &Weights::new()).unwrap();
    (gpu, cpu)
}

#[test]
fn top_k_values_and_indices_on_awkward_shapes() {
    for (lead, cols, k) in [(vec![2], 196, 137), (vec![3, 2], 50, 1), (vec![1], 7, 7), (vec![5], 33, 16)] {
        let rows: usize = lead.iter().product();
        let mut g = Graph::new();
        let mut shape = lead.clone();
        shape.push(cols);
        let x = g.input(&shape);
        let (v, i) = g.top_k(x, k).unwrap();
        assert_eq!((g.dtype(v), g.dtype(i)), (DType::F32, DType::U32));
        g.output(v);
        g.output(i);
        let xs = tied_scores(rows * cols, cols as u64);
        let (gpu, cpu) = run(&g, std::slice::from_ref(&xs));
        assert_eq!(gpu[0], cpu[0], "values {lead:?} x {cols}, k {k}");
        let (gi, ci) = (f32_bits_as_u32(&gpu[1]), f32_bits_as_u32(&cpu[1]));
        assert_eq!(gi, ci, "indices {lead:?} x {cols}, k {k}");
        for r in 0..rows {
            let row = &xs[r * cols..][..cols];
            let idx = &gi[r * k..][..k];
            for j in 0..k {
                assert_eq!(row[idx[j] as usize], gpu[0][r * k + j], "a value is its index's score");
                if j > 0 {
                    let (a, b) = (row[idx[j - 1] as usize], row[idx[j] as usize]);
                    assert!(a > b || (a == b && idx[j - 1] < idx[j]), "descending, ties to the lower index");
                }
            }
            // Nothing left out beats the k-th kept score.
            let kth = row[idx[k - 1] as usize];
            assert!((0..cols).filter(|c| !idx.contains(&(*c as u32))).all(|c| row[c] <= kth));
        }
    }
}

#[test]
fn top_k_hand_computed() {
    let mut g = Graph::new();
    let x = g.input(&[2, 5]);
    let (v, i) = g.top_k(x, 3).unwrap();
    g.output(v);
    g.output(i);
    let xs = vec![0.5, 2.0, -1.0, 2.0, 0.5, /* row 1 */ 3.0, 3.0, 3.0, 3.0, 3.0];
    let (gpu, _) = run(&g, &[xs]);
    assert_eq!(gpu[0], vec![2.0, 2.0, 0.5, 3.0, 3.0, 3.0]);
    assert_eq!(f32_bits_as_u32(&gpu[1]), vec![1, 3, 0, 0, 1, 2]);
}

#[test]
fn pruning_pipeline_top_k_indices_feed_a_gather() {
    // DynamicViT's eval step: keep the K best-scored tokens of each image, in score order.
    let (b, n, c, k) = (2, 197, 6, 137);
    let mut g = Graph::new();
    let tokens = g.input(&[b, n, c]);
    let scores = g.input(&[b, n]);
    let (_, idx) = g.top_k(scores, k).unwrap();
    let kept = g.gather_tokens(tokens, idx).unwrap();
    g.output(kept);
    let (xs, ss) = (rand_vec(b * n * c, 3, 1.0), tied_scores(b * n, 4));
    let (gpu, cpu) = run(&g, &[xs.clone(), ss.clone()]);
    assert_eq!(gpu[0], cpu[0]);
    // Row j of image b is the token with the j-th best score.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&p, &q| ss[n + q].partial_cmp(&ss[n + p]).unwrap());
    assert_eq!(&gpu[0][(k + 3) * c..][..c], &xs[(n + order[3]) * c..][..c]);
}

#[test]
fn gather_with_host_indices_repeats_and_out_of_range() {
    let (b, n, c) = (2, 9, 3);
    let mut g = Graph::new();
    let x = g.input(&[b, n, c]);
    let idx = g.input_typed(&[b, 4], DType::U32);
    let y = g.gather_tokens(x, idx).unwrap();
    g.output(y);
    let xs = rand_vec(b * n * c, 5, 1.0);
    let ids = u32_as_f32_bits(&[8, 0, 8, 99, 3, 3, 1, 2]);
    let (gpu, cpu) = run(&g, &[xs.clone(), ids]);
    assert_eq!(gpu[0], cpu[0]);
    assert_eq!(&gpu[0][..3], &xs[8 * 3..9 * 3]);
    assert_eq!(&gpu[0][9..12], &[0.0; 3], "an index past N gives zeros");
}

#[test]
fn gradients_scatter_back_exactly_and_match_finite_differences() {
    // L = sum(r1 * top_k values(x)) + sum(r2 * gather(y, top_k indices(x))): x gets r1 scattered
    // to the kept columns; y gets r2 scatter-added to the picked tokens; indices carry no gradient.
    let (b, n, c, k) = (3, 11, 4, 5);
    let build = |g: &mut Graph| {
        let x = g.input(&[b, n]);
        let y = g.input(&[b, n, c]);
        let (v, i) = g.top_k(x, k).unwrap();
        let picked = g.gather_tokens(y, i).unwrap();
        (x, y, v, picked)
    };
    // Distinct scores spaced by 0.1, so a +-1e-2 nudge never reorders them.
    let mut xs: Vec<f32> = (0..b * n).map(|i| ((i * 7) % (b * n)) as f32 * 0.1).collect();
    xs.rotate_left(4);
    let ys = rand_vec(b * n * c, 6, 1.0);
    let (r1, r2) = (rand_vec(b * k, 7, 1.0), rand_vec(b * k * c, 8, 1.0));

    let mut g = Graph::new();
    let (x, y, v, picked) = build(&mut g);
    let (s1, s2) = (g.input(&[b, k]), g.input(&[b, k, c]));
    let gx = backward(&mut g, v, s1, &[x]).unwrap()[0];
    let gy = backward(&mut g, picked, s2, &[y]).unwrap()[0];
    g.output(gx);
    g.output(gy);
    g.output(v);
    let inputs = vec![xs.clone(), ys.clone(), r1.clone(), r2.clone()];
    let (gpu, cpu) = run(&g, &inputs);
    assert_eq!(gpu[0], cpu[0], "d x");
    assert_eq!(gpu[1], cpu[1], "d y");
    // Closed forms from the CPU top-k indices.
    let mut idx_g = Graph::new();
    let xi = idx_g.input(&[b, n]);
    let (_, ii) = idx_g.top_k(xi, k).unwrap();
    idx_g.output(ii);
    let idx = f32_bits_as_u32(&idx_g.eval_cpu(&[xs.clone()], &Weights::new()).unwrap()[0]);
    let (mut want_x, mut want_y) = (vec![0f32; b * n], vec![0f32; b * n * c]);
    for bi in 0..b {
        for j in 0..k {
            let col = idx[bi * k + j] as usize;
            want_x[bi * n + col] = r1[bi * k + j];
            for ch in 0..c {
                want_y[(bi * n + col) * c + ch] += r2[(bi * k + j) * c + ch];
            }
        }
    }
    assert_eq!(gpu[0], want_x);
    assert_eq!(gpu[1], want_y);
    // Central differences of the CPU forward on a few elements.
    let loss = |xs: &[f32], ys: &[f32]| -> f64 {
        let mut f = Graph::new();
        let (_, _, v, picked) = build(&mut f);
        f.output(v);
        f.output(picked);
        let o = f.eval_cpu(&[xs.to_vec(), ys.to_vec()], &Weights::new()).unwrap();
        let dot = |a: &[f32], r: &[f32]| a.iter().zip(r).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>();
        dot(&o[0], &r1) + dot(&o[1], &r2)
    };
    let e = 1e-2f32;
    for i in (0..b * n).step_by(4) {
        let (mut p, mut m) = (xs.clone(), xs.clone());
        p[i] += e;
        m[i] -= e;
        let fd = (loss(&p, &ys) - loss(&m, &ys)) / (2.0 * e as f64);
        assert!((fd - gpu[0][i] as f64).abs() <= 1e-3, "d x[{i}]: fd {fd} vs {}", gpu[0][i]);
    }
    for i in (0..b * n * c).step_by(7) {
        let (mut p, mut m) = (ys.clone(), ys.clone());
        p[i] += e;
        m[i] -= e;
        let fd = (loss(&xs, &p) - loss(&xs, &m)) / (2.0 * e as f64);
        assert!((fd - gpu[1][i] as f64).abs() <= 1e-3, "d y[{i}]: fd {fd} vs {}", gpu[1][i]);
    }
}

#[test]
fn multi_output_and_multi_launch_nodes_plan_safely() {
    // top_k writes two slots, distinct from each other and from its input; the scatter
    // (top_k's backward) is two launches, the first binding only its output.
    let mut g = Graph::new();
    let x = g.input(&[4, 30]);
    let h = g.scale(x, 2.0).unwrap();
    let (v, _) = g.top_k(h, 10).unwrap();
    let seed = g.input(&[4, 10]);
    let dx = backward(&mut g, v, seed, &[x]).unwrap()[0];
    g.output(dx);
    let p = plan(&g, &DeviceCaps::default()).unwrap();
    let topk = p.steps.iter().find(|s| s.op == "top_k").unwrap();
    let n = topk.bindings.len();
    assert_eq!(n, 3);
    assert!(topk.bindings[1] != topk.bindings[2] && topk.bindings[0] != topk.bindings[1] && topk.bindings[0] != topk.bindings[2]);
    let scatter: Vec<_> = p.steps.iter().filter(|s| s.op == "scatter_rows").collect();
    assert_eq!(scatter.len(), 2, "zero, then scatter");
    assert_eq!(&scatter[0].bindings[..2], &[Binding::Unused, Binding::Unused]);
    assert_eq!(scatter[0].bindings[2], scatter[1].bindings[2]);
    // Stale data in a reused slot must not survive the zeroing launch.
    let xs = rand_vec(4 * 30, 9, 5.0);
    let r = rand_vec(40, 10, 1.0);
    let (gpu, cpu) = run(&g, &[xs, r]);
    assert_eq!(gpu[0], cpu[0]);
    assert_eq!(gpu[0].iter().filter(|v| **v == 0.0).count(), 4 * 20);
}

#[test]
fn selection_shape_errors_are_reported_not_panicked() {
    let mut g = Graph::new();
    let x = g.input(&[2, 5]);
    let t = g.input(&[2, 5, 3]);
    let f = g.input(&[2, 3]);
    let u = g.input_typed(&[3, 3], DType::U32);
    for (what, r) in [
        ("k = 0", g.top_k(x, 0).map(|_| ())),
        ("k > cols", g.top_k(x, 6).map(|_| ())),
        ("u32 scores", g.top_k(u, 2).map(|_| ())),
        ("f32 indices", g.gather_tokens(t, f).map(|_| ())),
        ("batch mismatch", g.gather_tokens(t, u).map(|_| ())),
        ("rank", g.gather_tokens(x, u).map(|_| ())),
    ] {
        let e = r.expect_err(what).to_string();
        assert!(e.contains("top_k") || e.contains("gather_tokens"), "{what}: {e}");
    }
}

#[test]
fn last_dim_slices_and_splits_with_their_gradient() {
    // DynamicViT's predictor splits 384 channels in two halves; T2T's performer splits kqv in three.
    for (lead, cols, sizes) in [(vec![2, 7], 12, vec![6, 6]), (vec![3], 192, vec![64, 64, 64]), (vec![1, 1, 5], 9, vec![1, 7, 1])] {
        let rows: usize = lead.iter().product();
        let mut shape = lead.clone();
        shape.push(cols);
        let mut g = Graph::new();
        let x = g.input(&shape);
        let parts = g.split_last(x, &sizes).unwrap();
        let seeds: Vec<_> = sizes
            .iter()
            .map(|&n| {
                let mut s = lead.clone();
                s.push(n);
                g.input(&s)
            })
            .collect();
        let mut grads = Vec::new();
        for (&p, &s) in parts.iter().zip(&seeds) {
            grads.push(backward(&mut g, p, s, &[x]).unwrap()[0]);
            g.output(p);
        }
        for &d in &grads {
            g.output(d);
        }
        let xs = rand_vec(rows * cols, cols as u64, 1.0);
        let rs: Vec<Vec<f32>> = sizes.iter().enumerate().map(|(i, &n)| rand_vec(rows * n, 50 + i as u64, 1.0)).collect();
        let mut inputs = vec![xs.clone()];
        inputs.extend(rs.iter().cloned());
        let (gpu, cpu) = run(&g, &inputs);
        assert_eq!(gpu, cpu, "{lead:?} x {cols} into {sizes:?}");
        let mut start = 0;
        for (k, &n) in sizes.iter().enumerate() {
            for r in 0..rows {
                assert_eq!(&gpu[k][r * n..][..n], &xs[r * cols + start..][..n], "piece {k} row {r}");
                // The piece's gradient sits in its window, zeros elsewhere.
                let d = &gpu[sizes.len() + k][r * cols..][..cols];
                assert_eq!(&d[start..start + n], &rs[k][r * n..][..n]);
                assert!(d[..start].iter().chain(&d[start + n..]).all(|v| *v == 0.0));
            }
            start += n;
        }
        // Central differences of L = sum_k sum(r_k * piece_k) on a few inputs (CPU forward).
        let loss = |xs: &[f32]| -> f64 {
            let mut f = Graph::new();
            let x = f.input(&shape);
            for p in f.split_last(x, &sizes).unwrap() {
                f.output(p);
            }
            let o = f.eval_cpu(&[xs.to_vec()], &Weights::new()).unwrap();
            o.iter().zip(&rs).map(|(p, r)| p.iter().zip(r).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>()).sum()
        };
        let total: Vec<f32> = (0..rows * cols).map(|i| (0..sizes.len()).map(|k| gpu[sizes.len() + k][i]).sum()).collect();
        for i in (0..rows * cols).step_by(5) {
            let (mut p, mut m) = (xs.clone(), xs.clone());
            p[i] += 1e-2;
            m[i] -= 1e-2;
            let fd = (loss(&p) - loss(&m)) / 2e-2;
            assert!((fd - total[i] as f64).abs() <= 1e-3, "d x[{i}]: fd {fd} vs {}", total[i]);
        }
    }
    let mut g = Graph::new();
    let x = g.input(&[2, 5]);
    for (what, r) in [
        ("empty", g.slice_last(x, 2, 0).map(|_| ())),
        ("past the end", g.slice_last(x, 3, 3).map(|_| ())),
        ("overflow", g.slice_last(x, usize::MAX, 2).map(|_| ())),
        ("pieces", g.split_last(x, &[2, 2]).map(|_| ())),
    ] {
        let e = r.expect_err(what).to_string();
        assert!(e.contains("slice_last") || e.contains("split_last"), "{what}: {e}");
    }
}
