//! A run's checkpoint on disk: written atomically (hub layout + optimizer
//! state + `train_state.json` + `summary.csv`, all carrying the step) and read
//! back for `--resume`, checking that its files belong together.

use super::checkpoint::{safetensors_bytes, safetensors_metadata, save_model, write_atomic};
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

/// Reads `dir`'s checkpoint for `--resume`, checking that its files belong together.
pub fn load_resume(dir: &Path) -> Result<Resume> {
    let state_path = dir.join("train_state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", state_path.display())))?;
    let model = Model::load(dir, None)?;
    let step = state.global_step.to_string();
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
    // Optimizer first, train_state.json last: a checkpoint is complete only
    // when all three carry the same step (checked by `load_resume`).
    write_atomic(&dir.join("optimizer.safetensors"), &safetensors_bytes(&s.optimizer_tensors(engine)?, meta.clone())?)?;
    save_model(dir, &model.config, &s.weights(engine)?, meta)?;
    let text = serde_json::to_string_pretty(state).map_err(|e| Error::Input(e.to_string()))?;
    write_atomic(&dir.join("train_state.json"), text.as_bytes())?;
    let mut csv = String::from("epoch,lr,train_loss,train_acc,val_loss,val_top1,val_top5,secs,images_per_s\n");
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
    for r in &state.history {
        csv += &format!(
            "{},{:.6e},{:.6},{:.4},{},{},{},{:.1},{:.1}\n",
            r.epoch,
            r.lr,
            r.train_loss,
            r.train_acc,
            opt(r.val_loss),
            opt(r.val_top1),
            opt(r.val_top5),
            r.secs,
            r.images_per_s
        );
    }
    write_atomic(&dir.join("summary.csv"), csv.as_bytes())
}
