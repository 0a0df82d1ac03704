//! Benchmarks behind `vitrine bench`: matmul GFLOP/s per kernel variant and
//! model forward throughput. Warm-up runs compile pipelines first.

use crate::engine::Engine;
use crate::error::Result;
use crate::graph::{Graph, MatmulKind};
use crate::ops::Layout;
use crate::tune::MatmulShape;
use std::time::Instant;

/// One matmul measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatmulResult {
    /// Kernel variant measured, the lowercased [`MatmulKind`] name (e.g. `tiled`).
    pub variant: String,
    /// Rows of `x` and of the output (M).
    pub m: usize,
    /// Rows of `w`, columns of the output (N).
    pub n: usize,
    /// Reduction length (K).
    pub k: usize,
    /// Median time of one matmul in milliseconds: GPU time from timestamp
    /// queries where the adapter has them, else wall time of a whole run.
    pub ms: f64,
    /// Throughput in GFLOP/s, counting `2 * M * N * K` flops per matmul.
    pub gflops: f64,
}

/// Times `x[M, K] . w[N, K]^T` with the given variant; median of `iters` runs.
pub fn matmul(engine: &mut Engine, kind: MatmulKind, m: usize, n: usize, k: usize, iters: usize) -> Result<MatmulResult> {
    let shape = MatmulShape { layout: Layout::ABt, z: 1, m, n, k, w_batched: false };
    let ms = product(engine, kind, shape, iters)?;
    let variant = kind.name().to_string();
    Ok(MatmulResult { variant, m, n, k, ms, gflops: 2.0 * (m * n * k) as f64 / ms / 1e6 })
}

/// Median milliseconds of one product of `shape` with the given variant, over
/// `iters` runs after a warm-up: GPU time from timestamp queries where the
/// adapter has them, else wall time of a whole run (upload + dispatch + readback).
pub fn product(engine: &mut Engine, kind: MatmulKind, shape: MatmulShape, iters: usize) -> Result<f64> {
    let MatmulShape { layout, z, m, n, k, w_batched } = shape;
    let mut g = Graph::new();
    let a = g.input(&[z * m * k]);
    let w = g.input(&[if w_batched { z } else { 1 } * n * k]);
    let y = g.product(a, w, layout, [z, m, n, k], w_batched, &[z, m, n])?;
    g.output(y);
    engine.force_matmul(Some(kind))?;
    let exe = engine.compile(&g, &Default::default());
    engine.force_matmul(None)?;
    let exe = exe?;
    let mut rng = crate::rng::Rng::new(7);
    let inputs: Vec<Vec<f32>> = [g.numel(a), g.numel(w)].iter().map(|&len| crate::models::init::trunc_normal(len, 0.5, &mut rng)).collect();
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    pollster::block_on(exe.run(&engine.ctx, &refs))?;
    let mut times = Vec::new();
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        let (_, layers) = pollster::block_on(exe.run_timed(&engine.ctx, &refs))?;
        let wall = t.elapsed().as_secs_f64() * 1e3;
        times.push(layers.map(|l| l.iter().map(|x| x.ms).sum::<f64>()).filter(|&ms| ms > 0.0).unwrap_or(wall));
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

pub use crate::gpu::by_op_kind;

/// Training-step throughput (forward, loss, backward, AdamW, one submit each).
#[derive(Debug, Clone)]
pub struct TrainBench {
    /// Median wall time of one training step in milliseconds (upload,
    /// forward, loss, backward, optimizer update, loss readback).
    pub step_ms: f64,
    /// Training images per second: `batch * 1000 / step_ms`.
    pub images_per_s: f64,
    /// Forward + backward GPU time by op kind (each op timed alone), when the
    /// adapter has timestamp queries.
    pub kinds: Option<Vec<(String, f64, usize)>>,
}

/// Times `iters` training steps of `model` at `batch` on synthetic data (median).
pub fn train(engine: &mut Engine, model: &crate::models::Model, batch: usize, iters: usize) -> Result<TrainBench> {
    use crate::gpu::optim::OptSettings;
    use crate::train::step::train_step;
    let tg = crate::train::trainer::training_graph(model, batch, 0.1, 1, false)?;
    let weights = model.weights.data();
    let exe = engine.compile(&tg.g, &weights)?;
    let mut opt = engine.optimizer(&exe, &tg.specs, OptSettings::adamw(0.05))?;
    let per = model.config.data.input_size.iter().product::<usize>();
    let mut rng = crate::train::data::Rng::new(3);
    let images: Vec<f32> = (0..batch * per).map(|_| rng.unit() as f32 * 2.0 - 1.0).collect();
    let k = model.config.num_classes().max(1);
    let labels: Vec<f32> = (0..batch).map(|i| (i % k) as f32).collect();
    // A family's own step (DynamicViT) also reads Gumbel noise and its teacher's outputs;
    // the teacher runs inside every timed step, as in training.
    let noise: Vec<Vec<f32>> =
        tg.noise.iter().map(|&n| (0..n).map(|_| -(-(1.0 - rng.unit()).ln().max(1e-30)).ln() as f32).collect()).collect();
    let teacher = tg.teacher.as_ref().map(|t| engine.compile(t, &weights)).transpose()?;
    // Borrowed, not copied: only the teacher's outputs are new at each step.
    fn step_inputs<'a>(images: &'a [f32], noise: &'a [Vec<f32>], labels: &'a [f32], teacher: &'a [Vec<f32>]) -> Vec<&'a [f32]> {
        let mut v: Vec<&[f32]> = vec![images];
        v.extend(noise.iter().map(Vec::as_slice));
        v.push(labels);
        v.extend(teacher.iter().map(Vec::as_slice));
        v
    }
    let run_teacher = |engine: &Engine| -> Result<Vec<Vec<f32>>> {
        match &teacher {
            Some(t) => pollster::block_on(t.run(&engine.ctx, &[&images])),
            None => Ok(Vec::new()),
        }
    };
    let first = run_teacher(engine)?;
    let refs = step_inputs(&images, &noise, &labels, &first);
    pollster::block_on(train_step(&engine.ctx, &exe, &mut opt, &refs, 1e-4))?;
    let step_ms = median_ms(iters, || {
        let teacher_out = run_teacher(engine)?;
        pollster::block_on(train_step(&engine.ctx, &exe, &mut opt, &step_inputs(&images, &noise, &labels, &teacher_out), 1e-4)).map(|_| ())
    })?;
    let kinds = if engine.ctx.adapter().timestamps {
        let exe = engine.compile_with(&tg.g, &weights, true)?;
        pollster::block_on(exe.run(&engine.ctx, &refs))?;
        let (_, ops) = pollster::block_on(exe.run_timed(&engine.ctx, &refs))?;
        Some(by_op_kind(&ops.unwrap_or_default()))
    } else {
        None
    };
    Ok(TrainBench { step_ms, images_per_s: batch as f64 * 1e3 / step_ms, kinds })
}

/// Median wall time in milliseconds of `iters` (at least one) calls of `run`.
pub fn median_ms(iters: usize, mut run: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut times = Vec::with_capacity(iters.max(1));
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// GFLOPs (multiply-adds) of one run of a graph: every linear and batched matmul,
/// as PyTorch's FlopCounter counts them.
pub fn graph_gflops(g: &Graph) -> f64 {
    g.nodes.iter().map(|n| n.op.macs(g)).sum::<u64>() as f64 / 1e9
}

/// One timed configuration of an early-exit cascade (or of a plain model).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CascadeResult {
    /// What was timed.
    pub label: String,
    /// The exit thresholds used (empty for a plain model).
    pub thresholds: Vec<f32>,
    /// Median wall time of one batch in milliseconds (uploads, every exit, readbacks).
    pub ms: f64,
    /// Images per second at that median.
    pub images_per_s: f64,
    /// Mean GFLOPs per image of the exits the images took.
    pub gflops_per_image: f64,
    /// Share of the images answered by each exit.
    pub exit_share: Vec<f64>,
}

/// Times a cascade classifier on `input` (`batch` images) under `thresholds`: a warm-up
/// run (compiles the exits' batch sizes), then the median of `iters` runs.
pub fn cascade(
    engine: &mut Engine,
    clf: &mut crate::Classifier,
    input: &[f32],
    label: &str,
    thresholds: &[f32],
    iters: usize,
) -> Result<CascadeResult> {
    clf.model.config.arch.set_exit_thresholds(thresholds)?;
    let exits = clf.model.config.arch.exits().ok_or_else(|| crate::Error::Input("not an early-exit model".into()))?;
    let out = pollster::block_on(clf.outputs(engine, input))?;
    let taken: Vec<usize> = out.first().map(|v| v.iter().map(|&e| e as usize).collect()).unwrap_or_default();
    let n = taken.len().max(1);
    let ms = median_ms(iters, || pollster::block_on(clf.outputs(engine, input)).map(|_| ()))?;
    let gflops_per_image = taken.iter().map(|&e| exits.gflops.get(e).copied().unwrap_or(0.0)).sum::<f64>() / n as f64;
    let exit_share = (0..exits.gflops.len()).map(|e| taken.iter().filter(|&&x| x == e).count() as f64 / n as f64).collect();
    Ok(CascadeResult {
        label: label.into(),
        thresholds: thresholds.to_vec(),
        ms,
        images_per_s: n as f64 * 1e3 / ms,
        gflops_per_image,
        exit_share,
    })
}
