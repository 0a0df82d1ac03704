//! Attention maps (`vitrine::explain`, `vitrine explain`): the rollout and the last block's
//! class-token attention equal NumPy's from timm's attention probabilities
//! (scripts/make_explain_fixtures.py) within 1e-4, for a ViT and a distilled DeiT (two
//! prefix tokens); the CLI draws them over the image.

mod common;
use common::{engine, fails_with, vitrine};
use std::path::PathBuf;
use vitrine::weights::Weights;
use vitrine::Model;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

fn close(ours: &[f32], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let d = ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(d <= 1e-4, "{what}: max |vitrine - numpy| = {d}");
}

#[test]
fn rollout_and_last_block_attention_match_numpy_on_timms_probabilities() {
    let mut engine = engine();
    for (name, grid) in [("vit_plain", [4, 4]), ("deit_distilled", [3, 3])] {
        let dir = fixture(name);
        let model = Model::load(&dir, None).unwrap();
        let reference = Weights::load(&dir.join("reference.safetensors")).unwrap();
        let want = Weights::load(&dir.join("explain_reference.safetensors")).unwrap();
        let input = &reference.tensors["tensor.photo"].1;
        let maps = pollster::block_on(vitrine::explain::attention_maps(&mut engine, &model, input)).unwrap();
        assert_eq!(maps.grid, grid, "{name}");
        close(&maps.rollout, &want.tensors["rollout"].1, &format!("{name} rollout"));
        close(&maps.last_cls, &want.tensors["last_cls"].1, &format!("{name} last-block class attention"));
        close(&maps.logits, &reference.tensors["image.photo"].1, &format!("{name} logits"));
    }
}

#[test]
fn explain_draws_the_maps_over_each_image() {
    let dir = common::tmp("explain", "attention");
    let _ = std::fs::remove_dir_all(&dir);
    let imgs = ["photo.png", "small_odd.png"].map(|i| fixture(&format!("images/{i}")).display().to_string());
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/default").display().to_string();
    let mut args = vec!["explain", "--model", &default, "--out", dir.to_str().unwrap()];
    args.extend(imgs.iter().map(String::as_str));
    let out = vitrine(&args, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("attention over 4 x 4 patches; top-1"), "{text}");
    for stem in ["photo", "small_odd"] {
        let png = image::open(dir.join(format!("{stem}-attention.png"))).unwrap().to_rgb8();
        // Three 224-pixel panels (the 28-pixel input drawn 8x), 4 apart, under two 14-pixel bands.
        assert_eq!((png.width(), png.height()), (3 * 224 + 2 * 4, 224 + 28), "{stem}");
        // The overlays differ from the input panel; the input panel is grey (the model's input).
        let (a, b) = (png.get_pixel(100, 130), png.get_pixel(228 + 100, 130));
        assert!(a.0[0] == a.0[1] && a.0[1] == a.0[2] && a != b, "{stem}: input {a:?}, overlay {b:?}");
    }
    fails_with(&["explain", "--model", &default, "--out", "one.png", &imgs[0], &imgs[1]], &[], "is one file");
}
