//! `Program`: executables chained on device buffers with partial readback
//! between runs (DVT's cascade: exit 1 for the batch, read only its
//! confidences, run exit 2 on the survivors gathered on the GPU), and
//! `BatchBuckets` for survivor counts that change per run. Results are
//! compared with the same computation on the CPU reference graphs.

mod common;
use common::*;
use vitrine::gpu::{BatchBuckets, Feed, Program};
use vitrine::graph::{u32_as_f32_bits, DType, Graph};
use vitrine::ops::{Act, PoolMode};

const C: usize = 8;
const T: usize = 5;
const K: usize = 3;

/// Exit 1: tokens [B, T, C] -> logits [B, K] (output 0) and features gelu(x W1^T + b1) [B, T, C] (output 1).
fn exit1(b: usize) -> Graph {
    let mut g = Graph::new();
    let x = g.input(&[b, T, C]);
    let w = g.param("w1", &[C, C]);
    let bias = g.param("b1", &[C]);
    let f = g.linear_fused(x, w, Some(bias), Act::Gelu, None, None).unwrap();
    let pooled = g.pool(f, PoolMode::Avg(0)).unwrap();
    let h = g.param("head1", &[K, C]);
    let logits = g.linear(pooled, h, None).unwrap();
    g.output(logits);
    g.output(f);
    g
}

/// Exit 2 on `k` of `b` images: exit 1's features read as [1, B, T*C] (same bytes) and the
/// survivors' indices [1, k] (u32) -> logits of the survivors [1, k, K].
fn exit2(b: usize, k: usize) -> Graph {
    let mut g = Graph::new();
    let f = g.input(&[1, b, T * C]);
    let idx = g.input_typed(&[1, k], DType::U32);
    let picked = g.gather_tokens(f, idx).unwrap();
    let w = g.param("w2", &[K, T * C]);
    let logits = g.linear(picked, w, None).unwrap();
    g.output(logits);
    g
}

fn weights() -> Weights {
    Weights::from([
        ("w1".to_string(), rand_vec(C * C, 1, 0.5)),
        ("b1".to_string(), rand_vec(C, 2, 0.1)),
        ("head1".to_string(), rand_vec(K * C, 3, 1.0)),
        ("w2".to_string(), rand_vec(K * T * C, 4, 0.3)),
    ])
}

fn close(a: &[f32], b: &[f32], what: &str) {
    let (d, m) = max_diff(a, b);
    assert!(d <= 1e-5 * m.max(1.0), "{what}: max |diff| {d} (max {m})");
}

fn max_softmax(row: &[f32]) -> f32 {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    1.0 / row.iter().map(|v| (v - m).exp()).sum::<f32>()
}

#[test]
fn cascade_reads_back_only_confidences_and_runs_survivors_on_device_features() {
    let (b, w) = (6, weights());
    let x = rand_vec(b * T * C, 5, 1.0);
    let mut e = engine();
    let mut program = Program::new();
    let s1 = program.add(e.compile(&exit1(b), &w).unwrap(), vec![Feed::Host(0)]).unwrap();
    // Exit 2 compiled per survivor count bucket, reading exit 1's features on the GPU.
    let buckets = BatchBuckets::powers_of_two(b);
    assert_eq!(buckets.sizes(), &[1, 2, 4, 6]);
    let mut stage2 = std::collections::HashMap::new();
    for &k in buckets.sizes() {
        let exe = e.compile(&exit2(b, k), &w).unwrap();
        stage2.insert(k, program.add(exe, vec![Feed::Stage { stage: s1, output: 1 }, Feed::Host(0)]).unwrap());
    }
    let pipelines = e.pipeline_count();

    // Run exit 1 and read back its logits only.
    let out1 = pollster::block_on(program.run(&e.ctx, s1..s1 + 1, &[&x], &[(s1, 0)])).unwrap();
    let cpu1 = exit1(b).eval_cpu(std::slice::from_ref(&x), &w).unwrap();
    close(&out1[0], &cpu1[0], "exit 1 logits");
    // Survivors: the images below a confidence threshold (half of them here, at the median).
    let conf: Vec<f32> = out1[0].chunks(K).map(max_softmax).collect();
    let mut sorted = conf.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let threshold = sorted[b / 2];
    let survivors: Vec<u32> = (0..b as u32).filter(|&i| conf[i as usize] < threshold).collect();
    assert_eq!(survivors.len(), b / 2);
    for count in [survivors.len(), 1, 4, 5] {
        let chosen: Vec<u32> = survivors.iter().copied().cycle().take(count).collect();
        let k = buckets.bucket(count).unwrap();
        let s2 = stage2[&k];
        // Padding indices point at image 0; their rows are dropped.
        let idx = u32_as_f32_bits(&[chosen.clone(), vec![0; k - count]].concat());
        let out2 = pollster::block_on(program.run(&e.ctx, s2..s2 + 1, &[&idx], &[(s2, 0)])).unwrap();
        // CPU: exit 2 on exit 1's features, unpadded.
        let cpu2 = exit2(b, count).eval_cpu(&[cpu1[1].clone(), u32_as_f32_bits(&chosen)], &w).unwrap();
        close(&out2[0][..count * K], &cpu2[0], &format!("exit 2 logits of {count} survivors (bucket {k})"));
    }
    assert_eq!(e.pipeline_count(), pipelines, "survivor counts within the buckets compile nothing");

    // Both exits in one submit, reading exit 2 only (exit 1's outputs stay on the GPU).
    let idx = u32_as_f32_bits(&[5, 0]);
    let s2 = stage2[&2];
    let both = pollster::block_on(program.run(&e.ctx, 0..s2 + 1, &[&x, &idx], &[(s2, 0)]));
    // Host slice 0 is x for exit 1 and the indices for exit 2: a single run must give each stage its own.
    assert!(both.is_err(), "one host list cannot feed x to stage 0 and indices to stage {s2}");
}

#[test]
fn stages_in_one_submit_feed_each_other() {
    // x -> exit 1 -> (features) -> exit 2 on fixed survivors, one submit, one readback.
    let (b, w) = (3, weights());
    let x = rand_vec(b * T * C, 6, 1.0);
    let mut e = engine();
    let mut program = Program::new();
    let s1 = program.add(e.compile(&exit1(b), &w).unwrap(), vec![Feed::Host(0)]).unwrap();
    let s2 = program.add(e.compile(&exit2(b, 2), &w).unwrap(), vec![Feed::Stage { stage: s1, output: 1 }, Feed::Host(1)]).unwrap();
    let idx = u32_as_f32_bits(&[2, 0]);
    let out = pollster::block_on(program.run(&e.ctx, 0..2, &[&x, &idx], &[(s2, 0), (s1, 0)])).unwrap();
    let cpu1 = exit1(b).eval_cpu(std::slice::from_ref(&x), &w).unwrap();
    let cpu2 = exit2(b, 2).eval_cpu(&[cpu1[1].clone(), idx.clone()], &w).unwrap();
    close(&out[0], &cpu2[0], "exit 2");
    close(&out[1], &cpu1[0], "exit 1");
}

#[test]
fn program_errors_name_the_stage() {
    let (b, w) = (2, weights());
    let mut e = engine();
    let mut p = Program::new();
    let s1 = p.add(e.compile(&exit1(b), &w).unwrap(), vec![Feed::Host(0)]).unwrap();
    // exit 2 for 3 images cannot read exit 1's features of 2 images.
    let err =
        p.add(e.compile(&exit2(3, 1), &w).unwrap(), vec![Feed::Stage { stage: s1, output: 1 }, Feed::Host(0)]).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("stage 1"), "{err}");
    let err =
        p.add(e.compile(&exit2(b, 1), &w).unwrap(), vec![Feed::Stage { stage: 7, output: 0 }, Feed::Host(0)]).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("stage 7"), "{err}");
    let err = p.add(e.compile(&exit2(b, 1), &w).unwrap(), vec![Feed::Host(0)]).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("1 feeds for 2 inputs"), "{err}");
    let err = pollster::block_on(p.run(&e.ctx, 0..1, &[&[0.0; 3]], &[(0, 0)])).unwrap_err();
    assert!(err.to_string().contains("expected"), "{err}");
    assert!(pollster::block_on(p.run(&e.ctx, 0..4, &[], &[])).is_err());
    assert_eq!((BatchBuckets::powers_of_two(1).sizes(), BatchBuckets::powers_of_two(9).bucket(10)), (&[1][..], None));
    assert_eq!(BatchBuckets::pad(&[1.0, 2.0], 2, 3), vec![1.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
}
