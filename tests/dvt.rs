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
