//! The persistent pipeline cache: written after compiling, reused, and safe
//! against a corrupt, truncated or foreign file (ignored, then replaced).
//! Runs where the adapter has PIPELINE_CACHE (Vulkan: lavapipe in CI) and
//! checks that no file is written where it has not.

mod common;
use std::path::{Path, PathBuf};
use vitrine::{Classifier, Engine, EngineOptions, Model};

fn classify_with_cache(dir: &Path) -> (String, bool) {
    let opts = EngineOptions { pipeline_cache_dir: Some(dir.to_path_buf()), ..EngineOptions::from_env() };
    let mut engine = pollster::block_on(Engine::with_options(opts)).expect("a GPU adapter (lavapipe in CI)");
    let supported = engine.context().has_pipeline_cache();
    let image = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/samples/ankle-boot-0.png")).unwrap();
    let mut clf = Classifier::new(Model::builtin().unwrap());
    let top = clf.classify(&mut engine, &image, 1).unwrap();
    (top[0].label.clone(), supported)
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
}

#[test]
fn cache_file_is_written_reused_and_survives_corruption() {
    let _gpu = common::engine(); // one GPU user at a time within this binary
    let dir = common::tmp("pipeline_cache", "cache");
    let _ = std::fs::remove_dir_all(&dir);
    let (label, supported) = classify_with_cache(&dir);
    assert_eq!(label, "Ankle boot");
    let files = cache_files(&dir);
    if !supported {
        assert!(files.is_empty(), "no PIPELINE_CACHE, yet files were written: {files:?}");
        return;
    }
    assert_eq!(files.len(), 1, "one file per adapter and driver: {files:?}");
    let file = &files[0];
    let good = std::fs::read(file).unwrap();
    assert_eq!(&good[..8], b"VTRNPC01", "magic");

    // Reused: a second engine loads it and classifies the same.
    assert_eq!(classify_with_cache(&dir).0, "Ankle boot");

    // Garbage, a truncated file, a flipped payload byte (checksum), and a valid
    // checksum around foreign data (wgpu's header check): each is ignored and replaced.
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x5a;
    let mut foreign = b"VTRNPC01".to_vec();
    let payload = b"WGPUPLCH not really a cache from this adapter".to_vec();
    let sum = payload.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    foreign.extend_from_slice(&sum.to_le_bytes());
    foreign.extend_from_slice(&payload);
    for (what, bytes) in
        [("garbage", b"\x00\x01not a cache".to_vec()), ("truncated", good[..10].to_vec()), ("flipped", flipped), ("foreign", foreign)]
    {
        std::fs::write(file, &bytes).unwrap();
        assert_eq!(classify_with_cache(&dir).0, "Ankle boot", "{what} cache file");
        let now = std::fs::read(file).unwrap();
        assert_eq!(&now[..8], b"VTRNPC01", "{what} cache file was not replaced");
        assert_ne!(now, bytes, "{what} cache file was not replaced");
    }
    assert!(cache_files(&dir).iter().all(|p| p.extension().is_some_and(|e| e == "bin")), "temporary files left behind");
}
