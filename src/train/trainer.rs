//! The training loop behind `vitrine train`. Its parts live beside it:
//! options.rs (what defines a run), state.rs (`train_state.json`), step.rs
//! (the training graph and one step), eval.rs (evaluation), resume.rs
//! (checkpoint I/O); their items are re-exported here.
//!
//! One step: the loader's batch is written to the GPU, the training graph runs
//! forward, loss and backward, and the optimizer kernels update the weights, all
//! in one submit; the per-row losses and logits come back for the progress line
//! and the NaN guard. An evaluation graph shares the training executable's
//! parameter buffers, so evaluating needs no copy. Checkpoints (hub layout +
//! optimizer state + `train_state.json`) are written atomically at the end of
//! each epoch, every `checkpoint_every` steps, and when stopped early.

use super::data::{epoch_order, Dataset};
use super::eval::score;
use super::loader::LoaderSpec;
use super::progress::Progress;
use super::resume::save_checkpoint;
use super::step::{micro_step, Session};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::models::Model;
use std::sync::Arc;
use std::time::Instant;

pub use super::eval::{datasets, evaluate, EvalResult};
pub use super::options::{OptName, TrainOptions};
pub use super::resume::{load_resume, Resume};
pub use super::state::{EpochRecord, Hooks, Running, TrainReport, TrainState};
pub use super::step::{adapt_head, training_graph, NamedTensor, TrainingGraph};

/// The seed of micro-batch `i` of optimizer step `step` (its Gumbel noise).
fn noise_seed(seed: u64, step: u64, i: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ (i as u64 + 1)
}

/// Trains `model` (already given its head, see [`adapt_head`]) as `opts`
/// says, from the start or from `resume`.
pub fn train(engine: &mut Engine, model: Model, opts: TrainOptions, resume: Option<Resume>, hooks: Hooks) -> Result<TrainReport> {
    opts.validate()?;
    // One run per output folder: a second one is refused while the first holds the lock
    // (an OS file lock, released when the process ends, however it ends).
    let _lock = lock_out(&opts.out)?;
    let started = Instant::now();
    let (train_set, val_set) = datasets(&opts)?;
    let k = model.config.num_classes();
    if let Some(bad) = train_set.samples.iter().find(|s| s.label >= k) {
        return Err(Error::Input(format!("{}: label {} but the model has {k} classes", opts.data.display(), bad.label)));
    }
    let micro_per_epoch = train_set.len() / opts.batch_size;
    let steps_per_epoch = micro_per_epoch / opts.grad_accum;
    if steps_per_epoch == 0 {
        return Err(Error::Input(format!(
            "{} training images are fewer than one step of {} x {} images",
            train_set.len(),
            opts.batch_size,
            opts.grad_accum
        )));
    }
    let session = Session::new(engine, &model, &opts)?;
    if session.has_teacher() {
        let teacher = opts.teacher.as_ref().map_or(
            "a frozen copy of the starting weights (a new head included: give --teacher a model trained on these classes)".to_string(),
            |t| t.display().to_string(),
        );
        let (scale, _) = model.config.arch.backbone_schedule();
        (hooks.log)(&format!(
            "distilling from {teacher}; backbone at {} x the rate, frozen for the first {} epochs",
            opts.backbone_lr_scale.unwrap_or(scale),
            session.backbone_freeze_epochs
        ));
    }
    let mut state = TrainState {
        format: 1,
        epoch: 0,
        step: 0,
        global_step: 0,
        opt_t: 0,
        options: opts.clone(),
        classes: train_set.classes.clone(),
        running: Running::default(),
        history: Vec::new(),
    };
    let mut run = Run { session, model, opts, hooks, steps_per_epoch, steps_here: 0, last_good: None };
    if let Some(r) = &resume {
        run.session.restore_optimizer(engine, &r.optimizer, r.state.opt_t)?;
        state = TrainState { options: run.opts.clone(), ..r.state.clone() };
        run.last_good = Some((r.state.epoch, r.state.step));
        (run.hooks.log)(&format!("resuming at epoch {}, step {} (global step {})", state.epoch + 1, state.step, state.global_step));
    }
    let (train_set, val_set) = (Arc::new(train_set), Arc::new(val_set));
    while state.epoch < run.opts.epochs {
        let (lr, stopped) = run.epoch(engine, &train_set, &mut state)?;
        if stopped {
            return Ok(TrainReport { state, stopped: true, secs: started.elapsed().as_secs_f64() });
        }
        run.end_epoch(engine, &val_set, &mut state, lr)?;
    }
    Ok(TrainReport { state, stopped: false, secs: started.elapsed().as_secs_f64() })
}

/// A run in progress: its session, model, options and where it may stop.
struct Run<'a> {
    session: Session,
    model: Model,
    opts: TrainOptions,
    hooks: Hooks<'a>,
    steps_per_epoch: usize,
    /// Optimizer steps taken in this call (for `stop_after`).
    steps_here: u64,
    /// (epoch, step) of the last checkpoint written, for the NaN guard's message.
    last_good: Option<(usize, usize)>,
}

impl Run<'_> {
    /// The optimizer steps of `state.epoch` from `state.step` on; returns the
    /// last learning rate and whether `stop_after` stopped the run (checkpointed).
    fn epoch(&mut self, engine: &mut Engine, train_set: &Arc<Dataset>, state: &mut TrainState) -> Result<(f64, bool)> {
        let (opts, epoch) = (&self.opts, state.epoch);
        let (a, b) = (opts.grad_accum, opts.batch_size);
        let spec = LoaderSpec {
            data: train_set.clone(),
            order: Arc::new(epoch_order(train_set.len(), opts.seed, epoch)),
            batch: b,
            pad_last: false,
            cfg: self.model.config.data.clone(),
            augment: opts.augment.clone(),
            seed: opts.seed,
            epoch,
            workers: opts.workers,
        };
        let first = state.step;
        self.session.opt.set_backbone_frozen(epoch < self.session.backbone_freeze_epochs);
        let mut loader = spec.start(first * a);
        let mut bar = Progress::new(format!("epoch {}/{}", epoch + 1, opts.epochs), self.steps_per_epoch, self.hooks.progress);
        let t0 = Instant::now();
        let secs_before = state.running.secs;
        let mut lr = 0.0;
        while state.step < self.steps_per_epoch {
            lr = self.opts.sched.lr_at(epoch, state.step, self.steps_per_epoch);
            for i in 0..a {
                let batch = loader.next().ok_or_else(|| Error::Input("data loader ended early".into()))??;
                let s = &mut self.session;
                // Gumbel noise seeded by (seed, step, micro-batch): a resumed run draws the same.
                let seed = noise_seed(self.opts.seed, state.global_step, i);
                let extra = s.extra_inputs(engine, &batch.images, seed)?;
                let mut inputs: Vec<&[f32]> = vec![&batch.images];
                inputs.extend(extra.noise.iter().map(Vec::as_slice));
                inputs.push(&batch.labels);
                inputs.extend(extra.teacher.iter().map(Vec::as_slice));
                let out = pollster::block_on(micro_step(&engine.ctx, &s.exe, &mut s.opt, &inputs, i, a, lr as f32))?;
                let (rows, logits) = (&out[0], &out[1]);
                self.check_finite(rows, state, lr)?;
                state.running.loss_sum += rows.iter().map(|&v| v as f64).sum::<f64>();
                let mut acc = (0, 0, 0.0, Vec::new());
                score(logits, &batch.labels, b, self.session.classes, &mut acc);
                state.running.correct += acc.0;
                state.running.seen += b as u64;
            }
            state.step += 1;
            state.global_step += 1;
            state.opt_t = self.session.opt.t;
            self.steps_here += 1;
            state.running.secs = secs_before + t0.elapsed().as_secs_f64();
            let r = &state.running;
            let stats = format!("loss {:.4} acc {:.2}%", r.loss_sum / r.seen as f64, 100.0 * r.correct as f64 / r.seen as f64);
            bar.update(state.step, first, (state.step - first) * a * b, &stats);
            let stop = self.hooks.stop_after.is_some_and(|n| self.steps_here >= n) && state.step < self.steps_per_epoch;
            if stop || self.opts.checkpoint_every.is_some_and(|n| n > 0 && state.global_step.is_multiple_of(n)) {
                save_checkpoint(engine, &self.session, &self.model, state)?;
                self.last_good = Some((state.epoch, state.step));
            }
            if stop {
                bar.finish();
                let out = self.opts.out.display();
                (self.hooks.log)(&format!("stopped after {} steps; checkpoint in {out} (continue with --resume)", self.steps_here));
                return Ok((lr, true));
            }
        }
        drop(loader);
        bar.finish();
        Ok((lr, false))
    }

    /// The NaN guard: a non-finite loss stops the run, leaving the last checkpoint as it was.
    fn check_finite(&self, rows: &[f32], state: &TrainState, lr: f64) -> Result<()> {
        let Some(bad) = rows.iter().find(|v| !v.is_finite()) else { return Ok(()) };
        let out = self.opts.out.display();
        let kept = match self.last_good {
            Some((e, 0)) => format!("the last good checkpoint (after epoch {e}) in {out} is intact"),
            Some((e, st)) => format!("the last good checkpoint (epoch {}, step {st}) in {out} is intact", e + 1),
            None => "no checkpoint had been written yet".into(),
        };
        let (epoch, step) = (state.epoch + 1, state.step + 1);
        Err(Error::Diverged {
            epoch,
            step,
            loss: *bad,
            msg: format!(
                "loss became {bad} at epoch {epoch}, step {step} (lr {lr:.3e}); training stopped, {kept}. Try a lower --lr or --clip-grad"
            ),
        })
    }

    /// Evaluation, the epoch's record and summary line, and its checkpoint.
    fn end_epoch(&mut self, engine: &mut Engine, val_set: &Arc<Dataset>, state: &mut TrainState, lr: f64) -> Result<()> {
        let (opts, epoch) = (&self.opts, state.epoch);
        let r = state.running.clone();
        let eval = if val_set.is_empty() {
            None
        } else {
            let title = self.hooks.progress.then(|| format!("eval  {}/{}", epoch + 1, opts.epochs));
            let cfg = &self.model.config.data;
            Some(evaluate(engine, &self.session.eval_exe, val_set.clone(), cfg, opts.batch_size, opts.workers, title.as_deref())?)
        };
        let images = (self.steps_per_epoch * opts.grad_accum * opts.batch_size) as f64;
        let rec = EpochRecord {
            epoch: epoch + 1,
            lr,
            train_loss: r.loss_sum / r.seen.max(1) as f64,
            train_acc: 100.0 * r.correct as f64 / r.seen.max(1) as f64,
            val_loss: eval.as_ref().map(|e| e.loss),
            val_top1: eval.as_ref().map(|e| e.top1),
            val_top5: eval.as_ref().map(|e| e.top5),
            secs: r.secs,
            images_per_s: images / r.secs.max(1e-9),
        };
        let val = match &eval {
            Some(e) => format!("  val loss {:.4} top1 {:.2}% top5 {:.2}%", e.loss, e.top1, e.top5),
            None => String::new(),
        };
        (self.hooks.log)(&format!(
            "epoch {}/{}  lr {:.2e}  train loss {:.4} acc {:.2}%{val}  {:.0} img/s  {:.1} s",
            epoch + 1,
            opts.epochs,
            lr,
            rec.train_loss,
            rec.train_acc,
            rec.images_per_s,
            rec.secs
        ));
        state.history.push(rec);
        state.epoch += 1;
        state.step = 0;
        state.running = Running::default();
        save_checkpoint(engine, &self.session, &self.model, state)?;
        self.last_good = Some((state.epoch, 0));
        Ok(())
    }
}

/// Name of the lock file a run holds in its output folder.
pub const LOCK_FILE: &str = ".vitrine-train.lock";

/// Takes the output folder's lock (creating the folder): an error naming the folder when
/// another run holds it. The lock lasts as long as the returned file is open.
pub fn lock_out(out: &std::path::Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let path = out.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Input(format!(
            "{}: another vitrine train is writing to this folder (it holds {LOCK_FILE}); wait for it to finish or give another --out",
            out.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}
