//! Benchmarks behind `vitrine bench`: matmul GFLOP/s per kernel variant and
//! model forward throughput. Warm-up runs compile pipelines first.

use crate::engine::Engine;
use crate::error::Result;
use crate::graph::{Graph, MatmulKind};
use std::collections::HashMap;
use std::time::Instant;

/// Deterministic pseudo-random weights for every tensor a graph needs
/// (benchmarks of presets without downloading a checkpoint).
pub fn random_weights(table: &[(String, Vec<usize>)], seed: u64) -> HashMap<String, Vec<f32>> {
    let mut rng = crate::train::data::Rng::new(seed);
    let mut next = move || rng.unit() as f32 - 0.5;
    table
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let scale = if shape.len() >= 2 { 1.0 / (shape[shape.len() - 1] as f32).sqrt() } else { 0.1 };
            let v = if name.ends_with("norm1.weight") || name.ends_with("norm2.weight") || name.ends_with("norm.weight") {
                vec![1.0; n]
            } else {
                (0..n).map(|_| next() * scale).collect()
            };
            (name.clone(), v)
        })
        .collect()
}

/// One matmul measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatmulResult {
    pub variant: String,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub ms: f64,
    pub gflops: f64,
}

/// Times `x[M, K] . w[N, K]^T` with the given variant; median of `iters` runs.
pub fn matmul(engine: &mut Engine, kind: MatmulKind, m: usize, n: usize, k: usize, iters: usize) -> Result<MatmulResult> {
    let mut g = Graph::new();
    let x = g.input(&[m, k]);
    let w = g.param("w", &[n, k]);
    let y = g.linear(x, w, None)?;
    g.output(y);
    let weights = random_weights(&g.param_table(), 7);
    engine.force_matmul(Some(kind))?;
    let exe = engine.compile(&g, &weights);
    engine.force_matmul(None)?;
    let exe = exe?;
    let input = vec![0.5f32; m * k];
    pollster::block_on(exe.run(&engine.ctx, &[&input]))?;
    // GPU time from timestamp queries where the adapter has them; otherwise
    // wall time of a whole run (upload + dispatch + readback).
    let mut times = Vec::new();
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        let (_, layers) = pollster::block_on(exe.run_timed(&engine.ctx, &[&input]))?;
        let wall = t.elapsed().as_secs_f64() * 1e3;
        times.push(layers.map(|l| l.iter().map(|x| x.ms).sum::<f64>()).filter(|&ms| ms > 0.0).unwrap_or(wall));
    }
    times.sort_by(f64::total_cmp);
    let ms = times[times.len() / 2];
    let variant = format!("{kind:?}").to_lowercase();
    Ok(MatmulResult { variant, m, n, k, ms, gflops: 2.0 * (m * n * k) as f64 / ms / 1e6 })
}
