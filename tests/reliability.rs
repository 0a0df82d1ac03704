//! Hostile input at the edges (issue 16's list): config values that size preprocessing or
//! the graph, bare safetensors with tensors of the wrong rank, and images whose header or
//! aspect ratio would make a decoder or the resize allocate without bound. Each must end
//! in one `error:` line naming the problem and exit code 1, quickly: never a panic, an
//! abort, a hang or a huge allocation.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A copy of the vit_plain fixture with config.json edited by `edit` (on the parsed JSON).
fn hub_with(name: &str, edit: impl Fn(&mut serde_json::Value)) -> String {
    let dir = tmp("reliability", name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("vit_plain").join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("vit_plain").join("config.json")).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(dir.join("config.json"), v.to_string()).unwrap();
    dir.to_str().unwrap().to_string()
}

fn image() -> String {
    fixture("images").join("photo.png").to_str().unwrap().to_string()
}

/// `fails_with`, and within 20 s (a hang or a giant allocation would not).
fn fails_fast(args: &[&str], needle: &str) {
    let t = Instant::now();
    fails_with(args, &[], needle);
    assert!(t.elapsed() < Duration::from_secs(20), "{args:?} took {:?}", t.elapsed());
}

#[test]
fn pretrained_cfg_values_that_size_preprocessing_are_checked() {
    let img = image();
    for (name, crop) in [("crop0", serde_json::json!(0.0)), ("cropneg", serde_json::json!(-0.5)), ("croptiny", serde_json::json!(1e-9))] {
        let m = hub_with(name, |v| v["pretrained_cfg"]["crop_pct"] = crop.clone());
        fails_fast(&["classify", "--model", &m, &img], "crop_pct");
    }
    let m = hub_with("std0", |v| v["pretrained_cfg"]["std"] = serde_json::json!([0.0, 0.0, 0.0]));
    fails_fast(&["classify", "--model", &m, &img], "std");
    let m = hub_with("mean_nan", |v| v["pretrained_cfg"]["mean"] = serde_json::json!([0.5, "x", 0.5]));
    fails_fast(&["classify", "--model", &m, &img], "mean");
    let m = hub_with("huge_input", |v| v["model_args"]["img_size"] = serde_json::json!(1000000));
    fails_fast(&["classify", "--model", &m, &img], "img_size");
    // crop_pct above 1 is timm's zero-padded crop: accepted.
    let m = hub_with("crop_big", |v| v["pretrained_cfg"]["crop_pct"] = serde_json::json!(1.25));
    let out = vitrine(&["classify", "--model", &m, &img], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn model_args_that_size_the_graph_are_checked_before_building_it() {
    let img = image();
    for (key, value) in [
        ("depth", serde_json::json!(1_000_000_000u64)),
        ("embed_dim", serde_json::json!(1u64 << 40)),
        ("num_classes", serde_json::json!(1e12)),
    ] {
        let m = hub_with(&format!("args_{key}"), |v| v["model_args"][key] = value.clone());
        fails_fast(&["classify", "--model", &m, &img], key);
        fails_fast(&["inspect", "--model", &m], key);
    }
}

/// A safetensors file of f32 tensors with the given shapes (zeros).
fn safetensors(path: &Path, tensors: &[(&str, Vec<usize>)]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in tensors {
        let n: usize = shape.iter().product::<usize>() * 4;
        header.insert(name.to_string(), serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}));
        offset += n;
    }
    let h = serde_json::Value::Object(header).to_string();
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h.as_bytes());
    bytes.resize(bytes.len() + offset, 0);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn bare_safetensors_with_tensors_of_the_wrong_rank_are_refused() {
    let img = image();
    type Tensors = Vec<(&'static str, Vec<usize>)>;
    let cases: Vec<(&str, Tensors)> = vec![
        // ViT shape inference reads head.weight [K, C], reg_token [1, R, C], pos_embed [1, T, C].
        (
            "vit_rank0",
            vec![
                ("patch_embed.proj.weight", vec![64, 3, 16, 16]),
                ("blocks.0.norm1.weight", vec![64]),
                ("blocks.0.mlp.fc1.weight", vec![256, 64]),
                ("head.weight", vec![]),
                ("reg_token", vec![]),
                ("pos_embed", vec![5]),
            ],
        ),
        (
            "vit_rank1",
            vec![("patch_embed.proj.weight", vec![64]), ("blocks.0.norm1.weight", vec![64]), ("blocks.0.mlp.fc1.weight", vec![])],
        ),
        (
            "hvt_rank0",
            vec![("patch_embed.proj.weight", vec![]), ("blocks.0.pos_embed", vec![]), ("pos_embed", vec![]), ("head.weight", vec![])],
        ),
    ];
    for (name, tensors) in cases {
        let path = tmp("reliability", &format!("{name}.safetensors"));
        safetensors(&path, &tensors);
        let p = path.to_str().unwrap();
        let out = vitrine(&["classify", "--model", p, &img], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: exit {:?}: {err}", out.status.code());
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.starts_with("error: ") && !err.contains("panicked"), "{name}: {err}");
    }
}

/// A PNG whose IHDR claims `w x h` pixels, followed by a few bytes of IDAT: a few dozen bytes.
fn lying_png(w: u32, h: u32) -> Vec<u8> {
    fn crc(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut v = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend(data);
        v.extend(&body);
        v.extend(crc(&body).to_be_bytes());
        v
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00]));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn images_that_would_allocate_without_bound_are_refused() {
    let bomb = tmp("reliability", "bomb.png");
    std::fs::write(&bomb, lying_png(100_000, 100_000)).unwrap();
    fails_fast(&["classify", bomb.to_str().unwrap()], "too large");
    // A real 1 x 300000 strip: its shorter side resized to the built-in model's 28 would make
    // it 28 x 8.4 M = 235 M pixels.
    let strip = tmp("reliability", "strip.png");
    image::GrayImage::from_pixel(1, 300_000, image::Luma([128u8])).save(&strip).unwrap();
    fails_fast(&["classify", strip.to_str().unwrap()], "crop it closer to square");
    // A plain image still works beside them.
    let out = vitrine(&["classify", &image()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A small image folder: `classes` class folders of `n` 16 x 16 PNGs under `split/`.
fn folder(name: &str, classes: &[&str], n: usize) -> PathBuf {
    let root = tmp("reliability", name);
    let _ = std::fs::remove_dir_all(&root);
    for (c, class) in classes.iter().enumerate() {
        let dir = root.join("train").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            image::RgbImage::from_pixel(16, 16, image::Rgb([(40 * c + 10 * i) as u8, 90, 200])).save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
    root
}

const TINY: &[&str] = &[
    "--arch",
    "vit_tiny_patch16_224",
    "--model-kwargs",
    "img_size=16",
    "patch_size=4",
    "embed_dim=32",
    "depth=1",
    "num_heads=2",
    "--crop-pct",
    "1",
    "-b",
    "4",
    "--epochs",
    "1",
    "--quiet",
    "--val-split",
    "0",
];

fn train_on(data: &Path, name: &str) -> Vec<String> {
    let out = tmp("reliability", &format!("{name}-out"));
    let _ = std::fs::remove_dir_all(&out);
    let mut args: Vec<String> =
        ["train", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
    args.extend(TINY.iter().map(|s| s.to_string()));
    args
}

/// Training data that cannot be used: one error line naming the file or folder.
#[test]
fn bad_training_data_is_named() {
    // A corrupt image among good ones.
    let data = folder("corrupt", &["a", "b"], 4);
    let bad = data.join("train/b/2.png");
    std::fs::write(&bad, b"\x89PNG but not really").unwrap();
    let args = train_on(&data, "corrupt");
    fails_fast(&args.iter().map(String::as_str).collect::<Vec<_>>(), bad.to_str().unwrap());
    // An empty class folder (timm would drop the class and shift the labels after it).
    let data = folder("emptyclass", &["a", "b", "c"], 4);
    for f in std::fs::read_dir(data.join("train/b")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let args = train_on(&data, "emptyclass");
    fails_fast(&args.iter().map(String::as_str).collect::<Vec<_>>(), "train/b: class folder without images");
    // A val split whose classes differ from the training split's.
    let data = folder("valclasses", &["a", "b"], 4);
    std::fs::create_dir_all(data.join("val/a")).unwrap();
    std::fs::create_dir_all(data.join("val/z")).unwrap();
    std::fs::copy(data.join("train/a/0.png"), data.join("val/a/0.png")).unwrap();
    std::fs::copy(data.join("train/a/1.png"), data.join("val/z/1.png")).unwrap();
    let args = train_on(&data, "valclasses");
    fails_fast(&args.iter().map(String::as_str).collect::<Vec<_>>(), "classes (a, z) differ");
    // An IDX label beyond the class count.
    let idx = tmp("reliability", "idx");
    let _ = std::fs::remove_dir_all(&idx);
    std::fs::create_dir_all(&idx).unwrap();
    let header = |magic: u32, dims: &[u32]| {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v
    };
    let mut images = header(0x0803, &[8, 16, 16]);
    images.extend(vec![100u8; 8 * 16 * 16]);
    let mut labels = header(0x0801, &[8]);
    labels.extend([0u8, 1, 2, 3, 4, 5, 6, 42]);
    std::fs::write(idx.join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(idx.join("train-labels-idx1-ubyte"), labels).unwrap();
    let mut args = train_on(&idx, "idx");
    args.extend(["--in-chans", "1"].iter().map(|s| s.to_string()));
    fails_fast(&args.iter().map(String::as_str).collect::<Vec<_>>(), "train-labels-idx1-ubyte: label 42 of sample 7 is out of range");
}

/// The library's structured errors: a weights mismatch lists the missing, unexpected and
/// mis-shaped tensors as data (and still prints as one line), an unsupported value is
/// `Unsupported`, a diverged run is `Diverged` with its epoch, step and loss.
#[test]
fn library_errors_are_structured() {
    use vitrine::Error;
    let w = vitrine::weights::Weights::load(&fixture("vit_plain").join("model.safetensors")).unwrap();
    let mut expected: Vec<(String, Vec<usize>)> = w.tensors.iter().map(|(n, (s, _))| (n.clone(), s.clone())).collect();
    expected.retain(|(n, _)| n != "head.bias");
    expected.push(("extra.weight".into(), vec![2, 2]));
    if let Some(e) = expected.iter_mut().find(|(n, _)| n == "head.weight") {
        e.1 = vec![7, 7];
    }
    match w.check(&expected) {
        Err(Error::Weights { missing, unexpected, misshaped }) => {
            assert_eq!(missing, vec!["extra.weight".to_string()]);
            assert_eq!(unexpected, vec!["head.bias".to_string()]);
            assert_eq!(misshaped.len(), 1);
            assert_eq!((misshaped[0].0.as_str(), misshaped[0].2.clone()), ("head.weight", vec![7, 7]));
            let line = Error::Weights { missing, unexpected, misshaped }.to_string();
            assert!(!line.contains('\n') && line.contains("missing extra.weight") && line.contains("unexpected head.bias"), "{line}");
        }
        other => panic!("expected Error::Weights, got {other:?}"),
    }
    let v: serde_json::Value = serde_json::json!({"architecture": "vit_tiny_patch16_224", "pretrained_cfg": {"interpolation": "lanczos"}});
    assert!(matches!(vitrine::models::config::from_hub_json(&v), Err(Error::Unsupported(m)) if m.contains("lanczos")));
    // A diverged run: an absurd learning rate on a tiny model (library API).
    let data = folder("diverge", &["a", "b"], 8);
    let model = vitrine::Model::fresh(
        {
            let mut cfg = vitrine::models::config::preset("vit_tiny_patch16_224").unwrap();
            let args: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
                "img_size": 16, "patch_size": 4, "embed_dim": 32, "depth": 1, "num_heads": 2, "num_classes": 2
            }))
            .unwrap();
            cfg.apply_model_args(&args).unwrap();
            cfg.data.crop_pct = 1.0;
            cfg
        },
        1,
    )
    .unwrap();
    let out = tmp("reliability", "diverge-out");
    let _ = std::fs::remove_dir_all(&out);
    let mut opts = vitrine::TrainOptions::new(data.clone(), out);
    opts.epochs = 1;
    opts.batch_size = 4;
    opts.sched.lr = 1e30;
    opts.sched.warmup_epochs = 0.0;
    opts.sched.warmup_lr = 1e30;
    opts.val_split = 0.0;
    let mut engine = vitrine::Engine::new_blocking().unwrap();
    match vitrine::Trainer::new(model, opts).run(&mut engine) {
        Err(Error::Diverged { epoch, step, loss, msg }) => {
            assert_eq!(epoch, 1);
            assert!(step >= 1 && !loss.is_finite() && msg.contains("loss became"), "{msg}");
        }
        other => panic!("expected Error::Diverged, got {:?}", other.map(|_| ())),
    }
}
