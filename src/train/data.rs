//! Training data: ImageFolder (timm layout), IDX (MNIST / Fashion-MNIST as
//! shipped, gzipped or not) and CIFAR-10/100 binary batches, with seeded
//! shuffling and a validation split.

use crate::error::{Error, Result};
use crate::preprocess::Image8;
pub use crate::rng::Rng;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where a sample's pixels are.
#[derive(Debug, Clone)]
pub enum Source {
    /// Decoded in memory (IDX, CIFAR).
    Pixels(Image8),
    /// An image file, decoded when read (ImageFolder).
    File(PathBuf),
}

/// One labelled sample.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Its pixels or image file.
    pub source: Source,
    /// Class index into [`Dataset::classes`].
    pub label: usize,
}

/// A labelled set of images with its class names.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// The samples, in file order until shuffled.
    pub samples: Vec<Sample>,
    /// Class names by label: sorted folder names (ImageFolder); Fashion-MNIST's
    /// names or the digits (IDX); the names file's lines or the indices (CIFAR).
    pub classes: Vec<String>,
}

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// ImageFolder `train/` (or the folder itself without one); IDX and CIFAR training files.
    Train,
    /// ImageFolder `val/`; IDX and CIFAR test files.
    Val,
}

/// Fashion-MNIST's class names, in label order.
pub const FASHION_MNIST: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

impl Dataset {
    /// Opens `dir` in whichever layout it has: IDX files, CIFAR batches or an ImageFolder.
    pub fn open(dir: &Path, split: Split) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory")));
        }
        if find_file(dir, "train-images-idx3-ubyte").is_some() {
            return load_idx(dir, split);
        }
        if dir.join("data_batch_1.bin").is_file() || dir.join("train.bin").is_file() {
            return load_cifar(dir, split);
        }
        load_image_folder(dir, split)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Shuffles in place with a seeded generator (the same seed, the same order).
    pub fn shuffle(&mut self, seed: u64) {
        let mut rng = Rng::new(seed);
        for i in (1..self.samples.len()).rev() {
            let j = rng.below(i + 1);
            self.samples.swap(i, j);
        }
    }

    /// Splits off `fraction` of the samples (after a seeded shuffle) as a validation set.
    pub fn split_off(&mut self, fraction: f64, seed: u64) -> Dataset {
        self.shuffle(seed);
        let n = ((self.samples.len() as f64) * fraction).round() as usize;
        let val = self.samples.split_off(self.samples.len() - n.min(self.samples.len()));
        Dataset { samples: val, classes: self.classes.clone() }
    }

    /// Samples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes.len()];
        for s in &self.samples {
            if let Some(x) = c.get_mut(s.label) {
                *x += 1;
            }
        }
        c
    }
}

fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [stem.to_string(), format!("{stem}.gz")].into_iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Largest IDX file vitrine reads, after gunzipping (Fashion-MNIST's train images are
/// 47 MB): a small .gz cannot expand into unbounded memory.
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// Reads a file, gunzipping it when its name ends in `.gz` (at most [`MAX_IDX_BYTES`]).
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_IDX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::Input(format!("{}: cannot gunzip: {e}", path.display())))?;
        if out.len() as u64 > MAX_IDX_BYTES {
            return Err(Error::Input(format!("{}: unpacks to more than {} MiB", path.display(), MAX_IDX_BYTES >> 20)));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an IDX file: (dims, payload). Checks the magic, dtype (u8) and size.
pub fn parse_idx<'a>(bytes: &'a [u8], origin: &str) -> Result<(Vec<usize>, &'a [u8])> {
    let bad = |m: &str| Error::Input(format!("{origin}: not an IDX file: {m}"));
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("bad magic"));
    }
    if bytes[2] != 0x08 {
        return Err(bad("only unsigned byte data is supported"));
    }
    let nd = bytes[3] as usize;
    let head = 4 + 4 * nd;
    if bytes.len() < head {
        return Err(bad("truncated header"));
    }
    let dims: Vec<usize> = (0..nd).map(|i| be_u32(bytes, 4 + 4 * i) as usize).collect();
    let n = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).filter(|n| n.checked_add(head).is_some());
    let Some(n) = n else { return Err(bad(&format!("dims {dims:?} are too large"))) };
    if bytes.len() != head + n {
        return Err(bad(&format!("dims {dims:?} need {n} bytes of data, file has {}", bytes.len() - head)));
    }
    Ok((dims, &bytes[head..]))
}

/// The order an epoch visits `n` samples in (a seeded shuffle per epoch): the same for
/// `vitrine train` and the in-memory trainer ([`super::live`]).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (epoch as u64 + 1));
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// The seed of the augmentation draws of the sample at position `pos` of epoch `epoch`'s
/// order: independent of thread timing, so a resumed run sees the same data.
pub fn sample_seed(seed: u64, epoch: usize, pos: usize) -> u64 {
    let mut r = Rng::new(seed ^ (epoch as u64).wrapping_mul(0xA24B_AED4_963E_E407) ^ (pos as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25));
    r.next_u64()
}

/// MNIST-style IDX folder: `train-*` is the train split, `t10k-*` the test split.
pub fn load_idx(dir: &Path, split: Split) -> Result<Dataset> {
    let prefix = if split == Split::Train { "train" } else { "t10k" };
    let missing = |s: &str| Error::Input(format!("{}: no {s}[.gz]", dir.display()));
    let ip = find_file(dir, &format!("{prefix}-images-idx3-ubyte")).ok_or_else(|| missing(&format!("{prefix}-images-idx3-ubyte")))?;
    let lp = find_file(dir, &format!("{prefix}-labels-idx1-ubyte")).ok_or_else(|| missing(&format!("{prefix}-labels-idx1-ubyte")))?;
    let ib = read_maybe_gz(&ip)?;
    let lb = read_maybe_gz(&lp)?;
    let (idims, pixels) = parse_idx(&ib, &ip.display().to_string())?;
    let (ldims, labels) = parse_idx(&lb, &lp.display().to_string())?;
    let [n, h, w] = idims.as_slice() else {
        return Err(Error::Input(format!("{}: images must be [N, H, W], got {idims:?}", ip.display())));
    };
    if ldims != [*n] {
        return Err(Error::Input(format!("{}: {ldims:?} labels for {n} images", lp.display())));
    }
    let fashion = dir.to_string_lossy().to_lowercase().contains("fashion");
    let classes: Vec<String> =
        if fashion { FASHION_MNIST.iter().map(|s| s.to_string()).collect() } else { (0..10).map(|i| i.to_string()).collect() };
    let mut samples = Vec::with_capacity(*n);
    for i in 0..*n {
        let label = labels[i] as usize;
        if label >= classes.len() {
            return Err(Error::Input(format!("{}: label {label} of sample {i} is out of range", lp.display())));
        }
        let data = pixels[i * h * w..(i + 1) * h * w].to_vec();
        samples.push(Sample { source: Source::Pixels(Image8 { width: *w, height: *h, channels: 1, data }), label });
    }
    Ok(Dataset { samples, classes })
}

/// CIFAR-10 (`data_batch_{1..5}.bin`, `test_batch.bin`, `batches.meta.txt`) or
/// CIFAR-100 (`train.bin`, `test.bin`, fine labels, `fine_label_names.txt`) binary versions.
pub fn load_cifar(dir: &Path, split: Split) -> Result<Dataset> {
    let c100 = dir.join("train.bin").is_file();
    let files: Vec<PathBuf> = match (c100, split) {
        (false, Split::Train) => (1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).collect(),
        (false, Split::Val) => vec![dir.join("test_batch.bin")],
        (true, Split::Train) => vec![dir.join("train.bin")],
        (true, Split::Val) => vec![dir.join("test.bin")],
    };
    let (label_bytes, n_classes, names_file) = if c100 { (2, 100, "fine_label_names.txt") } else { (1, 10, "batches.meta.txt") };
    let record = label_bytes + 3072;
    let classes: Vec<String> = match std::fs::read_to_string(dir.join(names_file)) {
        Ok(t) => t.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect(),
        Err(_) => (0..n_classes).map(|i| i.to_string()).collect(),
    };
    if classes.len() != n_classes {
        return Err(Error::Input(format!("{}: {} class names, expected {n_classes}", dir.join(names_file).display(), classes.len())));
    }
    let mut samples = Vec::new();
    for f in files {
        let b = std::fs::read(&f).map_err(|e| Error::io(&f, e))?;
        if b.len() % record != 0 {
            return Err(Error::Input(format!("{}: size {} is not a multiple of {record}-byte records", f.display(), b.len())));
        }
        for r in b.chunks_exact(record) {
            let label = r[label_bytes - 1] as usize; // CIFAR-100: [coarse, fine]
            if label >= n_classes {
                return Err(Error::Input(format!("{}: label {label} out of range", f.display())));
            }
            let px = &r[label_bytes..];
            // Planar R, G, B (32x32 each) -> interleaved RGB.
            let data = (0..1024).flat_map(|i| [px[i], px[1024 + i], px[2048 + i]]).collect();
            samples.push(Sample { source: Source::Pixels(Image8 { width: 32, height: 32, channels: 3, data }), label });
        }
    }
    Ok(Dataset { samples, classes })
}

const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"];

/// timm / torchvision ImageFolder: `root/train/<class>/*` (and `root/val/<class>/*`),
/// or `root/<class>/*` when there is no `train/`. Classes sorted by folder name.
pub fn load_image_folder(root: &Path, split: Split) -> Result<Dataset> {
    let base = match split {
        Split::Train if root.join("train").is_dir() => root.join("train"),
        Split::Train => root.to_path_buf(),
        Split::Val => {
            let v = root.join("val");
            if !v.is_dir() {
                return Err(Error::Input(format!("{}: no val/ folder", root.display())));
            }
            v
        }
    };
    let read = |p: &Path| std::fs::read_dir(p).map_err(|e| Error::io(p, e));
    let mut classes: Vec<String> =
        read(&base)?.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().to_string()).collect();
    classes.sort();
    if classes.is_empty() {
        return Err(Error::Input(format!("{}: no class folders (expected <class>/<image> files)", base.display())));
    }
    let mut samples = Vec::new();
    for (label, c) in classes.iter().enumerate() {
        let mut files: Vec<PathBuf> = read(&base.join(c))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTS.contains(&e.to_lowercase().as_str())))
            .collect();
        files.sort();
        if files.is_empty() && split == Split::Train {
            // timm's reader would drop the class (its classes are the folders holding
            // images), shifting every later label: refused instead.
            return Err(Error::Input(format!("{}: class folder without images (add images or remove the folder)", base.join(c).display())));
        }
        samples.extend(files.into_iter().map(|p| Sample { source: Source::File(p), label }));
    }
    if samples.is_empty() {
        return Err(Error::Input(format!("{}: no images found", base.display())));
    }
    Ok(Dataset { samples, classes })
}
