//! `vitrine train` and `vitrine eval`: flags named as in timm's train.py.

use crate::args::Args;
use std::path::{Path, PathBuf};
use vitrine::models::config::{finish, preset};
use vitrine::models::{default_model, Model};
use vitrine::train::augment::{Augment, Crop};
use vitrine::train::data::{Dataset, Split};
use vitrine::train::schedule::SchedKind;
use vitrine::train::trainer::{self, adapt_head, evaluate, load_resume, Hooks, OptName, TrainOptions};
use vitrine::{Engine, Error, Result};

pub const TRAIN_FLAGS: &[&str] = &[
    "--data", "--model", "--arch", "--model-kwargs", "--num-classes", "--img-size", "--in-chans", "--mean", "--std",
    "--interpolation", "--crop-pct", "--epochs", "-b", "--batch-size", "--grad-accum-steps", "--lr", "--min-lr",
    "--warmup-lr", "--warmup-epochs", "--sched", "--sched-on-updates", "--decay-epochs", "--decay-rate", "--opt",
    "--opt-eps", "--opt-betas", "--momentum", "--weight-decay", "--smoothing", "--clip-grad", "--no-aug", "--hflip",
    "--scale", "--ratio", "--crop", "--pad", "--seed", "--freeze-backbone", "--val-split", "-j", "--workers",
    "--checkpoint-every", "--stop-after", "--resume", "--out", "--output", "--quiet",
];

pub const EVAL_FLAGS: &[&str] = &["--model", "--arch", "--data", "--split", "-b", "--batch-size", "--json", "-j", "--workers", "--quiet"];

/// `key=value` pairs (values as JSON, or Python's True / False / None, or bare strings).
fn model_kwargs(args: &Args) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut map = serde_json::Map::new();
    for kv in args.list("--model-kwargs").unwrap_or_default() {
        let (k, v) = kv.split_once('=').ok_or_else(|| Error::Input(format!("--model-kwargs: {kv:?} is not key=value")))?;
        let v = match v {
            "True" => serde_json::Value::Bool(true),
            "False" => serde_json::Value::Bool(false),
            "None" => serde_json::Value::Null,
            _ => serde_json::from_str(&v.replace('(', "[").replace(')', "]")).unwrap_or_else(|_| serde_json::Value::String(v.to_string())),
        };
        map.insert(k.to_string(), v);
    }
    Ok(map)
}

fn opt_usize(args: &Args, name: &str) -> Result<Option<usize>> {
    if args.get(name).is_none() {
        return Ok(None);
    }
    args.usize(name, 1).map(Some)
}

fn batch_flag(args: &Args) -> Result<Option<usize>> {
    Ok(opt_usize(args, "-b")?.or(opt_usize(args, "--batch-size")?))
}

fn workers_flag(args: &Args) -> Result<Option<usize>> {
    Ok(opt_usize(args, "-j")?.or(opt_usize(args, "--workers")?))
}

/// The model to train: `--model` (fine-tune), `--arch` alone (from scratch,
/// with `--model-kwargs`, `--img-size`, `--in-chans`), with data-config flags applied.
fn model_for_training(args: &Args, num_classes: usize, seed: u64) -> Result<Model> {
    let mut model = match (args.get("--model"), args.get("--arch")) {
        (Some(m), arch) => {
            if args.has("--model-kwargs") || args.has("--img-size") || args.has("--in-chans") {
                return Err(Error::Input("--model-kwargs, --img-size and --in-chans shape a new model; they cannot change --model's".into()));
            }
            Model::load(Path::new(m), arch)?
        }
        (None, Some(arch)) => {
            let mut cfg = preset(arch)?;
            let mut kw = model_kwargs(args)?;
            if let Some(s) = opt_usize(args, "--img-size")? {
                kw.insert("img_size".into(), s.into());
            }
            if let Some(c) = opt_usize(args, "--in-chans")? {
                kw.insert("in_chans".into(), c.into());
            }
            kw.insert("num_classes".into(), num_classes.into());
            cfg.apply_model_args(&kw)?;
            cfg.labels = None;
            Model::fresh(finish(cfg)?, seed)?
        }
        (None, None) => return Err(Error::Input("train needs --model (a checkpoint to fine-tune) or --arch (a preset to train from scratch)".into())),
    };
    let d = &mut model.config.data;
    if let Some(m) = args.floats("--mean", &[1, 3])? {
        d.mean = if m.len() == 1 { [m[0] as f32; 3] } else { [m[0] as f32, m[1] as f32, m[2] as f32] };
    }
    if let Some(s) = args.floats("--std", &[1, 3])? {
        d.std = if s.len() == 1 { [s[0] as f32; 3] } else { [s[0] as f32, s[1] as f32, s[2] as f32] };
    }
    if let Some(i) = args.get("--interpolation") {
        if !["bicubic", "bilinear", "nearest"].contains(&i) {
            return Err(Error::Input(format!("--interpolation {i:?} is not supported (bicubic, bilinear, nearest)")));
        }
        d.interpolation = i.to_string();
    }
    if let Some(c) = args.f64("--crop-pct")? {
        if !(c > 0.0 && c <= 1.0) {
            return Err(Error::Input(format!("--crop-pct must be in (0, 1], got {c}")));
        }
        d.crop_pct = c;
    }
    Ok(model)
}

/// Applies the flags given on the command line to `o` (defaults or a resumed run's options).
fn apply_flags(args: &Args, o: &mut TrainOptions, resuming: bool) -> Result<()> {
    if let Some(d) = args.get("--data") {
        o.data = PathBuf::from(d);
    }
    if let Some(d) = args.get("--out").or(args.get("--output")) {
        o.out = PathBuf::from(d);
    }
    if let Some(e) = opt_usize(args, "--epochs")? {
        o.epochs = e;
        o.sched.epochs = e;
    }
    if !resuming && args.get("--warmup-epochs").is_none() {
        o.sched.warmup_epochs = if o.epochs >= 5 { 1.0 } else { 0.0 };
    }
    if let Some(b) = batch_flag(args)? {
        o.batch_size = b;
    }
    if let Some(a) = opt_usize(args, "--grad-accum-steps")? {
        o.grad_accum = a;
    }
    if let Some(w) = workers_flag(args)? {
        o.workers = w;
    }
    if let Some(s) = args.get("--opt") {
        o.opt = OptName::parse(s)?;
        if !resuming && args.get("--lr").is_none() && o.opt != OptName::AdamW {
            o.sched.lr = 0.01;
        }
    }
    let set = |name: &str, field: &mut f64| -> Result<()> {
        if let Some(v) = args.f64(name)? {
            *field = v;
        }
        Ok(())
    };
    set("--lr", &mut o.sched.lr)?;
    set("--min-lr", &mut o.sched.min_lr)?;
    set("--warmup-lr", &mut o.sched.warmup_lr)?;
    set("--warmup-epochs", &mut o.sched.warmup_epochs)?;
    set("--decay-epochs", &mut o.sched.decay_epochs)?;
    set("--decay-rate", &mut o.sched.decay_rate)?;
    set("--momentum", &mut o.momentum)?;
    set("--weight-decay", &mut o.weight_decay)?;
    set("--opt-eps", &mut o.opt_eps)?;
    set("--smoothing", &mut o.smoothing)?;
    set("--val-split", &mut o.val_split)?;
    if let Some(b) = args.floats("--opt-betas", &[2])? {
        o.opt_betas = [b[0], b[1]];
    }
    if let Some(s) = args.get("--sched") {
        o.sched.kind = SchedKind::parse(s)?;
    }
    if args.has("--sched-on-updates") {
        o.sched.on_updates = true;
    }
    if let Some(c) = args.f64("--clip-grad")? {
        o.clip_grad = Some(c);
    }
    if let Some(s) = args.get("--seed") {
        o.seed = s.parse().map_err(|_| Error::Input(format!("--seed must be a non-negative integer, got {s:?}")))?;
    }
    if args.has("--freeze-backbone") {
        o.freeze_backbone = true;
    }
    if let Some(n) = args.get("--checkpoint-every") {
        o.checkpoint_every = Some(n.parse().map_err(|_| Error::Input(format!("--checkpoint-every must be a step count, got {n:?}")))?);
    }
    // Augmentation.
    if let Some(c) = args.get("--crop") {
        o.augment.crop = match c {
            "rrc" => Crop::RandomResized { scale: [0.08, 1.0], ratio: [0.75, 4.0 / 3.0] },
            "pad" => Crop::Pad { pad: 4 },
            "center" | "none" => Crop::Center,
            _ => return Err(Error::Input(format!("--crop {c:?} is not supported (rrc, pad, center)"))),
        };
    }
    if let Some(p) = args.get("--pad") {
        let pad = p.parse().map_err(|_| Error::Input(format!("--pad must be a pixel count, got {p:?}")))?;
        o.augment.crop = Crop::Pad { pad };
    }
    if let Crop::RandomResized { scale, ratio } = &mut o.augment.crop {
        if let Some(s) = args.floats("--scale", &[2])? {
            *scale = [s[0], s[1]];
        }
        if let Some(r) = args.floats("--ratio", &[2])? {
            *ratio = [r[0], r[1]];
        }
    } else if args.has("--scale") || args.has("--ratio") {
        return Err(Error::Input("--scale and --ratio apply to --crop rrc".into()));
    }
    set("--hflip", &mut o.augment.hflip)?;
    if args.has("--no-aug") {
        o.augment = Augment::none();
    }
    Ok(())
}

pub fn train(args: &Args) -> Result<()> {
    let quiet = args.has("--quiet");
    let mut log = |s: &str| println!("{s}");
    let resume = match args.get("--resume") {
        Some(dir) => Some(load_resume(Path::new(dir))?),
        None => None,
    };
    let (model, opts) = match &resume {
        Some(r) => {
            if args.has("--model") || args.has("--arch") {
                return Err(Error::Input("--resume continues its checkpoint's model; leave out --model / --arch".into()));
            }
            let mut o = r.state.options.clone();
            if args.get("--out").or(args.get("--output")).is_none() {
                o.out = PathBuf::from(args.get("--resume").unwrap_or_default());
            }
            apply_flags(args, &mut o, true)?;
            (r.model.clone(), o)
        }
        None => {
            let data = args.get("--data").ok_or_else(|| Error::Input("train needs --data DIR".into()))?;
            let out = args.get("--out").or(args.get("--output")).ok_or_else(|| Error::Input("train needs --out DIR".into()))?;
            let mut o = TrainOptions::new(PathBuf::from(data), PathBuf::from(out));
            apply_flags(args, &mut o, false)?;
            let classes = Dataset::open(&o.data, Split::Train)?.classes;
            let k = match opt_usize(args, "--num-classes")? {
                Some(k) => k,
                None => classes.len(),
            };
            let mut model = model_for_training(args, k, o.seed)?;
            adapt_head(&mut model, &classes, k, o.seed, &mut log)?;
            (model, o)
        }
    };
    let mut engine = Engine::new_blocking()?;
    let a = engine.ctx.adapter();
    let g = model.graph(1)?;
    log(&format!(
        "training {} ({:.3} M parameters{}) on {} [{}] | data {} | out {}",
        model.config.architecture,
        g.param_count() as f64 / 1e6,
        if opts.freeze_backbone { ", backbone frozen" } else { "" },
        a.name,
        a.backend,
        opts.data.display(),
        opts.out.display()
    ));
    log(&format!(
        "recipe: {} epochs, batch {}{}, {:?} lr {:.2e} wd {}, {:?} schedule (warmup {} epochs), smoothing {}, clip {}, augment {}",
        opts.epochs,
        opts.batch_size,
        if opts.grad_accum > 1 { format!(" x {} micro-batches", opts.grad_accum) } else { String::new() },
        opts.opt,
        opts.sched.lr,
        opts.weight_decay,
        opts.sched.kind,
        opts.sched.warmup_epochs,
        opts.smoothing,
        opts.clip_grad.map(|c| c.to_string()).unwrap_or_else(|| "off".into()),
        serde_json::to_string(&opts.augment).unwrap_or_default()
    ));
    let stop_after = match args.get("--stop-after") {
        Some(n) => Some(n.parse::<u64>().map_err(|_| Error::Input(format!("--stop-after must be a step count, got {n:?}")))?),
        None => None,
    };
    let report = trainer::train(&mut engine, model, opts, resume, Hooks { stop_after, progress: !quiet, log: &mut log })?;
    let best = report.state.history.iter().filter_map(|r| r.val_top1.map(|t| (t, r.epoch))).max_by(|a, b| a.0.total_cmp(&b.0));
    if !report.stopped {
        let mut line = format!("done in {:.1} s; model in {}", report.secs, report.state.options.out.display());
        if let Some((t, e)) = best {
            line += &format!(" (best val top1 {t:.2}% at epoch {e})");
        }
        log(&line);
    }
    Ok(())
}

pub fn eval(args: &Args) -> Result<()> {
    let model = match (args.get("--model"), args.get("--arch")) {
        (Some(m), arch) => Model::load(Path::new(m), arch)?,
        (None, Some(_)) => return Err(Error::Input("--arch names the architecture of a --model file; give --model too".into())),
        (None, None) => default_model()?,
    };
    let data = args.get("--data").ok_or_else(|| Error::Input("eval needs --data DIR".into()))?;
    let split = match args.get("--split").unwrap_or("val") {
        "val" | "test" | "validation" => Split::Val,
        "train" => Split::Train,
        s => return Err(Error::Input(format!("--split {s:?} is not supported (val, test, train)"))),
    };
    let ds = Dataset::open(Path::new(data), split)?;
    if ds.is_empty() {
        return Err(Error::Input(format!("{data}: no images in the {split:?} split")));
    }
    let k = model.config.num_classes();
    if let Some(bad) = ds.samples.iter().find(|s| s.label >= k) {
        return Err(Error::Input(format!("{data}: label {} ({}) but the model has {k} classes", bad.label, ds.classes[bad.label])));
    }
    let batch = batch_flag(args)?.unwrap_or(64);
    let workers = workers_flag(args)?.unwrap_or(2);
    let mut engine = Engine::new_blocking()?;
    let g = model.graph(batch)?;
    let exe = engine.compile(&g, &model.weights.data())?;
    let classes = ds.classes.clone();
    let title = (!args.has("--quiet") && !args.has("--json")).then_some("eval");
    let r = evaluate(&engine, &exe, std::sync::Arc::new(ds), &model.config.data, batch, workers, title)?;
    if args.has("--json") {
        println!("{}", serde_json::json!({"top1": r.top1, "top5": r.top5, "n": r.n}));
        return Ok(());
    }
    println!("{:<24} {:>8} {:>8}", "class", "images", "top1");
    for (i, (c, n)) in r.per_class.iter().enumerate() {
        if *n > 0 {
            let name = classes.get(i).cloned().unwrap_or_else(|| model.label(i));
            println!("{name:<24} {n:>8} {:>7.2}%", 100.0 * *c as f64 / *n as f64);
        }
    }
    println!("top1 {:.2}%  top5 {:.2}%  loss {:.4}  ({} images, {})", r.top1, r.top5, r.loss, r.n, model.source);
    Ok(())
}
