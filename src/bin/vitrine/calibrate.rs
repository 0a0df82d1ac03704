//! `vitrine calibrate`: an early-exit model's (DVT) thresholds for a GFLOPs
//! budget, from every exit's confidences on a data set (`vitrine::calibrate`,
//! the official rule), written into the model's config.json.

use crate::cli::CalibrateArgs;
use std::path::Path;
use std::sync::Arc;
use vitrine::classify::Classifier;
use vitrine::train::augment::Augment;
use vitrine::train::data::{Dataset, Split};
use vitrine::train::loader::LoaderSpec;
use vitrine::train::progress::Progress;
use vitrine::{calibrate as rule, Engine, Error, Model, Result};

pub fn calibrate(a: &CalibrateArgs) -> Result<()> {
    let dir = Path::new(&a.model);
    let cfg_path = dir.join("config.json");
    if !cfg_path.is_file() {
        return Err(Error::Input(format!("{}: calibrate writes the thresholds into a hub folder's config.json; there is none", a.model)));
    }
    let mut model = Model::load(dir, None)?;
    let Some(exits) = model.config.arch.exits() else {
        return Err(Error::Input(format!(
            "{}: {} has a single exit; calibrate sets an early-exit model's (DVT) thresholds",
            a.model, model.config.architecture
        )));
    };
    let n_exit = exits.gflops.len();
    model.config.arch.set_exit_thresholds(&vec![f32::INFINITY; n_exit - 1])?;
    let split = if a.split == "train" { Split::Train } else { Split::Val };
    let mut data = Dataset::open(Path::new(&a.data), split)?;
    if let Some(max) = a.max_images {
        if max < data.len() {
            data.shuffle(0);
            data.samples.truncate(max);
        }
    }
    let n = data.len();
    if n == 0 {
        return Err(Error::Input(format!("{}: no {} images", a.data, a.split)));
    }
    if data.classes.len() != model.config.num_classes() {
        return Err(Error::Input(format!("{}: {} classes, the model has {}", a.data, data.classes.len(), model.config.num_classes())));
    }
    let k = model.config.num_classes();
    let spec = LoaderSpec {
        data: Arc::new(data),
        order: Arc::new((0..n).collect()),
        batch: a.batch_size,
        pad_last: true,
        cfg: model.config.data.clone(),
        augment: Augment::none(),
        seed: 0,
        epoch: 0,
        workers: a.workers,
    };
    let mut engine = Engine::new_blocking()?;
    let mut clf = Classifier::new(model);
    let (mut conf, mut pred) = (vec![Vec::with_capacity(n); n_exit], vec![Vec::with_capacity(n); n_exit]);
    let mut target = Vec::with_capacity(n);
    let mut bar = Progress::new("every exit", spec.batches(), !a.quiet);
    for (i, b) in spec.start(0).enumerate() {
        let b = b?;
        let per = b.images.len() / b.labels.len().max(1);
        let outs = pollster::block_on(clf.outputs(&mut engine, &b.images[..b.count * per]))?;
        let (c, p) = rule::confidences(&outs[1..=n_exit], k, b.count);
        for e in 0..n_exit {
            conf[e].extend(&c[e]);
            pred[e].extend(&p[e]);
        }
        target.extend(b.labels.iter().take(b.count).map(|&l| l as usize));
        bar.update(i + 1, 0, target.len(), "");
    }
    bar.finish();
    let flops: Vec<f32> = exits.gflops.iter().map(|&g| g as f32).collect();
    let rows = rule::curve(&conf, &pred, &target, &flops);
    let row = rule::pick(&rows, a.budget)?;
    if a.json {
        println!("{}", serde_json::json!({"budget": a.budget, "images": n, "exit_gflops": exits.gflops, "choice": row, "rows": rows}));
    } else {
        println!("{n} images, {n_exit} exits at {} GFLOPs", exits.gflops.iter().map(|g| format!("{g:.4}")).collect::<Vec<_>>().join(" / "));
        println!("{:>4} {:>10} {:>9}  thresholds", "p", "GFLOPs", "top-1 %");
        for r in &rows {
            let mark = if r.p == row.p { "  <- budget" } else { "" };
            println!("{:>4} {:>10.4} {:>9.2}  {:?}{mark}", r.p, r.gflops, r.accuracy, r.thresholds);
        }
        println!("budget {} GFLOPs: row p = {}, {:.4} GFLOPs and {:.2}% top-1 on these images", a.budget, row.p, row.gflops, row.accuracy);
    }
    if a.dry_run {
        return Ok(());
    }
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
    let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", cfg_path.display())))?;
    let obj = v.as_object_mut().ok_or_else(|| Error::Config(format!("{} is not a JSON object", cfg_path.display())))?;
    let short: Vec<f64> = row.thresholds.iter().map(|x| format!("{x}").parse::<f64>().unwrap_or(*x as f64)).collect();
    obj.insert("exit_thresholds".into(), serde_json::json!(short));
    let out = serde_json::to_string_pretty(&v).map_err(|e| Error::Config(e.to_string()))? + "\n";
    vitrine::train::checkpoint::write_atomic(&cfg_path, out.as_bytes())?;
    if !a.json {
        println!("wrote exit_thresholds {:?} to {}", row.thresholds, cfg_path.display());
    }
    Ok(())
}
