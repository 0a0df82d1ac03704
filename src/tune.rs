//! Kernel choice by measurement (`vitrine tune`): every matmul shape of a
//! model's graphs is timed with each kernel variant the adapter has, and the
//! fastest is stored per adapter, driver and matmul kernel source next to the pipeline cache
//! (`tune_<hash>.json`). Engines load the file at start; a stored shape runs
//! its measured variant, any other shape the per-adapter rule
//! ([`crate::gpu::Context::caps`]). A forced variant (`VITRINE_MATMUL`,
//! [`crate::Engine::force_matmul`]) overrides both.

use crate::error::{Error, Result};
use crate::gpu::context::AdapterSummary;
use crate::graph::{Graph, MatmulKind};
use crate::ops::Layout;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A matmul's shape: the key of a measured choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MatmulShape {
    /// How the operands lie in memory.
    pub layout: Layout,
    /// Independent products.
    pub z: usize,
    /// Output rows.
    pub m: usize,
    /// Output columns.
    pub n: usize,
    /// Reduction length.
    pub k: usize,
    /// The right operand is one matrix per product (else shared).
    pub w_batched: bool,
}

impl MatmulShape {
    /// Whether a choice exists: shapes the vec4 kernels cannot read always run
    /// the scalar kernel.
    pub fn tunable(&self) -> bool {
        self.layout.vec4_ok(self.m, self.n, self.k)
    }
}

/// Measured choices for one adapter and driver.
pub type Choices = HashMap<MatmulShape, MatmulKind>;

/// One stored measurement.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The shape.
    #[serde(flatten)]
    pub shape: MatmulShape,
    /// The fastest variant.
    pub kernel: MatmulKind,
    /// Median milliseconds of each variant timed.
    pub ms: Vec<(MatmulKind, f64)>,
}

/// The file's content.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TuneFile {
    /// Adapter name (for people reading the file; the file name is the key).
    pub adapter: String,
    /// Driver and version.
    pub driver: String,
    /// Every shape measured on this adapter, newest measurement kept.
    pub entries: Vec<Entry>,
}

impl TuneFile {
    /// The choices, limited to the variants the adapter can run.
    pub fn choices(&self, variants: &[MatmulKind]) -> Choices {
        self.entries.iter().filter(|e| variants.contains(&e.kernel)).map(|e| (e.shape, e.kernel)).collect()
    }

    /// Adds or replaces the entries of `new`'s shapes.
    pub fn merge(&mut self, new: Vec<Entry>) {
        self.entries.retain(|e| !new.iter().any(|n| n.shape == e.shape));
        self.entries.extend(new);
    }
}

/// The tune file of an adapter, driver and set of matmul kernels in `dir`: a
/// change to any matmul shader (a new block shape) starts from the rule again
/// instead of keeping choices measured against the old kernels.
pub fn path(dir: &Path, a: &AdapterSummary) -> PathBuf {
    let mut key = format!("{}|{}|{}|{}", a.name, a.backend, a.driver, a.driver_info);
    for (name, parts) in crate::kernel::SHADERS.iter().filter(|(name, _)| name.starts_with("matmul")) {
        key.push_str(name);
        parts.iter().for_each(|p| key.push_str(p));
    }
    dir.join(format!("tune_{:016x}.json", crate::gpu::kernels::fnv1a(key.as_bytes())))
}

/// Reads a tune file: `Ok(None)` when there is none; an unreadable or corrupt
/// one is an error naming it.
pub fn load(path: &Path) -> Result<Option<TuneFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Input(format!("{}: {e}", path.display()))),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| Error::Input(format!("{}: not a vitrine tune file ({e})", path.display())))
}

/// Writes a tune file atomically (temporary file + rename).
pub fn save(path: &Path, file: &TuneFile) -> Result<()> {
    let text = serde_json::to_string_pretty(file).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Input(format!("{}: {e}", dir.display())))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)).map_err(|e| Error::Input(format!("{}: {e}", path.display())))
}

/// The distinct matmul shapes of `graphs`, in first-use order.
pub fn shapes(graphs: &[&Graph]) -> Vec<MatmulShape> {
    let mut out: Vec<MatmulShape> = Vec::new();
    for g in graphs {
        for node in &g.nodes {
            if let Some(s) = node.op.matmul_shape() {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Times each shape with each variant (native only) (`iters` runs, median) and returns the
/// fastest per shape; `progress(i, total, entry)` is called after each shape.
#[cfg(not(target_arch = "wasm32"))]
pub fn measure(
    engine: &mut crate::Engine,
    shapes: &[MatmulShape],
    iters: usize,
    mut progress: impl FnMut(usize, usize, &Entry),
) -> Result<Vec<Entry>> {
    let variants = engine.matmul_variants();
    let mut out = Vec::new();
    for (i, &shape) in shapes.iter().enumerate() {
        let mut ms = Vec::new();
        for &kind in &variants {
            ms.push((kind, crate::bench::product(engine, kind, shape, iters)?));
        }
        let best = ms.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map(|b| b.0).unwrap_or(MatmulKind::Register);
        let entry = Entry { shape, kernel: best, ms };
        progress(i + 1, shapes.len(), &entry);
        out.push(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(m: usize, kernel: MatmulKind) -> Entry {
        let shape = MatmulShape { layout: Layout::AB, z: 1, m, n: 8, k: 8, w_batched: false };
        Entry { shape, kernel, ms: vec![(kernel, 1.0)] }
    }

    #[test]
    fn merge_keeps_the_newest_measurement_and_choices_skip_unavailable_variants() {
        let mut f = TuneFile::default();
        f.merge(vec![entry(4, MatmulKind::Register), entry(8, MatmulKind::Subgroup)]);
        f.merge(vec![entry(4, MatmulKind::Tiled)]);
        assert_eq!(f.entries.len(), 2);
        let c = f.choices(&[MatmulKind::Register, MatmulKind::Tiled]);
        assert_eq!(c.len(), 1, "a subgroup choice is dropped on an adapter without subgroups");
        assert_eq!(c.get(&entry(4, MatmulKind::Tiled).shape), Some(&MatmulKind::Tiled));
        let text = serde_json::to_string(&f).unwrap();
        let back: TuneFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back.entries.len(), 2);
        assert!(text.contains("\"kernel\":\"tiled\"") && text.contains("\"layout\":\"AB\""), "{text}");
    }

    #[test]
    fn the_file_name_changes_with_the_driver() {
        let mut a = AdapterSummary { driver_info: "Mesa 22.3.6".into(), ..Default::default() };
        let p1 = path(Path::new("/c"), &a);
        a.driver_info = "Mesa 23.0".into();
        assert_ne!(p1, path(Path::new("/c"), &a));
    }
}
