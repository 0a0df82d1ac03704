//! DVT (early-exit cascades with feature and relation reuse) against the official code
//! (blackfeather-wang/Dynamic-Vision-Transformer, fixtures by scripts/make_dvt_fixtures.py):
//! every exit's logits (1e-4 * max(1, max |logit|)), the exit each image takes under the
//! fixture's thresholds, batch 1 and a mixed batch whose images stop at different exits.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use vitrine::classify::Classifier;
use vitrine::models::Model;
use vitrine::weights::Weights;

const MODELS: &[&str] = &["dvt_t2t_tiny", "dvt_deit_tiny"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn load(name: &str, file: &str) -> Weights {
    Weights::load(&fixture(name).join(file)).unwrap_or_else(|e| panic!("{name}/{file} (run scripts/make_dvt_fixtures.py): {e}"))
}

fn assert_close(ours: &[f32], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    let (d, m) = max_diff(ours, theirs);
    let tol = 1e-4 * m.max(1.0);
    assert!(d <= tol, "{what}: max |diff| {d} > {tol} (max |logit| {m})");
}

#[test]
fn every_exit_matches_the_official_cascade_on_the_cpu_graph() {
    for name in MODELS {
        let model = Model::load(&fixture(name), None).unwrap();
        let r = load(name, "reference.safetensors");
        let g = model.graph(4).unwrap();
        let out = g.eval_cpu(&[r.tensors["input"].1.clone()], &model.weights.data()).unwrap();
        assert_eq!(out.len(), 3);
        for (e, o) in out.iter().enumerate() {
            assert_close(o, &r.tensors[&format!("exit_logits.{e}")].1, &format!("{name} cpu exit {e}"));
        }
    }
}

/// Runs the cascade: (exit per image, each exit's logits, the logits of the exit taken).
fn cascade(clf: &mut Classifier, input: &[f32]) -> (Vec<usize>, Vec<Vec<f32>>, Vec<f32>) {
    let mut out = pollster::block_on(clf.outputs(&mut engine(), input)).unwrap();
    assert_eq!(out.len(), 5, "exit, 3 x exit logits, logits");
    let taken = out.pop().unwrap();
    let exits = out.remove(0).iter().map(|&e| e as usize).collect();
    (exits, out, taken)
}

/// Checks one cascade run against the reference rows `rows` of the fixture batch.
fn check_run(name: &str, r: &Weights, rows: &[usize], run: &(Vec<usize>, Vec<Vec<f32>>, Vec<f32>), what: &str) {
    let (exits, per_exit, taken) = run;
    let k = r.tensors["logits"].0[1];
    let want_exit: Vec<usize> = rows.iter().map(|&b| r.tensors["exit"].1[b] as usize).collect();
    assert_eq!(exits, &want_exit, "{name} {what}: exits taken");
    for (j, &b) in rows.iter().enumerate() {
        let row = |v: &[f32]| v[j * k..(j + 1) * k].to_vec();
        assert_close(&row(taken), &r.tensors["logits"].1[b * k..(b + 1) * k], &format!("{name} {what} image {b} logits"));
        for (e, logits) in per_exit.iter().enumerate() {
            if e <= exits[j] {
                let want = &r.tensors[&format!("exit_logits.{e}")].1[b * k..(b + 1) * k];
                assert_close(&row(logits), want, &format!("{name} {what} image {b} exit {e}"));
            } else {
                assert!(row(logits).iter().all(|v| v.is_nan()), "{name} {what} image {b}: exit {e} ran after the image stopped");
            }
        }
    }
}

#[test]
fn the_gpu_cascade_stops_each_image_at_its_exit_with_the_official_logits() {
    for name in MODELS {
        let model = Model::load(&fixture(name), None).unwrap();
        let r = load(name, "reference.safetensors");
        let input = &r.tensors["input"].1;
        let b = r.tensors["input"].0[0];
        let per = input.len() / b;
        let want: Vec<usize> = r.tensors["exit"].1.iter().map(|&e| e as usize).collect();
        assert!((0..3).all(|e| want.contains(&e)), "{name}: the mixed batch must use every exit");
        let mut clf = Classifier::new(model);
        // The mixed batch: images stop at different exits; results in input order.
        let run = cascade(&mut clf, input);
        check_run(name, &r, &(0..b).collect::<Vec<_>>(), &run, "batch");
        // Each image alone (batch 1), and the batch reversed.
        for i in 0..b {
            let run = cascade(&mut clf, &input[i * per..(i + 1) * per]);
            check_run(name, &r, &[i], &run, "alone");
        }
        let rev: Vec<f32> = (0..b).rev().flat_map(|i| input[i * per..(i + 1) * per].to_vec()).collect();
        let run = cascade(&mut clf, &rev);
        check_run(name, &r, &(0..b).rev().collect::<Vec<_>>(), &run, "reversed");
        // Infinite thresholds: every image runs every exit, each exit's logits as the official.
        clf.model.config.arch.set_exit_thresholds(&[f32::INFINITY, f32::INFINITY]).unwrap();
        let (exits, per_exit, taken) = cascade(&mut clf, input);
        assert_eq!(exits, vec![2; b]);
        for (e, l) in per_exit.iter().enumerate() {
            assert_close(l, &r.tensors[&format!("exit_logits.{e}")].1, &format!("{name} all exits, exit {e}"));
        }
        assert_close(&taken, &r.tensors["exit_logits.2"].1, &format!("{name} all exits, taken"));
        // Thresholds of 0: every image stops at the first exit.
        clf.model.config.arch.set_exit_thresholds(&[0.0, 0.0]).unwrap();
        let (exits, _, taken) = cascade(&mut clf, input);
        assert_eq!(exits, vec![0; b]);
        assert_close(&taken, &r.tensors["exit_logits.0"].1, &format!("{name} first exit"));
    }
}

#[test]
fn png_images_take_the_official_exit() {
    for name in MODELS {
        let model = Model::load(&fixture(name), None).unwrap();
        let r = load(name, "reference.safetensors");
        let mut clf = Classifier::new(model);
        let mut exits = Vec::new();
        for img in ["photo", "small_odd", "gray", "rgba"] {
            let bytes = std::fs::read(fixture("images").join(format!("{img}.png"))).unwrap();
            let t = vitrine::preprocess::load_tensor(&bytes, img, &clf.model.config.data).unwrap();
            let (d, _) = max_diff(&t, &r.tensors[&format!("tensor.{img}")].1);
            assert!(d <= 1e-6, "{name}/{img}: preprocessed tensor differs by {d}");
            let (ex, per_exit, taken) = cascade(&mut clf, &t);
            let want = r.tensors[&format!("image.{img}.exit")].1[0] as usize;
            assert_eq!(ex, vec![want], "{name}/{img}: exit");
            assert_close(&taken, &r.tensors[&format!("image.{img}")].1, &format!("{name}/{img}"));
            for (e, l) in per_exit.iter().enumerate().take(want + 1) {
                assert_close(l, &r.tensors[&format!("image.{img}.exit_logits.{e}")].1, &format!("{name}/{img} exit {e}"));
            }
            exits.push(want);
        }
        assert!(exits.iter().any(|&e| e > 0), "{name}: some PNG must go past the first exit");
    }
}

/// The official training loss (main.py: the three exits' label-smoothed cross-entropies summed,
/// nothing detached between exits) through `Arch::custom_training`: the loss, every trainable
/// gradient (1e-3 * max |official gradient|; exit 3's loss reaches exit 1 only through the
/// reuse paths) and three AdamW steps (lr 2e-3, wd 0.05; cls_token decays, as the official
/// optimizer built on the wrapper does).
#[test]
fn training_loss_gradients_and_adamw_steps_match_the_official_code() {
    use vitrine::autodiff::backward;
    use vitrine::gpu::optim::{OptParam, OptSettings};
    use vitrine::graph::TensorKind;
    use vitrine::models::family::LossOptions;
    use vitrine::train::step::train_step;
    for name in MODELS {
        let model = Model::load(&fixture(name), None).unwrap();
        let r = load(name, "train_reference.safetensors");
        let (input, target) = (&r.tensors["input"].1, &r.tensors["target"].1);
        let b = r.tensors["target"].0[0];
        let opts = LossOptions { smoothing: 0.1, ratio_weight: None };
        let build = || {
            let t = model.config.arch.custom_training(b, &opts).expect("DVT trains with its own loss").unwrap();
            let mut g = t.g;
            let params: Vec<usize> = g
                .params()
                .into_iter()
                .filter(|&p| matches!(&g.tensors[p].kind, TensorKind::Param { parts } if !parts.iter().any(|(n, _)| model.config.arch.frozen(n))))
                .collect();
            let seed = g.fill(&[1], 1.0).unwrap();
            let grads = backward(&mut g, t.loss, seed, &params).unwrap();
            (g, t.loss, params, grads)
        };
        let weights = model.weights.data();
        let (mut g, loss, params, grads) = build();
        g.outputs = vec![loss];
        for &d in &grads {
            g.output(d);
        }
        let mut e = engine();
        let outs = e.run_once(&g, &weights, &[input, target]).unwrap();
        let want = r.tensors["loss"].1[0];
        assert!((outs[0][0] - want).abs() <= 1e-5 * want.abs().max(1.0), "{name}: loss {} vs official {want}", outs[0][0]);
        // The last exit's relation_reuse_conv.2.bias adds one constant per head to whole rows
        // of logits, which the softmax ignores: its gradient is zero in exact arithmetic and
        // rounding noise (~1e-7) in both frameworks. Such tensors (max below 1e-5 of the
        // largest gradient anywhere) are held to that absolute bound instead.
        let global =
            r.tensors.iter().filter(|(k, _)| k.starts_with("grad.")).flat_map(|(_, (_, v))| v.iter()).fold(0f32, |a, b| a.max(b.abs()));
        let mut checked = 0;
        for (k, &p) in params.iter().enumerate() {
            let TensorKind::Param { parts } = &g.tensors[p].kind else { unreachable!() };
            let pname = &parts[0].0;
            let (_, want) = r.tensors.get(&format!("grad.{pname}")).unwrap_or_else(|| panic!("{name}: no official gradient for {pname}"));
            let (d, m) = max_diff(&outs[1 + k], want);
            let tol = if m <= 1e-5 * global { 1e-5 * global } else { 1e-3 * m };
            assert!(d <= tol, "{name}: gradient of {pname}: max |diff| {d}, max |official| {m}");
            checked += 1;
        }
        assert_eq!(checked, r.tensors.keys().filter(|k| k.starts_with("grad.")).count(), "{name}: every official gradient compared");
        // Exit 0's stem gets gradient from exit 2's loss only through the reuse paths: it must not vanish.
        let stem = r.tensors.keys().find(|k| k.starts_with("grad.less_less_token.blocks.0.attn.qkv.weight")).expect("stage 0 qkv gradient");
        assert!(r.tensors[stem].1.iter().any(|v| v.abs() > 0.0));

        let (mut g2, loss, params, grads) = build();
        g2.outputs = vec![loss];
        let mut specs = Vec::new();
        for (i, (&p, &d)) in params.iter().zip(&grads).enumerate() {
            g2.keep(d);
            let TensorKind::Param { parts } = &g2.tensors[p].kind else { unreachable!() };
            specs.push(OptParam { param: p, grad: i, decay: model.config.decays(parts), backbone: false });
        }
        let exe = e.compile(&g2, &weights).unwrap();
        let mut opt = e.optimizer(&exe, &specs, OptSettings::adamw(0.05)).unwrap();
        for (step, want) in r.tensors["adamw.losses"].1.iter().enumerate() {
            let out = pollster::block_on(train_step(&e.ctx, &exe, &mut opt, &[input, target], 2e-3)).unwrap();
            assert!(
                (out[0][0] - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{name}: loss at step {step}: {} vs official {want}",
                out[0][0]
            );
        }
        for &p in &params {
            let TensorKind::Param { parts } = &g2.tensors[p].kind else { unreachable!() };
            let pname = &parts[0].0;
            let got = pollster::block_on(exe.read_param(&e.ctx, p, g2.numel(p))).unwrap();
            let want = &r.tensors[&format!("adamw.step3.{pname}")].1;
            let g0 = &r.tensors[&format!("grad.{pname}")].1;
            let gmax = g0.iter().fold(0f32, |a, b| a.max(b.abs()));
            if gmax <= 1e-5 * global {
                continue; // numerically zero (see above): Adam moves it by +-lr noise in both frameworks
            }
            // Adam's m / sqrt(v) turns the rounding noise of small gradients into sizeable steps in
            // both frameworks (as in tests/train_parity.rs): coordinates with |grad| <= 1e-5 max are
            // left out (at most 1 % besides the key bias, whose gradient is exactly zero); those
            // above 1e-4 max agree within 2.5 % of one step (5e-5), and the mean difference over
            // all kept coordinates stays below 2e-6.
            let kept: Vec<usize> = (0..got.len()).filter(|&i| g0[i].abs() > 1e-5 * gmax).collect();
            let dropped = got.len() - kept.len();
            let key_bias = if pname.ends_with("attn.qkv.bias") { got.len() / 3 } else { 0 };
            assert!(dropped.saturating_sub(key_bias) * 100 <= got.len().max(100), "{name}: {pname}: {dropped} near-zero gradients");
            let strong = kept.iter().filter(|&&i| g0[i].abs() > 1e-4 * gmax);
            let d = strong.map(|&i| (got[i] - want[i]).abs()).fold(0f32, f32::max);
            let mean = kept.iter().map(|&i| (got[i] - want[i]).abs() as f64).sum::<f64>() / kept.len().max(1) as f64;
            assert!(d <= 5e-5 && mean <= 2e-6, "{name}: {pname} after 3 AdamW steps: max |diff| {d}, mean {mean}");
        }
    }
}

/// `vitrine::calibrate` against the official threshold rule (inference.py's
/// dynamic_find_threshold / dynamic_evaluate, run by the fixture script on the same
/// confidences): every budget row's exit fractions, ranks, thresholds (exactly: they are
/// confidences), accuracy and expected GFLOPs, and the row a budget selects.
#[test]
fn calibration_reproduces_the_official_threshold_rule() {
    use vitrine::calibrate;
    for name in MODELS {
        let c = load(name, "calibration.safetensors");
        let t = |k: &str| c.tensors[k].1.clone();
        let e = 3;
        let n = c.tensors["calib.conf"].0[0];
        let by_exit = |v: &[f32]| -> Vec<Vec<f32>> { (0..e).map(|k| (0..n).map(|i| v[i * e + k]).collect()).collect() };
        let conf = by_exit(&t("calib.conf"));
        let pred: Vec<Vec<usize>> = by_exit(&t("calib.pred")).iter().map(|r| r.iter().map(|&v| v as usize).collect()).collect();
        let target: Vec<usize> = t("calib.target").iter().map(|&v| v as usize).collect();
        let flops = t("calib.flops");
        let (fractions, out_n, thresholds) = (t("calib.exit_fractions"), t("calib.out_n"), t("calib.thresholds"));
        let rows = calibrate::curve(&conf, &pred, &target, &flops);
        assert_eq!(rows.len(), 59);
        for (r, row) in rows.iter().enumerate() {
            let q = calibrate::exit_fractions(row.p, e);
            for k in 0..e {
                assert!((q[k] - fractions[r * e + k]).abs() <= 1e-6, "{name} row {}: fraction {k}", row.p);
            }
            for k in 0..2 {
                assert_eq!((n as f32 * q[k]).floor(), out_n[r * 2 + k], "{name} row {}: rank {k}", row.p);
                assert_eq!(row.thresholds[k], thresholds[r * e + k], "{name} row {}: threshold {k}", row.p);
            }
            let (acc, fl) = (t("calib.accuracy")[r], t("calib.expected_flops")[r]);
            assert!((row.accuracy - acc).abs() <= 1e-4, "{name} row {}: accuracy {} vs {acc}", row.p, row.accuracy);
            assert!((row.gflops - fl).abs() <= 1e-6 * fl.abs().max(1e-3), "{name} row {}: GFLOPs {} vs {fl}", row.p, row.gflops);
        }
        assert!(rows.iter().any(|r| r.thresholds.iter().all(|&t| t < 1.0)), "{name}: some row must exit early at both exits");
        let budget = t("calib.budget")[0] as f64;
        let row = calibrate::pick(&rows, budget).unwrap();
        assert_eq!(row.p as f32, t("calib.row")[0], "{name}: the budget's row");
        assert_eq!(row.thresholds, t("calib.budget_thresholds")[..2].to_vec());
        assert!(calibrate::pick(&rows, 0.0).is_err());
    }
}

/// The cascade counts each exit's cost as PyTorch's FlopCounter does (matmuls and linears,
/// multiply-adds): within 1 % of the fixture's per-exit GFLOPs (vitrine's Performer forms
/// the key sum as a matmul with ones, which FlopCounter does not see).
#[test]
fn exit_costs_match_the_official_flop_count() {
    for name in MODELS {
        let model = Model::load(&fixture(name), None).unwrap();
        let want = load(name, "calibration.safetensors").tensors["calib.flops"].1.clone();
        let got = model.config.arch.exits().unwrap().gflops;
        for (e, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - *w as f64).abs() <= 1e-2 * *w as f64, "{name} exit {e}: {g} GFLOPs vs FlopCounter {w}");
        }
    }
}

/// The command line: `classify --json` reports the exit taken, every computed exit's logits
/// and the cost; `--exit-thresholds` overrides config.json's; `calibrate` writes the rule's
/// thresholds into config.json (which classify then uses); bad input gets one `error:` line.
#[test]
fn classify_and_calibrate_from_the_command_line() {
    let name = "dvt_t2t_tiny";
    let r = load(name, "reference.safetensors");
    let dir = tmp("dvt_cli", "model");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture(name).join(f), dir.join(f)).unwrap();
    }
    let m = dir.to_str().unwrap();
    let imgs = ["photo", "small_odd", "gray", "rgba"];
    let paths: Vec<String> = imgs.iter().map(|i| fixture("images").join(format!("{i}.png")).to_str().unwrap().to_string()).collect();
    let classify = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["classify", "--model", m, "--json", "--batch", "4"];
        args.extend_from_slice(extra);
        args.extend(paths.iter().map(String::as_str));
        let out = vitrine(&args, &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let rows = classify(&[]);
    for (img, row) in imgs.iter().zip(&rows) {
        let want = r.tensors[&format!("image.{img}.exit")].1[0] as u64;
        assert_eq!(row["exit"].as_u64(), Some(want), "{img}: exit");
        assert_eq!(row["exit_logits"].as_array().unwrap().len() as u64, want + 1, "{img}: exits computed");
        let logits: Vec<f32> = row["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_close(&logits, &r.tensors[&format!("image.{img}")].1, img);
        assert!(row["exit_gflops"].as_f64().unwrap() > 0.0);
    }
    let all = classify(&["--exit-thresholds", "inf,inf"]);
    assert!(all.iter().all(|row| row["exit"] == 2 && row["exit_logits"].as_array().unwrap().len() == 3));

    // Calibrate on a 5-class image folder made of the fixture PNGs.
    let data = tmp("dvt_cli", "data");
    let _ = std::fs::remove_dir_all(&data);
    for c in ["a", "b", "c", "d", "e"] {
        std::fs::create_dir_all(data.join("train").join(c)).unwrap();
        for (i, p) in imgs.iter().zip(&paths) {
            std::fs::copy(p, data.join("train").join(c).join(format!("{i}.png"))).unwrap();
        }
    }
    let d = data.to_str().unwrap();
    let out = vitrine(&["calibrate", "--model", m, "--data", d, "--budget", "0.03", "--json", "--quiet"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let chosen: Vec<f64> = v["choice"]["thresholds"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert!(v["choice"]["gflops"].as_f64().unwrap() <= 0.03 && v["rows"].as_array().unwrap().len() == 59);
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let written: Vec<f64> = cfg["exit_thresholds"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(written.len(), 2);
    for (w, c) in written.iter().zip(&chosen) {
        assert!((w - c).abs() <= 1e-6 * c.abs().max(1.0), "written {written:?} vs chosen {chosen:?}");
    }
    // classify now exits by the calibrated thresholds.
    let rows = classify(&[]);
    for row in &rows {
        let e = row["exit"].as_u64().unwrap() as usize;
        let conf = |l: &serde_json::Value| {
            let l: Vec<f64> = l.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            let m = l.iter().cloned().fold(f64::MIN, f64::max);
            1.0 / l.iter().map(|x| (x - m).exp()).sum::<f64>()
        };
        let ex = row["exit_logits"].as_array().unwrap();
        for (k, l) in ex.iter().enumerate().take(e) {
            assert!(conf(l) < written[k], "an image went on past an exit it should have stopped at");
        }
        if e < 2 {
            assert!(conf(&ex[e]) >= written[e] - 1e-6);
        }
    }
    fails_with(&["calibrate", "--model", m, "--data", d, "--budget", "0.001"], &[], "below the cheapest");
    fails_with(&["classify", "--model", m, "--exit-thresholds", "0.5", &paths[0]], &[], "give 2 numbers");
    fails_with(&["classify", "--exit-thresholds", "0.5,0.5", &paths[0]], &[], "single exit");
    let vit = fixture("vit_plain");
    fails_with(&["calibrate", "--model", vit.to_str().unwrap(), "--data", d, "--budget", "1"], &[], "single exit");
}

/// `vitrine train` on a DVT model: the summed three-exit loss goes down on a small image
/// folder, and the saved model loads with its exit thresholds and classifies through the cascade.
#[test]
fn vitrine_train_fine_tunes_a_dvt_model() {
    let dir = tmp("dvt_train", "data");
    let _ = std::fs::remove_dir_all(&dir);
    for (c, imgs) in [("a", ["photo", "gray"]), ("b", ["small_odd", "rgba"])] {
        std::fs::create_dir_all(dir.join("train").join(c)).unwrap();
        for i in imgs {
            std::fs::copy(fixture("images").join(format!("{i}.png")), dir.join("train").join(c).join(format!("{i}.png"))).unwrap();
        }
    }
    let out = tmp("dvt_train", "out");
    let _ = std::fs::remove_dir_all(&out);
    let m = fixture("dvt_deit_tiny");
    let args = ["train", "--data", dir.to_str().unwrap(), "--model", m.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let run = vitrine(&[&args[..], &["--epochs", "6", "-b", "4", "--lr", "3e-3", "--no-aug", "--val-split", "0", "--quiet"]].concat(), &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let head: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = head.iter().position(|h| *h == "train_loss").expect("train_loss column");
    let losses: Vec<f64> = csv.lines().skip(1).map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect();
    assert_eq!(losses.len(), 6);
    // Three cross-entropies of a 2-class head start near 3 ln 2 and fall every epoch (one step each).
    assert!(losses[0] > 1.5 && losses.windows(2).all(|w| w[1] < w[0]) && losses[5] < losses[0] * 0.9, "summed loss per epoch {losses:?}");
    let model = Model::load(&out, None).unwrap();
    assert_eq!(model.config.num_classes(), 2);
    let before = Model::load(&m, None).unwrap().config.arch.exits().unwrap().thresholds;
    assert_eq!(model.config.arch.exits().unwrap().thresholds, before, "exit thresholds kept");
    let mut clf = Classifier::new(model);
    let t = vitrine::preprocess::load_tensor(&std::fs::read(fixture("images").join("photo.png")).unwrap(), "photo", &clf.model.config.data)
        .unwrap();
    let (ex, _, taken) = cascade(&mut clf, &t);
    assert!(ex[0] <= 2 && taken.len() == 2 && taken.iter().all(|v| v.is_finite()));
}

/// The presets have the official models' parameter counts (spec §1: DVT_T2t_vit_12 22,461,516,
/// DVT_T2t_vit_14 67,881,836, DVT_Deit_small 70,442,232) and their cumulative exit costs
/// (0.468 / 1.446 / 3.455 GMACs for DVT-T2T-12), and a bad config is refused with a reason.
#[test]
fn presets_match_the_official_models() {
    use vitrine::models::config::preset;
    for (name, want) in [("dvt_t2t_vit_12", 22_461_516usize), ("dvt_t2t_vit_14", 67_881_836), ("dvt_deit_small", 70_442_232)] {
        let cfg = preset(name).unwrap();
        let g = vitrine::models::build(&cfg, 1).unwrap();
        let n: usize = g.param_table().iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        assert_eq!(n, want, "{name}: parameters");
    }
    let gflops = preset("dvt_t2t_vit_12").unwrap().arch.exits().unwrap().gflops;
    for (g, w) in gflops.iter().zip([0.468, 1.446, 3.455]) {
        assert!((g - w).abs() <= 2e-3 * w, "DVT-T2T-12 cumulative GMACs {gflops:?}");
    }
    let text = std::fs::read_to_string(fixture("dvt_t2t_tiny").join("config.json")).unwrap();
    for (edit, needle) in [
        (("\"img_size\": 224", "\"img_size\": 256"), "img_size 256"),
        (("\"tokens_type\": \"performer_less_token\"", "\"tokens_type\": \"transformer\""), "tokens_type"),
        (("\"num_heads\": 3,\n        \"mlp_ratio\": 2.0,\n        \"qkv_bias\": false,\n        \"qk_scale\": null,\n        \"token_dim\": 6", "\"num_heads\": 4,\n        \"mlp_ratio\": 2.0,\n        \"qkv_bias\": false,\n        \"qk_scale\": null,\n        \"token_dim\": 6"), "relation reuse needs num_heads x depth"),
        (("0.4017", "\"high\""), "exit_thresholds"),
    ] {
        let bad = text.replacen(edit.0, edit.1, 1);
        assert_ne!(bad, text, "{needle}: the edit must apply");
        let v: serde_json::Value = serde_json::from_str(&bad).unwrap();
        let err = vitrine::models::config::from_hub_json(&v).err().unwrap_or_else(|| panic!("{needle}: accepted")).to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
}
