//! Checkpoints in the Hugging Face hub layout timm reads and writes
//! (`config.json` + `model.safetensors`, timm's tensor names), plus the
//! training state `--resume` needs (`optimizer.safetensors`,
//! `train_state.json`). Every file is written atomically (temp file in the
//! same folder, fsync, rename), and all of one checkpoint's files carry its
//! step number, so a checkpoint interrupted half-way is detected, not loaded.

use crate::error::{Error, Result};
use crate::models::config::{preset, ModelConfig};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// `config.json` as timm's `save_for_hf` writes it: architecture,
/// `model_args` (the keyword arguments that differ from the architecture's
/// defaults), `pretrained_cfg` (preprocessing) and `label_names`.
pub fn hub_config(cfg: &ModelConfig) -> Value {
    let base = preset(&cfg.architecture).ok();
    let args = cfg.arch.write_args(base.as_ref().map(|b| b.arch.as_ref()));
    let classifier = match cfg.arch.classifier().as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    let n = cfg.num_classes();
    let d = &cfg.data;
    // timm's transforms broadcast mean / std against the channels: one value per channel.
    // f32 values written as their shortest decimal (0.485, not 0.48500001430511475).
    let short = |v: &[f32]| json!(v.iter().map(|x| format!("{x}").parse::<f64>().unwrap_or(*x as f64)).collect::<Vec<_>>());
    let chans = if d.input_size[0] == 1 { 1 } else { 3 };
    let (mean, std) = (short(&d.mean[..chans]), short(&d.std[..chans]));
    let mut out = json!({
        "architecture": cfg.architecture,
        "num_classes": n,
        "num_features": cfg.num_features(),
        "model_args": args,
        "pretrained_cfg": {
            "input_size": d.input_size,
            "interpolation": d.interpolation,
            "crop_pct": d.crop_pct,
            "crop_mode": d.crop_mode,
            "mean": mean,
            "std": std,
            "num_classes": n,
            "first_conv": cfg.arch.first_conv(),
            "classifier": classifier,
        },
    });
    // An early-exit cascade's thresholds (the finite ones: an infinite one never exits).
    if let (Some(x), Some(o)) = (cfg.arch.exits(), out.as_object_mut()) {
        let t: Vec<f32> = x.thresholds.iter().copied().take_while(|t| t.is_finite()).collect();
        if t.len() == x.thresholds.len() && !t.is_empty() {
            o.insert("exit_thresholds".into(), short(&t));
        }
    }
    if let (Some(pool), Some(o)) = (cfg.arch.global_pool(), out.as_object_mut()) {
        o.insert("global_pool".into(), json!(pool.name()));
    }
    if let (Some(labels), Some(o)) = (&cfg.labels, out.as_object_mut()) {
        if n != 1000 {
            o.insert("label_names".into(), json!(labels));
        }
    }
    out
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    stage(&[(path.to_path_buf(), bytes)])?.commit()
}

/// Files written to temp files beside their targets (fsynced), not yet renamed over them:
/// a group of files either all reach the disk or none replaces its target. Dropped
/// uncommitted, the temp files are removed.
pub struct Staged {
    /// (temp file, target) pairs not yet renamed, in order.
    files: Vec<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Stages each (target, bytes): on any failure (a full disk, an unwritable folder) the
/// files staged so far are removed and the error names the target.
pub fn stage(files: &[(std::path::PathBuf, &[u8])]) -> Result<Staged> {
    let mut staged = Staged { files: Vec::with_capacity(files.len()) };
    for (path, bytes) in files {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            disk_full_seam()?;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(path, e)); // `staged` drops: its temp files go
        }
        staged.files.push((tmp, path.clone()));
    }
    Ok(staged)
}

impl Staged {
    /// Renames the first `n` staged files over their targets, in order.
    pub fn commit_first(&mut self, n: usize) -> Result<()> {
        let rest = self.files.split_off(n.min(self.files.len()));
        for (tmp, path) in std::mem::replace(&mut self.files, rest) {
            std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
            // Make the rename durable too (best effort: not every platform allows it).
            if let Some(d) = path.parent().and_then(|d| std::fs::File::open(if d.as_os_str().is_empty() { Path::new(".") } else { d }).ok())
            {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Renames every staged file over its target, in order.
    pub fn commit(mut self) -> Result<()> {
        let n = self.files.len();
        self.commit_first(n)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// A test seam for a full disk: with `VITRINE_TEST_DISK_FULL=K` the K-th checkpoint file
/// this process stages fails as a full disk would.
fn disk_full_seam() -> std::io::Result<()> {
    static STAGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STAGED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    if std::env::var("VITRINE_TEST_DISK_FULL").ok().and_then(|v| v.parse::<u64>().ok()) == Some(n) {
        return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device (VITRINE_TEST_DISK_FULL)"));
    }
    Ok(())
}

/// Serialises f32 tensors (name, shape, values) as safetensors with string metadata.
pub fn safetensors_bytes(tensors: &[(String, Vec<usize>, Vec<f32>)], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(n, s, v)| (n.clone(), s.clone(), bytemuck::cast_slice(v).to_vec())).collect();
    let views = bytes
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Input(format!("tensor {n}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Input(format!("cannot serialise tensors: {e}")))
}

/// The string metadata of a safetensors file (`__metadata__`), if any.
pub fn safetensors_metadata(bytes: &[u8], origin: &str) -> Result<HashMap<String, String>> {
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| Error::Safetensors { path: origin.to_string(), msg: e.to_string() })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Writes a model in the hub layout: `config.json` and `model.safetensors`
/// (F32, timm names; `metadata` goes into the safetensors header).
pub fn save_model(
    dir: &Path,
    cfg: &ModelConfig,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let files = hub_files(dir, cfg, tensors, metadata)?;
    let refs: Vec<(std::path::PathBuf, &[u8])> = files.iter().map(|(p, b)| (p.clone(), b.as_slice())).collect();
    stage(&refs)?.commit()
}

/// The hub layout's files of a model: `config.json` and `model.safetensors` (path, bytes).
pub fn hub_files(
    dir: &Path,
    cfg: &ModelConfig,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: HashMap<String, String>,
) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let mut meta = metadata;
    meta.insert("format".into(), "pt".into());
    let text = serde_json::to_string_pretty(&hub_config(cfg)).map_err(|e| Error::Input(e.to_string()))?;
    Ok(vec![(dir.join("config.json"), text.into_bytes()), (dir.join("model.safetensors"), safetensors_bytes(tensors, meta)?)])
}
