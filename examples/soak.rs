//! A soak of the library API: many classifications in one process, mixing batch sizes
//! and models, with resident memory sampled as it goes (docs/RELIABILITY.md).
//!
//! ```text
//! cargo run --release --example soak [N] [MODEL_DIR ...]
//! ```
//! N: classifications (default 10000); models: hub folders beside the built-in one
//! (default: the built-in model alone). Batch sizes cycle through 1, 2, 3, 5, 8.
//! Prints resident memory (VmRSS) and the GPU buffers alive on the device (count and bytes,
//! wgpu's counters) after the warm-up (the first 5 %, and every model and batch size run
//! twice, so all executables exist) and at every 10 %, and fails (exit 1) when either ends
//! more than 10 % above its warm-up figure.

use std::time::Instant;
use vitrine::{Classifier, Engine, Error, Model, Result};

/// Resident memory in KiB (Linux /proc; 0 elsewhere).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// GPU buffers alive and their bytes, as text.
fn buffers(engine: &Engine) -> String {
    match engine.ctx.live_buffers() {
        Some((n, bytes)) => format!("{n} GPU buffers ({} KiB)", bytes >> 10),
        None => "GPU buffers not counted by this backend".into(),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut models = vec![Model::builtin()?];
    for dir in args.iter().skip(1) {
        models.push(Model::load(dir.as_ref(), None)?);
    }
    let mut engine = Engine::new_blocking()?;
    let mut clfs: Vec<Classifier> = models.into_iter().map(Classifier::new).collect();
    let batches = [1usize, 2, 3, 5, 8];
    let (mut done, mut round, mut warm) = (0usize, 0usize, None);
    let mut next_report = n / 10;
    let t0 = Instant::now();
    println!("{n} classifications, {} model(s), batch sizes {batches:?}", clfs.len());
    while done < n {
        let k = round % clfs.len();
        let clf = &mut clfs[k];
        // The cycle's size, or at the end the largest of the cycle's sizes that fits (so no
        // new batch size, and no new executable, appears in the last rounds).
        let want = batches[round % batches.len()];
        let b = batches.iter().rev().copied().find(|&s| s <= want && s <= n - done).unwrap_or(1);
        let per = clf.image_len();
        let input: Vec<f32> = (0..b * per).map(|i| ((i * 7 + round) % 23) as f32 / 23.0 - 0.5).collect();
        let logits = pollster::block_on(clf.logits(&mut engine, &input))?;
        if logits.iter().any(|v| !v.is_finite()) {
            return Err(Error::Internal(format!("non-finite logits at classification {done}")));
        }
        done += b;
        round += 1;
        // Warm: the first 5 %, and every (model, batch size) pair run twice (all built).
        if warm.is_none() && done >= n / 20 && round >= 2 * clfs.len() * batches.len() {
            warm = Some((rss_kib(), engine.ctx.live_buffers()));
            println!("warm-up done at {done}: RSS {} KiB, {}", rss_kib(), buffers(&engine));
        }
        if done >= next_report {
            println!("{done:>7} classifications, {:.1} s: RSS {} KiB, {}", t0.elapsed().as_secs_f64(), rss_kib(), buffers(&engine));
            next_report += n / 10;
        }
    }
    let ((start, start_bufs), end) = (warm.unwrap_or((0, None)), rss_kib());
    let grew = |a: f64, b: f64| if a > 0.0 { (b / a - 1.0) * 100.0 } else { 0.0 };
    let growth = grew(start as f64, end as f64);
    println!("done: {done} classifications in {:.1} s; RSS {start} -> {end} KiB ({growth:+.1} %)", t0.elapsed().as_secs_f64());
    let mut failed = growth > 10.0;
    if failed {
        eprintln!("error: resident memory grew {growth:.1} % after the warm-up");
    }
    if let (Some((n0, b0)), Some((n1, b1))) = (start_bufs, engine.ctx.live_buffers()) {
        let (gn, gb) = (grew(n0 as f64, n1 as f64), grew(b0 as f64, b1 as f64));
        println!("GPU buffers {n0} -> {n1} ({gn:+.1} %), {} -> {} KiB ({gb:+.1} %)", b0 >> 10, b1 >> 10);
        if gn > 10.0 || gb > 10.0 {
            eprintln!("error: GPU buffers grew after the warm-up ({gn:.1} % in number, {gb:.1} % in bytes)");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
