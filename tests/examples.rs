//! The programs in examples/ run and print what they promise. `cargo test`
//! builds the examples next to the test binaries (target/<profile>/examples/).

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = dir.join("examples").join(name);
    assert!(path.exists(), "{} not built (cargo test builds examples/)", path.display());
    path
}

fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/samples").join(name).display().to_string()
}

/// Runs an example; asserts success and returns its stdout.
fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name)).args(args).output().expect("run example");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "example {name} failed: {stderr}\n{stdout}");
    stdout
}

#[test]
fn classify_prints_top5_of_the_sample() {
    let out = run("classify", &[&sample("ankle-boot-0.png"), &sample("trouser-2.png")]);
    let firsts: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("1. ")).collect();
    assert_eq!(firsts.len(), 2, "{out}");
    assert!(firsts[0].contains("Ankle boot"), "{out}");
    assert!(firsts[1].contains("Trouser"), "{out}");
    assert_eq!(out.lines().filter(|l| l.trim_start().starts_with("5. ")).count(), 2, "{out}");
}

#[test]
fn features_prints_embeddings_and_similarities() {
    let boot = sample("ankle-boot-0.png");
    let out = run("features", &[&boot, &boot, &sample("trouser-2.png")]);
    // The built-in ViT's embedding is its width, 64.
    assert_eq!(out.lines().filter(|l| l.contains("embedding of 64 values")).count(), 3, "{out}");
    let sims: Vec<f64> = out
        .lines()
        .filter(|l| l.starts_with("cosine("))
        .map(|l| l.rsplit("= ").next().and_then(|v| v.trim().parse().ok()).expect("a number"))
        .collect();
    assert_eq!(sims.len(), 2, "{out}");
    assert!((sims[0] - 1.0).abs() < 1e-4, "an image with itself: {}", sims[0]);
    assert!(sims[1] < 0.99, "a boot and a trouser should differ: {}", sims[1]);
}

#[test]
fn custom_graph_matches_its_cpu_reference() {
    let out = run("custom_graph", &[]);
    let diff: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("max |gpu - cpu| = "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no difference line: {out}"));
    assert!(diff < 1e-4, "GPU vs CPU reference: {diff}");
    assert!(out.contains("dispatches"), "{out}");
}

#[test]
fn fine_tune_writes_a_hub_folder_the_cli_loads() {
    // An ImageFolder with two classes of 8 images (copies of two samples).
    let data = common::tmp("examples", "fine_tune_data");
    let _ = std::fs::remove_dir_all(&data);
    for (class, src) in [("boot", "ankle-boot-0.png"), ("trouser", "trouser-2.png")] {
        let dir = data.join("train").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..8 {
            std::fs::copy(sample(src), dir.join(format!("{i}.png"))).unwrap();
        }
    }
    let out_dir = common::tmp("examples", "fine_tune_out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = run("fine_tune", &[&data.display().to_string(), &out_dir.display().to_string()]);
    assert!(out.contains("replacing the 10-class head with a new 2-class head"), "{out}");
    assert!(out.contains("trained 1 epoch(s)"), "{out}");
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["num_classes"], 2, "{cfg}");
    assert_eq!(cfg["label_names"], serde_json::json!(["boot", "trouser"]), "{cfg}");
    // The CLI loads the folder and gives two-class predictions.
    let cli = common::vitrine(&["classify", "--json", "--model", &out_dir.display().to_string(), &sample("trouser-2.png")], &[]);
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let row: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(row["logits"].as_array().map(Vec::len), Some(2), "{row}");
}

#[test]
fn variable_batch_compiles_only_new_sizes_and_buckets_compile_nothing() {
    let out = run("variable_batch", &[]);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("batch ")).collect();
    assert_eq!(lines.len(), 8, "{out}");
    for (i, l) in lines.iter().enumerate() {
        let n = i + 1;
        assert!(l.contains("bucket") && l.contains("0 new pipelines, run"), "{l}");
        // Sizes that are buckets were compiled up front; the others compile their shape-specific kernels.
        let fresh = !l.contains("(0 new pipelines)");
        assert_eq!(fresh, ![1, 2, 4, 8].contains(&n), "{l}");
    }
}

#[test]
fn soak_runs_short_and_reports_flat_memory() {
    // The long run (10,000) is docs/RELIABILITY.md's; here 300 classifications, two models.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit_plain");
    let out = run("soak", &["300", fixture.to_str().unwrap()]);
    let done = out.lines().find(|l| l.starts_with("done: 300 classifications")).unwrap_or_default();
    assert!(done.contains("RSS"), "{out}");
    let buffers = out.lines().last().unwrap_or_default();
    assert!(buffers.starts_with("GPU buffers ") && buffers.contains("(+0.0 %)"), "GPU buffers grew: {out}");
}
