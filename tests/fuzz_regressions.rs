//! Every input that once crashed a fuzz target (fuzz/regressions/TARGET/*, found by
//! scripts/fuzz.sh), replayed through the same target body the fuzzer runs
//! (`vitrine::fuzz`), plus a well-formed input per target built from the fixtures so
//! that each target is seen reaching its reader. A panic or an input over 1 s fails the
//! test; an abort or a runaway allocation takes the test process down with it.

use std::path::{Path, PathBuf};
use vitrine::fuzz::TARGETS;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `parts` encoding (see `vitrine::fuzz::parts`).
fn parts(ps: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in ps.iter().enumerate() {
        if i + 1 < ps.len() {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(p);
    }
    out
}

#[test]
fn crashes_found_by_fuzzing_stay_fixed() {
    let dir = root().join("fuzz/regressions");
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let Ok(entries) = std::fs::read_dir(dir.join(name)) else { continue };
        let mut files: Vec<PathBuf> = entries.map(|e| e.expect("readable entry").path()).collect();
        files.sort();
        for f in files {
            let t0 = std::time::Instant::now();
            target(&read(&f)).unwrap_or_else(|e| panic!("{name} {}: harness failed: {e}", f.display()));
            // The fuzzer's limit is 1 s an input on its (slower, instrumented) build.
            let limit = if cfg!(debug_assertions) { 5.0 } else { 1.0 };
            let secs = t0.elapsed().as_secs_f64();
            assert!(secs < limit, "{name} {}: took {secs:.2} s (limit {limit} s)", f.display());
            replayed += 1;
        }
    }
    assert!(replayed >= 1, "no regression inputs under {}", dir.display());
}

#[test]
fn parts_splits_as_the_seeds_are_written() {
    assert_eq!(vitrine::fuzz::parts(&parts(&[b"ab", b"", b"cde"]), 3), vec![&b"ab"[..], b"", b"cde"]);
    // Lengths past the end are clamped; missing parts are empty.
    assert_eq!(vitrine::fuzz::parts(&[9, 0, 0, 0, 1, 2], 3), vec![&[1u8, 2][..], b"", b""]);
}

#[test]
fn each_target_reads_a_well_formed_input() {
    let fx = root().join("tests/fixtures");
    let default = root().join("models/default");
    let ck = root().join("fuzz/seeds/checkpoint");
    let ck_files: Vec<Vec<u8>> =
        ["train_state.json", "config.json", "model.safetensors", "optimizer.safetensors"].iter().map(|f| read(&ck.join(f))).collect();
    let mut checkpoint = vec![0u8];
    checkpoint.extend(parts(&ck_files.iter().map(Vec::as_slice).collect::<Vec<_>>()));
    let png = read(&fx.join("images/photo.png"));
    let mut image = vec![0u8];
    image.extend_from_slice(&png);
    let mut folder = vec![3u8];
    folder.extend(parts(&[&png, &png, &png]));
    let inputs = [
        ("model", parts(&[&read(&default.join("config.json")), &read(&default.join("model.safetensors"))])),
        ("image", image),
        ("data", folder),
        ("checkpoint", checkpoint),
    ];
    for (name, input) in inputs {
        let (_, target) = TARGETS.iter().find(|(n, _)| *n == name).expect("target");
        target(&input).unwrap_or_else(|e| panic!("{name}: harness failed: {e}"));
    }
    // The inputs above are accepted by the readers themselves (not just survived).
    let w = vitrine::weights::Weights::from_bytes(&read(&default.join("model.safetensors")), "default").unwrap();
    vitrine::Model::from_parts(Some(&String::from_utf8(read(&default.join("config.json"))).unwrap()), w, None, "default").unwrap();
    let out = std::env::temp_dir().join(format!("vitrine-fuzz-ck-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    for (f, b) in ["train_state.json", "config.json", "model.safetensors", "optimizer.safetensors"].iter().zip(&ck_files) {
        std::fs::write(out.join(f), b).unwrap();
    }
    let r = vitrine::train::resume::load_resume(&out).expect("the seed checkpoint resumes");
    assert_eq!(r.state.global_step, 2, "the seed checkpoint is a 2-step run");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn images_at_the_decode_limit_take_seconds_not_minutes() {
    // fuzz/at_limit/image: image-target inputs (first byte 4: 224 px RGB, bicubic, center
    // crop 0.875) whose images have 5792 x 5792 pixels, just under the readers' limit of
    // 2^25 (black PNG, GIF and lossless WebP written by Pillow: 1.3 to 32 KB each). The fuzz
    // harness stops at 3 M pixels (vitrine::fuzz::MAX_PIXELS); these run the same body at
    // the readers' own limit: decode, eval transform and training crop in release within
    // 2 s each in release (measured 0.65-0.71 s on a 2 vCPU Intel Xeon dev VM, a fuzzer
    // running beside it; a superlinear cost would take many times that), 10 s in debug.
    let dir = root().join("fuzz/at_limit/image");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.expect("readable entry").path()).collect();
    files.sort();
    assert_eq!(files.len(), 3, "{}: expected the three limit-size images", dir.display());
    let limit = if cfg!(debug_assertions) { 10.0 } else { 2.0 };
    for f in files {
        let bytes = read(&f);
        let img = vitrine::preprocess::decode(&bytes[1..], "limit", 3).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!((img.width, img.height), (5792, 5792), "{}", f.display());
        let t0 = std::time::Instant::now();
        vitrine::fuzz::image_within(&bytes, vitrine::preprocess::MAX_DECODE_PIXELS)
            .unwrap_or_else(|e| panic!("{}: harness failed: {e}", f.display()));
        let secs = t0.elapsed().as_secs_f64();
        eprintln!("{}: {secs:.2} s", f.display());
        assert!(secs < limit, "{}: took {secs:.2} s (limit {limit} s)", f.display());
        // The fuzz harness's own cap refuses them before allocating their pixels.
        let t0 = std::time::Instant::now();
        vitrine::fuzz::image(&bytes).unwrap_or_else(|e| panic!("{}: harness failed: {e}", f.display()));
        assert!(t0.elapsed().as_secs_f64() < 0.1, "{}: the fuzz harness decoded past its cap", f.display());
    }
}
