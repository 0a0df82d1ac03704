//! [`Program`]: several executables run as one computation on shared device
//! buffers. A stage's inputs come from the host or from an earlier stage's
//! outputs (copied on the GPU, no round trip); a run covers a range of
//! stages in one submit and reads back only the outputs asked for, so the
//! host can look at a few numbers (an early exit's confidences) and decide
//! what the next stages get. Executables compiled with
//! `Engine::compile_sharing` also share parameter buffers.
//!
//! Batch sizes that change per run: compiling an executable for a new count
//! costs a few tens of milliseconds once (only the kernels with B in their
//! shape constants get new pipelines; the matmuls read shapes from a uniform),
//! which measured cheaper than padding every run for any model past a toy
//! (docs/PERFORMANCE.md, "Variable batch"): cache one executable per count.
//! [`BatchBuckets`] rounds a count up to one of a few compiled sizes (pad,
//! run, drop the padding) for when one executable per count is too much memory.

use super::buffers::{read_f32, staging};
use super::exec::Executable;
use super::Context;
use crate::error::{Error, Result};
use std::ops::Range;

/// Where a stage's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// The n-th host slice given to [`Program::run`].
    Host(usize),
    /// Output `output` of stage `stage` (an earlier one), copied on the GPU.
    Stage {
        /// Index of the producing stage.
        stage: usize,
        /// Index of its graph output.
        output: usize,
    },
}

/// Executables chained on device buffers.
#[derive(Default)]
pub struct Program {
    stages: Vec<(Executable, Vec<Feed>)>,
    /// Readback buffers by (stage, output), made on first read and reused.
    staging: std::sync::Mutex<std::collections::HashMap<(usize, usize), wgpu::Buffer>>,
}

impl Program {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a stage fed by `feeds` (one per graph input of `exe`); returns its index.
    /// A fed output must come from an earlier stage and hold exactly the input's element count.
    pub fn add(&mut self, exe: Executable, feeds: Vec<Feed>) -> Result<usize> {
        let me = self.stages.len();
        let inputs = exe.plan().inputs.len();
        if feeds.len() != inputs {
            return Err(Error::Input(format!("program stage {me}: {} feeds for {inputs} inputs", feeds.len())));
        }
        for (i, f) in feeds.iter().enumerate() {
            if let Feed::Stage { stage, output } = *f {
                let src = self.stages.get(stage).and_then(|(e, _)| e.output_buffer(output));
                let want = exe.input_buffer(i).map(|(_, n)| n);
                match src {
                    None => {
                        return Err(Error::Input(format!(
                            "program stage {me}: input {i} reads output {output} of stage {stage}, which does not exist"
                        )))
                    }
                    Some((_, n)) if Some(n) != want => {
                        return Err(Error::Input(format!(
                            "program stage {me}: input {i} holds {} values, output {output} of stage {stage} {n}",
                            want.unwrap_or(0)
                        )))
                    }
                    Some(_) => {}
                }
            }
        }
        self.stages.push((exe, feeds));
        Ok(me)
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether there are no stages.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The executable of a stage.
    pub fn stage(&self, i: usize) -> Option<&Executable> {
        self.stages.get(i).map(|(e, _)| e)
    }

    /// Runs `stages` in order in one submit: host feeds are written from
    /// `host`, stage feeds copied on the GPU (from this run or, for stages
    /// outside the range, from their last run), and the outputs in `reads`
    /// ((stage, output) pairs) are read back, in that order. Nothing else
    /// leaves the GPU.
    pub async fn run(&self, ctx: &Context, stages: Range<usize>, host: &[&[f32]], reads: &[(usize, usize)]) -> Result<Vec<Vec<f32>>> {
        if stages.end > self.stages.len() || stages.start > stages.end {
            return Err(Error::Input(format!("program has {} stages; cannot run {stages:?}", self.stages.len())));
        }
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("program") });
        for s in stages {
            let (exe, feeds) = &self.stages[s];
            for (i, f) in feeds.iter().enumerate() {
                let (dst, n) = exe.input_buffer(i).ok_or_else(|| Error::Input(format!("stage {s} has no input {i}")))?;
                match *f {
                    Feed::Host(k) => {
                        let data = host.get(k).ok_or_else(|| Error::Input(format!("stage {s} input {i} needs host slice {k}")))?;
                        if data.len() != n {
                            return Err(Error::Input(format!("stage {s} input {i}: expected {n} values, got {}", data.len())));
                        }
                        ctx.queue.write_buffer(dst, 0, bytemuck::cast_slice(data));
                    }
                    Feed::Stage { stage, output } => {
                        let (src, _) =
                            self.stages[stage].0.output_buffer(output).ok_or_else(|| Error::Input("missing stage output".into()))?;
                        enc.copy_buffer_to_buffer(src, 0, dst, 0, Some(n as u64 * 4));
                    }
                }
            }
            exe.record_passes(&mut enc);
        }
        let mut staged = Vec::with_capacity(reads.len());
        {
            let mut cache = self.staging.lock().map_err(|_| Error::Gpu("program readback buffers poisoned".into()))?;
            for &(s, o) in reads {
                let (buf, n) = self
                    .stages
                    .get(s)
                    .and_then(|(e, _)| e.output_buffer(o))
                    .ok_or_else(|| Error::Input(format!("program: no output {o} of stage {s} to read")))?;
                let rb = cache.entry((s, o)).or_insert_with(|| staging(&ctx.device, n as u64 * 4)).clone();
                enc.copy_buffer_to_buffer(buf, 0, &rb, 0, Some(n as u64 * 4));
                staged.push((rb, n));
            }
        }
        ctx.queue.submit([enc.finish()]);
        let mut out = Vec::with_capacity(staged.len());
        for (rb, n) in &staged {
            out.push(read_f32(&ctx.device, rb, *n).await?);
        }
        ctx.check_errors("running a program")?;
        Ok(out)
    }
}

/// A small set of batch sizes to compile, for runs whose image count varies
/// (the images that survive an early exit): a count runs in the smallest
/// size that holds it, padded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchBuckets {
    sizes: Vec<usize>,
}

impl BatchBuckets {
    /// Powers of two up to `max` (and `max` itself): at most 2x padding, log2(max) compilations.
    pub fn powers_of_two(max: usize) -> Self {
        let mut sizes: Vec<usize> = std::iter::successors(Some(1usize), |s| s.checked_mul(2)).take_while(|&s| s < max).collect();
        sizes.push(max.max(1));
        BatchBuckets { sizes }
    }

    /// The sizes, ascending.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The size a count runs in (`None` past the largest).
    pub fn bucket(&self, count: usize) -> Option<usize> {
        self.sizes.iter().copied().find(|&s| s >= count)
    }

    /// `data` (`count` items of `per_item` values) padded with zeros to `bucket` items.
    pub fn pad(data: &[f32], per_item: usize, bucket: usize) -> Vec<f32> {
        let mut v = data.to_vec();
        v.resize(bucket * per_item, 0.0);
        v
    }
}
