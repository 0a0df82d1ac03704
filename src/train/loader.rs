//! Batches decoded and augmented on background threads, delivered in order.
//! Each sample's augmentation draws from its own generator, seeded from
//! (run seed, epoch, position), so batches are identical whatever the thread
//! timing, and a resumed run sees the same data as an uninterrupted one.

use super::augment::{train_tensor, Augment};
use super::data::{sample_seed, Dataset, Rng, Source};
use crate::error::{Error, Result};
use crate::models::common::DataConfig;
use crate::preprocess::{decode_within, to_channels, Image8, MAX_DECODE_PIXELS};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// One batch: `images` is `[batch, C, H, W]` (zero rows past `count` when
/// padded), `labels` the class indices as f32.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Normalised images `[batch, C, H, W]`, row-major.
    pub images: Vec<f32>,
    /// Class index of each row `[batch]`, as f32 (0 in padding rows).
    pub labels: Vec<f32>,
    /// Real samples in the batch; rows past it are padding.
    pub count: usize,
}

/// What a loader produces and how.
#[derive(Clone)]
pub struct LoaderSpec {
    /// The samples to draw from.
    pub data: Arc<Dataset>,
    /// Sample indices in the order of this epoch.
    pub order: Arc<Vec<usize>>,
    /// Samples per batch.
    pub batch: usize,
    /// Keep a short last batch (padded to `batch`), as evaluation needs.
    pub pad_last: bool,
    /// The model's preprocessing: input size, interpolation, crop, mean / std.
    pub cfg: DataConfig,
    /// Training augmentation ([`Augment::none`] for evaluation).
    pub augment: Augment,
    /// Mixed with the epoch and position into each sample's generator.
    pub seed: u64,
    /// The epoch these batches belong to (0-based), mixed into each sample's generator.
    pub epoch: usize,
    /// Worker threads (clamped to 1..=16).
    pub workers: usize,
}

impl LoaderSpec {
    /// Number of batches in an epoch.
    pub fn batches(&self) -> usize {
        let n = self.order.len();
        if self.pad_last {
            n.div_ceil(self.batch.max(1))
        } else {
            n / self.batch.max(1)
        }
    }

    fn make(&self, b: usize) -> Result<Batch> {
        let [c, h, w] = self.cfg.input_size;
        let per = c * h * w;
        let start = b * self.batch;
        let end = (start + self.batch).min(self.order.len());
        let mut images = vec![0f32; self.batch * per];
        let mut labels = vec![0f32; self.batch];
        for (row, pos) in (start..end).enumerate() {
            let s = &self.data.samples[self.order[pos]];
            let img = load(&s.source, c)?;
            let mut rng = Rng::new(sample_seed(self.seed, self.epoch, pos));
            let t = train_tensor(&img, &self.cfg, &self.augment, &mut rng)?;
            images[row * per..(row + 1) * per].copy_from_slice(&t);
            labels[row] = s.label as f32;
        }
        Ok(Batch { images, labels, count: end - start })
    }

    /// Starts the workers at batch `first`.
    pub fn start(self, first: usize) -> Loader {
        let end = self.batches();
        let workers = self.workers.clamp(1, 16);
        let (tx, rx) = sync_channel(workers * 2);
        let next = Arc::new(AtomicUsize::new(first));
        let spec = Arc::new(self);
        for _ in 0..workers {
            let (tx, next, spec) = (tx.clone(), next.clone(), spec.clone());
            std::thread::spawn(move || loop {
                let b = next.fetch_add(1, Ordering::SeqCst);
                if b >= end || tx.send((b, spec.make(b))).is_err() {
                    break;
                }
            });
        }
        Loader { rx, pending: BTreeMap::new(), next: first, end }
    }
}

/// Reads a sample's pixels with `channels` channels.
pub fn load(source: &Source, channels: usize) -> Result<Image8> {
    load_within(source, channels, MAX_DECODE_PIXELS)
}

/// [`load`] with another limit on a file's pixels (the fuzz harness's is lower).
pub(crate) fn load_within(source: &Source, channels: usize, max_pixels: u64) -> Result<Image8> {
    match source {
        Source::Pixels(img) => Ok(to_channels(img.clone(), channels)),
        Source::File(p) => {
            let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            decode_within(&bytes, &p.display().to_string(), channels, max_pixels)
        }
    }
}

/// Iterator over an epoch's batches, in order.
pub struct Loader {
    rx: Receiver<(usize, Result<Batch>)>,
    pending: BTreeMap<usize, Result<Batch>>,
    next: usize,
    end: usize,
}

impl Iterator for Loader {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.end {
            return None;
        }
        while !self.pending.contains_key(&self.next) {
            match self.rx.recv() {
                Ok((b, batch)) => {
                    self.pending.insert(b, batch);
                }
                Err(_) => return Some(Err(Error::Input("data loader threads stopped".into()))),
            }
        }
        let b = self.pending.remove(&self.next);
        self.next += 1;
        b
    }
}
