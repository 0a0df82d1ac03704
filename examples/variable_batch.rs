//! What a batch size that changes per run costs (DVT's survivors of an early
//! exit): compiling an executable for each new size, or running the smallest
//! of a few compiled sizes (powers of two) with padding.
//!
//! ```text
//! cargo run --release --example variable_batch [PRESET] [MAX_BATCH]
//! ```
//! PRESET: a timm preset with random weights (default: the built-in model).

use std::time::Instant;
use vitrine::gpu::BatchBuckets;
use vitrine::models::config::preset;
use vitrine::{Engine, Model, Result};

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = match args.first() {
        Some(p) => Model::fresh(preset(p)?, 1)?,
        None => Model::builtin()?,
    };
    let max: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(8);
    let mut engine = Engine::new_blocking()?;
    let weights = model.weights.data();
    let (c, [h, w]) = model.config.input();
    let image = c * h * w;
    let buckets = BatchBuckets::powers_of_two(max);
    println!("model: {} | buckets {:?}", model.source, buckets.sizes());

    // One executable per bucket, compiled up front.
    let mut compiled = std::collections::HashMap::new();
    for &b in buckets.sizes() {
        compiled.insert(b, engine.compile(&model.graph(b)?, &weights)?);
    }
    let time_run = |engine: &Engine, exe: &vitrine::gpu::Executable, input: &[f32]| -> Result<f64> {
        pollster::block_on(exe.run(&engine.ctx, &[input]))?; // warm
        let mut t = Vec::new();
        for _ in 0..3 {
            let t0 = Instant::now();
            pollster::block_on(exe.run(&engine.ctx, &[input]))?;
            t.push(ms(t0));
        }
        t.sort_by(|a, b| a.total_cmp(b));
        Ok(t[1])
    };
    for n in 1..=max {
        let input = vec![0.25f32; n * image];
        // (a) an executable for exactly n images: new pipelines for every kernel whose shape constants hold B.
        let before = engine.pipeline_count();
        let t0 = Instant::now();
        let exact = engine.compile(&model.graph(n)?, &weights)?;
        let compile = ms(t0);
        let new_pipelines = engine.pipeline_count() - before;
        let run_exact = time_run(&engine, &exact, &input)?;
        // (b) the bucket that holds n, padded: nothing to compile.
        let k = buckets.bucket(n).unwrap_or(max);
        let padded = BatchBuckets::pad(&input, image, k);
        let run_bucket = time_run(&engine, &compiled[&k], &padded)?;
        println!(
            "batch {n}: exact size: compile {compile:.1} ms ({new_pipelines} new pipelines), run {run_exact:.1} ms | bucket {k}: 0 new pipelines, run {run_bucket:.1} ms"
        );
    }
    Ok(())
}
