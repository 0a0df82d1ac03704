//! A run's checkpoint on disk: written atomically (hub layout + optimizer
//! state + `train_state.json` + `summary.csv` and `curves.svg`, all carrying the step) and read
//! back for `--resume`, checking that its files belong together.

use super::checkpoint::{hub_files, safetensors_bytes, safetensors_metadata, stage};
use super::state::TrainState;
use super::step::Session;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::models::Model;
use std::collections::HashMap;
use std::path::Path;

/// A resumable checkpoint read back from disk.
pub struct Resume {
    /// The checkpointed model (config and weights).
    pub model: Model,
    /// `train_state.json`.
    pub state: TrainState,
    /// `optimizer.safetensors`: moments by name (`m.<tensor>`, `v.<tensor>`), with shapes.
    pub optimizer: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

/// The folder (inside a run's `--out`) holding the previous complete checkpoint while the
/// next one is written: hard links to its files, so nothing is copied.
pub const PREVIOUS: &str = ".previous-checkpoint";

/// A checkpoint's files, in the order they are written (`train_state.json` completes it).
const FILES: [&str; 6] = ["optimizer.safetensors", "config.json", "model.safetensors", "train_state.json", "summary.csv", "curves.svg"];

/// The `step` in a safetensors file's header (reads the header only).
fn file_step(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let n = u64::from_le_bytes(len);
    if n > 100 << 20 {
        return None;
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
    v.get("__metadata__")?.get("step")?.as_str().map(str::to_string)
}

/// The step of `dir`'s checkpoint when it is complete (model, optimizer and train_state.json
/// at one step), else `None`.
fn complete_step(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("train_state.json")).ok()?;
    let step = serde_json::from_str::<serde_json::Value>(&text).ok()?.get("global_step")?.as_u64()?.to_string();
    let same = ["model.safetensors", "optimizer.safetensors"].iter().all(|f| file_step(&dir.join(f)).as_deref() == Some(step.as_str()));
    same.then_some(step)
}

/// Before a checkpoint overwrites `dir`'s files: keeps the current one, when it is complete,
/// as hard links in `dir/.previous-checkpoint` (a killed write then leaves a complete
/// checkpoint to resume from). The old backup is replaced only once the new one is whole.
fn keep_previous(dir: &Path) -> Result<()> {
    if complete_step(dir).is_none() {
        return Ok(());
    }
    let tmp = dir.join(".previous-checkpoint.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    for f in FILES {
        let src = dir.join(f);
        if src.exists() && std::fs::hard_link(&src, tmp.join(f)).is_err() {
            std::fs::copy(&src, tmp.join(f)).map_err(|e| Error::io(&src, e))?;
        }
    }
    let prev = dir.join(PREVIOUS);
    if let Err(e) = std::fs::remove_dir_all(&prev) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(Error::io(&prev, e));
        }
    }
    std::fs::rename(&tmp, &prev).map_err(|e| Error::io(&prev, e))
}

/// Reads `dir`'s checkpoint for `--resume`, checking that its files belong together. When a
/// checkpoint write was interrupted (the run was killed between its files), the previous
/// complete checkpoint, kept in `dir/.previous-checkpoint`, is read instead.
pub fn load_resume(dir: &Path) -> Result<Resume> {
    let state_path = dir.join("train_state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", state_path.display())))?;
    let step = state.global_step.to_string();
    let prev = dir.join(PREVIOUS);
    let dir = if complete_step(dir).as_deref() != Some(step.as_str()) && complete_step(&prev).as_deref() == Some(step.as_str()) {
        log::warn!("{}: the last checkpoint write was interrupted; resuming from the previous one (step {step})", dir.display());
        prev.as_path()
    } else {
        dir
    };
    let model = Model::load(dir, None)?;
    let mut optimizer = HashMap::new();
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let p = dir.join(file);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        let meta = safetensors_metadata(&bytes, &p.display().to_string())?;
        if meta.get("step") != Some(&step) {
            return Err(Error::Input(format!(
                "{}: written at step {}, but train_state.json is at step {step} (was the checkpoint interrupted?)",
                p.display(),
                meta.get("step").map(String::as_str).unwrap_or("?")
            )));
        }
        if file == "optimizer.safetensors" {
            optimizer = crate::weights::Weights::from_bytes(&bytes, &p.display().to_string())?.tensors;
        }
    }
    Ok(Resume { model, state, optimizer })
}

pub(crate) fn save_checkpoint(engine: &Engine, s: &Session, model: &Model, state: &TrainState) -> Result<()> {
    let dir = &state.options.out;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let meta = HashMap::from([("step".to_string(), state.global_step.to_string())]);
    // Every file is staged first (a full disk fails here, leaving the folder as it was),
    // then renamed in order: optimizer, config, model, train_state.json last. A checkpoint
    // is complete only when all carry the same step (checked by `load_resume`); the previous
    // complete one stays in PREVIOUS until then.
    let mut files = vec![(dir.join("optimizer.safetensors"), safetensors_bytes(&s.optimizer_tensors(engine)?, meta.clone())?)];
    files.extend(hub_files(dir, &model.config, &s.weights(engine)?, meta)?);
    let text = serde_json::to_string_pretty(state).map_err(|e| Error::Input(e.to_string()))?;
    files.push((dir.join("train_state.json"), text.into_bytes()));
    // The curves are drawn from the CSV's (rounded) figures, so `vitrine plot` redraws them
    // byte for byte.
    let csv = super::curves::summary_csv(&state.history);
    let history = super::curves::parse_summary(&csv, "summary.csv")?;
    let title = super::curves::title(&model.config.architecture, &state.options.data);
    files.push((dir.join("curves.svg"), super::curves::svg(&history, &title).into_bytes()));
    files.push((dir.join("summary.csv"), csv.into_bytes()));
    let refs: Vec<(std::path::PathBuf, &[u8])> = files.iter().map(|(p, b)| (p.clone(), b.as_slice())).collect();
    let mut staged = stage(&refs)?;
    keep_previous(dir)?;
    staged.commit_first(3)?;
    crash_seam();
    staged.commit()
}

/// A test seam for crash safety: with `VITRINE_CRASH_IN_CHECKPOINT=K` the process aborts
/// (no unwinding, no cleanup, as a SIGKILL) during its K-th checkpoint write, after the
/// optimizer state, config and weights are renamed into place and before `train_state.json`:
/// the torn checkpoint `--resume` must recover from.
fn crash_seam() {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    if std::env::var("VITRINE_CRASH_IN_CHECKPOINT").ok().and_then(|v| v.parse::<u64>().ok()) == Some(n) {
        std::process::abort();
    }
}
