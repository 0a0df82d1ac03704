//! Fine-tune a model on an image folder for one epoch with the library API and
//! save a Hugging Face hub folder (config.json + model.safetensors) that timm
//! loads with `timm.create_model("local-dir:OUT", pretrained=True)`.
//!
//! ```sh
//! cargo run --release --example fine_tune -- DATA OUT                 # the built-in model
//! cargo run --release --example fine_tune -- DATA OUT --model vit_t   # a timm hub folder
//! ```
//! DATA is timm's ImageFolder layout: `DATA/train/<class>/*.png` (and
//! optionally `DATA/val/<class>/*`). A class count different from the
//! model's gets a new head; the folder names become the labels.

use std::process::ExitCode;
use vitrine::{Engine, Error, Model, Result, TrainOptions, Trainer};

fn run() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let model = match args.iter().position(|a| a == "--model") {
        Some(i) => {
            let dir = args.get(i + 1).cloned().ok_or_else(|| Error::Input("--model needs a folder".into()))?;
            args.drain(i..i + 2);
            Model::load(dir.as_ref(), None)?
        }
        None => Model::builtin()?,
    };
    let [data, out] = args.as_slice() else {
        return Err(Error::Input("usage: fine_tune DATA OUT [--model DIR]".into()));
    };
    let mut opts = TrainOptions::new(data.into(), out.into());
    opts.epochs = 1;
    opts.batch_size = 8;
    opts.sched.lr = 1e-3;
    opts.sched.warmup_epochs = 0.0;
    opts.workers = 1;
    let mut engine = Engine::new_blocking()?;
    let report = Trainer::new(model, opts).progress(true).log(|line| println!("{line}")).run(&mut engine)?;
    let last = report.state.history.last().ok_or_else(|| Error::Input("no epoch ran".into()))?;
    println!("trained {} epoch(s) in {:.1} s; train loss {:.4}", report.state.history.len(), report.secs, last.train_loss);
    println!("saved {out}/config.json and {out}/model.safetensors");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
