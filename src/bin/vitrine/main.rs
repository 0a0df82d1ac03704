//! The `vitrine` command line: classify, inspect, bench.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;
use vitrine::classify::Classifier;
use vitrine::models::config::Net;
use vitrine::models::{config, default_model, Model};
use vitrine::{preprocess, Engine, Error, Result};

mod args;
mod train;
use args::Args;

const USAGE: &str = "vitrine: Vision Transformers on any GPU through WebGPU

usage:
  vitrine classify [--model M] [--arch A] [--top-k 5] [--batch N] [--json] [--labels FILE] IMAGE...
  vitrine inspect  [--model M] [--arch A]
  vitrine bench    [--model M | --arch PRESET] [--batch B] [--iters N] [--train | --matmul [--kernel K]]
  vitrine train    --data D (--model M | --arch PRESET [--model-kwargs k=v ...]) --out DIR [options]
  vitrine train    --resume DIR [options to change]
  vitrine eval     [--model M] --data D [--split val|test|train] [-b B] [--json]
  vitrine presets

  --model M   a folder in the Hugging Face hub layout (config.json + model.safetensors)
              or a .safetensors file; without it, the built-in default model
  --arch A    a timm preset name (vitrine presets) for a bare .safetensors file
train options (timm's train.py names; defaults in brackets):
  --epochs [10] -b/--batch-size [64] --grad-accum-steps [1] --lr [1e-3; 0.01 for sgd]
  --opt adamw|sgd|momentum [adamw] --momentum [0.9] --weight-decay [0.05] --opt-eps --opt-betas
  --sched cosine|step|constant [cosine] --warmup-epochs [1 if epochs >= 5, else 0] --warmup-lr [1e-5]
  --min-lr [0] --decay-epochs --decay-rate --sched-on-updates --smoothing [0.1] --clip-grad NORM
  --crop rrc|pad|center [rrc] --scale [0.08 1] --ratio [0.75 1.333] --pad N --hflip [0.5] --no-aug
  --num-classes K [the data's] --img-size --in-chans --mean --std --interpolation --crop-pct
  --freeze-backbone --seed [42] --val-split [0.1, when the data has no val/test split] -j/--workers [2]
  --checkpoint-every STEPS --stop-after STEPS --quiet
environment: WGPU_BACKEND (vulkan, metal, dx12, gl), WGPU_ADAPTER_NAME, WGPU_POWER_PREF,
             VITRINE_MATMUL (tiled, register), RUST_LOG (info, debug)";

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
        if labels.len() != model.config.num_classes() {
            return Err(Error::Input(format!(
                "{path}: {} labels for a model with {} classes",
                labels.len(),
                model.config.num_classes()
            )));
        }
        model.config.labels = Some(labels);
    }
    let k = args.usize("--top-k", 5)?.min(model.config.num_classes().max(1));
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
    let g = model.graph(1)?;
    println!("model:        {}", model.source);
    println!("architecture: {}", c.architecture);
    match &c.net {
        Net::Vit(v) => {
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
        }
        Net::Swin(s) => {
            for (i, st) in s.stages()?.iter().enumerate() {
                let wins: Vec<String> = (0..st.depth.min(2))
                    .map(|j| {
                        let (w, sh) = st.block_window(j, s.always_partition);
                        format!("{}x{} shift {}x{}", w[0], w[1], sh[0], sh[1])
                    })
                    .collect();
                println!(
                    "stage {i}:      {}x{} tokens, dim {} depth {} heads {} (head_dim {}) mlp {} windows {}",
                    st.res[0],
                    st.res[1],
                    st.dim,
                    st.depth,
                    st.heads,
                    st.head_dim,
                    st.mlp_hidden(),
                    wins.join(" / ")
                );
            }
            println!(
                "options:      patch {} qkv_bias {} ape {} patch_norm {} always_partition {} pool {:?}",
                s.patch_size, s.qkv_bias, s.ape, s.patch_norm, s.always_partition, s.global_pool
            );
        }
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
        (None, Some(arch)) => Model::fresh(config::preset(arch)?, 1)?,
        _ => load_model(args)?,
    };
    let batch = args.usize("--batch", 1)?;
    if args.has("--train") {
        println!("model: {} | training step, batch {batch} | {iters} iterations", model.source);
        let r = vitrine::bench::train(&mut engine, &model, batch, iters)?;
        println!("training step (forward + loss + backward + AdamW): median {:.2} ms", r.step_ms);
        println!("training throughput: {:.2} images/s", r.images_per_s);
        if let Some(kinds) = r.kinds {
            let total: f64 = kinds.iter().map(|k| k.1).sum();
            println!("GPU time per op kind, forward + backward (each op timed alone), total {total:.2} ms:");
            for (k, ms, n) in kinds {
                println!("  {k:<14} {ms:>9.3} ms  ({n} dispatches)");
            }
        }
        return Ok(());
    }
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
        let kinds = vitrine::bench::by_op_kind(&ops.unwrap_or_default());
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
        "bench" => bench(&Args::parse(rest, &["--model", "--arch", "--batch", "--iters", "--matmul", "--kernel", "--train"])?),
        "train" => train::train(&Args::parse(rest, train::TRAIN_FLAGS)?),
        "eval" => train::eval(&Args::parse(rest, train::EVAL_FLAGS)?),
        "presets" => {
            config::preset_names().iter().for_each(|n| println!("{n}"));
            Ok(())
        }
        "--help" | "-h" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(Error::Input(format!("unknown command {other:?} (classify, train, eval, inspect, bench, presets)"))),
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

