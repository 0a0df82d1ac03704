//! Classification: a model on an engine, executables cached per batch size.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu::{Executable, LayerTime};
use crate::graph::{Graph, Precision};
use crate::models::Model;
use std::collections::HashMap;

/// One class in a top-k list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Prediction {
    /// Class index (row of the head).
    pub index: usize,
    /// Class name (`label_names`, ImageNet-1k names, or `class N`).
    pub label: String,
    /// Softmax probability, 0 to 1.
    pub prob: f32,
}

/// A model compiled for an engine, one executable per batch size. The
/// weights are uploaded once, with the first executable; every other batch
/// size runs on the same parameter buffers.
pub struct Classifier {
    /// The model (config, labels, weights as loaded).
    pub model: Model,
    exes: HashMap<usize, Executable>,
    /// The graph and batch size of the executable that owns the weights.
    first: Option<(Graph, usize)>,
    /// An early-exit cascade's executables, per (exit, batch).
    exit_exes: HashMap<(usize, usize), Executable>,
    /// Per exit: the graph and batch size of the executable that owns its weights.
    exit_first: HashMap<usize, (Graph, usize)>,
    /// Readback buffers of each (exit, batch)'s logits, made on first use and reused.
    exit_readback: HashMap<(usize, usize), crate::gpu::buffers::Owned>,
    /// How the weights are stored on the GPU.
    precision: Precision,
}

impl Classifier {
    /// A classifier for `model`; nothing is compiled until the first batch.
    pub fn new(model: Model) -> Self {
        Classifier {
            model,
            exes: HashMap::new(),
            first: None,
            exit_exes: HashMap::new(),
            exit_first: HashMap::new(),
            exit_readback: HashMap::new(),
            precision: Precision::F32,
        }
    }

    /// Stores the matmul weights in f16 on the GPU (`Precision::F16`: half
    /// their memory, logits within about 1e-2 relative of f32; on an adapter with
    /// SHADER_F16 also the activations that only matmuls read, see
    /// [`Graph::store_activations_f16`]) or f32 (the default, exact). Executables
    /// compiled before are dropped.
    pub fn set_precision(&mut self, precision: Precision) {
        if precision != self.precision {
            self.precision = precision;
            self.forget_executables();
        }
    }

    /// Drops the compiled executables, so the next request plans again (after the engine's
    /// kernel choice changed: [`Engine::force_matmul`]).
    pub fn forget_executables(&mut self) {
        self.exes.clear();
        self.first = None;
        self.exit_exes.clear();
        self.exit_first.clear();
        self.exit_readback.clear();
    }

    /// The weights' precision on the GPU.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The model's graph for `batch` images at this classifier's precision, as any
    /// adapter runs it (f16 weights at `Precision::F16`; [`Classifier::graph_for`]
    /// adds what depends on the adapter).
    pub fn graph(&self, batch: usize) -> Result<Graph> {
        let mut g = self.model.graph(batch)?;
        g.apply_precision(self.precision, false);
        Ok(g)
    }

    /// The graph for `batch` images exactly as `engine` runs it: at `Precision::F16`
    /// on an adapter with SHADER_F16 the activations between matmuls in f16 too
    /// ([`Graph::apply_precision`]; profiles compile this one).
    pub fn graph_for(&self, engine: &Engine, batch: usize) -> Result<Graph> {
        let mut g = self.model.graph(batch)?;
        g.apply_precision(self.precision, engine.ctx.summary.shader_f16);
        Ok(g)
    }

    /// Exit `e`'s graph of an early-exit cascade at this classifier's precision, for an
    /// adapter with (`shader_f16`) or without SHADER_F16.
    fn exit_graph(&self, e: usize, batch: usize, shader_f16: bool) -> Result<Graph> {
        let mut g = self.model.config.arch.build_exit(e, batch)?;
        g.apply_precision(self.precision, shader_f16);
        Ok(g)
    }

    /// Checks, before anything is allocated on the GPU, that the model fits the engine's
    /// device at batch 1: the planner's message when a tensor is larger than the device's
    /// storage binding limit (every exit's graph for an early-exit cascade).
    pub fn check_fits(&self, engine: &Engine) -> Result<()> {
        let graphs = match self.model.config.arch.exits() {
            Some(x) => (0..x.gflops.len()).map(|e| self.exit_graph(e, 1, false)).collect::<Result<Vec<_>>>()?,
            None => vec![self.graph(1)?],
        };
        for g in &graphs {
            crate::graph::plan::plan(g, &engine.caps()).map_err(|e| match e {
                Error::Gpu(m) => Error::Gpu(format!("{} is too large for this GPU even at batch 1: {m}", self.model.source)),
                other => other,
            })?;
        }
        Ok(())
    }

    /// Values in one preprocessed image tensor.
    pub fn image_len(&self) -> usize {
        self.model.config.data.input_size.iter().product()
    }

    /// Builds (once) the executables for `batch` images: the model's, or for an
    /// early-exit cascade every exit's at that batch size.
    pub fn prepare(&mut self, engine: &mut Engine, batch: usize) -> Result<()> {
        match self.model.config.arch.exits() {
            Some(x) => (0..x.gflops.len()).try_for_each(|e| self.prepare_exit(engine, e, batch).map(|_| ())),
            None => self.prepare_single(engine, batch).map(|_| ()),
        }
    }

    /// Builds (once) exit `e`'s executable for `batch` images; every batch size of an
    /// exit runs on the parameter buffers of its first.
    fn prepare_exit(&mut self, engine: &mut Engine, e: usize, batch: usize) -> Result<&Executable> {
        if batch == 0 {
            return Err(Error::Input("batch size must be at least 1".into()));
        }
        if !self.exit_exes.contains_key(&(e, batch)) {
            let g = self.exit_graph(e, batch, engine.ctx.summary.shader_f16)?;
            let shared = self.exit_first.get(&e).and_then(|(src_g, b)| Some((src_g, self.exit_exes.get(&(e, *b))?)));
            let exe = match shared {
                Some((src_g, src)) => engine.compile_sharing(&g, src_g, src)?,
                None => engine.compile(&g, &self.model.weights.data())?,
            };
            self.exit_first.entry(e).or_insert((g, batch));
            self.exit_exes.insert((e, batch), exe);
        }
        self.exit_exes.get(&(e, batch)).ok_or_else(|| Error::Internal("executable missing".into()))
    }

    /// Runs an early-exit cascade on a batch of preprocessed images: exit 0 for every
    /// image, then each next exit only for the images whose max softmax stayed below
    /// their exit's threshold, gathered into a smaller batch (a power-of-two bucket,
    /// padded with a copy of the first survivor) whose carried tensors are copied row
    /// by row on the GPU; only each exit's logits are read back. Returns the exit each
    /// image took (as f32), each exit's logits `[B, K]` (NaN rows where an image did not
    /// run it), then the logits of the exit taken.
    async fn run_cascade(&mut self, engine: &mut Engine, input: &[f32]) -> Result<Vec<Vec<f32>>> {
        let exits = self.model.config.arch.exits().ok_or_else(|| Error::Input("not an early-exit model".into()))?;
        let n_exit = exits.gflops.len();
        let per = self.image_len();
        if input.is_empty() || !input.len().is_multiple_of(per) {
            return Err(Error::Input(format!("input has {} values, not a multiple of one image ({per})", input.len())));
        }
        let n = input.len() / per;
        let k = self.model.config.num_classes().max(1);
        let buckets = crate::gpu::BatchBuckets::powers_of_two(n);
        let mut exit_of = vec![0f32; n];
        let mut per_exit = vec![vec![f32::NAN; n * k]; n_exit];
        let mut taken = vec![0f32; n * k];
        let mut alive: Vec<usize> = (0..n).collect();
        // The previous exit's batch size and each surviving image's row in it.
        let mut prev: Option<(usize, HashMap<usize, usize>)> = None;
        for (e, exit_logits) in per_exit.iter_mut().enumerate() {
            let Some(&first) = alive.first() else { break };
            let b = if e == 0 { n } else { buckets.bucket(alive.len()).unwrap_or(n) };
            self.prepare_exit(engine, e, b)?;
            if let Some((pb, _)) = &prev {
                self.prepare_exit(engine, e - 1, *pb)?;
            }
            let exe = self.exit_exes.get(&(e, b)).ok_or_else(|| Error::Internal("executable missing".into()))?;
            let row_image = |r: usize| alive.get(r).copied().unwrap_or(first);
            let ctx = &engine.ctx;
            let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("cascade") });
            let mut images = Vec::with_capacity(b * per);
            for r in 0..b {
                let i = row_image(r);
                images.extend_from_slice(&input[i * per..(i + 1) * per]);
            }
            let (dst, len) = exe.input_buffer(0).ok_or_else(|| Error::Input("exit has no image input".into()))?;
            if len != images.len() {
                return Err(Error::Input(format!("exit {e}: image input holds {len} values, not {}", images.len())));
            }
            ctx.queue.write_buffer(dst, 0, bytemuck::cast_slice(&images));
            if let Some((pb, rows)) = &prev {
                let src_exe = self.exit_exes.get(&(e - 1, *pb)).ok_or_else(|| Error::Internal("executable missing".into()))?;
                for i in 1..exe.plan().inputs.len() {
                    let (dst, len) = exe.input_buffer(i).ok_or_else(|| Error::Input("missing input".into()))?;
                    let (src, src_len) =
                        src_exe.output_buffer(i).ok_or_else(|| Error::Input(format!("exit {} carries no output {i}", e - 1)))?;
                    if len % b != 0 || src_len % pb != 0 || len / b != src_len / pb {
                        return Err(Error::Input(format!(
                            "exit {e} input {i}: {len} values for {b} images; exit {} gives {src_len} for {pb}",
                            e - 1
                        )));
                    }
                    let row = (len / b * 4) as u64;
                    for r in 0..b {
                        let sr = rows.get(&row_image(r)).copied().ok_or_else(|| Error::Internal("cascade lost an image".into()))?;
                        enc.copy_buffer_to_buffer(src, sr as u64 * row, dst, r as u64 * row, Some(row));
                    }
                }
            }
            exe.record_passes(&mut enc);
            let (out, len) = exe.output_buffer(0).ok_or_else(|| Error::Input("exit has no logits".into()))?;
            if len != b * k {
                return Err(Error::Input(format!("exit {e}: {len} logits for {b} images of {k} classes")));
            }
            let rb = self
                .exit_readback
                .entry((e, b))
                .or_insert_with(|| crate::gpu::buffers::Owned::new(crate::gpu::buffers::staging(&ctx.device, len as u64 * 4)));
            enc.copy_buffer_to_buffer(out, 0, rb, 0, Some(len as u64 * 4));
            ctx.queue.submit([enc.finish()]);
            let logits = crate::gpu::buffers::read_f32(&ctx.device, rb, len).await?;
            ctx.check_errors("running an exit")?;
            let mut next = Vec::new();
            let mut rows = HashMap::new();
            for (r, &i) in alive.iter().enumerate() {
                let row = &logits[r * k..(r + 1) * k];
                exit_logits[i * k..(i + 1) * k].copy_from_slice(row);
                let conf = crate::calibrate::confidence(row);
                if e + 1 == n_exit || exits.thresholds.get(e).is_some_and(|&t| conf >= t) {
                    exit_of[i] = e as f32;
                    taken[i * k..(i + 1) * k].copy_from_slice(row);
                } else {
                    next.push(i);
                    rows.insert(i, r);
                }
            }
            alive = next;
            prev = Some((b, rows));
        }
        let mut out = vec![exit_of];
        out.extend(per_exit);
        out.push(taken);
        Ok(out)
    }

    /// The model's single-graph executable for `batch` images, built on first use
    /// (not for early-exit cascades, whose exits are separate executables).
    pub fn executable(&mut self, engine: &mut Engine, batch: usize) -> Result<&Executable> {
        self.prepare_single(engine, batch)
    }

    /// Builds (once) the single-graph executable for `batch` images.
    fn prepare_single(&mut self, engine: &mut Engine, batch: usize) -> Result<&Executable> {
        if batch == 0 {
            return Err(Error::Input("batch size must be at least 1".into()));
        }
        if !self.exes.contains_key(&batch) {
            let g = self.graph_for(engine, batch)?;
            let shared = self.first.as_ref().and_then(|(src_g, b)| Some((src_g, self.exes.get(b)?)));
            let exe = match shared {
                Some((src_g, src)) => engine.compile_sharing(&g, src_g, src)?,
                None => engine.compile(&g, &self.model.weights.data())?,
            };
            if self.first.is_none() {
                self.first = Some((g, batch));
            }
            self.exes.insert(batch, exe);
        }
        self.exes.get(&batch).ok_or_else(|| Error::Internal("executable missing".into()))
    }

    /// The executable for a batch of preprocessed tensors (built on first use).
    fn executable_for(&mut self, engine: &mut Engine, input: &[f32]) -> Result<&Executable> {
        let n = self.image_len();
        if input.is_empty() || !input.len().is_multiple_of(n) {
            return Err(Error::Input(format!("input has {} values, not a multiple of one image ({n})", input.len())));
        }
        self.prepare_single(engine, input.len() / n)
    }

    /// Logits `[B, classes]` for a batch of preprocessed tensors `[B, C, H, W]`.
    pub async fn logits(&mut self, engine: &mut Engine, input: &[f32]) -> Result<Vec<f32>> {
        Ok(self.logits_timed(engine, input, false).await?.0)
    }

    /// Every output of the model's graph for a batch: the family's extra outputs
    /// (DynamicViT's kept indices, see [`Arch::explain`](crate::models::family::Arch::explain)), then the logits.
    pub async fn outputs(&mut self, engine: &mut Engine, input: &[f32]) -> Result<Vec<Vec<f32>>> {
        if self.model.config.arch.exits().is_some() {
            return self.run_cascade(engine, input).await;
        }
        let exe = self.executable_for(engine, input)?;
        exe.run(&engine.ctx, &[input]).await
    }

    /// Like [`Classifier::logits`], with per-layer GPU times when `timed` and supported.
    pub async fn logits_timed(&mut self, engine: &mut Engine, input: &[f32], timed: bool) -> Result<(Vec<f32>, Option<Vec<LayerTime>>)> {
        if self.model.config.arch.exits().is_some() {
            return Ok((self.run_cascade(engine, input).await?.pop().unwrap_or_default(), None));
        }
        let exe = self.executable_for(engine, input)?;
        let (mut outs, times) =
            if timed { exe.run_timed(&engine.ctx, &[input]).await? } else { (exe.run(&engine.ctx, &[input]).await?, None) };
        Ok((outs.pop().unwrap_or_default(), times))
    }

    /// Every output of a batch (as [`Classifier::outputs`]: the logits last) with stage
    /// times from `clock` (ms): (outputs, GPU ms, readback ms).
    pub async fn outputs_staged(
        &mut self,
        engine: &mut Engine,
        input: &[f32],
        clock: &dyn Fn() -> f64,
    ) -> Result<(Vec<Vec<f32>>, f64, f64)> {
        if self.model.config.arch.exits().is_some() {
            // The cascade reads back between exits: its GPU time includes those readbacks.
            let t0 = clock();
            let out = self.run_cascade(engine, input).await?;
            return Ok((out, clock() - t0, 0.0));
        }
        let exe = self.executable_for(engine, input)?;
        exe.run_staged(&engine.ctx, &[input], clock).await
    }

    /// The `k` most probable classes of one encoded image (PNG, JPEG, ...),
    /// preprocessed with the model's data config (timm's eval transform).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn classify(&mut self, engine: &mut Engine, image: &[u8], k: usize) -> Result<Vec<Prediction>> {
        let rows = self.run_images(engine, &[image])?;
        let row = rows.first().map(Vec::as_slice).unwrap_or(&[]);
        Ok(self.top_k(row, k))
    }

    /// The model's output row for each encoded image, run as one batch:
    /// logits `[classes]`, or the pooled embedding `[C]` for a model made with
    /// [`Model::into_feature_extractor`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_images(&mut self, engine: &mut Engine, images: &[&[u8]]) -> Result<Vec<Vec<f32>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = Vec::with_capacity(images.len() * self.image_len());
        for (i, bytes) in images.iter().enumerate() {
            input.extend(crate::preprocess::load_tensor(bytes, &format!("image {i}"), &self.model.config.data)?);
        }
        let out = pollster::block_on(self.logits(engine, &input))?;
        let width = out.len() / images.len();
        Ok(out.chunks(width.max(1)).map(<[f32]>::to_vec).collect())
    }

    /// Top-k classes of one row of logits, with softmax probabilities.
    pub fn top_k(&self, logits: &[f32], k: usize) -> Vec<Prediction> {
        top_k(logits, k).into_iter().map(|(index, prob)| Prediction { index, label: self.model.label(index), prob }).collect()
    }
}

/// Softmax (max subtracted, f64) and the `k` most probable indices.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mx = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = logits.iter().map(|&l| (l as f64 - mx).exp()).collect();
    let sum: f64 = e.iter().sum();
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| e[b].total_cmp(&e[a]).then(a.cmp(&b)));
    idx.into_iter().take(k).map(|i| (i, (e[i] / sum) as f32)).collect()
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// A second batch size runs on the first one's parameter buffers (no
    /// second upload) and gives the same logits per image.
    #[test]
    fn batch_sizes_share_the_uploaded_weights() -> Result<()> {
        let mut engine = Engine::new_blocking()?;
        let mut clf = Classifier::new(Model::builtin()?);
        let n = clf.image_len();
        let one: Vec<f32> = (0..n).map(|i| (i % 7) as f32 / 7.0 - 0.5).collect();
        let three: Vec<f32> = one.iter().chain(&one).chain(&one).copied().collect();
        let a = pollster::block_on(clf.logits(&mut engine, &one))?;
        let b = pollster::block_on(clf.logits(&mut engine, &three))?;
        for row in b.chunks(a.len()) {
            let d = row.iter().zip(&a).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(d <= 1e-5, "batch 3 row differs from batch 1 by {d}");
        }
        let (e1, e3) = (&clf.exes[&1], &clf.exes[&3]);
        let owned: Vec<&wgpu::Buffer> = e1.plan().params.iter().filter_map(|&t| e1.param_buffer(t)).collect();
        assert!(!owned.is_empty());
        for &t in &e3.plan().params {
            let buf = e3.param_buffer(t).expect("a parameter buffer");
            assert!(owned.contains(&buf), "batch 3 uploaded its own copy of parameter {t}");
        }
        Ok(())
    }
}
