//! The `vitrine` command line: classify, inspect, bench.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;
use vitrine::classify::Classifier;
use vitrine::models::{config, default_model, Model};
use vitrine::{preprocess, Engine, Error, Result};

const USAGE: &str = "vitrine: Vision Transformers on any GPU through WebGPU

usage:
  vitrine classify [--model M] [--arch A] [--top-k 5] [--batch N] [--json] [--labels FILE] IMAGE...
  vitrine inspect  [--model M] [--arch A]
  vitrine bench    [--model M | --arch PRESET] [--batch B] [--iters N] [--matmul [--kernel K]]
  vitrine presets

  --model M   a folder in the Hugging Face hub layout (config.json + model.safetensors)
              or a .safetensors file; without it, the built-in default model
  --arch A    a timm preset name (vitrine presets) for a bare .safetensors file
environment: WGPU_BACKEND (vulkan, metal, dx12, gl), WGPU_ADAPTER_NAME, WGPU_POWER_PREF,
             VITRINE_MATMUL (tiled, register), RUST_LOG (info, debug)";

/// Parsed command-line flags: `--name value`, `--switch`, and positionals.
struct Args {
    flags: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

const SWITCHES: &[&str] = &["--json", "--matmul", "--help", "-h"];

impl Args {
    fn parse(raw: &[String], known: &[&str]) -> Result<Self> {
        let mut flags = Vec::new();
        let mut positional = Vec::new();
        let mut it = raw.iter();
        while let Some(a) = it.next() {
            if a.starts_with('-') && a.len() > 1 {
                let (name, inline) = match a.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (a.clone(), None),
                };
                if !known.contains(&name.as_str()) {
                    return Err(Error::Input(format!("unknown option {name} (see vitrine --help)")));
                }
                if SWITCHES.contains(&name.as_str()) {
                    flags.push((name, None));
                } else {
                    let v = inline.or_else(|| it.next().cloned()).ok_or_else(|| Error::Input(format!("{name} needs a value")))?;
                    flags.push((name, Some(v)));
                }
            } else {
                positional.push(a.clone());
            }
        }
        Ok(Args { flags, positional })
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }
    fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == name)
    }
    fn usize(&self, name: &str, default: usize) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|&x| x > 0)
                .ok_or_else(|| Error::Input(format!("{name} must be a positive integer, got {v:?}"))),
        }
    }
}

fn load_model(args: &Args) -> Result<Model> {
    match (args.get("--model"), args.get("--arch")) {
        (Some(m), arch) => Model::load(Path::new(m), arch),
        (None, Some(_)) => Err(Error::Input("--arch names the architecture of a --model file; give --model too".into())),
        (None, None) => default_model(),
    }
}

fn classify(args: &Args) -> Result<()> {
    if args.positional.is_empty() {
        return Err(Error::Input("classify needs at least one IMAGE".into()));
    }
    let mut model = load_model(args)?;
    if let Some(path) = args.get("--labels") {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let labels: Vec<String> = text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
        if labels.len() != model.config.vit.num_classes {
            return Err(Error::Input(format!(
                "{path}: {} labels for a model with {} classes",
                labels.len(),
                model.config.vit.num_classes
            )));
        }
        model.config.labels = Some(labels);
    }
    let k = args.usize("--top-k", 5)?.min(model.config.vit.num_classes.max(1));
    let batch = args.usize("--batch", 1)?;
    let json = args.has("--json");
    // Decode everything first: a bad file fails before any GPU work.
    let mut tensors = Vec::with_capacity(args.positional.len());
    for p in &args.positional {
        let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
        tensors.push(preprocess::load_tensor(&bytes, p, &model.config.data)?);
    }
    let mut engine = Engine::new_blocking()?;
    let mut clf = Classifier::new(model);
    for (chunk_i, chunk) in tensors.chunks(batch).enumerate() {
        let input: Vec<f32> = chunk.concat();
        let logits = pollster::block_on(clf.logits(&mut engine, &input))?;
        let width = logits.len() / chunk.len();
        for (j, row) in logits.chunks(width).enumerate() {
            let path = &args.positional[chunk_i * batch + j];
            let top = clf.top_k(row, k);
            if json {
                let obj = serde_json::json!({"image": path, "top_k": top, "logits": row});
                println!("{obj}");
            } else {
                println!("{path}:");
                for (r, p) in top.iter().enumerate() {
                    println!("  {}. {:<40} {:6.2}%  (class {})", r + 1, p.label, p.prob * 100.0, p.index);
                }
            }
        }
    }
    Ok(())
}

fn inspect(args: &Args) -> Result<()> {
    let model = load_model(args)?;
    let c = &model.config;
    let v = &c.vit;
    let g = model.graph(1)?;
    println!("model:        {}", model.source);
    println!("architecture: {}", c.architecture);
    println!(
        "vit:          patch {} embed_dim {} depth {} heads {} (head_dim {}) mlp {} tokens {} ({} prefix)",
        v.patch_size,
        v.embed_dim,
        v.depth,
        v.num_heads,
        v.head_dim(),
        v.mlp_hidden(),
        v.num_patches() + v.num_prefix_tokens(),
        v.num_prefix_tokens()
    );
    println!(
        "options:      qkv_bias {} layer_scale {} class_token {} reg_tokens {} no_embed_class {} pool {:?} fc_norm {} pre_norm {} distilled {}",
        v.qkv_bias,
        v.init_values.is_some(),
        v.class_token,
        v.reg_tokens,
        v.no_embed_class,
        v.global_pool,
        v.use_fc_norm(),
        v.pre_norm,
        v.distilled
    );
    println!("classes:      {}{}", v.num_classes, if c.labels.is_some() { " (labelled)" } else { "" });
    println!("parameters:   {} ({:.2} M), stored as {}", g.param_count(), g.param_count() as f64 / 1e6, model.weights.dtype);
    let d = &c.data;
    println!(
        "input:        {:?} {} crop_pct {} crop_mode {} mean {:?} std {:?}",
        d.input_size, d.interpolation, d.crop_pct, d.crop_mode, d.mean, d.std
    );
    println!("tensors:");
    let mut names: Vec<_> = model.weights.tensors.iter().map(|(n, (s, _))| (n.clone(), s.clone())).collect();
    names.sort_by(|a, b| natural_key(&a.0).cmp(&natural_key(&b.0)));
    for (n, s) in names {
        println!("  {n:<40} {s:?}");
    }
    Ok(())
}

/// Sorts `blocks.10` after `blocks.9`.
fn natural_key(s: &str) -> Vec<(String, u64)> {
    s.split('.').map(|p| p.parse::<u64>().map(|n| (String::new(), n)).unwrap_or((p.to_string(), 0))).collect()
}

fn bench(args: &Args) -> Result<()> {
    let iters = args.usize("--iters", 10)?;
    let mut engine = Engine::new_blocking()?;
    let a = engine.ctx.adapter().clone();
    println!("adapter: {} ({}, {} {}), device type {}", a.name, a.backend, a.driver, a.driver_info, a.device_type);
    if args.has("--matmul") {
        let b = args.usize("--batch", 1)?;
        let shapes = [(1024, 1024, 1024), (b * 197, 2304, 768), (b * 197, 3072, 768), (b * 197, 768, 3072)];
        println!("{:<10} {:>6} {:>6} {:>6} {:>10} {:>9}", "variant", "M", "N", "K", "ms", "GFLOP/s");
        let only = args.get("--kernel");
        let kinds: Vec<_> = engine
            .matmul_variants()
            .into_iter()
            .filter(|k| only.is_none_or(|o| format!("{k:?}").eq_ignore_ascii_case(o)))
            .collect();
        if kinds.is_empty() {
            return Err(Error::Input(format!("--kernel {:?}: this adapter has {:?}", only.unwrap_or(""), engine.matmul_variants())));
        }
        for kind in kinds {
            for &(m, n, k) in &shapes {
                let r = vitrine::bench::matmul(&mut engine, kind, m, n, k, iters)?;
                println!("{:<10} {:>6} {:>6} {:>6} {:>10.2} {:>9.2}", r.variant, r.m, r.n, r.k, r.ms, r.gflops);
            }
        }
        return Ok(());
    }
    let model = match (args.get("--model"), args.get("--arch")) {
        (None, Some(arch)) => {
            let cfg = config::preset(arch)?;
            let g = vitrine::models::vit::build(&cfg.vit, 1)?;
            let data = vitrine::bench::random_weights(&g.param_table(), 1);
            let tensors = g.param_table().into_iter().map(|(n, s)| {
                let v = data.get(&n).cloned().unwrap_or_default();
                (n, (s, v))
            });
            let weights = vitrine::weights::Weights { tensors: tensors.collect(), dtype: "F32 (random)".into() };
            Model { config: cfg, weights, source: format!("{arch} (random weights)") }
        }
        _ => load_model(args)?,
    };
    let batch = args.usize("--batch", 1)?;
    println!("model: {} | batch {batch} | {iters} iterations", model.source);
    let mut clf = Classifier::new(model);
    let input = vec![0.1f32; clf.image_len() * batch];
    let t = Instant::now();
    clf.prepare(&mut engine, batch)?;
    pollster::block_on(clf.logits(&mut engine, &input))?;
    println!("first run (compile + upload + run): {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
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
        let g = clf.model.graph(batch)?;
        let exe = engine.compile_with(&g, &clf.model.weights.data(), true)?;
        pollster::block_on(exe.run(&engine.ctx, &[&input]))?;
        let (_, ops) = pollster::block_on(exe.run_timed(&engine.ctx, &[&input]))?;
        let mut kinds: Vec<(String, f64, usize)> = Vec::new();
        for l in ops.unwrap_or_default() {
            let kind = l.scope.rsplit('/').next().unwrap_or("").to_string();
            match kinds.iter_mut().find(|k| k.0 == kind) {
                Some(k) => {
                    k.1 += l.ms;
                    k.2 += 1;
                }
                None => kinds.push((kind, l.ms, 1)),
            }
        }
        kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!("GPU time per op kind (each op timed alone):");
        for (k, ms, n) in kinds {
            println!("  {k:<14} {ms:>9.3} ms  ({n} dispatches)");
        }
    }
    Ok(())
}

fn run(raw: &[String]) -> Result<()> {
    let Some(cmd) = raw.first() else {
        println!("{USAGE}");
        return Ok(());
    };
    let rest = &raw[1..];
    match cmd.as_str() {
        "classify" => classify(&Args::parse(rest, &["--model", "--arch", "--top-k", "--batch", "--json", "--labels"])?),
        "inspect" => inspect(&Args::parse(rest, &["--model", "--arch"])?),
        "bench" => bench(&Args::parse(rest, &["--model", "--arch", "--batch", "--iters", "--matmul", "--kernel"])?),
        "presets" => {
            config::preset_names().iter().for_each(|n| println!("{n}"));
            Ok(())
        }
        "--help" | "-h" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(Error::Input(format!("unknown command {other:?} (classify, inspect, bench, presets)"))),
    }
}

/// The Vulkan loader complains on stderr when XDG_RUNTIME_DIR is unset or
/// unusable; give it a private directory so errors stay one line.
fn ensure_runtime_dir() {
    let ok = std::env::var_os("XDG_RUNTIME_DIR").map(|d| Path::new(&d).is_dir()).unwrap_or(false);
    if !ok {
        let dir = std::env::temp_dir().join(format!("vitrine-runtime-{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

fn main() -> ExitCode {
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

