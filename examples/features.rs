//! The pooled embedding (timm's pre-logits features) of images, and the
//! cosine similarity between the first image and each other one.
//!
//! ```sh
//! cargo run --release --example features -- models/samples/ankle-boot-0.png models/samples/sneaker-9.png
//! cargo run --release --example features -- --model path/to/hub_folder a.jpg b.jpg
//! ```

use std::process::ExitCode;
use vitrine::{Classifier, Engine, Error, Model, Result};

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b)).max(f64::MIN_POSITIVE)
}

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
    if args.len() < 2 {
        return Err(Error::Input("usage: features [--model DIR] IMAGE IMAGE...".into()));
    }
    // Without its classifier the model's graph ends at the pooled embedding [B, C].
    let mut clf = Classifier::new(model.into_feature_extractor()?);
    let mut engine = Engine::new_blocking()?;
    let images = args.iter().map(|p| std::fs::read(p).map_err(|e| Error::io(p, e))).collect::<Result<Vec<_>>>()?;
    let refs: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let feats = clf.run_images(&mut engine, &refs)?; // one batch
    for (path, f) in args.iter().zip(&feats) {
        let head: Vec<String> = f.iter().take(4).map(|v| format!("{v:.4}")).collect();
        println!("{path}: embedding of {} values [{}, ...]", f.len(), head.join(", "));
    }
    for (path, f) in args.iter().zip(&feats).skip(1) {
        println!("cosine({}, {path}) = {:.4}", args[0], cosine(&feats[0], f));
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
