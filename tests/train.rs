//! `vitrine train` / `vitrine eval` end to end on a small synthetic image
//! folder, and the optimizer's accumulation and clipping on the GPU.
//!
//! The data: 3 classes of 16x16 RGB PNGs (horizontal stripes, vertical
//! stripes, a bright blob; each with a faint class tint) with random phase,
//! contrast and noise, written once
//! per test binary; 48 training and 16 validation images per class.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use vitrine::train::data::Rng;

fn dataset() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = tmp("train", "stripes");
        let _ = std::fs::remove_dir_all(&root);
        let mut rng = Rng::new(11);
        for (split, n) in [("train", 48), ("val", 16)] {
            for (c, class) in ["blob", "horizontal", "vertical"].iter().enumerate() {
                let dir = root.join(split).join(class);
                std::fs::create_dir_all(&dir).unwrap();
                for i in 0..n {
                    let phase = rng.below(4) as i64;
                    let contrast = 0.5 + 0.5 * rng.unit();
                    let img = image::RgbImage::from_fn(16, 16, |x, y| {
                        let (x, y) = (x as i64, y as i64);
                        let on = match c {
                            0 => (x - 8).pow(2) + (y - 8).pow(2) < 20,
                            1 => (y + phase) % 4 < 2,
                            _ => (x + phase) % 4 < 2,
                        };
                        let base = if on { 200.0 * contrast } else { 40.0 };
                        let v = (base + 40.0 * (rng.unit() - 0.5)).clamp(0.0, 255.0) as u8;
                        // Each class also has its own tint, so a few dozen steps suffice.
                        let tint = [[60u8, 0, 0], [0, 60, 0], [0, 0, 60]][c];
                        image::Rgb([v.saturating_add(tint[0]), (v / 2).saturating_add(tint[1]), (255 - v).saturating_add(tint[2])])
                    });
                    img.save(dir.join(format!("{i:03}.png"))).unwrap();
                }
            }
        }
        root
    })
}

const TINY: &[&str] = &[
    "--arch",
    "vit_tiny_patch16_224",
    "--model-kwargs",
    "img_size=16",
    "patch_size=4",
    "embed_dim=32",
    "depth=2",
    "num_heads=2",
    "mlp_ratio=2",
    "--crop-pct",
    "1",
    "-b",
    "16",
    "--quiet",
];

fn train(extra: &[&str], out: &Path) -> std::process::Output {
    let data = dataset().to_str().unwrap().to_string();
    let mut args: Vec<&str> = vec!["train", "--data", &data, "--out", out.to_str().unwrap()];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    vitrine(&args, &[])
}

fn ok(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "vitrine failed: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    text
}

fn history(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("train_state.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["history"].clone()
}

/// Training from scratch: the loss falls epoch after epoch, validation accuracy
/// ends far above chance (1/3), the checkpoint is in the hub layout, and
/// `eval` / `classify` load it and agree with the trainer's last evaluation.
#[test]
fn short_run_learns_and_its_checkpoint_loads() {
    let out = tmp("train", "learns");
    let _ = std::fs::remove_dir_all(&out);
    let log = ok(&train(&["--epochs", "4", "--lr", "3e-3", "--scale", "0.5", "1"], &out));
    assert!(log.contains("epoch 4/4"), "{log}");
    let h = history(&out);
    let losses: Vec<f64> = (0..4).map(|e| h[e]["train_loss"].as_f64().unwrap()).collect();
    assert!(losses[3] < 0.7 * losses[0], "training loss did not fall enough: {losses:?}");
    let top1 = h[3]["val_top1"].as_f64().unwrap();
    assert!(top1 >= 90.0, "validation top1 {top1}% after 4 epochs ({losses:?})");
    for f in ["config.json", "model.safetensors", "optimizer.safetensors", "train_state.json", "summary.csv", "curves.svg"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    check_curves(&out, &losses);
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["label_names"], serde_json::json!(["blob", "horizontal", "vertical"]));
    assert_eq!(config["model_args"]["embed_dim"], 32);

    let data = dataset().to_str().unwrap();
    let e = ok(&vitrine(&["eval", "--model", out.to_str().unwrap(), "--data", data, "--json"], &[]));
    let v: serde_json::Value = serde_json::from_str(e.trim()).unwrap();
    assert_eq!(v["n"], 48);
    assert!((v["top1"].as_f64().unwrap() - top1).abs() < 1e-9, "eval {v} vs trainer {top1}");
    assert!(v["top5"].as_f64().unwrap() >= v["top1"].as_f64().unwrap());
    let table = ok(&vitrine(&["eval", "--model", out.to_str().unwrap(), "--data", data], &[]));
    assert!(table.contains("horizontal") && table.contains("top1"), "{table}");

    let img = dataset().join("val/vertical/000.png");
    let c = ok(&vitrine(&["classify", "--model", out.to_str().unwrap(), "--json", img.to_str().unwrap()], &[]));
    let v: serde_json::Value = serde_json::from_str(c.trim()).unwrap();
    assert_eq!(v["top_k"].as_array().unwrap().len(), 3);
}

/// curves.svg: three panels (loss, accuracy, learning rate), one dot per epoch on each line
/// (train and val loss, train and val accuracy, lr), the training loss drawn falling as it
/// fell; `vitrine plot` redraws it byte for byte, and refuses a folder without summary.csv.
fn check_curves(out: &Path, losses: &[f64]) {
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.trim_end().ends_with("</svg>"));
    for title in ["Loss", "Top-1 accuracy (%)", "Learning rate"] {
        assert!(svg.contains(&format!("data-title=\"{title}\"")), "no {title} panel");
    }
    let lines: Vec<Vec<(f64, f64)>> = svg
        .lines()
        .filter(|l| l.starts_with("<polyline class=\"series\""))
        .map(|l| {
            let pts = l.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
            pts.split(' ').map(|p| p.split_once(',').map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap())).unwrap()).collect()
        })
        .collect();
    assert_eq!(lines.len(), 5, "train/val loss, train/val accuracy, lr");
    assert!(lines.iter().all(|l| l.len() == losses.len()), "one point per epoch");
    let train_loss = &lines[0];
    assert!(train_loss.windows(2).all(|w| w[1].0 > w[0].0), "epochs left to right");
    // SVG y grows downwards: a falling loss is drawn with growing y.
    assert!(train_loss[losses.len() - 1].1 > train_loss[0].1, "the loss fell ({losses:?}) but is drawn rising");
    let again = out.join("redrawn.svg");
    ok(&vitrine(&["plot", out.to_str().unwrap(), "--out", again.to_str().unwrap()], &[]));
    assert!(std::fs::read(&again).unwrap() == svg.as_bytes(), "vitrine plot drew a different picture");
    std::fs::remove_file(&again).unwrap();
    fails_with(&["plot", out.join("no-such-run").to_str().unwrap()], &[], "summary.csv");
}

fn tensors(path: &Path) -> std::collections::HashMap<String, (Vec<usize>, Vec<f32>)> {
    vitrine::weights::Weights::load(path).unwrap().tensors
}

/// An uninterrupted run equals the same run stopped mid-epoch and resumed
/// (weights, optimizer state and per-epoch losses), with augmentation,
/// micro-batches and gradient clipping on. Then the NaN guard: a resumed
/// run with an absurd learning rate stops with one error line and leaves the
/// checkpoint it started from byte-identical.
#[test]
fn resume_matches_an_uninterrupted_run_and_nan_stops_cleanly() {
    let recipe = ["--epochs", "2", "--grad-accum-steps", "2", "--clip-grad", "1.0", "--hflip", "0.5", "--seed", "5"];
    let (a, b) = (tmp("train", "straight"), tmp("train", "resumed"));
    for d in [&a, &b] {
        let _ = std::fs::remove_dir_all(d);
    }
    ok(&train(&recipe, &a));
    // 144 images / (16 x 2) = 4 steps per epoch: stop after 3 (inside epoch 1), then again inside epoch 2.
    let mut stop = recipe.to_vec();
    stop.extend(["--stop-after", "3"]);
    let log = ok(&train(&stop, &b));
    assert!(log.contains("stopped after 3 steps"), "{log}");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(b.join("train_state.json")).unwrap()).unwrap();
    assert_eq!((state["epoch"].as_u64(), state["step"].as_u64()), (Some(0), Some(3)));
    ok(&vitrine(&["train", "--resume", b.to_str().unwrap(), "--stop-after", "3", "--quiet"], &[]));
    ok(&vitrine(&["train", "--resume", b.to_str().unwrap(), "--quiet"], &[]));
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let (ta, tb) = (tensors(&a.join(file)), tensors(&b.join(file)));
        assert_eq!(ta.len(), tb.len());
        for (name, (_, va)) in &ta {
            let (d, m) = max_diff(&tb[name].1, va);
            assert!(d <= 1e-6 * m.max(1.0), "{file}: {name} differs after resume by {d}");
        }
    }
    let (ha, hb) = (history(&a), history(&b));
    for e in 0..2 {
        for k in ["train_loss", "val_top1"] {
            let (x, y) = (ha[e][k].as_f64().unwrap(), hb[e][k].as_f64().unwrap());
            assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "epoch {e} {k}: {x} vs resumed {y}");
        }
    }

    let before: Vec<Vec<u8>> = ["model.safetensors", "optimizer.safetensors", "train_state.json", "config.json"]
        .iter()
        .map(|f| std::fs::read(a.join(f)).unwrap())
        .collect();
    fails_with(&["train", "--resume", a.to_str().unwrap(), "--epochs", "4", "--lr", "1e30", "--quiet"], &[], "loss became");
    let after: Vec<Vec<u8>> = ["model.safetensors", "optimizer.safetensors", "train_state.json", "config.json"]
        .iter()
        .map(|f| std::fs::read(a.join(f)).unwrap())
        .collect();
    assert!(before == after, "the NaN guard must leave the last checkpoint untouched");
}

/// Bad training input: one error line, exit 1.
#[test]
fn train_and_eval_reject_bad_input() {
    let data = dataset().to_str().unwrap();
    let out = tmp("train", "never").to_str().unwrap().to_string();
    fails_with(&["train", "--data", "/nonexistent", "--arch", "vit_tiny_patch16_224", "--out", &out], &[], "/nonexistent");
    fails_with(&["train", "--data", data, "--out", &out], &[], "--model");
    fails_with(&["train", "--data", data, "--arch", "vit_tiny_patch16_224", "--out", &out, "--opt", "lamb"], &[], "--opt");
    fails_with(&["train", "--data", data, "--arch", "vit_tiny_patch16_224", "--out", &out, "--lr", "-1"], &[], "--lr");
    fails_with(&["train", "--data", data, "--arch", "vit_tiny_patch16_224", "--model-kwargs", "depth", "--out", &out], &[], "key=value");
    fails_with(&["train", "--resume", "/nonexistent"], &[], "train_state.json");
    fails_with(&["eval", "--data", data, "--split", "holdout"], &[], "--split");
}

/// On the GPU: gradients accumulated over 2 micro-batches of 4 equal one batch
/// of 8 (SGD step, rel 1e-5), and clipping by global norm scales the step by
/// max_norm / ||g|| with ||g|| equal to the CPU's norm of the gradients.
#[test]
fn accumulation_and_clipping_match_their_definitions() {
    use vitrine::gpu::optim::{OptKind, OptSettings};
    use vitrine::train::step::micro_step;
    use vitrine::train::trainer::training_graph;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit_plain");
    let model = vitrine::models::Model::load(&root, None).unwrap();
    let per: usize = model.config.data.input_size.iter().product();
    let images = rand_vec(8 * per, 3, 1.0);
    let labels: Vec<f32> = (0..8).map(|i| (i % model.config.num_classes()) as f32).collect();
    let sgd = |accum: bool, clip: Option<f32>| OptSettings {
        kind: OptKind::Sgd { momentum: 0.9, nesterov: false },
        weight_decay: 0.0,
        clip_grad: clip,
        accumulate: accum,
        backbone_lr_scale: 1.0,
    };
    let lr = 0.1f32;
    let mut e = engine();
    let p0 = model.weights.data();
    // Weights after one step, as one flat vector in graph parameter order; and the last grad norm.
    let mut step = |b: usize, accum: usize, clip: Option<f32>| -> (Vec<f32>, f32) {
        let tg = training_graph(&model, b, 0.0, accum, false).unwrap();
        let exe = e.compile(&tg.g, &p0).unwrap();
        let mut opt = e.optimizer(&exe, &tg.specs, sgd(accum > 1, clip)).unwrap();
        for i in 0..accum {
            let x = &images[i * b * per..(i + 1) * b * per];
            let y = &labels[i * b..(i + 1) * b];
            pollster::block_on(micro_step(&e.ctx, &exe, &mut opt, &[x, y], i, accum, lr)).unwrap();
        }
        let mut w = Vec::new();
        for &t in &tg.trainable {
            w.extend(pollster::block_on(exe.read_param(&e.ctx, t, tg.g.numel(t))).unwrap());
        }
        (w, pollster::block_on(opt.last_grad_norm(&e.ctx)).unwrap())
    };
    let (full, _) = step(8, 1, None);
    let (acc, _) = step(4, 2, None);
    let tg = training_graph(&model, 8, 0.0, 1, false).unwrap();
    let mut start = Vec::new();
    for &t in &tg.trainable {
        start.extend(tg.g.param_data(t, &p0).unwrap());
    }
    // SGD's first step moves by lr * g: recover g from the full-batch run.
    let grad: Vec<f32> = start.iter().zip(&full).map(|(a, b)| (a - b) / lr).collect();
    let (_, gmax) = max_diff(&grad, &grad);
    let grad_acc: Vec<f32> = start.iter().zip(&acc).map(|(a, b)| (a - b) / lr).collect();
    let (d, _) = max_diff(&grad_acc, &grad);
    assert!(d <= 1e-4 * gmax, "accumulated gradient differs by {d} (max |g| {gmax})");

    let norm = grad.iter().map(|&g| (g as f64).powi(2)).sum::<f64>().sqrt() as f32;
    let max_norm = norm / 4.0;
    let (clipped, reported) = step(8, 1, Some(max_norm));
    assert!((reported - norm).abs() <= 1e-3 * norm, "GPU grad norm {reported} vs {norm}");
    let scale = max_norm / (norm + 1e-6);
    let want: Vec<f32> = start.iter().zip(&grad).map(|(p, g)| p - lr * scale * g).collect();
    let (d, _) = max_diff(&clipped, &want);
    assert!(d <= 1e-4 * lr * gmax, "clipped step differs by {d}");
}

/// Fine-tunes fixture `name` for an epoch with a frozen backbone on the stripes
/// (3 classes): the tensors under `head` get 3 rows, every other tensor stays
/// bit-identical. Returns the output folder.
fn fine_tune_frozen(name: &str, head: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let out = tmp("train", &format!("{name}-finetuned"));
    let _ = std::fs::remove_dir_all(&out);
    let data = dataset().to_str().unwrap();
    let args = [
        "train",
        "--data",
        data,
        "--model",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        "1",
        "-b",
        "16",
        "--freeze-backbone",
        "--quiet",
    ];
    let log = ok(&vitrine(&args, &[]));
    assert!(log.contains("new 3-class head"), "{log}");
    let (before, after) = (tensors(&src.join("model.safetensors")), tensors(&out.join("model.safetensors")));
    assert_eq!(before.len(), after.len());
    for (tensor, (shape, v)) in &after {
        if tensor.starts_with(head) {
            assert_eq!(shape[0], 3, "{tensor}");
        } else {
            assert!(&before[tensor].1 == v, "{tensor} changed with a frozen backbone");
        }
    }
    out
}

/// Fine-tuning a timm checkpoint on a folder with another class count: the
/// head is replaced (3 classes, the folder's names), and with
/// `--freeze-backbone` every other tensor is bit-identical afterwards.
#[test]
fn fine_tuning_replaces_the_head_and_freezes_the_backbone() {
    let out = fine_tune_frozen("vit_plain", "head.");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["num_classes"], 3);
    assert_eq!(config["label_names"], serde_json::json!(["blob", "horizontal", "vertical"]));
}

/// Trains `arch` with `kwargs` from scratch on the stripes (4 epochs, lr 3e-3):
/// the loss falls below 0.8 of the first epoch's and the best validation top1
/// reaches `min_top1`. Returns the output folder and the history.
fn learns_from_scratch(name: &str, arch: &str, kwargs: &[&str], min_top1: f64) -> (PathBuf, serde_json::Value) {
    let out = tmp("train", name);
    let _ = std::fs::remove_dir_all(&out);
    let data = dataset().to_str().unwrap();
    let mut args = vec!["train", "--data", data, "--out", out.to_str().unwrap(), "--arch", arch, "--model-kwargs"];
    args.extend_from_slice(kwargs);
    args.extend_from_slice(&["--crop-pct", "1", "-b", "16", "--epochs", "4", "--lr", "3e-3", "--scale", "0.5", "1", "--quiet"]);
    let log = ok(&vitrine(&args, &[]));
    assert!(log.contains("epoch 4/4"), "{log}");
    let h = history(&out);
    let losses: Vec<f64> = (0..4).map(|e| h[e]["train_loss"].as_f64().unwrap()).collect();
    assert!(losses[3] < 0.8 * losses[0], "{arch}: training loss did not fall enough: {losses:?}");
    let best = (0..4).map(|e| h[e]["val_top1"].as_f64().unwrap()).fold(0.0, f64::max);
    assert!(best >= min_top1, "{arch}: best validation top1 {best}% ({losses:?})");
    (out, h)
}

/// Swin through the same trainer: a small Swin (shifted, masked 4x4 windows on
/// an 8x8 map, then patch merging) learns the stripes from scratch, its
/// checkpoint (config.json with Swin model_args) loads for eval, and a Swin
/// fixture fine-tunes with a new `head.fc`.
#[test]
fn swin_trains_from_scratch_and_fine_tunes() {
    let kwargs = ["img_size=16", "patch_size=2", "embed_dim=16", "depths=(2,2)", "num_heads=(2,2)", "window_size=4", "mlp_ratio=2"];
    let (out, h) = learns_from_scratch("swin", "swin_tiny_patch4_window7_224", &kwargs, 85.0);
    let data = dataset().to_str().unwrap();
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_args"]["depths"], serde_json::json!([2, 2]));
    assert_eq!(config["model_args"]["window_size"], serde_json::json!([4, 4]));
    assert_eq!(config["pretrained_cfg"]["classifier"], "head.fc");
    let e = ok(&vitrine(&["eval", "--model", out.to_str().unwrap(), "--data", data, "--json"], &[]));
    let v: serde_json::Value = serde_json::from_str(e.trim()).unwrap();
    assert!((v["top1"].as_f64().unwrap() - h[3]["val_top1"].as_f64().unwrap()).abs() < 1e-9, "eval {v}");

    fine_tune_frozen("swin_2stage", "head.fc.");
}

/// T2T-ViT through the same trainer: a small Performer T2T-ViT learns the
/// stripes from scratch (its w orthogonal times sqrt(m), pos_embed the
/// sinusoid), and the Performer fixture fine-tunes with a new 3-class head:
/// the backbone changes, but the frozen sinusoid pos_embed and Performer `w`
/// are bit-identical afterwards, as in the official code (requires_grad=False).
#[test]
fn t2t_trains_from_scratch_and_fine_tunes_without_touching_its_frozen_tensors() {
    // 60 %, not more: the official T2T_ViT with this config and recipe (PyTorch, the
    // same images resized to 32, AdamW 3e-3, smoothing 0.1, 4 epochs of 16) also
    // plateaus at 66.7 % (loss 0.643), taking every blob for a vertical stripe.
    let (out, _) =
        learns_from_scratch("t2t", "t2t_vit_7", &["img_size=32", "embed_dim=32", "depth=2", "num_heads=2", "token_dim=16"], 60.0);
    let data = dataset().to_str().unwrap();
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_args"]["token_dim"], 16);
    let trained = tensors(&out.join("model.safetensors"));
    let (shape, pos) = &trained["pos_embed"];
    assert!(pos == &vitrine::models::families::t2t::sinusoid(shape[1], shape[2]), "pos_embed moved from the sinusoid");
    // w: 8 orthogonal rows of length 16, each scaled to norm sqrt(8).
    let (shape, w) = &trained["tokens_to_token.attention1.w"];
    assert_eq!(shape, &vec![8, 16]);
    for i in 0..8 {
        for j in 0..8 {
            let dot: f32 = (0..16).map(|k| w[i * 16 + k] * w[j * 16 + k]).sum();
            let want = if i == j { 8.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-4, "w rows {i}, {j}: dot {dot}");
        }
    }

    // Fine-tuning (whole model, new head).
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/t2t_performer");
    let out = tmp("train", "t2t-finetuned");
    let _ = std::fs::remove_dir_all(&out);
    let args =
        ["train", "--data", data, "--model", src.to_str().unwrap(), "--out", out.to_str().unwrap(), "--epochs", "1", "-b", "16", "--quiet"];
    let log = ok(&vitrine(&args, &[]));
    assert!(log.contains("new 3-class head"), "{log}");
    let (before, after) = (tensors(&src.join("model.safetensors")), tensors(&out.join("model.safetensors")));
    assert_eq!(after["head.weight"].0, vec![3, 16]);
    for name in ["pos_embed", "tokens_to_token.attention1.w", "tokens_to_token.attention2.w"] {
        assert!(before[name].1 == after[name].1, "{name} is frozen but changed");
    }
    for name in ["tokens_to_token.attention1.kqv.weight", "tokens_to_token.project.weight", "blocks.1.mlp.fc2.weight"] {
        assert!(before[name].1 != after[name].1, "{name} did not train");
    }
}

/// DynamicViT through the trainer as the official recipe starts it: from a plain DeiT
/// hub folder (dynvit_small's backbone saved as a timm ViT) with `--arch`, the
/// predictors freshly initialised, the teacher a frozen copy of the DeiT, cls_token and
/// pos_embed frozen, and the backbone frozen for the first epoch (`--backbone-freeze-epochs
/// 1`): stopped mid-epoch 1 the backbone is bit-identical to the DeiT's; resumed to the end
/// of epoch 2 it has moved. The checkpoint classifies and keeps the configured share of
/// tokens at every stage.
#[test]
fn dynamicvit_fine_tunes_from_a_deit_folder_with_teacher_and_backbone_schedule() {
    use vitrine::train::checkpoint::safetensors_bytes;
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dynvit_small");
    let deit = tmp("train", "deit-for-dynvit");
    let _ = std::fs::remove_dir_all(&deit);
    std::fs::create_dir_all(&deit).unwrap();
    let src = tensors(&fx.join("model.safetensors"));
    let mut backbone: Vec<(String, Vec<usize>, Vec<f32>)> =
        src.iter().filter(|(n, _)| !n.starts_with("score_predictor.")).map(|(n, (s, v))| (n.clone(), s.clone(), v.clone())).collect();
    backbone.sort_by(|a, b| a.0.cmp(&b.0));
    std::fs::write(deit.join("model.safetensors"), safetensors_bytes(&backbone, Default::default()).unwrap()).unwrap();
    let fx_cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fx.join("config.json")).unwrap()).unwrap();
    let cfg = serde_json::json!({
        "architecture": "deit_tiny_patch16_224",
        "num_classes": 5,
        "model_args": {"img_size": 28, "patch_size": 2, "embed_dim": 32, "depth": 6, "num_heads": 2, "mlp_ratio": 4.0},
        "pretrained_cfg": fx_cfg["pretrained_cfg"],
    });
    std::fs::write(deit.join("config.json"), cfg.to_string()).unwrap();

    let out = tmp("train", "dynvit-from-deit");
    let _ = std::fs::remove_dir_all(&out);
    let data = dataset().to_str().unwrap();
    let (d, o) = (deit.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["train", "--data", data, "--model", d, "--arch", "dynamicvit_deit_s", "--model-kwargs"];
    args.extend(["img_size=28", "patch_size=2", "embed_dim=32", "depth=6", "num_heads=2", "pruning_loc=(1,3,5)"]);
    args.extend([
        "--out",
        o,
        "--epochs",
        "2",
        "-b",
        "16",
        "--crop-pct",
        "1",
        "--backbone-freeze-epochs",
        "1",
        "--stop-after",
        "4",
        "--quiet",
    ]);
    let run = vitrine(&args, &[]);
    let log = ok(&run);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("starting dynamicvit_deit_s from") && err.contains("freshly initialised (score_predictor)"), "{err}");
    assert!(
        log.contains("distilling from a frozen copy of the starting weights")
            && log.contains("backbone at 0.01 x the rate, frozen for the first 1 epochs"),
        "{log}"
    );
    let mid = tensors(&out.join("model.safetensors"));
    // The stripes have 3 classes: the head is new (3 rows) and, in the backbone group, frozen too.
    assert_eq!(mid["head.weight"].0, vec![3, 32]);
    for (name, (_, v)) in &mid {
        match src.get(name) {
            Some((_, before)) if !name.starts_with("head.") && !name.starts_with("score_predictor.") => {
                assert!(before == v, "{name} moved while the backbone is frozen")
            }
            _ => {}
        }
    }
    assert!(mid.keys().any(|n| n.starts_with("score_predictor.2.")), "no predictors in the checkpoint");

    ok(&vitrine(&["train", "--resume", o, "--quiet"], &[]));
    let h = history(&out);
    assert!(h[1]["train_loss"].as_f64().unwrap().is_finite(), "{h}");
    let end = tensors(&out.join("model.safetensors"));
    for name in ["cls_token", "pos_embed"] {
        assert!(end[name].1 == src[name].1, "{name} is frozen but moved");
    }
    for name in ["blocks.0.attn.qkv.weight", "patch_embed.proj.weight"] {
        assert!(end[name].1 != src[name].1, "{name} did not train after the freeze");
    }
    assert!(end["head.weight"].1 != mid["head.weight"].1, "the new head did not train after the freeze");
    for name in ["score_predictor.0.in_conv.1.weight", "score_predictor.2.out_conv.4.weight"] {
        assert!(end[name].1 != mid[name].1, "{name} did not train");
    }
    let img = dataset().join("val/vertical/000.png");
    let c = ok(&vitrine(&["classify", "--json", "--model", o, img.to_str().unwrap()], &[]));
    let v: serde_json::Value = serde_json::from_str(c.trim()).unwrap();
    let kept: Vec<usize> = v["kept_tokens"].as_array().unwrap().iter().map(|s| s.as_array().unwrap().len()).collect();
    assert_eq!(kept, [137, 96, 67], "int(196 * 0.7^k) patches at the three stages");
}

/// HVT through the same trainer: a small HVT (two pooling stages) learns the stripes from
/// scratch, and the two-pool fixture fine-tunes with a new 3-class head and a frozen backbone.
#[test]
fn hvt_trains_from_scratch_and_fine_tunes() {
    let kwargs = ["input_size=16", "patch_size=4", "num_heads=2", "head_dim=16", "num_blocks=2", "pool_block_width=1"];
    learns_from_scratch("hvt", "hvt_ti_1", &kwargs, 85.0);
    fine_tune_frozen("hvt_2pool", "head.");
}

/// Two runs writing the same `--out` at once: the second is refused with one line naming the
/// folder while the first holds its lock, and nothing it wrote is touched; once the first run
/// is killed (SIGKILL: the OS releases the lock), the folder is usable again.
#[test]
fn a_second_run_on_the_same_out_is_refused_while_the_first_runs() {
    let out = tmp("train", "locked");
    let _ = std::fs::remove_dir_all(&out);
    let data = dataset().to_str().unwrap().to_string();
    let mut args: Vec<String> = ["train", "--data", &data, "--out", out.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
    args.extend(TINY.iter().map(|s| s.to_string()));
    args.extend(["--epochs", "200"].iter().map(|s| s.to_string()));
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_vitrine"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for its first checkpoint: by then it holds the lock and has written files.
    let t = std::time::Instant::now();
    while !out.join("train_state.json").exists() {
        assert!(t.elapsed().as_secs() < 120, "the first run wrote no checkpoint");
        assert!(first.try_wait().unwrap().is_none(), "the first run ended early");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    fails_with(&arg_refs, &[], "another vitrine train is writing to this folder");
    first.kill().unwrap();
    first.wait().unwrap();
    // The killed run's checkpoint still loads, and a new run may take the folder.
    vitrine::models::Model::load(&out, None).unwrap();
    let mut again = arg_refs.clone();
    again.truncate(again.len() - 2);
    again.extend(["--epochs", "1"]);
    let run = vitrine(&again, &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

/// Crash safety: a run killed with SIGKILL at 20 seeded random moments (a checkpoint after
/// every step, so many kills land inside a checkpoint write) is resumed each time; at every
/// kill the output folder loads as a model, and the finished run's weights, optimizer state
/// and losses equal an uninterrupted run's.
#[test]
fn a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result() {
    let recipe = ["--epochs", "16", "--seed", "9", "--checkpoint-every", "1", "--no-aug"];
    let (a, b) = (tmp("train", "unkilled"), tmp("train", "killed"));
    for d in [&a, &b] {
        let _ = std::fs::remove_dir_all(d);
    }
    let t = std::time::Instant::now();
    ok(&train(&recipe, &a));
    // Kill moments are spread over the uninterrupted run's own duration (start-up included).
    let span = t.elapsed().as_millis() as usize;
    let data = dataset().to_str().unwrap().to_string();
    let mut fresh: Vec<String> = ["train", "--data", &data, "--out", b.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
    fresh.extend(TINY.iter().map(|s| s.to_string()));
    fresh.extend(recipe.iter().map(|s| s.to_string()));
    let resume: Vec<String> = ["train", "--resume", b.to_str().unwrap(), "--quiet"].iter().map(|s| s.to_string()).collect();
    // First a kill that lands inside a checkpoint for sure: the test seam aborts the process
    // between the weights and train_state.json of its third checkpoint write; the folder still
    // loads, and the resume reads the previous complete checkpoint.
    let torn = vitrine(&fresh.iter().map(String::as_str).collect::<Vec<_>>(), &[("VITRINE_CRASH_IN_CHECKPOINT", "3")]);
    assert!(!torn.status.success(), "the crash seam did not fire");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(b.join("train_state.json")).unwrap()).unwrap();
    let bytes = std::fs::read(b.join("model.safetensors")).unwrap();
    let step = vitrine::train::checkpoint::safetensors_metadata(&bytes, "model").unwrap()["step"].clone();
    assert_ne!(step, state["global_step"].to_string(), "the checkpoint must be torn");
    vitrine::models::Model::load(&b, None).unwrap();
    let mut rng = vitrine::rng::Rng::new(2026);
    let (mut kills, mut finished) = (0, false);
    for _ in 0..40 {
        let args = if b.join("train_state.json").exists() { &resume } else { &fresh };
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vitrine"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut wait = std::time::Duration::from_millis((span / 30 + rng.below(span / 10 + 1)) as u64);
        if kills == 0 {
            wait = wait.max(std::time::Duration::from_millis(1500)); // past the resume's first log line
        }
        std::thread::sleep(wait);
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(status.success(), "a resumed run failed: {err}");
            finished = true;
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if kills == 0 {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(err.contains("resuming from the previous one"), "the first resume must read the previous checkpoint: {err}");
        }
        kills += 1;
        if b.join("model.safetensors").exists() {
            vitrine::models::Model::load(&b, None).unwrap_or_else(|e| panic!("after kill {kills}: the folder does not load: {e}"));
        }
        if kills == 20 {
            break;
        }
    }
    if !finished {
        ok(&vitrine(&resume.iter().map(String::as_str).collect::<Vec<_>>(), &[]));
    }
    assert!(kills >= 10, "only {kills} kills landed before the run finished");
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let (ta, tb) = (tensors(&a.join(file)), tensors(&b.join(file)));
        assert_eq!(ta.len(), tb.len());
        for (name, (_, va)) in &ta {
            let (d, m) = max_diff(&tb[name].1, va);
            assert!(d <= 1e-6 * m.max(1.0), "{file}: {name} differs after {kills} kills by {d}");
        }
    }
    let (ha, hb) = (history(&a), history(&b));
    assert_eq!(ha.as_array().unwrap().len(), 16);
    for e in 0..16 {
        let (x, y) = (ha[e]["train_loss"].as_f64().unwrap(), hb[e]["train_loss"].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "epoch {e}: {x} vs killed-and-resumed {y}");
    }
}

/// A full disk at a checkpoint (the `VITRINE_TEST_DISK_FULL` seam fails the resumed run's first
/// staged file: its checkpoint's optimizer state) ends the run with one error line naming the file,
/// leaves the first checkpoint byte-identical and complete (no temp files), and `--resume`
/// continues from it. An `--out` that is a file is refused naming it.
#[test]
fn a_full_disk_leaves_the_last_checkpoint_as_it_was() {
    let out = tmp("train", "diskfull");
    let _ = std::fs::remove_dir_all(&out);
    ok(&train(&["--epochs", "1", "--seed", "3"], &out));
    let files = ["config.json", "model.safetensors", "optimizer.safetensors", "train_state.json", "summary.csv"];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(out.join(f)).unwrap()).collect();
    // --resume to 2 epochs: its first checkpoint (5 files) is the one that fails.
    let dir = out.to_str().unwrap();
    let run = vitrine(&["train", "--resume", dir, "--epochs", "2", "--quiet"], &[("VITRINE_TEST_DISK_FULL", "1")]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: ") && err.contains("optimizer.safetensors") && err.contains("no space left"), "{err}");
    let after: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(out.join(f)).unwrap()).collect();
    assert!(before == after, "a failed checkpoint must leave the last one byte-identical");
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    ok(&vitrine(&["train", "--resume", dir, "--epochs", "2", "--quiet"], &[]));
    assert_eq!(history(&out).as_array().unwrap().len(), 2);
    let file = tmp("train", "out_is_a_file");
    std::fs::write(&file, b"not a folder").unwrap();
    fails_with(
        &["train", "--data", dataset().to_str().unwrap(), "--out", file.to_str().unwrap(), "--arch", "vit_tiny_patch16_224"],
        &[],
        file.to_str().unwrap(),
    );
}

/// The in-memory trainer behind the browser's "teach your own classes" takes the same steps
/// as `vitrine train` on a folder holding the same images (same order, schedule, AdamW): after
/// 3 steps (into the second epoch) the weights and the third step's loss agree within 1e-6.
#[test]
fn live_trainer_takes_the_steps_vitrine_train_takes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = tmp("train", "live-data");
    let _ = std::fs::remove_dir_all(&data);
    let classes = [("a", ["ankle-boot-0", "bag-18", "coat-6", "dress-13"]), ("b", ["pullover-1", "sandal-8", "shirt-4", "sneaker-9"])];
    for split in ["train", "val"] {
        for (c, files) in &classes {
            std::fs::create_dir_all(data.join(split).join(c)).unwrap();
            for f in files {
                std::fs::copy(root.join(format!("models/samples/{f}.png")), data.join(split).join(c).join(format!("{f}.png"))).unwrap();
            }
        }
    }
    let out = tmp("train", "live-native");
    let _ = std::fs::remove_dir_all(&out);
    let default = root.join("models/default");
    ok(&vitrine(
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--model",
            default.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            "3",
            "--warmup-epochs",
            "0",
            "-b",
            "4",
            "--no-aug",
            "--seed",
            "1",
            "--stop-after",
            "3",
            "--quiet",
        ],
        &[],
    ));
    let mut opts = vitrine::TrainOptions::new(Default::default(), Default::default());
    opts.epochs = 3;
    opts.sched.epochs = 3;
    opts.sched.warmup_epochs = 0.0;
    opts.batch_size = 4;
    opts.seed = 1;
    opts.augment = vitrine::train::augment::Augment::none();
    let names = vec!["a".to_string(), "b".to_string()];
    let mut live = vitrine::train::live::LiveTrainer::new(vitrine::Model::builtin().unwrap(), names, opts).unwrap();
    for (k, (c, files)) in classes.iter().enumerate() {
        let mut files = files.to_vec();
        files.sort();
        for f in files {
            let p = data.join("train").join(c).join(format!("{f}.png"));
            live.add_example(k, vitrine::preprocess::decode(&std::fs::read(&p).unwrap(), f, 1).unwrap()).unwrap();
        }
    }
    let mut engine = vitrine::Engine::new_blocking().unwrap();
    let steps: Vec<_> = (0..3).map(|_| pollster::block_on(live.step(&mut engine)).unwrap()).collect();
    assert_eq!((steps[2].epoch, steps[2].step, steps[2].steps_per_epoch), (1, 0, 2));
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("train_state.json")).unwrap()).unwrap();
    let native_loss = state["running"]["loss_sum"].as_f64().unwrap() / state["running"]["seen"].as_f64().unwrap();
    assert!((steps[2].loss - native_loss).abs() <= 1e-6 * native_loss.abs(), "loss {} vs vitrine train's {native_loss}", steps[2].loss);
    let trained = pollster::block_on(live.model(&engine)).unwrap();
    let native = tensors(&out.join("model.safetensors"));
    assert_eq!(trained.weights.tensors.len(), native.len());
    for (name, (shape, want)) in &native {
        let (s, got) = &trained.weights.tensors[name];
        assert_eq!(s, shape, "{name}");
        let scale = want.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        let d = got.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d <= 1e-6 * scale, "{name}: max |live - vitrine train| = {d} (scale {scale})");
    }
    let (config, weights) = vitrine::train::live::hub_bytes(&trained).unwrap();
    let back =
        vitrine::Model::from_parts(Some(&config), vitrine::weights::Weights::from_bytes(&weights, "export").unwrap(), None, "export")
            .unwrap();
    assert_eq!(back.config.labels, Some(vec!["a".to_string(), "b".to_string()]));
}

/// A training run too large for the device's storage binding limit is refused before anything
/// is allocated, with the planner's message naming the tensor (the browser's limit is 1 GiB).
#[test]
fn a_live_run_too_large_for_the_device_is_refused_up_front() {
    let model = vitrine::Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit_plain"), None).unwrap();
    let mut opts = vitrine::TrainOptions::new(Default::default(), Default::default());
    opts.batch_size = 64;
    let live = vitrine::train::live::LiveTrainer::new(model, vec!["a".into(), "b".into()], opts).unwrap();
    let caps = |mib: u64| vitrine::graph::DeviceCaps {
        matmul: vitrine::MatmulKind::Register,
        max_binding_bytes: mib << 20,
        tuned: None,
        auto: false,
    };
    let (params, trainable) = live.check_fits(&caps(1024)).unwrap();
    assert!(params > 0 && trainable == params, "{params} {trainable}");
    let err = live.check_fits(&caps(1)).unwrap_err().to_string();
    assert!(err.contains("too large to train on this GPU at batch 64") && err.contains("storage binding limit"), "{err}");
}

/// A live run always starts from a new head (new classes, even as many as the old head's),
/// takes one micro-batch per step, and after a diverged step refuses to go on or hand out
/// its weights.
#[test]
fn a_live_run_starts_a_new_head_and_stops_for_good_when_it_diverges() {
    let builtin = vitrine::Model::builtin().unwrap();
    let names: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let opts = vitrine::TrainOptions::new(Default::default(), Default::default());
    let live = vitrine::train::live::LiveTrainer::new(builtin.clone(), names.clone(), opts.clone()).unwrap();
    let mut engine = vitrine::Engine::new_blocking().unwrap();
    let fresh = pollster::block_on(live.model(&engine)).unwrap();
    assert_ne!(fresh.weights.tensors["head.weight"].1, builtin.weights.tensors["head.weight"].1, "the old head was kept");
    assert_eq!(fresh.weights.tensors["blocks.0.mlp.fc1.weight"].1, builtin.weights.tensors["blocks.0.mlp.fc1.weight"].1);
    assert_eq!(fresh.config.labels.as_deref(), Some(&names[..]));

    let mut accum = opts.clone();
    accum.grad_accum = 2;
    let err =
        vitrine::train::live::LiveTrainer::new(builtin.clone(), names.clone(), accum).err().expect("grad_accum 2 refused").to_string();
    assert!(err.contains("one micro-batch per step"), "{err}");

    let mut wild = opts;
    wild.sched.lr = 1e30;
    wild.sched.warmup_epochs = 0.0;
    wild.batch_size = 2;
    wild.opt = vitrine::train::options::OptName::Sgd;
    let mut live = vitrine::train::live::LiveTrainer::new(builtin, vec!["a".into(), "b".into()], wild).unwrap();
    let img = vitrine::preprocess::decode(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/samples/bag-18.png")).unwrap(),
        "bag",
        1,
    )
    .unwrap();
    let big = vitrine::preprocess::Image8 { data: img.data.iter().map(|_| 255).collect(), ..img.clone() };
    live.add_example(0, img).unwrap();
    live.add_example(1, big).unwrap();
    let mut diverged = None;
    for _ in 0..5 {
        if let Err(e) = pollster::block_on(live.step(&mut engine)) {
            diverged = Some(e.to_string());
            break;
        }
    }
    let msg = diverged.expect("SGD at lr 1e30 diverges within 5 steps");
    assert!(msg.contains("loss became"), "{msg}");
    let again = match pollster::block_on(live.step(&mut engine)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a diverged run took another step"),
    };
    assert!(again.contains("weights are lost"), "{again}");
    assert!(pollster::block_on(live.model(&engine)).is_err(), "a diverged run hands out no weights");
}
