//! Parity with timm (and the official code of families timm lacks) on the
//! fixtures made by scripts/make_fixtures.py and scripts/make_hvt_fixtures.py.
//! Tolerance: max |ours - timm| <= 1e-4 * max(1, max |logit|) (GUIDE numerics),
//! from tensors and from image files through the whole pipeline.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use vitrine::classify::Classifier;
use vitrine::models::Model;
use vitrine::preprocess;
use vitrine::weights::Weights;

const MODELS: &[&str] = &[
    "vit_plain",
    "deit_distilled",
    "vit_avg_reg_ls",
    "vit_odd",
    "vit_f16_in1k",
    "swin_2stage",
    "swin_3stage_pad",
    "swin_4stage_bigwin",
    "swin_ape_nonorm",
    "swin_rect",
    "swin_always",
    // HVT, from the official MonashAI/HVT code (scripts/make_hvt_fixtures.py)
    "hvt_2pool",
    "hvt_3pool",
    // T2T-ViT (token transformers and Performers), from the official yitu-opensource/T2T-ViT code (scripts/make_t2t_fixtures.py)
    "t2t_transformer",
    "t2t_performer",
    // DynamicViT (pruned inference), from the official raoyongming/DynamicViT code (scripts/make_dynamicvit_fixtures.py)
    "dynvit_small",
    "dynvit_2stage",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reference(name: &str) -> Weights {
    Weights::load(&fixtures().join(name).join("reference.safetensors")).expect("fixture reference (run scripts/make_fixtures.py)")
}

fn assert_close(ours: &[f32], theirs: &[f32], what: &str) {
    let (d, m) = max_diff(ours, theirs);
    let tol = 1e-4 * m.max(1.0);
    assert!(d <= tol, "{what}: max |diff| {d} > {tol} (max |logit| {m})");
}

#[test]
fn logits_from_tensors_match_timm() {
    for name in MODELS {
        let model = Model::load(&fixtures().join(name), None).unwrap();
        let r = reference(name);
        let (shape, input) = &r.tensors["input"];
        let (_, want) = &r.tensors["logits"];
        assert_eq!(shape[0], 2, "fixture batch");
        let mut clf = Classifier::new(model);
        let got = pollster::block_on(clf.logits(&mut engine(), input)).unwrap();
        assert_close(&got, want, &format!("{name} batch 2"));
        // Batch 1 through its own executable gives the same first row.
        let one = pollster::block_on(clf.logits(&mut engine(), &input[..input.len() / 2])).unwrap();
        assert_close(&one, &want[..want.len() / 2], &format!("{name} batch 1"));
    }
}

#[test]
fn cpu_reference_graph_matches_timm() {
    for name in MODELS {
        let model = Model::load(&fixtures().join(name), None).unwrap();
        let r = reference(name);
        let g = model.graph(2).unwrap();
        let out = g.eval_cpu(&[r.tensors["input"].1.clone()], &model.weights.data()).unwrap();
        // The logits are the last output (DynamicViT's kept indices come first).
        assert_close(out.last().unwrap(), &r.tensors["logits"].1, &format!("{name} cpu"));
    }
}

#[test]
fn preprocessing_and_logits_from_image_files_match_timm() {
    let mut checked = 0;
    for name in MODELS {
        let model = Model::load(&fixtures().join(name), None).unwrap();
        let r = reference(name);
        let mut clf = Classifier::new(model);
        for img in ["photo", "small_odd", "gray", "rgba"] {
            let path = fixtures().join("images").join(format!("{img}.png"));
            let bytes = std::fs::read(&path).unwrap();
            let t = preprocess::load_tensor(&bytes, img, &clf.model.config.data).unwrap();
            let (_, want_t) = &r.tensors[&format!("tensor.{img}")];
            let (d, _) = max_diff(&t, want_t);
            assert!(d <= 1e-6, "{name}/{img}: preprocessed tensor differs from timm's by {d}");
            let got = pollster::block_on(clf.logits(&mut engine(), &t)).unwrap();
            assert_close(&got, &r.tensors[&format!("image.{img}")].1, &format!("{name}/{img}"));
            checked += 1;
        }
    }
    assert_eq!(checked, MODELS.len() * 4);
}

#[test]
fn bare_safetensors_infers_the_config() {
    let model = Model::load(&fixtures().join("vit_plain/model.safetensors"), None).unwrap();
    let vit = model.config.arch_as::<vitrine::models::vit::VitConfig>().expect("a ViT");
    assert_eq!(vit.num_heads, 2);
    assert_eq!(vit.img_size, [32, 32]);
    let r = reference("vit_plain");
    let got = pollster::block_on(Classifier::new(model).logits(&mut engine(), &r.tensors["input"].1)).unwrap();
    assert_close(&got, &r.tensors["logits"].1, "vit_plain inferred");
}

#[test]
fn a_resize_region_equals_that_part_of_the_whole_resize() {
    // The eval transform computes only the part of the resize its crop keeps.
    let img = preprocess::decode(&std::fs::read(fixtures().join("images/photo.png")).unwrap(), "photo", 3).unwrap();
    for interp in ["bicubic", "bilinear", "nearest"] {
        for (ow, oh) in [(97, 41), (img.width, 300), (400, img.height), (13, 7)] {
            let full = preprocess::resize(&img, ow, oh, interp).unwrap();
            for (xs, ys) in [(0..ow, 0..oh), (ow / 3..ow - ow / 4, oh / 2..oh), (0..1, oh - 1..oh), (ow / 2..ow / 2, 0..oh)] {
                let part = preprocess::resize_region(&img, ow, oh, interp, xs.clone(), ys.clone()).unwrap();
                let want = preprocess::crop(&full, xs.start as i64, ys.start as i64, xs.len(), ys.len());
                assert_eq!((part.width, part.height), (xs.len(), ys.len()));
                assert!(part.data == want.data, "{interp} {ow}x{oh} region {xs:?} x {ys:?} differs from the whole resize");
            }
        }
    }
    let err = preprocess::resize_region(&img, 10, 10, "bicubic", 0..11, 0..10).unwrap_err().to_string();
    assert!(err.contains("outside 10 x 10"), "{err}");
}

#[test]
fn sixteen_bit_and_exif_images_decode() {
    let dir = fixtures().join("images");
    let g8 = preprocess::decode(&std::fs::read(dir.join("gray.png")).unwrap(), "gray", 3).unwrap();
    let g16 = preprocess::decode(&std::fs::read(dir.join("gray16.png")).unwrap(), "gray16", 3).unwrap();
    assert_eq!(g8.data, g16.data, "16-bit PNG must scale to the same 8-bit values");
    let ex = preprocess::decode(&std::fs::read(dir.join("exif_rot.jpg")).unwrap(), "exif", 3).unwrap();
    assert_eq!((ex.width, ex.height), (40, 60), "EXIF orientation 6 must rotate the 60x40 JPEG upright");
}

#[test]
fn swin_presets_have_timms_tensors_and_preprocessing() {
    // tests/fixtures/preset_tables.json: timm's state_dict names and shapes of each stock Swin
    // (built on the meta device) and its pretrained_cfg.
    let text = std::fs::read_to_string(fixtures().join("preset_tables.json")).expect("preset tables (scripts/make_fixtures.py)");
    let tables: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tables = tables.as_object().unwrap();
    assert_eq!(tables.len(), 9);
    for (name, t) in tables {
        let cfg = vitrine::models::config::preset(name).unwrap();
        let g = vitrine::models::build(&cfg, 1).unwrap();
        let mut ours: Vec<(String, Vec<usize>)> = g.param_table();
        let mut theirs: Vec<(String, Vec<usize>)> = t["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_str().unwrap().to_string(), e[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()))
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{name}: checkpoint tensors differ from timm's");
        let d = &cfg.data;
        let want: Vec<usize> = t["input_size"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(d.input_size.to_vec(), want, "{name}");
        assert_eq!(d.crop_pct, t["crop_pct"].as_f64().unwrap(), "{name}");
        assert_eq!(d.interpolation, t["interpolation"].as_str().unwrap(), "{name}");
        for (ours, theirs) in [(d.mean, &t["mean"]), (d.std, &t["std"])] {
            let theirs: Vec<f32> = theirs.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            assert_eq!(ours.to_vec(), theirs, "{name}");
        }
    }
}

#[test]
fn bare_swin_safetensors_loads_with_arch() {
    // A bare Swin-T weight set (timm's names and shapes) loads with --arch, taking its
    // class count from head.fc; without --arch the error says to pass one.
    let arch = "swin_tiny_patch4_window7_224";
    let mut weights = Model::fresh(vitrine::models::config::preset(arch).unwrap(), 3).unwrap().weights;
    weights.tensors.insert("head.fc.weight".into(), (vec![10, 768], vec![0.01; 7680]));
    weights.tensors.insert("head.fc.bias".into(), (vec![10], vec![0.0; 10]));
    let m = Model::from_parts(None, weights.clone(), Some(arch), "bare").unwrap();
    assert_eq!(m.config.num_classes(), 10);
    assert!(m.config.labels.is_none());
    // The same file in the original layout (classifier `head`, merging at the end of each stage).
    let mut old = weights.clone();
    let names: Vec<String> = old.tensors.keys().cloned().collect();
    let moved: Vec<_> = names
        .iter()
        .filter_map(|k| {
            let was = match k.strip_prefix("head.fc.") {
                Some(rest) => format!("head.{rest}"),
                None => {
                    let (n, rest) = k.strip_prefix("layers.")?.split_once(".downsample.")?;
                    format!("layers.{}.downsample.{rest}", n.parse::<usize>().ok()? - 1)
                }
            };
            Some((was, old.tensors.remove(k)?))
        })
        .collect();
    old.tensors.extend(moved);
    let m = Model::from_parts(None, old, Some(arch), "bare, original layout").unwrap();
    assert_eq!(m.config.num_classes(), 10);
    let err = Model::from_parts(None, weights, None, "bare").unwrap_err().to_string();
    assert!(err.contains("--arch"), "{err}");
}

#[test]
fn bare_hvt_safetensors_infers_hvt_not_vit() {
    // HVT's tensors are a ViT's plus per-stage pos_embeds: inference must pick the family
    // whose graph needs exactly these tensors, and recover the pooling layout from the shapes.
    use vitrine::models::families::hvt::HvtConfig;
    use vitrine::models::family::Arch;
    let want = HvtConfig {
        input_size: 40,
        patch_size: 8,
        num_heads: 1,
        head_dim: 64,
        num_blocks: 5,
        pool_kernel_size: 2,
        pool_block_width: 3,
        num_classes: 3,
        ..HvtConfig::ti_1()
    };
    let data = vitrine::DataConfig::rgb(40, 0.875, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    let fresh = Model::fresh(vitrine::ModelConfig::new("hvt", want.clone(), data), 5).unwrap();
    let m = Model::from_parts(None, fresh.weights.clone(), None, "bare").unwrap();
    assert_eq!(m.config.arch_as::<HvtConfig>(), Some(&want), "inferred {:?}", m.config.arch);
    // Saved in the hub layout (config.json with the official keys as model_args), it loads back the same.
    let dir = std::env::temp_dir().join(format!("vitrine-hvt-roundtrip-{}", std::process::id()));
    let tensors: Vec<_> = m.weights.tensors.iter().map(|(n, (s, v))| (n.clone(), s.clone(), v.clone())).collect();
    vitrine::train::checkpoint::save_model(&dir, &m.config, &tensors, Default::default()).unwrap();
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(text.contains("\"pool_block_width\": 3") && text.contains("\"architecture\": \"hvt\""), "{text}");
    let back = Model::load(&dir, None).unwrap();
    assert_eq!(back.config.arch_as::<HvtConfig>(), Some(&want), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(want.token_counts().unwrap(), vec![12, 12, 12, 6, 6]);
    // The stock fixture's head_dim (6) is not stored in the weights: a clear error naming HVT.
    let w = Weights::load(&fixtures().join("hvt_2pool/model.safetensors")).unwrap();
    let err = Model::from_parts(None, w, None, "bare").unwrap_err().to_string();
    assert!(err.contains("HVT") && err.contains("--arch"), "{err}");
    assert!(want.validate().is_ok());
}

#[test]
fn hvt_presets_have_the_official_parameter_counts() {
    // Counted on the official models.py with each config/*.json (../shared/kin/hvt.md, section 1).
    for (name, params, tokens) in [
        ("hvt_ti_1", 5_735_656, 97),
        ("hvt_s_1", 22_087_144, 97),
        ("hvt_s_2", 22_105_576, 48),
        ("hvt_s_3", 22_114_408, 23),
        ("hvt_s_4", 22_118_632, 11),
    ] {
        let cfg = vitrine::models::config::preset(name).unwrap();
        let g = vitrine::models::build(&cfg, 1).unwrap();
        assert_eq!(g.param_count(), params, "{name}");
        let hvt = cfg.arch_as::<vitrine::models::families::hvt::HvtConfig>().unwrap();
        assert_eq!(hvt.token_counts().unwrap().last(), Some(&tokens), "{name}");
        assert_eq!((cfg.data.crop_pct, cfg.data.input_size), (0.875, [3, 224, 224]), "{name}");
    }
}

#[test]
fn swin_checkpoints_in_the_original_layout_load_as_timm_does() {
    // Microsoft's Swin files (and timm's before 0.9) keep each stage's patch merging at the
    // end of the stage and the classifier as `head`, and store relative_position_index and
    // attn_mask buffers: timm's checkpoint_filter_fn renames and drops them; so does vitrine.
    for name in ["swin_2stage", "swin_3stage_pad"] {
        let dir = fixtures().join(name);
        let mut w = Weights::load(&dir.join("model.safetensors")).unwrap();
        let renamed: Vec<(String, String)> = w
            .tensors
            .keys()
            .filter_map(|k| {
                let old = if let Some(rest) = k.strip_prefix("head.fc.") {
                    format!("head.{rest}")
                } else {
                    let (n, rest) = k.strip_prefix("layers.")?.split_once(".downsample.")?;
                    format!("layers.{}.downsample.{rest}", n.parse::<usize>().ok()? - 1)
                };
                Some((k.clone(), old))
            })
            .collect();
        assert!(renamed.iter().any(|(_, o)| o.starts_with("layers.0.downsample.")) && renamed.iter().any(|(_, o)| o == "head.weight"));
        let mut moved: Vec<_> = renamed.iter().map(|(new, old)| (old.clone(), w.tensors.remove(new).unwrap())).collect();
        w.tensors.extend(moved.drain(..));
        w.tensors.insert("layers.0.blocks.0.attn.relative_position_index".into(), (vec![16, 16], vec![0.0; 256]));
        w.tensors.insert("layers.0.blocks.1.attn_mask".into(), (vec![4, 16, 16], vec![0.0; 1024]));
        let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let model = Model::from_parts(Some(&config), w.clone(), None, "original layout").unwrap();
        let r = reference(name);
        let got = pollster::block_on(Classifier::new(model).logits(&mut engine(), &r.tensors["input"].1)).unwrap();
        assert_close(&got, &r.tensors["logits"].1, &format!("{name} from the original layout"));
    }
}

#[test]
fn t2t_presets_and_the_frozen_sinusoid_match_the_official_code() {
    // Parameter counts of the official models (../shared/kin/t2t.md, section 1), frozen pos_embed included.
    let cfg = vitrine::models::config::preset("t2t_vit_t_14").unwrap();
    assert_eq!(vitrine::models::build(&cfg, 1).unwrap().param_count(), 21_541_070);
    // The fixture's pos_embed is the official constructor's sinusoid table; a fresh model makes the same one.
    let w = Weights::load(&fixtures().join("t2t_transformer/model.safetensors")).unwrap();
    let (shape, stored) = &w.tensors["pos_embed"];
    let ours = vitrine::models::families::t2t::sinusoid(shape[1], shape[2]);
    let (d, _) = max_diff(&ours, stored);
    assert!(d <= 1e-7, "sinusoid table differs by {d}");
    // The Performer models, frozen w (2 x 32 x 64) and pos_embed included.
    for (name, count) in [("t2t_vit_7", 4_310_222), ("t2t_vit_14", 21_545_550)] {
        let cfg = vitrine::models::config::preset(name).unwrap();
        assert_eq!(vitrine::models::build(&cfg, 1).unwrap().param_count(), count, "{name}");
    }
}

#[test]
fn dynamicvit_presets_have_the_official_parameter_counts_and_keep_counts() {
    // ../shared/kin/dynamicvit.md section 1 (measured on the official module).
    for (name, count) in [("dynamicvit_deit_s", 22_774_414), ("dynamicvit_deit_256", 10_304_942)] {
        let cfg = vitrine::models::config::preset(name).unwrap();
        assert_eq!(vitrine::models::build(&cfg, 1).unwrap().param_count(), count, "{name}");
        let dv = cfg.arch_as::<vitrine::models::families::dynamicvit::DynVitConfig>().unwrap();
        // int(196 * 0.7), int(196 * 0.48999999999999994), int(196 * 0.3429999999999999).
        assert_eq!(dv.kept(), [137, 96, 67], "{name}");
    }
}

#[test]
fn dynamicvit_keeps_exactly_the_official_tokens() {
    // The kept patch indices per stage (in the original grid's numbering, the official
    // descending-score order) equal the official model's, for the batch-2 input and for
    // each PNG (batch 1), on the GPU and on the CPU graph; the fixtures' score gaps at
    // every cut are >= 1e-3, so the sets are decidable in f32.
    for name in ["dynvit_small", "dynvit_2stage"] {
        let model = Model::load(&fixtures().join(name), None).unwrap();
        let r = reference(name);
        let stages = (0..).take_while(|p| r.tensors.contains_key(&format!("kept.{p}"))).count();
        assert!(stages >= 2, "{name}: fixture without kept indices");
        let kept_of = |extras: &[serde_json::Map<String, serde_json::Value>], b: usize, p: usize| -> Vec<f32> {
            extras[b]["kept_tokens"][p].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as f32).collect()
        };
        let arch = model.config.arch.clone_box();
        let input = &r.tensors["input"].1;
        let cpu = model.graph(2).unwrap().eval_cpu(std::slice::from_ref(input), &model.weights.data()).unwrap();
        let mut clf = Classifier::new(model);
        let mut gpu = pollster::block_on(clf.outputs(&mut engine(), input)).unwrap();
        gpu.pop();
        for (what, outs) in [("gpu", &gpu), ("cpu", &cpu[..cpu.len() - 1].to_vec())] {
            let extras = arch.explain(outs, 2);
            for p in 0..stages {
                let (shape, want) = &r.tensors[&format!("kept.{p}")];
                let k = shape[1];
                for b in 0..2 {
                    assert_eq!(kept_of(&extras, b, p), want[b * k..(b + 1) * k], "{name} {what}: image {b} stage {p}");
                }
            }
        }
        for img in ["photo", "small_odd", "gray", "rgba"] {
            let bytes = std::fs::read(fixtures().join("images").join(format!("{img}.png"))).unwrap();
            let t = preprocess::load_tensor(&bytes, img, &clf.model.config.data).unwrap();
            let mut outs = pollster::block_on(clf.outputs(&mut engine(), &t)).unwrap();
            let logits = outs.pop().unwrap();
            assert_close(&logits, &r.tensors[&format!("image.{img}")].1, &format!("{name}/{img}"));
            let extras = arch.explain(&outs, 1);
            for p in 0..stages {
                assert_eq!(kept_of(&extras, 0, p), r.tensors[&format!("image.{img}.kept.{p}")].1, "{name}/{img}: stage {p}");
            }
        }
    }
}

/// `--precision f16`: every fixture's logits within 1e-2 * max |logit| of timm's
/// (and of our f32), the same top-1 per image, matmul weights in half the memory and,
/// on an adapter with SHADER_F16, activations between matmuls in f16.
#[test]
fn f16_weights_keep_logits_within_1e_2_and_the_top1() {
    use vitrine::Precision;
    let argmax = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
    let mut names: Vec<&str> = MODELS.to_vec();
    names.extend(["dvt_deit_tiny", "dvt_t2t_tiny"]);
    let mut e = engine();
    for name in names {
        let mut model = Model::load(&fixtures().join(name), None).unwrap();
        if model.config.arch.exits().is_some() {
            // Every exit runs: the logits compared are the last exit's.
            model.config.arch.set_exit_thresholds(&[f32::INFINITY, f32::INFINITY]).unwrap();
        }
        let r = reference(name);
        let input = &r.tensors["input"].1;
        let want = if model.config.arch.exits().is_some() { &r.tensors["exit_logits.2"].1 } else { &r.tensors["logits"].1 };
        let mut clf = Classifier::new(model);
        let f32_logits = pollster::block_on(clf.logits(&mut e, input)).unwrap();
        let f32_bytes = clf.graph(1).unwrap().param_bytes().0;
        clf.set_precision(Precision::F16);
        let f16_bytes = clf.graph(1).unwrap().param_bytes().0;
        let got = pollster::block_on(clf.logits(&mut e, input)).unwrap();
        let (d, m) = max_diff(&got, want);
        eprintln!("{name}: f16 logits {:.2e} of max |logit| from timm's; weights {f16_bytes} B (f32 {f32_bytes} B)", d / m);
        assert!(d <= 1e-2 * m, "{name} f16: max |diff| {d} vs timm, over 1e-2 of max |logit| {m}");
        let (d32, _) = max_diff(&got, &f32_logits);
        assert!(d32 <= 1e-2 * m, "{name} f16: {d32} from our f32 logits");
        // With SHADER_F16 (lavapipe) the activations between matmuls are f16 too.
        // (An early-exit cascade's exits are executables of their own: not inspected here.)
        if clf.model.config.arch.exits().is_none() && e.ctx.adapter().shader_f16 {
            let batch = input.len() / clf.image_len();
            let plan = clf.executable(&mut e, batch).unwrap().plan();
            let half_outputs = plan.steps.iter().filter(|s| s.dispatch.key.shader.ends_with("_oh")).count();
            assert!(half_outputs > 0, "{name} f16: no activation stored as f16 on an adapter with SHADER_F16");
        }
        // A checkpoint stored in f16 (vit_f16_in1k) with f32 activations loses nothing more;
        // any other case does.
        let stored_f16 = clf.model.weights.dtype.eq_ignore_ascii_case("f16");
        let exact = stored_f16 && !e.ctx.adapter().shader_f16;
        assert_eq!(d32 == 0.0, exact, "{name} f16: {d32} from our f32 logits (0 means f16 did not apply)");
        let k = want.len() / (input.len() / clf.image_len());
        for (i, (a, b)) in got.chunks(k).zip(want.chunks(k)).enumerate() {
            assert_eq!(argmax(a), argmax(b), "{name} f16 image {i}: top-1 differs from timm");
        }
        assert!(f16_bytes < f32_bytes, "{name}: f16 weights {f16_bytes} B, f32 {f32_bytes} B");
        if name == "vit_plain" {
            assert!((f16_bytes as f64) < 0.65 * f32_bytes as f64, "{name}: matmul weights dominate; f16 {f16_bytes} of {f32_bytes} B");
        }
    }
}

#[test]
fn f16_built_in_model_gives_the_same_answers_on_its_sample_images() {
    let mut e = engine();
    let mut clf = Classifier::new(Model::builtin().unwrap());
    for img in ["photo.png", "gray.png", "rgba.png", "small_odd.png"] {
        let bytes = std::fs::read(fixtures().join("images").join(img)).unwrap();
        let x = preprocess::load_tensor(&bytes, img, &clf.model.config.data).unwrap();
        clf.set_precision(vitrine::Precision::F32);
        let a = pollster::block_on(clf.logits(&mut e, &x)).unwrap();
        clf.set_precision(vitrine::Precision::F16);
        let b = pollster::block_on(clf.logits(&mut e, &x)).unwrap();
        let (d, m) = max_diff(&b, &a);
        assert!(d <= 1e-2 * m, "{img}: f16 off f32 by {d} (max |logit| {m})");
        let top = |v: &[f32]| v.iter().enumerate().max_by(|p, q| p.1.total_cmp(q.1)).map(|(i, _)| i);
        assert_eq!(top(&a), top(&b), "{img}: top-1");
    }
}
