//! Classify image files with the built-in model or a timm hub folder and
//! print each image's top-5 classes.
//!
//! ```sh
//! cargo run --release --example classify -- models/samples/ankle-boot-0.png
//! cargo run --release --example classify -- --model path/to/hub_folder cat.jpg dog.png
//! ```
//! A hub folder is what timm writes and the Hugging Face hub serves:
//! `config.json` + `model.safetensors` (ViT, DeiT, Swin).

use std::process::ExitCode;
use vitrine::{Classifier, Engine, Error, Model, Result};

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
    if args.is_empty() {
        return Err(Error::Input("usage: classify [--model DIR] IMAGE...".into()));
    }
    let mut engine = Engine::new_blocking()?;
    println!("model: {} on {}", model.source, engine.context().adapter().name);
    let mut clf = Classifier::new(model);
    for path in &args {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        println!("{path}:");
        for (rank, p) in clf.classify(&mut engine, &bytes, 5)?.iter().enumerate() {
            println!("  {}. {:<24} {:6.2}%", rank + 1, p.label, p.prob * 100.0);
        }
    }
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
