//! Training: data, augmentation, background loading, the loss, schedules,
//! checkpoints and the training loop (the loop, its
//! loader threads and progress bars are native only).

pub mod augment;
pub mod checkpoint;
pub mod curves;
pub mod data;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
pub mod live;
#[cfg(not(target_arch = "wasm32"))]
pub mod loader;
pub mod options;
#[cfg(not(target_arch = "wasm32"))]
pub mod progress;
#[cfg(not(target_arch = "wasm32"))]
pub mod resume;
pub mod schedule;
pub mod state;
pub mod step;
#[cfg(not(target_arch = "wasm32"))]
pub mod trainer;

#[cfg(not(target_arch = "wasm32"))]
pub use trainer_api::Trainer;

#[cfg(not(target_arch = "wasm32"))]
mod trainer_api {
    use super::data::{Dataset, Split};
    use super::trainer::{adapt_head, train, Hooks, TrainOptions, TrainReport};
    use crate::{Engine, Model, Result};

    /// Trains or fine-tunes a model on a folder of images: the library face of
    /// `vitrine train`.
    ///
    /// The data folder's classes (timm's ImageFolder layout, IDX or CIFAR
    /// files; see [`Dataset::open`]) become the model's labels; a class count
    /// different from the model's replaces its head with a new one (timm's
    /// init). Checkpoints in the Hugging Face hub layout are written
    /// atomically to [`TrainOptions::out`] at every epoch end.
    ///
    /// ```no_run
    /// # fn main() -> vitrine::Result<()> {
    /// use vitrine::{Engine, Model, TrainOptions, Trainer};
    /// let mut engine = Engine::new_blocking()?;
    /// let model = Model::load("vit_tiny".as_ref(), None)?;
    /// let mut opts = TrainOptions::new("data/pets".into(), "out/pets_vit".into());
    /// opts.epochs = 1;
    /// let report = Trainer::new(model, opts).run(&mut engine)?;
    /// println!("{} epochs in {:.1} s", report.state.history.len(), report.secs);
    /// # Ok(()) }
    /// ```
    pub struct Trainer {
        model: Model,
        opts: TrainOptions,
        progress: bool,
        stop_after: Option<u64>,
        log: Box<dyn FnMut(&str)>,
    }

    impl Trainer {
        /// A run of `model` as `opts` says (see [`TrainOptions::new`] for the defaults).
        pub fn new(model: Model, opts: TrainOptions) -> Self {
            Trainer { model, opts, progress: false, stop_after: None, log: Box::new(|_| {}) }
        }

        /// Draws progress bars (loss, accuracy, images/s, ETA) on stderr.
        pub fn progress(mut self, on: bool) -> Self {
            self.progress = on;
            self
        }

        /// Stops, with a checkpoint, after this many optimizer steps.
        pub fn stop_after(mut self, steps: u64) -> Self {
            self.stop_after = Some(steps);
            self
        }

        /// Receives the run's summary lines (head replacement, one line per epoch).
        pub fn log(mut self, f: impl FnMut(&str) + 'static) -> Self {
            self.log = Box::new(f);
            self
        }

        /// Runs the training on `engine`; returns the final state and timings.
        /// The learning-rate schedule spans [`TrainOptions::epochs`], as timm's does.
        pub fn run(mut self, engine: &mut Engine) -> Result<TrainReport> {
            self.opts.sched.epochs = self.opts.epochs;
            let classes = Dataset::open(&self.opts.data, Split::Train)?.classes;
            adapt_head(&mut self.model, &classes, classes.len(), self.opts.seed, &mut *self.log)?;
            let hooks = Hooks { stop_after: self.stop_after, progress: self.progress, log: &mut *self.log };
            train(engine, self.model, self.opts, None, hooks)
        }
    }
}
