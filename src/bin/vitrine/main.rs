//! The `vitrine` binary: `cli` parses the command line (clap), this file runs
//! classify, inspect and bench, and `train` runs train and eval. Bad input of
//! any kind prints one `error:` line and exits with code 1.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;
use vitrine::classify::Classifier;
use vitrine::models::{config, default_model, Model};
use vitrine::{preprocess, Engine, Error, MatmulKind, Result};

mod calibrate;
mod cli;
mod train;
mod train_args;
use cli::{BenchArgs, ClassifyArgs, Command, ExplainArgs, InspectArgs, Parsed, TuneArgs};

fn load_model(model: Option<&str>, arch: Option<&str>) -> Result<Model> {
    match (model, arch) {
        (Some(m), arch) => Model::load(Path::new(m), arch),
        (None, Some(_)) => Err(Error::Input("--arch names the architecture of a --model file; give --model too".into())),
        (None, None) => default_model(),
    }
}

/// `--labels FILE`: one class name per line, as many as the model has classes.
fn read_labels(path: &str, num_classes: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let labels: Vec<String> = text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    if labels.len() != num_classes {
        return Err(Error::Input(format!("{path}: {} labels for a model with {num_classes} classes", labels.len())));
    }
    Ok(labels)
}

fn classify(a: &ClassifyArgs) -> Result<()> {
    if a.images.is_empty() {
        return Err(Error::Input("classify needs at least one IMAGE".into()));
    }
    let mut model = load_model(a.model.as_deref(), a.arch.as_deref())?;
    if let Some(t) = &a.exit_thresholds {
        model.config.arch.set_exit_thresholds(&t.0)?;
    }
    if let Some(path) = &a.labels {
        model.config.labels = Some(read_labels(path, model.config.num_classes())?);
    }
    let k = a.top_k.min(model.config.num_classes().max(1));
    // Decode everything first: a bad file fails before any GPU work.
    let mut tensors = Vec::with_capacity(a.images.len());
    for p in &a.images {
        let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
        tensors.push(preprocess::load_tensor(&bytes, p, &model.config.data)?);
    }
    let mut engine = Engine::new_blocking()?;
    let mut clf = Classifier::new(model);
    clf.set_precision(a.precision.parse().map_err(Error::Input)?);
    for (paths, chunk) in a.images.chunks(a.batch).zip(tensors.chunks(a.batch)) {
        let input: Vec<f32> = chunk.concat();
        let mut outs = pollster::block_on(clf.outputs(&mut engine, &input))?;
        let logits = outs.pop().unwrap_or_default();
        let extras = clf.model.config.arch.explain(&outs, chunk.len());
        let width = logits.len() / chunk.len();
        for ((path, row), extra) in paths.iter().zip(logits.chunks(width)).zip(extras) {
            let top = clf.top_k(row, k);
            if a.json {
                let mut obj = serde_json::json!({"image": path, "top_k": top, "logits": row});
                if let Some(map) = obj.as_object_mut() {
                    map.extend(extra);
                }
                println!("{obj}");
            } else {
                println!("{path}:");
                for (r, p) in top.iter().enumerate() {
                    println!("  {}. {:<40} {:6.2}%  (class {})", r + 1, p.label, p.prob * 100.0, p.index);
                }
                if let (Some(e), Some(x)) = (extra.get("exit").and_then(|v| v.as_u64()), clf.model.config.arch.exits()) {
                    let f = extra.get("exit_gflops").and_then(|v| v.as_f64()).unwrap_or(0.0);
                    println!("  answered by exit {} of {} ({f:.3} GFLOPs)", e + 1, x.gflops.len());
                }
            }
        }
    }
    Ok(())
}

/// `vitrine explain`: one PNG per image. DynamicViT: the patches each pruning stage keeps.
/// ViT / DeiT: the attention rollout and the last block's class-token attention over the
/// image. Other families: an error saying which maps exist for which models.
fn explain(a: &ExplainArgs) -> Result<()> {
    let model = load_model(Some(&a.model), a.arch.as_deref())?;
    let single_file = a.out.as_deref().filter(|o| o.to_lowercase().ends_with(".png"));
    if single_file.is_some() && a.images.len() > 1 {
        return Err(Error::Input(format!(
            "--out {} is one file; give a folder for {} images",
            a.out.as_deref().unwrap_or(""),
            a.images.len()
        )));
    }
    if let Some(dir) = a.out.as_deref().filter(|_| single_file.is_none()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let prunes = model.config.family().name == "dynamicvit";
    let mut engine = Engine::new_blocking()?;
    let mut clf = Classifier::new(model);
    for image in &a.images {
        let cfg = clf.model.config.data.clone();
        let bytes = std::fs::read(image).map_err(|e| Error::io(image, e))?;
        let img = preprocess::to_channels(preprocess::decode(&bytes, image, cfg.input_size[0])?, cfg.input_size[0]);
        let shown = preprocess::eval_image(&img, &cfg)?;
        let input = preprocess::normalize(&shown, &cfg);
        let stem = Path::new(image).file_stem().and_then(|s| s.to_str()).unwrap_or("image");
        let suffix = if prunes { "kept" } else { "attention" };
        let out = match (single_file, a.out.as_deref()) {
            (Some(f), _) => f.to_string(),
            (None, Some(dir)) => Path::new(dir).join(format!("{stem}-{suffix}.png")).display().to_string(),
            (None, None) => format!("{stem}-{suffix}.png"),
        };
        let (canvas, logits, what) = if prunes {
            explain_pruning(&mut engine, &mut clf, &shown, &input)?
        } else {
            explain_attention(&mut engine, &clf, &shown, &input)?
        };
        let best = clf.top_k(&logits, 1).first().map(|p| format!("{} ({:.1}%)", p.label, p.prob * 100.0)).unwrap_or_default();
        let mut canvas = canvas;
        let band = 14;
        let (cw, ch) = canvas.dimensions();
        let mut framed = image::RgbImage::from_pixel(cw, ch + band, image::Rgb([255, 255, 255]));
        image::imageops::replace(&mut framed, &canvas, 0, band as i64);
        vitrine::explain::label(&mut framed, &format!("top-1 {best}"), 2, 2, 1);
        canvas = framed;
        canvas.save(&out).map_err(|e| Error::Input(format!("{out}: cannot write the PNG: {e}")))?;
        println!("{out}: {what}; top-1 {best}");
    }
    Ok(())
}

/// Pictures side by side with a caption over each, 4 pixels apart.
fn panels(pictures: &[(image::RgbImage, &str)]) -> image::RgbImage {
    let w: u32 = pictures.iter().map(|(p, _)| p.width()).sum::<u32>() + 4 * (pictures.len() as u32).saturating_sub(1);
    let h = pictures.iter().map(|(p, _)| p.height()).max().unwrap_or(0) + 14;
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    let mut x = 0;
    for (p, caption) in pictures {
        image::imageops::replace(&mut canvas, p, x as i64, 14);
        vitrine::explain::label(&mut canvas, caption, x + 2, 1, 1);
        x += p.width() + 4;
    }
    canvas
}

fn to_rgb(img: &preprocess::Image8) -> image::RgbImage {
    let data = if img.channels == 3 { img.data.clone() } else { img.data.iter().flat_map(|&v| [v; 3]).collect() };
    image::RgbImage::from_raw(img.width as u32, img.height as u32, data).unwrap_or_default()
}

/// ViT / DeiT: the image, the attention rollout over it, the last block's class-token attention.
fn explain_attention(
    engine: &mut Engine,
    clf: &Classifier,
    shown: &preprocess::Image8,
    input: &[f32],
) -> Result<(image::RgbImage, Vec<f32>, String)> {
    let maps = pollster::block_on(vitrine::explain::attention_maps(engine, &clf.model, input))?;
    let big = vitrine::explain::enlarge(shown);
    let pictures = [
        (to_rgb(&big), "input"),
        (vitrine::explain::overlay(&big, &maps.rollout, maps.grid)?, "attention rollout"),
        (vitrine::explain::overlay(&big, &maps.last_cls, maps.grid)?, "last block, class token"),
    ];
    let [gh, gw] = maps.grid;
    Ok((panels(&pictures), maps.logits, format!("attention over {gh} x {gw} patches")))
}

/// DynamicViT: the image, then the patches each pruning stage keeps (dropped ones faded).
fn explain_pruning(
    engine: &mut Engine,
    clf: &mut Classifier,
    shown: &preprocess::Image8,
    input: &[f32],
) -> Result<(image::RgbImage, Vec<f32>, String)> {
    let mut outs = pollster::block_on(clf.outputs(engine, input))?;
    let logits = outs.pop().unwrap_or_default();
    let facts = clf.model.config.arch.explain(&outs, 1).pop().unwrap_or_default();
    let (Some(stages), Some([gh, gw])) = (
        facts.get("kept_tokens").and_then(|v| v.as_array()),
        facts.get("patch_grid").and_then(|v| serde_json::from_value::<[usize; 2]>(v.clone()).ok()),
    ) else {
        return Err(Error::Internal(format!("{} reported no kept tokens", clf.model.config.architecture)));
    };
    let big = vitrine::explain::enlarge(shown);
    let (w, h) = (big.width, big.height);
    let mut pictures = vec![(to_rgb(&big), "input".to_string())];
    for (k, stage) in stages.iter().enumerate() {
        let kept: std::collections::HashSet<u64> =
            stage.as_array().map(|v| v.iter().filter_map(|x| x.as_u64()).collect()).unwrap_or_default();
        let mut p = to_rgb(&big);
        for (x, y, px) in p.enumerate_pixels_mut() {
            let patch = ((y as usize * gh / h) * gw + x as usize * gw / w) as u64;
            if !kept.contains(&patch) {
                px.0 = px.0.map(|v| (v as u16 / 4 + 160) as u8); // dropped: faded towards light grey
            }
        }
        pictures.push((p, format!("stage {}: {} kept", k + 1, kept.len())));
    }
    let refs: Vec<(image::RgbImage, &str)> = pictures.iter().map(|(p, c)| (p.clone(), c.as_str())).collect();
    let counts: Vec<String> = stages.iter().map(|s| s.as_array().map_or(0, |v| v.len()).to_string()).collect();
    Ok((panels(&refs), logits, format!("{} -> {} patches kept", gh * gw, counts.join(" -> "))))
}

/// `vitrine plot`: curves.svg from a run's summary.csv (titled as training titles it).
fn plot(a: &cli::PlotArgs) -> Result<()> {
    let csv = a.run.join("summary.csv");
    let text = std::fs::read_to_string(&csv).map_err(|e| Error::io(&csv, e))?;
    let history = vitrine::train::curves::parse_summary(&text, &csv.display().to_string())?;
    if history.is_empty() {
        return Err(Error::Input(format!("{}: no epochs yet", csv.display())));
    }
    let state = std::fs::read_to_string(a.run.join("train_state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<vitrine::train::state::TrainState>(&t).ok());
    let arch = std::fs::read_to_string(a.run.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("architecture").and_then(|x| x.as_str()).map(str::to_string));
    let title = match (arch, state) {
        (Some(arch), Some(s)) => vitrine::train::curves::title(&arch, &s.options.data),
        (Some(arch), None) => arch,
        (None, _) => a.run.display().to_string(),
    };
    let out = a.out.clone().unwrap_or_else(|| a.run.join("curves.svg"));
    vitrine::train::checkpoint::write_atomic(&out, vitrine::train::curves::svg(&history, &title).as_bytes())?;
    println!("{} epochs drawn in {}", history.len(), out.display());
    Ok(())
}

fn inspect(a: &InspectArgs) -> Result<()> {
    let model = load_model(a.model.as_deref(), a.arch.as_deref())?;
    let c = &model.config;
    let g = model.graph(1)?;
    println!("model:        {}", model.source);
    println!("architecture: {}", c.architecture);
    for (label, text) in c.arch.summary() {
        println!("{:<13} {text}", format!("{label}:"));
    }
    println!("classes:      {}{}", c.num_classes(), if c.labels.is_some() { " (labelled)" } else { "" });
    println!("parameters:   {} ({:.2} M), stored as {}", g.param_count(), g.param_count() as f64 / 1e6, model.weights.dtype);
    let d = &c.data;
    println!(
        "input:        {:?} {} crop_pct {} crop_mode {} mean {:?} std {:?}",
        d.input_size, d.interpolation, d.crop_pct, d.crop_mode, d.mean, d.std
    );
    println!("tensors:");
    let mut names: Vec<_> = model.weights.tensors.iter().map(|(n, (s, _))| (n.clone(), s.clone())).collect();
    names.sort_by_key(|a| natural_key(&a.0));
    for (n, s) in names {
        println!("  {n:<40} {s:?}");
    }
    Ok(())
}

/// Sorts `blocks.10` after `blocks.9`.
fn natural_key(s: &str) -> Vec<(String, u64)> {
    s.split('.').map(|p| p.parse::<u64>().map(|n| (String::new(), n)).unwrap_or((p.to_string(), 0))).collect()
}

/// `bench --matmul`: GFLOP/s of each matmul kernel variant (or `--kernel`'s).
fn bench_matmul(engine: &mut Engine, args: &BenchArgs) -> Result<()> {
    let b = args.batch;
    let shapes = [(1024, 1024, 1024), (b * 197, 2304, 768), (b * 197, 3072, 768), (b * 197, 768, 3072)];
    println!("{:<10} {:>6} {:>6} {:>6} {:>10} {:>9}", "variant", "M", "N", "K", "ms", "GFLOP/s");
    let only = args.kernel.as_deref();
    let kinds: Vec<_> = engine.matmul_variants().into_iter().filter(|k| only.is_none_or(|o| k.name().eq_ignore_ascii_case(o))).collect();
    if kinds.is_empty() {
        return Err(Error::Input(format!("--kernel {:?}: this adapter has {:?}", only.unwrap_or(""), engine.matmul_variants())));
    }
    for kind in kinds {
        for &(m, n, k) in &shapes {
            let r = vitrine::bench::matmul(engine, kind, m, n, k, args.iters)?;
            println!("{:<10} {:>6} {:>6} {:>6} {:>10.2} {:>9.2}", r.variant, r.m, r.n, r.k, r.ms, r.gflops);
        }
    }
    Ok(())
}

/// `bench --train`: training steps (forward, loss, backward, AdamW).
fn bench_train(engine: &mut Engine, model: &Model, batch: usize, iters: usize) -> Result<()> {
    println!("model: {} | training step, batch {batch} | {iters} iterations", model.source);
    let r = vitrine::bench::train(engine, model, batch, iters)?;
    println!("training step (forward + loss + backward + AdamW): median {:.2} ms", r.step_ms);
    println!("training throughput: {:.2} images/s", r.images_per_s);
    if let Some(kinds) = r.kinds {
        let total: f64 = kinds.iter().map(|k| k.1).sum();
        println!("GPU time per op kind, forward + backward (each op timed alone), total {total:.2} ms:");
        for (k, ms, n) in kinds {
            println!("  {k:<14} {ms:>9.3} ms  ({n} dispatches)");
        }
    }
    Ok(())
}

/// An early-exit model: the cascade at two GFLOPs budgets (thresholds calibrated on the
/// timed images by the official rule), with every exit, and a plain preset beside it.
fn bench_cascade(engine: &mut Engine, mut model: Model, args: &BenchArgs) -> Result<()> {
    let batch = args.batch;
    if let Some(t) = &args.exit_thresholds {
        model.config.arch.set_exit_thresholds(&t.0)?;
    }
    let exits = model.config.arch.exits().ok_or_else(|| Error::Input("not an early-exit model".into()))?;
    let n_exit = exits.gflops.len();
    let per: usize = model.config.data.input_size.iter().product();
    let mut input = Vec::with_capacity(batch * per);
    if args.images.is_empty() {
        let mut rng = vitrine::rng::Rng::new(11);
        input.extend((0..batch * per).map(|_| vitrine::rng::normal(&mut rng) as f32));
    } else {
        let mut decoded = Vec::new();
        for p in &args.images {
            let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            decoded.push(preprocess::load_tensor(&bytes, p, &model.config.data)?);
        }
        for i in 0..batch {
            input.extend_from_slice(&decoded[i % decoded.len()]);
        }
    }
    println!(
        "model: {} | batch {batch} | {} iterations | {} images",
        model.source,
        args.iters,
        if args.images.is_empty() { "seeded noise".to_string() } else { format!("{} files", args.images.len()) }
    );
    println!(
        "exits: {} GFLOPs (cumulative, multiply-adds per image)",
        exits.gflops.iter().map(|g| format!("{g:.3}")).collect::<Vec<_>>().join(" / ")
    );
    let configured = exits.thresholds.clone();
    let mut clf = Classifier::new(model);
    clf.set_precision(args.precision.parse().map_err(Error::Input)?);
    // Every exit's confidences on these images: the calibration set of the budget rows.
    let inf = vec![f32::INFINITY; n_exit - 1];
    clf.model.config.arch.set_exit_thresholds(&inf)?;
    let out = pollster::block_on(clf.outputs(engine, &input))?;
    let k = clf.model.config.num_classes().max(1);
    let (conf, pred) = vitrine::calibrate::confidences(&out[1..=n_exit], k, batch);
    let flops: Vec<f32> = exits.gflops.iter().map(|&g| g as f32).collect();
    let rows = vitrine::calibrate::curve(&conf, &pred, &pred[n_exit - 1], &flops);
    let (lo, hi) = (exits.gflops[0], exits.gflops[n_exit - 1]);
    let budgets: Vec<f64> = match &args.budgets {
        Some(b) => b.0.iter().map(|&x| x as f64).collect(),
        None => vec![lo + (hi - lo) / 3.0, lo + 2.0 * (hi - lo) / 3.0],
    };
    let mut results = Vec::new();
    for b in &budgets {
        let row = vitrine::calibrate::pick(&rows, *b)?;
        results.push(vitrine::bench::cascade(
            engine,
            &mut clf,
            &input,
            &format!("budget {b:.3} GFLOPs (row p = {})", row.p),
            &row.thresholds,
            args.iters,
        )?);
    }
    if configured.iter().all(|t| t.is_finite()) {
        results.push(vitrine::bench::cascade(engine, &mut clf, &input, "config.json's thresholds", &configured, args.iters)?);
    }
    results.push(vitrine::bench::cascade(engine, &mut clf, &input, "every exit (no early exit)", &inf, args.iters)?);
    if let Some(p) = &args.compare {
        let plain = Model::fresh(config::preset(p)?, 1)?;
        let gflops = vitrine::bench::graph_gflops(&plain.graph(1)?);
        let mut c = Classifier::new(plain);
        c.set_precision(clf.precision());
        let inp = vec![0.1f32; c.image_len() * batch];
        pollster::block_on(c.logits(engine, &inp))?;
        let ms = vitrine::bench::median_ms(args.iters, || pollster::block_on(c.logits(engine, &inp)).map(|_| ()))?;
        results.push(vitrine::bench::CascadeResult {
            label: format!("{p} (plain, random weights)"),
            thresholds: Vec::new(),
            ms,
            images_per_s: batch as f64 * 1e3 / ms,
            gflops_per_image: gflops,
            exit_share: Vec::new(),
        });
    }
    println!("{:<44} {:>10} {:>10} {:>9}  exits taken", "", "ms/batch", "images/s", "GFLOPs");
    for r in &results {
        let share = r.exit_share.iter().map(|s| format!("{:.0}%", s * 100.0)).collect::<Vec<_>>().join(" / ");
        println!("{:<44} {:>10.1} {:>10.2} {:>9.3}  {share}", r.label, r.ms, r.images_per_s, r.gflops_per_image);
    }
    Ok(())
}

/// One line naming a matmul shape.
fn shape_label(s: &vitrine::tune::MatmulShape) -> String {
    let layout = format!("{:?}", s.layout);
    let z = if s.z > 1 { format!(" x{}", s.z) } else { String::new() };
    format!("{layout:<3} {:>5} x {:>5} x {:>5}{z}", s.m, s.n, s.k)
}

/// A measured shape: its label, the chosen kernel and every variant's time.
fn entry_line(e: &vitrine::tune::Entry) -> String {
    let ms: Vec<String> = e.ms.iter().map(|(k, ms)| format!("{k:?} {ms:.3}").to_lowercase()).collect();
    format!("{}  -> {:<9} ({} ms)", shape_label(&e.shape), format!("{:?}", e.kernel).to_lowercase(), ms.join(", "))
}

/// `tune`: time each matmul variant on the model's shapes, store the fastest.
fn tune(args: &TuneArgs) -> Result<()> {
    let mut engine = Engine::new_blocking()?;
    let a = engine.ctx.adapter().clone();
    println!("adapter: {} ({}, {} {})", a.name, a.backend, a.driver, a.driver_info);
    let path = engine
        .tune_path()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::Input("no cache folder to store choices in (VITRINE_CACHE_DIR is empty, HOME unset)".into()))?;
    if args.clear {
        match std::fs::remove_file(&path) {
            Ok(()) => println!("removed {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("no stored choices ({})", path.display()),
            Err(e) => return Err(Error::io(path.display().to_string(), e)),
        }
        return Ok(());
    }
    if args.show {
        let file = match vitrine::tune::load(&path) {
            Ok(f) => f.unwrap_or_default(),
            Err(e) => {
                println!("{e}: runs ignore it, vitrine tune replaces it");
                return Ok(());
            }
        };
        println!("{} choices in {}", file.entries.len(), path.display());
        for e in &file.entries {
            println!("  {}", entry_line(e));
        }
        return Ok(());
    }
    // A corrupt file is replaced, as a corrupt pipeline cache is.
    let mut file = vitrine::tune::load(&path)
        .unwrap_or_else(|e| {
            eprintln!("warning: {e}; starting a new one");
            None
        })
        .unwrap_or_default();
    let model = match (args.model.as_deref(), args.arch.as_deref()) {
        (None, Some(arch)) => Model::fresh(config::preset(arch)?, 1)?,
        (model, arch) => load_model(model, arch)?,
    };
    let mut graphs = Vec::new();
    for &b in &args.batch {
        graphs.push(model.graph(b)?);
        if args.train {
            graphs.push(vitrine::train::trainer::training_graph(&model, b, 0.1, 1, false)?.g);
        }
    }
    let refs: Vec<&vitrine::graph::Graph> = graphs.iter().collect();
    let all = vitrine::tune::shapes(&refs);
    let shapes: Vec<_> = all.iter().copied().filter(|s| s.tunable()).collect();
    let rule = engine.ctx.caps().matmul;
    println!(
        "model: {} | batch {:?}{} | {} matmul shapes ({} run the scalar kernel whatever the choice) | variants {:?} | rule: {rule:?}",
        model.source,
        args.batch,
        if args.train { " + training" } else { "" },
        all.len(),
        all.len() - shapes.len(),
        engine.matmul_variants()
    );
    let t = Instant::now();
    let entries = vitrine::tune::measure(&mut engine, &shapes, args.iters, |i, n, e| {
        println!("[{i}/{n}] {}", entry_line(e));
    })?;
    // What the measured choice saves over the rule, each shape counted once.
    let (rule_ms, best_ms) = entries.iter().fold((0.0, 0.0), |(r, b), e| {
        let of = |k: MatmulKind| e.ms.iter().find(|m| m.0 == k).map_or(0.0, |m| m.1);
        (r + of(rule), b + of(e.kernel))
    });
    let changed = entries.iter().filter(|e| e.kernel != rule).count();
    file.adapter = a.name.clone();
    file.driver = format!("{} {}", a.driver, a.driver_info);
    file.merge(entries);
    vitrine::tune::save(&path, &file)?;
    println!(
        "{changed} of {} shapes differ from the rule; one of each: {rule_ms:.2} ms by the rule, {best_ms:.2} ms measured ({:.1} s of tuning)",
        shapes.len(),
        t.elapsed().as_secs_f64()
    );
    println!(
        "stored {} choices in {} (later runs on this adapter use them; vitrine tune --clear forgets them)",
        file.entries.len(),
        path.display()
    );
    Ok(())
}

/// `bench`'s line on how matmul kernels are chosen.
fn matmul_choice_line(engine: &Engine) -> String {
    let path = engine.tune_path().map(|p| p.display().to_string()).unwrap_or_default();
    match engine.tuned_shapes() {
        0 => format!("matmul kernels: the rule ({:?}); none measured (vitrine tune)", engine.caps().matmul),
        n => format!("matmul kernels: measured for {n} shapes ({path}), the rule ({:?}) elsewhere", engine.caps().matmul),
    }
}

fn bench(args: &BenchArgs) -> Result<()> {
    let (batch, iters) = (args.batch, args.iters);
    let mut engine = Engine::new_blocking()?;
    let a = engine.ctx.adapter().clone();
    println!("adapter: {} ({}, {} {}), device type {}", a.name, a.backend, a.driver, a.driver_info, a.device_type);
    if args.matmul {
        return bench_matmul(&mut engine, args);
    }
    println!("{}", matmul_choice_line(&engine));
    let model = match (args.model.as_deref(), args.arch.as_deref()) {
        (None, Some(arch)) => Model::fresh(config::preset(arch)?, 1)?,
        (model, arch) => load_model(model, arch)?,
    };
    let precision: vitrine::Precision = args.precision.parse().map_err(Error::Input)?;
    if args.train {
        if precision != vitrine::Precision::F32 {
            return Err(Error::Input("--precision f16 is for inference: training keeps f32 weights".into()));
        }
        return bench_train(&mut engine, &model, batch, iters);
    }
    if model.config.arch.exits().is_some() {
        return bench_cascade(&mut engine, model, args);
    }
    println!("model: {} | batch {batch} | {iters} iterations | weights {}", model.source, args.precision);
    let mut clf = Classifier::new(model);
    clf.set_precision(precision);
    let input = vec![0.1f32; clf.image_len() * batch];
    let t = Instant::now();
    let plan = clf.executable(&mut engine, batch)?.plan();
    // Before shapes moved into uniforms, each (kernel, shape) pair was its own pipeline.
    let mut pairs: Vec<_> = plan.steps.iter().map(|s| (&s.dispatch.key, &s.dispatch.uniforms)).collect();
    pairs.sort_by_key(|p| format!("{p:?}"));
    pairs.dedup();
    let (dispatches, pairs) = (plan.steps.len(), pairs.len());
    let half_outputs = plan.steps.iter().filter(|s| s.dispatch.key.shader.ends_with("_oh")).count();
    let activation_mib = plan.activation_bytes() as f64 / 1048576.0;
    pollster::block_on(clf.logits(&mut engine, &input))?;
    println!("first run (compile + upload + run): {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let g = clf.graph(batch)?;
    let macs: u64 = g.nodes.iter().map(|n| n.op.macs(&g)).sum();
    println!("work: {:.3} GFLOP per image (2 x the matmuls' multiply-adds)", 2.0 * macs as f64 / batch as f64 / 1e9);
    let (bytes, halves) = g.param_bytes();
    println!("weights on the GPU: {:.1} MiB ({:.1} MiB of it f16)", bytes as f64 / 1048576.0, halves as f64 / 1048576.0);
    println!("activations on the GPU: {activation_mib:.1} MiB pooled ({half_outputs} matmul outputs stored as f16)");
    println!("pipelines: {} for {dispatches} dispatches ({pairs} distinct kernel + shape pairs)", engine.pipeline_count());
    let mut times = Vec::new();
    for _ in 0..iters {
        let t = Instant::now();
        pollster::block_on(clf.logits(&mut engine, &input))?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    println!("latency per batch: median {med:.2} ms (min {:.2}, max {:.2})", times[0], times[times.len() - 1]);
    println!("throughput: {:.2} images/s", batch as f64 * 1e3 / med);
    let (_, layers) = pollster::block_on(clf.logits_timed(&mut engine, &input, true))?;
    match layers {
        Some(layers) => {
            let total: f64 = layers.iter().map(|l| l.ms).sum();
            println!("GPU time per layer (timestamp queries), total {total:.2} ms:");
            for l in layers {
                println!("  {:<14} {:>9.3} ms", l.scope, l.ms);
            }
        }
        None => println!("GPU time per layer: the adapter has no timestamp queries"),
    }
    if engine.ctx.adapter().timestamps {
        // Every op in its own timed pass, summed by op kind.
        let g = clf.graph_for(&engine, batch)?;
        let exe = engine.compile_with(&g, &clf.model.weights.data(), true)?;
        pollster::block_on(exe.run(&engine.ctx, &[&input]))?;
        let (_, ops) = pollster::block_on(exe.run_timed(&engine.ctx, &[&input]))?;
        let kinds = vitrine::bench::by_op_kind(&ops.unwrap_or_default());
        println!("GPU time per op kind (each op timed alone):");
        for (k, ms, n) in kinds {
            println!("  {k:<14} {ms:>9.3} ms  ({n} dispatches)");
        }
    }
    Ok(())
}

fn run(raw: &[String]) -> Result<()> {
    let command = match cli::parse(raw).map_err(Error::Input)? {
        Parsed::Run(c) => c,
        Parsed::Printed => return Ok(()),
    };
    match *command {
        Command::Classify(a) => classify(&a),
        Command::Calibrate(a) => calibrate::calibrate(&a),
        Command::Inspect(a) => inspect(&a),
        Command::Explain(a) => explain(&a),
        Command::Bench(a) => bench(&a),
        Command::Tune(a) => tune(&a),
        Command::Train(a) => train::train(&a),
        Command::Eval(a) => train::eval(&a),
        Command::Plot(a) => plot(&a),
        Command::Presets => {
            config::preset_names().iter().for_each(|n| println!("{n}"));
            Ok(())
        }
        Command::Completions { shell } => {
            let mut cmd = <cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "vitrine", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// The Vulkan loader complains on stderr when XDG_RUNTIME_DIR is unset or
/// unusable; give it a private directory so errors stay one line. The
/// directory is one per user, made once and reused: no run leaves a new one behind.
#[cfg(unix)]
fn ensure_runtime_dir() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let ok = std::env::var_os("XDG_RUNTIME_DIR").map(|d| Path::new(&d).is_dir()).unwrap_or(false);
    if ok {
        return;
    }
    extern "C" {
        fn getuid() -> u32;
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { getuid() };
    let dir = std::env::temp_dir().join(format!("vitrine-runtime-{uid}"));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    // Use it only if it is ours (another user may have made the name first).
    let mine = std::fs::metadata(&dir).map(|m| m.uid() == uid).unwrap_or(false);
    if mine && std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).is_ok() {
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

#[cfg(not(unix))]
fn ensure_runtime_dir() {}

/// Restores the default SIGPIPE action (Rust ignores it, so `println!` into a
/// closed pipe, as in `vitrine inspect | head`, would panic): the process ends
/// quietly, as other command-line tools do.
#[cfg(unix)]
fn default_sigpipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13; // Linux and the BSDs / macOS
    const SIG_DFL: usize = 0;
    // SAFETY: installs the default disposition for one signal before any thread starts.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigpipe() {}

fn main() -> ExitCode {
    default_sigpipe();
    ensure_runtime_dir();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    match run(&raw) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = e.to_string().replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
