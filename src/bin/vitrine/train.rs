//! `vitrine train` and `vitrine eval`: what they do (their flags are in
//! train_args.rs).

pub use crate::train_args::{EvalArgs, TrainArgs};
use std::path::{Path, PathBuf};
use vitrine::models::config::{finish, preset};
use vitrine::models::{default_model, Model};
use vitrine::train::augment::{Augment, Crop};
use vitrine::train::data::{Dataset, Split};
use vitrine::train::schedule::SchedKind;
use vitrine::train::trainer::{self, adapt_head, evaluate, load_resume, Hooks, OptName, Resume, TrainOptions};
use vitrine::{Engine, Error, Result};

/// `key=value` pairs (values as JSON, or Python's True / False / None, or bare strings).
fn model_kwargs(a: &TrainArgs) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut map = serde_json::Map::new();
    for kv in a.model_kwargs.iter().flatten() {
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

/// `--mean` / `--std`: one number for all channels, or three.
/// `--model DIR --arch PRESET [--model-kwargs ..]` where the preset is of another family than
/// the folder (a plain timm DeiT folder to start a DynamicViT from, as the official code does):
/// a fresh PRESET with the folder's classes and preprocessing, every tensor the folder has copied
/// (shapes must agree), the others (the predictors) freshly initialised. The same family:
/// the preset only renames the folder's architecture, as for any hub folder.
fn start_from(dir: &Path, arch: &str, kwargs: &serde_json::Map<String, serde_json::Value>, seed: u64) -> Result<Model> {
    let src = Model::load(dir, None)?;
    let mut cfg = preset(arch)?;
    if cfg.family().name == src.config.family().name {
        if !kwargs.is_empty() {
            return Err(Error::Input("--model-kwargs shape a new model; they cannot change --model's".into()));
        }
        return Model::load(dir, Some(arch));
    }
    cfg.apply_model_args(kwargs)?;
    let (chans, size) = src.config.input();
    cfg.arch.set_input(chans, size);
    cfg.set_num_classes(src.config.num_classes());
    cfg.data = src.config.data.clone();
    cfg.labels = src.config.labels.clone();
    let mut model = Model::fresh(finish(cfg)?, seed)?;
    let (mut copied, total) = (0, model.weights.tensors.len());
    let mut fresh = Vec::new();
    for (name, (shape, data)) in model.weights.tensors.iter_mut() {
        match src.weights.tensors.get(name) {
            Some((s, d)) if s == shape => {
                data.clone_from(d);
                copied += 1;
            }
            Some((s, _)) => {
                return Err(Error::Input(format!("{}: {name} is {s:?} but {arch} needs {shape:?}", dir.display())));
            }
            None => fresh.push(name.clone()),
        }
    }
    fresh.sort();
    eprintln!(
        "starting {arch} from {}: {copied} of {total} tensors copied, {} freshly initialised ({})",
        dir.display(),
        fresh.len(),
        fresh.first().map(|f| f.split('.').next().unwrap_or(f)).unwrap_or("none")
    );
    model.source = dir.display().to_string();
    Ok(model)
}

fn per_channel(name: &str, v: &[f64]) -> Result<[f32; 3]> {
    match v {
        [x] => Ok([*x as f32; 3]),
        [r, g, b] => Ok([*r as f32, *g as f32, *b as f32]),
        _ => Err(Error::Input(format!("{name} takes 1 or 3 numbers, got {v:?}"))),
    }
}

/// The model to train: `--model` (fine-tune), `--arch` alone (from scratch,
/// with `--model-kwargs`, `--img-size`, `--in-chans`), with data-config flags applied.
fn model_for_training(a: &TrainArgs, num_classes: usize, seed: u64) -> Result<Model> {
    let mut model = match (&a.model, &a.arch) {
        (Some(m), Some(arch)) if Path::new(m).is_dir() && a.img_size.is_none() && a.in_chans.is_none() => {
            start_from(Path::new(m), arch, &model_kwargs(a)?, seed)?
        }
        (Some(m), arch) => {
            if a.model_kwargs.is_some() || a.img_size.is_some() || a.in_chans.is_some() {
                return Err(Error::Input(
                    "--model-kwargs, --img-size and --in-chans shape a new model; they cannot change --model's".into(),
                ));
            }
            Model::load(Path::new(m), arch.as_deref())?
        }
        (None, Some(arch)) => {
            let mut cfg = preset(arch)?;
            cfg.apply_model_args(&model_kwargs(a)?)?;
            let (chans, size) = cfg.input();
            let (chans, size) = (a.in_chans.unwrap_or(chans), a.img_size.map_or(size, |s| [s, s]));
            cfg.arch.set_input(chans, size);
            cfg.data.input_size = [chans, size[0], size[1]];
            cfg.set_num_classes(num_classes);
            cfg.labels = None;
            Model::fresh(finish(cfg)?, seed)?
        }
        (None, None) => {
            return Err(Error::Input("train needs --model (a checkpoint to fine-tune) or --arch (a preset to train from scratch)".into()))
        }
    };
    model.config.arch.trainable()?;
    let d = &mut model.config.data;
    if let Some(m) = &a.mean {
        d.mean = per_channel("--mean", m)?;
    }
    if let Some(s) = &a.std {
        d.std = per_channel("--std", s)?;
    }
    if let Some(i) = &a.interpolation {
        d.interpolation = i.clone();
    }
    if let Some(c) = a.crop_pct {
        if !(c > 0.0 && c <= 1.0) {
            return Err(Error::Input(format!("--crop-pct must be in (0, 1], got {c}")));
        }
        d.crop_pct = c;
    }
    d.validate()?;
    Ok(model)
}

/// Overwrites `field` with a flag's value when the flag was given.
fn set<T: Copy>(flag: Option<T>, field: &mut T) {
    if let Some(v) = flag {
        *field = v;
    }
}

/// Applies the flags given on the command line to `o` (defaults or a resumed run's options).
fn apply_flags(a: &TrainArgs, o: &mut TrainOptions, resuming: bool) -> Result<()> {
    if let Some(d) = &a.data {
        o.data = PathBuf::from(d);
    }
    if let Some(d) = &a.out {
        o.out = PathBuf::from(d);
    }
    if let Some(e) = a.epochs {
        o.epochs = e;
        o.sched.epochs = e;
    }
    set(a.batch_size, &mut o.batch_size);
    set(a.grad_accum_steps, &mut o.grad_accum);
    set(a.workers, &mut o.workers);
    set(a.val_split, &mut o.val_split);
    set(a.seed, &mut o.seed);
    if a.freeze_backbone {
        o.freeze_backbone = true;
    }
    if let Some(t) = &a.teacher {
        o.teacher = Some(std::path::PathBuf::from(t));
    }
    if a.backbone_lr_scale.is_some() {
        o.backbone_lr_scale = a.backbone_lr_scale;
    }
    if a.backbone_freeze_epochs.is_some() {
        o.backbone_freeze_epochs = a.backbone_freeze_epochs;
    }
    if a.ratio_weight.is_some() {
        o.ratio_weight = a.ratio_weight;
    }
    if a.checkpoint_every.is_some() {
        o.checkpoint_every = a.checkpoint_every;
    }
    apply_optimizer(a, o, resuming)?;
    apply_schedule(a, o, resuming)?;
    apply_augment(a, o)
}

/// `--opt` and its numbers, `--smoothing`, `--clip-grad`.
fn apply_optimizer(a: &TrainArgs, o: &mut TrainOptions, resuming: bool) -> Result<()> {
    if let Some(s) = &a.opt {
        o.opt = OptName::parse(s)?;
        if !resuming && a.lr.is_none() && o.opt != OptName::AdamW {
            o.sched.lr = 0.01;
        }
    }
    set(a.lr, &mut o.sched.lr);
    set(a.momentum, &mut o.momentum);
    set(a.weight_decay, &mut o.weight_decay);
    set(a.opt_eps, &mut o.opt_eps);
    set(a.smoothing, &mut o.smoothing);
    if let Some(b) = &a.opt_betas {
        o.opt_betas = pair("--opt-betas", b)?;
    }
    if a.clip_grad.is_some() {
        o.clip_grad = a.clip_grad;
    }
    Ok(())
}

/// `--sched` and the learning-rate schedule's numbers.
fn apply_schedule(a: &TrainArgs, o: &mut TrainOptions, resuming: bool) -> Result<()> {
    if !resuming && a.warmup_epochs.is_none() {
        o.sched.warmup_epochs = if o.epochs >= 5 { 1.0 } else { 0.0 };
    }
    if let Some(s) = &a.sched {
        o.sched.kind = SchedKind::parse(s)?;
    }
    set(a.min_lr, &mut o.sched.min_lr);
    set(a.warmup_lr, &mut o.sched.warmup_lr);
    set(a.warmup_epochs, &mut o.sched.warmup_epochs);
    set(a.decay_epochs, &mut o.sched.decay_epochs);
    set(a.decay_rate, &mut o.sched.decay_rate);
    if a.sched_on_updates {
        o.sched.on_updates = true;
    }
    Ok(())
}

/// Two numbers (clap checks the count; this keeps the code free of indexing).
fn pair(name: &str, v: &[f64]) -> Result<[f64; 2]> {
    match v {
        [x, y] => Ok([*x, *y]),
        _ => Err(Error::Input(format!("{name} takes 2 numbers, got {v:?}"))),
    }
}

/// `--crop`, `--pad`, `--scale`, `--ratio`, `--hflip`, `--no-aug`.
fn apply_augment(a: &TrainArgs, o: &mut TrainOptions) -> Result<()> {
    if let Some(c) = &a.crop {
        o.augment.crop = match c.as_str() {
            "rrc" => Crop::RandomResized { scale: [0.08, 1.0], ratio: [0.75, 4.0 / 3.0] },
            "pad" => Crop::Pad { pad: 4 },
            "center" | "none" => Crop::Center,
            _ => return Err(Error::Input(format!("--crop {c:?} is not supported (rrc, pad, center)"))),
        };
    }
    if let Some(pad) = a.pad {
        o.augment.crop = Crop::Pad { pad };
    }
    if let Crop::RandomResized { scale, ratio } = &mut o.augment.crop {
        if let Some(s) = &a.scale {
            *scale = pair("--scale", s)?;
        }
        if let Some(r) = &a.ratio {
            *ratio = pair("--ratio", r)?;
        }
    } else if a.scale.is_some() || a.ratio.is_some() {
        return Err(Error::Input("--scale and --ratio apply to --crop rrc".into()));
    }
    set(a.hflip, &mut o.augment.hflip);
    if a.no_aug {
        o.augment = Augment::none();
    }
    Ok(())
}

/// The model and options of a resumed run, changed by the flags given.
fn resumed(a: &TrainArgs, r: &Resume, dir: &str) -> Result<(Model, TrainOptions)> {
    if a.model.is_some() || a.arch.is_some() {
        return Err(Error::Input("--resume continues its checkpoint's model; leave out --model / --arch".into()));
    }
    let mut o = r.state.options.clone();
    if a.out.is_none() {
        o.out = PathBuf::from(dir);
    }
    apply_flags(a, &mut o, true)?;
    Ok((r.model.clone(), o))
}

/// The model and options of a new run.
fn fresh(a: &TrainArgs, log: &mut dyn FnMut(&str)) -> Result<(Model, TrainOptions)> {
    let data = a.data.as_deref().ok_or_else(|| Error::Input("train needs --data DIR".into()))?;
    let out = a.out.as_deref().ok_or_else(|| Error::Input("train needs --out DIR".into()))?;
    let mut o = TrainOptions::new(PathBuf::from(data), PathBuf::from(out));
    apply_flags(a, &mut o, false)?;
    let classes = Dataset::open(&o.data, Split::Train)?.classes;
    let k = a.num_classes.unwrap_or(classes.len());
    let mut model = model_for_training(a, k, o.seed)?;
    adapt_head(&mut model, &classes, k, o.seed, log)?;
    Ok((model, o))
}

/// The run's first two lines: what trains where, and the recipe.
fn announce(model: &Model, opts: &TrainOptions, engine: &Engine, log: &mut dyn FnMut(&str)) -> Result<()> {
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
    Ok(())
}

pub fn train(a: &TrainArgs) -> Result<()> {
    let mut log = |s: &str| println!("{s}");
    let resume = match &a.resume {
        Some(dir) => Some((load_resume(Path::new(dir))?, dir)),
        None => None,
    };
    let (model, opts) = match &resume {
        Some((r, dir)) => resumed(a, r, dir)?,
        None => fresh(a, &mut log)?,
    };
    let mut engine = Engine::new_blocking()?;
    announce(&model, &opts, &engine, &mut log)?;
    let hooks = Hooks { stop_after: a.stop_after, progress: !a.quiet, log: &mut log };
    let report = trainer::train(&mut engine, model, opts, resume.map(|(r, _)| r), hooks)?;
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

pub fn eval(a: &EvalArgs) -> Result<()> {
    let model = match (&a.model, &a.arch) {
        (Some(m), arch) => Model::load(Path::new(m), arch.as_deref())?,
        (None, Some(_)) => return Err(Error::Input("--arch names the architecture of a --model file; give --model too".into())),
        (None, None) => default_model()?,
    };
    let data = a.data.as_deref().ok_or_else(|| Error::Input("eval needs --data DIR".into()))?;
    let split = match a.split.as_str() {
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
    let mut engine = Engine::new_blocking()?;
    let mut g = model.graph(a.batch_size)?;
    // As `classify` runs it (Classifier::graph_for).
    g.apply_precision(a.precision.parse().map_err(Error::Input)?, engine.ctx.adapter().shader_f16);
    let exe = engine.compile(&g, &model.weights.data())?;
    let classes = ds.classes.clone();
    let title = (!a.quiet && !a.json).then_some("eval");
    let r = evaluate(&engine, &exe, std::sync::Arc::new(ds), &model.config.data, a.batch_size, a.workers, title)?;
    if a.json {
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
