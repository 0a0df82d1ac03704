//! The `vitrine` binary: bad input gives one error line and exit code 1
//! (never a panic), and `classify --json` reproduces timm's logits.

mod common;
use common::{fails_with, max_diff, vitrine};
use std::path::{Path, PathBuf};
use vitrine::weights::Weights;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli", name)
}

fn model(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

fn image(name: &str) -> String {
    fixtures().join("images").join(name).display().to_string()
}

#[test]
fn missing_and_corrupt_images() {
    let m = model("vit_plain");
    fails_with(&["classify", "--model", &m, "/nonexistent/cat.png"], &[], "/nonexistent/cat.png");
    fails_with(&["classify", "--model", &m, &image("not_an_image.png")], &[], "not_an_image.png");
    fails_with(&["classify", "--model", &m, &image("truncated.png")], &[], "truncated.png");
    fails_with(&["classify", "--model", &m], &[], "IMAGE");
}

#[test]
fn missing_corrupt_truncated_and_lying_safetensors() {
    let img = image("photo.png");
    fails_with(&["classify", "--model", "/nonexistent/model", &img], &[], "/nonexistent/model");
    let good = std::fs::read(fixtures().join("vit_plain/model.safetensors")).unwrap();

    let p = tmp("garbage.safetensors");
    std::fs::write(&p, b"\x07\x00\x00\x00\x00\x00\x00\x00garbage").unwrap();
    fails_with(&["classify", "--model", p.to_str().unwrap(), &img], &[], "invalid safetensors");

    let p = tmp("truncated.safetensors");
    std::fs::write(&p, &good[..good.len() / 2]).unwrap();
    fails_with(&["classify", "--model", p.to_str().unwrap(), &img], &[], "invalid safetensors");

    // A header whose data_offsets point past the end of the file.
    let p = tmp("lying.safetensors");
    let header = br#"{"head.weight":{"dtype":"F32","shape":[1000,1000],"data_offsets":[0,4000000]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 64]);
    std::fs::write(&p, bytes).unwrap();
    fails_with(&["classify", "--model", p.to_str().unwrap(), &img], &[], "invalid safetensors");
}

#[test]
fn wrong_shapes_unknown_architecture_and_bad_config() {
    let img = image("photo.png");
    let st = fixtures().join("vit_plain/model.safetensors");
    let st = st.to_str().unwrap();
    fails_with(&["classify", "--model", st, "--arch", "vit_tiny_patch16_224", &img], &[], "mis-shaped");
    fails_with(&["classify", "--model", st, "--arch", "resnet50", &img], &[], "unknown architecture");
    let d = tmp("badcfg");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("config.json"), "{ not json").unwrap();
    std::fs::copy(fixtures().join("vit_plain/model.safetensors"), d.join("model.safetensors")).unwrap();
    fails_with(&["classify", "--model", d.to_str().unwrap(), &img], &[], "config.json");
    // Weights of one model under another model's config: every problem named.
    let d = tmp("mismatch");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(fixtures().join("deit_distilled/config.json"), d.join("config.json")).unwrap();
    std::fs::copy(fixtures().join("vit_plain/model.safetensors"), d.join("model.safetensors")).unwrap();
    fails_with(&["classify", "--model", d.to_str().unwrap(), &img], &[], "missing dist_token");
    fails_with(&["classify", "--model", &model("vit_plain"), "--top-k", "zero", &img], &[], "--top-k");
    fails_with(&["frobnicate"], &[], "unknown command");
}

#[test]
fn no_adapter_is_an_error_not_a_panic() {
    // A backend this machine does not have: no adapter can be found.
    let backend = if cfg!(target_os = "macos") { "dx12" } else { "metal" };
    fails_with(&["classify", &image("photo.png")], &[("WGPU_BACKEND", backend)], "no GPU adapter");
}

#[test]
fn classify_json_reproduces_timm_logits() {
    // A ViT and a Swin hub folder (the issue's "done when": timm's logits from the CLI),
    // and a DynamicViT, whose lines also carry the kept patches of each pruning stage.
    for fixture in ["vit_odd", "swin_3stage_pad", "dynvit_small"] {
        let r = Weights::load(&fixtures().join(fixture).join("reference.safetensors")).unwrap();
        let imgs = [image("photo.png"), image("rgba.png"), image("small_odd.png")];
        let mut args = vec!["classify", "--json", "--batch", "2", "--model"];
        let m = model(fixture);
        args.push(&m);
        args.extend(imgs.iter().map(|s| s.as_str()));
        let out = vitrine(&args, &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3);
        for (line, name) in lines.iter().zip(["photo", "rgba", "small_odd"]) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["image"].as_str().unwrap().ends_with(&format!("{name}.png")));
            let logits: Vec<f32> = v["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            let want = &r.tensors[&format!("image.{name}")].1;
            let (d, m) = max_diff(&logits, want);
            assert!(d <= 1e-4 * m.max(1.0), "{fixture}/{name}: {d}");
            let top = v["top_k"].as_array().unwrap();
            assert_eq!(top.len(), 5);
            let best = want.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
            assert_eq!(top[0]["index"].as_u64().unwrap() as usize, best);
            assert!(top[0]["prob"].as_f64().unwrap() >= top[1]["prob"].as_f64().unwrap());
            let stages = (0..).take_while(|p| r.tensors.contains_key(&format!("image.{name}.kept.{p}"))).count();
            assert_eq!(v.get("kept_tokens").is_some(), stages > 0, "{fixture}: kept_tokens only for DynamicViT");
            for p in 0..stages {
                let got: Vec<f32> = v["kept_tokens"][p].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as f32).collect();
                assert_eq!(got, r.tensors[&format!("image.{name}.kept.{p}")].1, "{fixture}/{name}: stage {p}");
            }
        }
    }
}

#[test]
fn teacher_flags_are_checked() {
    let data = tmp("dynvit-data");
    for class in ["a", "b"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        std::fs::copy(fixtures().join("images/photo.png"), data.join(class).join("0.png")).unwrap();
    }
    let out = tmp("dynvit-out");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let (vit, dyn_) = (model("vit_plain"), model("dynvit_small"));
    let base = ["train", "--data", d, "--out", o, "--epochs", "1", "-b", "1", "--quiet"];
    let with = |extra: &[&'static str], m: &str| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(["--model".to_string(), m.to_string()])
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let run = |args: Vec<String>, needle: &str| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&refs, &[], needle);
    };
    let teacher = fixtures().join("vit_plain").to_str().unwrap().to_string();
    let teacher: &'static str = Box::leak(teacher.into_boxed_str());
    run(with(&["--teacher", teacher], &vit), "trains without a teacher");
    run(with(&["--teacher", teacher], &dyn_), "teacher");
    run(with(&["--backbone-lr-scale", "-1"], &dyn_), "--backbone-lr-scale");
    run(with(&["--ratio-weight", "5"], &vit), "has no keep-ratio loss");
    run(with(&["--ratio-weight", "-2"], &dyn_), "--ratio-weight");
}

#[test]
fn swin_bad_input_is_named() {
    let img = image("photo.png");
    let st = fixtures().join("swin_2stage/model.safetensors");
    let st = st.to_str().unwrap();
    // A bare Swin file: its window and image size are not in the weights.
    fails_with(&["classify", "--model", st, &img], &[], "pass --arch");
    // With a stock preset, the tensors do not fit: named.
    fails_with(&["classify", "--model", st, "--arch", "swin_tiny_patch4_window7_224", &img], &[], "mis-shaped");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("swin_2stage/config.json")).unwrap()).unwrap();
    for (key, value, msg) in [
        ("window_size", serde_json::json!(0), "window_size"),
        ("num_heads", serde_json::json!([2]), "num_heads"),
        ("use_v2", serde_json::json!(true), "use_v2"),
        ("global_pool", serde_json::json!("token"), "token"),
    ] {
        let d = tmp(&format!("swin-bad-{key}"));
        std::fs::create_dir_all(&d).unwrap();
        let mut c = cfg.clone();
        c["model_args"][key] = value;
        std::fs::write(d.join("config.json"), c.to_string()).unwrap();
        std::fs::copy(fixtures().join("swin_2stage/model.safetensors"), d.join("model.safetensors")).unwrap();
        fails_with(&["classify", "--model", d.to_str().unwrap(), &img], &[], msg);
    }
    // Swin V2 is another timm class: refused, not read as v1.
    let d = tmp("swin-v2");
    std::fs::create_dir_all(&d).unwrap();
    let mut c = cfg.clone();
    c["architecture"] = serde_json::json!("swinv2_tiny_window8_256");
    std::fs::write(d.join("config.json"), c.to_string()).unwrap();
    std::fs::copy(fixtures().join("swin_2stage/model.safetensors"), d.join("model.safetensors")).unwrap();
    fails_with(&["classify", "--model", d.to_str().unwrap(), &img], &[], "unknown architecture");
}

#[test]
fn default_model_labels_and_inspect() {
    let out = vitrine(&["classify", &image("photo.png")], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(s.lines().count(), 6, "{s}");
    let labels = tmp("labels.txt");
    std::fs::write(&labels, (0..6).map(|i| format!("thing{i}\n")).collect::<String>()).unwrap();
    let out = vitrine(&["classify", "--model", &model("vit_odd"), "--labels", labels.to_str().unwrap(), &image("gray.png")], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("thing"), "labels file ignored");
    let out = vitrine(&["inspect", "--model", &model("deit_distilled")], &[]);
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("deit_tiny_distilled_patch16_224") && s.contains("head_dist.weight") && s.contains("[1, 1, 48]"), "{s}");
}

/// The built-in model is the Fashion-MNIST ViT of models/default: it names the
/// bundled samples' classes (at least 9 of 10), and `vitrine eval` on Debian's
/// Fashion-MNIST test set reproduces the accuracy its model card states (>= 88 %).
#[test]
fn built_in_model_classifies_fashion_mnist() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 10);
    let names: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = vec!["classify", "--json", "--top-k", "1"];
    args.extend(&names);
    let out = vitrine(&args, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut right = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = v["image"].as_str().unwrap();
        let stem = Path::new(file).file_stem().unwrap().to_str().unwrap();
        let class = stem.rsplit_once('-').unwrap().0.replace('-', " ");
        let label = v["top_k"][0]["label"].as_str().unwrap().to_lowercase().replace('-', " ");
        right += label.starts_with(&class) as usize;
    }
    assert!(right >= 9, "the built-in model named {right} of 10 samples");

    let card = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default/README.md")).unwrap();
    let stated: f64 = card
        .lines()
        .find_map(|l| l.strip_prefix("vitrine eval top1: "))
        .and_then(|v| v.trim().trim_end_matches('%').parse().ok())
        .expect("the model card states `vitrine eval top1: N%`");
    let data = "/usr/share/datasets/fashion-mnist";
    assert!(Path::new(data).is_dir(), "{data} is missing: scripts/test.sh installs dataset-fashion-mnist");
    let out = vitrine(&["eval", "--data", data, "--split", "test", "--json", "-b", "250"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(v["n"], 10000);
    let top1 = v["top1"].as_f64().unwrap();
    assert!(top1 >= 88.0 && (top1 - stated).abs() < 0.005, "built-in model: top1 {top1}%, model card says {stated}%");
}

/// Runs `vitrine args`, asserting exit 0 and nothing on stderr; returns stdout.
fn stdout_of(args: &[&str]) -> String {
    let out = vitrine(args, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: exit {:?}, stderr: {err}", out.status.code());
    assert!(err.is_empty(), "{args:?}: stderr: {err}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_lists_every_command_and_its_flags_with_defaults() {
    let top = stdout_of(&["--help"]);
    for cmd in ["classify", "inspect", "explain", "bench", "tune", "train", "eval", "plot", "presets", "completions", "WGPU_BACKEND"] {
        assert!(top.contains(cmd), "vitrine --help should mention {cmd}: {top}");
    }
    assert_eq!(stdout_of(&[]), top, "a bare vitrine prints the help");
    let commands: [(&str, &[&str]); 9] = [
        (
            "tune",
            &[
                "--model <M>",
                "--arch <PRESET>",
                "--batch <B>...",
                "[default: 1]",
                "--train",
                "--iters <N>",
                "[default: 5]",
                "--show",
                "--clear",
            ],
        ),
        ("explain", &["--model <M>", "--arch <A>", "--out <DIR>", "<IMAGE>..."]),
        ("classify", &["--model <M>", "--arch", "--top-k <K>", "[default: 5]", "--batch <N>", "[default: 1]", "--json", "--labels"]),
        ("inspect", &["--model <M>", "--arch <A>"]),
        ("bench", &["--batch <B>", "--iters <N>", "[default: 10]", "--train", "--matmul", "--kernel <K>"]),
        (
            "train",
            &[
                "--data <D>",
                "--resume <DIR>",
                "--output",
                "-b, --batch-size <B>",
                "[default: 64]",
                "-j, --workers <N>",
                "--model-kwargs <K=V>...",
                "--epochs <N>",
                "[default: 10]",
                "--lr <LR>",
                "[default: 1e-3; 0.01 for sgd and momentum]",
                "--opt-betas <BETA1> <BETA2>",
                "--scale <MIN> <MAX>",
                "[default: 0.08 1]",
                "--ratio <MIN> <MAX>",
                "--seed <N>",
                "[default: 42]",
                "--no-aug",
                "--freeze-backbone",
                "--sched-on-updates",
                "--stop-after <STEPS>",
                "--quiet",
                "--teacher <DIR>",
                "--backbone-lr-scale <S>",
                "--backbone-freeze-epochs <E>",
                "--ratio-weight <W>",
            ],
        ),
        ("eval", &["--data <D>", "--split <SPLIT>", "[default: val]", "-b, --batch-size <B>", "[default: 64]", "--json", "-j, --workers"]),
        ("presets", &["Usage: vitrine presets"]),
        ("completions", &["<SHELL>", "bash", "zsh", "fish"]),
    ];
    for (cmd, needles) in commands {
        let help = stdout_of(&[cmd, "--help"]);
        for n in needles {
            assert!(help.contains(n), "vitrine {cmd} --help should mention {n:?}: {help}");
        }
        assert_eq!(stdout_of(&[cmd, "-h"]), help, "{cmd}: -h and --help differ");
    }
}

#[test]
fn version_and_shell_completions() {
    assert_eq!(stdout_of(&["--version"]).trim(), format!("vitrine {}", env!("CARGO_PKG_VERSION")));
    let bash = stdout_of(&["completions", "bash"]);
    assert!(bash.contains("vitrine") && bash.contains("--batch-size") && bash.contains("complete"), "{bash}");
    for shell in ["zsh", "fish"] {
        assert!(stdout_of(&["completions", shell]).contains("vitrine"), "{shell}");
    }
}

#[test]
fn bad_flags_are_one_error_line() {
    fails_with(&["classify", "--frobnicate", &image("photo.png")], &[], "unknown option --frobnicate");
    fails_with(&["train", "--epochs=3", "--jsn"], &[], "unknown option --jsn");
    fails_with(&["inspect", "stray"], &[], "stray");
    fails_with(&["train", "--lr"], &[], "--lr needs a value");
    fails_with(&["train", "-b", "x"], &[], "--batch-size must be a positive integer");
    fails_with(&["eval", "--workers", "0"], &[], "--workers must be a positive integer");
    fails_with(&["train", "--hflip", "often"], &[], "--hflip must be a number");
    fails_with(&["train", "--scale", "0.5"], &[], "--scale takes 2 values");
    fails_with(&["train", "--crop", "square"], &[], "--crop");
    fails_with(&["completions", "tcsh"], &[], "tcsh");
    fails_with(&["completions"], &[], "SHELL");
}

#[test]
fn explain_greys_out_the_patches_dynamicvit_drops() {
    // The PNG: the eval-cropped input (28 x 28, drawn 8x), then one panel per pruning stage;
    // a kept patch shows the input's pixels, a dropped one is faded. Checked against the
    // kept tokens classify --json reports for the same image.
    let out = tmp("explain.png");
    let _ = std::fs::remove_file(&out);
    let (m, img) = (model("dynvit_small"), image("photo.png"));
    let text = String::from_utf8(vitrine(&["explain", "--model", &m, "--out", out.to_str().unwrap(), &img], &[]).stdout).unwrap();
    assert!(text.contains("196 -> 137 -> 96 -> 67 patches kept"), "{text}");
    let json = String::from_utf8(vitrine(&["classify", "--json", "--model", &m, &img], &[]).stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["patch_grid"], serde_json::json!([14, 14]));
    let png = image::open(&out).unwrap().to_rgb8();
    // Two 14-pixel text bands on top: the top-1 line, then the panels' captions.
    let (side, gap, top) = (224u32, 4u32, 28u32);
    assert_eq!((png.width(), png.height()), (4 * side + 3 * gap, side + top));
    for stage in 0..3 {
        let kept: Vec<u64> = v["kept_tokens"][stage].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        for patch in [0u64, 50, 97, 150, 195] {
            // The centre of the patch (16 px per patch at 8x).
            let (x, y) = ((patch % 14) as u32 * 16 + 8, top + (patch / 14) as u32 * 16 + 8);
            let orig = png.get_pixel(x, y);
            let here = png.get_pixel((stage as u32 + 1) * (side + gap) + x, y);
            if kept.contains(&patch) {
                assert_eq!(here, orig, "stage {stage}: kept patch {patch} changed");
            } else {
                assert_eq!(here.0, orig.0.map(|c| (c as u16 / 4 + 160) as u8), "stage {stage}: dropped patch {patch} not faded");
            }
        }
    }
    fails_with(
        &["explain", "--model", &model("swin_2stage"), "--out", out.to_str().unwrap(), &img],
        &[],
        "swin family) has no single class token",
    );
}

#[test]
fn tune_measures_stores_and_bench_uses_the_choices() {
    let dir = tmp("tune-cache");
    let _ = std::fs::remove_dir_all(&dir);
    let cache = dir.display().to_string();
    let env = [("VITRINE_CACHE_DIR", cache.as_str())];
    let m = model("vit_plain");
    let run = |args: &[&str]| {
        let out = vitrine(args, &env);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let before = run(&["bench", "--model", &m, "--iters", "1"]);
    assert!(before.contains("matmul kernels: the rule"), "{before}");
    let out = run(&["tune", "--model", &m, "--batch", "1", "2", "--train", "--iters", "1"]);
    let shapes = out.lines().filter(|l| l.starts_with('[')).count();
    assert!(shapes >= 6, "one progress line per tunable shape: {out}");
    assert!(out.contains(&format!("stored {shapes} choices in {cache}")), "{out}");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("tune_") && n.ends_with(".json")));
    let file = file.expect("a tune_*.json next to the pipeline cache");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), shapes);
    for e in entries {
        let times = e["ms"].as_array().unwrap();
        assert!(times.len() >= 2, "every variant the adapter has is timed: {e}");
        let best = times.iter().min_by(|a, b| a[1].as_f64().unwrap().total_cmp(&b[1].as_f64().unwrap())).unwrap();
        assert_eq!(e["kernel"], best[0], "the fastest variant is stored: {e}");
    }
    let after = run(&["bench", "--model", &m, "--iters", "1"]);
    assert!(after.contains(&format!("matmul kernels: measured for {shapes} shapes")), "{after}");
    // A forced variant overrides the measured choices.
    let forced = vitrine(&["bench", "--model", &m, "--iters", "1"], &[env[0], ("VITRINE_MATMUL", "register")]);
    assert!(String::from_utf8_lossy(&forced.stdout).contains("matmul kernels: the rule (Register)"));
    let shown = run(&["tune", "--show"]);
    assert!(shown.starts_with("adapter: ") && shown.contains(&format!("{shapes} choices in")), "{shown}");
    // A corrupt file: bench warns (stderr) and uses the rule; tune refuses to merge into it.
    std::fs::write(&file, "{ not json").unwrap();
    let out = vitrine(&["bench", "--model", &m, "--iters", "1"], &[env[0], ("RUST_LOG", "warn")]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("matmul kernels: the rule"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a vitrine tune file"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(run(&["tune", "--show"]).contains("not a vitrine tune file"));
    let out = vitrine(&["tune", "--model", &m, "--iters", "1"], &env);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("starting a new one"));
    assert!(serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&file).unwrap()).is_ok(), "tune replaced the corrupt file");
    assert!(run(&["tune", "--clear"]).contains("removed"));
    assert!(!file.exists());
    fails_with(&["tune", "--model", &m], &[("VITRINE_CACHE_DIR", "")], "no cache folder");
}
