//! The fuzz targets' bodies (scripts/fuzz.sh runs them under libFuzzer from
//! `fuzz/`; `tests/fuzz_regressions.rs` replays their seeds and every input that
//! once crashed). Each takes one byte string, feeds it to a reader the way a user's
//! files reach it, and must return (any `Err` is fine) without panicking, aborting,
//! hanging or allocating without bound. `Err` from a target means the harness itself
//! could not set up (its scratch folder), never the code under test.

use crate::models::common::DataConfig;
use crate::models::Model;
use crate::preprocess::{decode_within, transform};
use crate::rng::Rng;
use crate::train::augment::{train_tensor, Augment};
use crate::train::data::{load_cifar, load_idx, load_image_folder, Split};
use crate::train::loader::load_within;
use crate::train::resume::{load_resume, PREVIOUS};
use crate::weights::Weights;
use std::path::{Path, PathBuf};

/// A fuzz target's body: one input in; `Err` only when the harness cannot set up.
pub type Target = fn(&[u8]) -> std::io::Result<()>;

/// The targets by name, as `scripts/fuzz.sh` and the regression test know them.
pub const TARGETS: [(&str, Target); 4] = [("model", model), ("image", image), ("data", data), ("checkpoint", checkpoint)];

/// Splits `data` into `n` parts: each part but the last is preceded by its length
/// (u32, little-endian, clamped to what is left); the last part takes the rest.
/// `scripts/fuzz_seeds.py` writes the seeds the same way.
pub fn parts(mut data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    for _ in 1..n {
        let len = match data {
            [a, b, c, d, rest @ ..] => {
                data = rest;
                (u32::from_le_bytes([*a, *b, *c, *d]) as usize).min(data.len())
            }
            _ => {
                data = &[];
                0
            }
        };
        out.push(&data[..len]);
        data = &data[len..];
    }
    out.push(data);
    out
}

/// The model loader: config.json text + model.safetensors bytes (the hub layout, what
/// `Model::load` reads from a folder), or the safetensors bytes alone (a bare file, the
/// architecture inferred from the tensors). Input: `parts(config, safetensors)`; an
/// empty config means the bare file.
pub fn model(data: &[u8]) -> std::io::Result<()> {
    let p = parts(data, 2);
    let Ok(weights) = Weights::from_bytes(p[1], "model.safetensors") else { return Ok(()) };
    let config = std::str::from_utf8(p[0]).ok().filter(|c| !c.is_empty());
    if let Ok(model) = Model::from_parts(config, weights, None, "fuzz") {
        // What a loaded model is used for next: its graph at another batch size, its labels.
        let _ = model.graph(2);
        let _ = model.label(usize::MAX);
    }
    Ok(())
}

/// The most pixels the harnesses decode (3 M, 2048 x 1536), below the readers' own limit
/// (`preprocess::MAX_DECODE_PIXELS`, 32 M): decoding and resizing cost time in proportion
/// to the pixels, and a few hundred bytes of WebP or PNG can describe 32 M of them, which
/// the instrumented build needs about 10 s to decode and resize, past libFuzzer's 2 s limit
/// per input (2048 x 2048 takes 0.7-0.95 s there). Under this cap an input over the limit
/// is a superlinear cost, which is what the limit is there to find; the full-size decode is
/// timed in release by `tests/fuzz_regressions.rs`
/// (`images_at_the_decode_limit_take_seconds_not_minutes`).
pub const MAX_PIXELS: u64 = 3 << 20;

/// Image decoding and preprocessing: the eval path (`load_tensor`: decode, then
/// `transform`: resize, crop, normalise) and the training path (decode, random resized crop, flip). The
/// first byte picks the model's preprocessing (input side, channels, interpolation,
/// crop); configs `DataConfig::validate` refuses are skipped, as loading refuses them.
pub fn image(data: &[u8]) -> std::io::Result<()> {
    image_within(data, MAX_PIXELS)
}

/// [`image()`] with another pixel limit (the readers' own, to time the largest images).
pub fn image_within(data: &[u8], max_pixels: u64) -> std::io::Result<()> {
    let Some((&pick, bytes)) = data.split_first() else { return Ok(()) };
    let side = [1usize, 7, 28, 32, 224][pick as usize % 5];
    let cfg = DataConfig {
        input_size: [if pick & 8 == 0 { 3 } else { 1 }, side, side + (pick as usize >> 7)],
        interpolation: ["bicubic", "bilinear", "nearest"][(pick as usize >> 4) % 3].into(),
        crop_pct: [0.875, 1.0, 0.9, 1.5][(pick as usize >> 5) % 4],
        crop_mode: if pick & 64 == 0 { "center" } else { "squash" }.into(),
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    if cfg.validate().is_err() {
        return Ok(());
    }
    // `load_tensor` is `decode` then `transform`; decoded once here for both paths.
    if let Ok(img) = decode_within(bytes, "fuzz", cfg.input_size[0], max_pixels) {
        let _ = transform(&img, &cfg);
        let _ = train_tensor(&img, &cfg, &Augment::timm_default(), &mut Rng::new(pick as u64));
    }
    Ok(())
}

/// The training data readers through their real entry points (they read folders): the
/// first byte picks the format, the rest is split into its files.
/// - 0: IDX train images + labels, named `.gz` (gunzipped by the reader) when bit 2 is set;
/// - 1: CIFAR-10 (`test_batch.bin`, `batches.meta.txt`);
/// - 2: CIFAR-100 (`train.bin`, `fine_label_names.txt`);
/// - 3: ImageFolder, three images in two class folders and a val split, each decoded as
///   training reads it.
pub fn data(data: &[u8]) -> std::io::Result<()> {
    let Some((&pick, rest)) = data.split_first() else { return Ok(()) };
    let dir = scratch()?;
    match pick % 4 {
        0 => {
            let p = parts(rest, 2);
            let gz = if pick & 4 == 0 { "" } else { ".gz" };
            put(&dir, &format!("train-images-idx3-ubyte{gz}"), p[0])?;
            put(&dir, &format!("train-labels-idx1-ubyte{gz}"), p[1])?;
            if let Ok(d) = load_idx(&dir, Split::Train) {
                for s in d.samples.iter().take(4) {
                    let _ = load_within(&s.source, 3, MAX_PIXELS);
                }
            }
        }
        1 | 2 => {
            let p = parts(rest, 2);
            let (batch, names, split) = if pick % 4 == 1 {
                ("test_batch.bin", "batches.meta.txt", Split::Val)
            } else {
                ("train.bin", "fine_label_names.txt", Split::Train)
            };
            put(&dir, batch, p[0])?;
            put(&dir, names, p[1])?;
            let _ = load_cifar(&dir, split);
        }
        _ => {
            let p = parts(rest, 3);
            put(&dir, "train/a/0.png", p[0])?;
            put(&dir, "train/b/1.jpg", p[1])?;
            put(&dir, "val/a/2.png", p[2])?;
            for split in [Split::Train, Split::Val] {
                if let Ok(d) = load_image_folder(&dir, split) {
                    for s in &d.samples {
                        let _ = load_within(&s.source, 1, MAX_PIXELS);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The checkpoint reader behind `vitrine train --resume`: a run folder's
/// train_state.json, config.json, model.safetensors and optimizer.safetensors (the same
/// four also in `.previous-checkpoint/` when the first byte is odd: the fallback after an
/// interrupted write). Input: the first byte, then `parts(state, config, model, optimizer)`.
pub fn checkpoint(data: &[u8]) -> std::io::Result<()> {
    const FILES: [&str; 4] = ["train_state.json", "config.json", "model.safetensors", "optimizer.safetensors"];
    let Some((&pick, rest)) = data.split_first() else { return Ok(()) };
    let dir = scratch()?;
    for (name, bytes) in FILES.iter().zip(parts(rest, 4)) {
        put(&dir, name, bytes)?;
        if pick & 1 == 1 {
            put(&dir, &format!("{PREVIOUS}/{name}"), bytes)?;
        }
    }
    let _ = load_resume(&dir);
    Ok(())
}

/// An empty scratch folder for this process and thread (under `$VITRINE_FUZZ_TMP`, else
/// /dev/shm when it exists, else the temp dir), emptied on every call.
fn scratch() -> std::io::Result<PathBuf> {
    let base = std::env::var_os("VITRINE_FUZZ_TMP").map(PathBuf::from).unwrap_or_else(|| {
        let shm = PathBuf::from("/dev/shm");
        if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
    });
    let dir = base.join(format!("vitrine-fuzz-{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""));
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(e);
        }
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes `bytes` to `dir/name`, creating folders.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(p, bytes)
}
