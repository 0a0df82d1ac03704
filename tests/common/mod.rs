//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use vitrine::Engine;

/// Deterministic values in [-scale, scale) (xorshift; no rand dependency).
pub fn rand_vec(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// One engine per test binary (device creation is slow on lavapipe).
pub fn engine() -> MutexGuard<'static, Engine> {
    static ENGINE: OnceLock<Mutex<Engine>> = OnceLock::new();
    let e = ENGINE.get_or_init(|| Mutex::new(Engine::new_blocking().expect("a GPU adapter (lavapipe in CI)")));
    e.lock().unwrap_or_else(|p| p.into_inner())
}

/// max |a - b| and max |b|.
pub fn max_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let m = b.iter().map(|x| x.abs()).fold(0f32, f32::max);
    (d, m)
}

pub type Weights = HashMap<String, Vec<f32>>;

/// A path under the test target's temp folder, in `group` (created).
pub fn tmp(group: &str, name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(group);
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Runs the `vitrine` binary.
pub fn vitrine(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vitrine"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run vitrine")
}

/// Asserts exit code 1 and exactly one stderr line, starting `error:` and containing `needle`.
pub fn fails_with(args: &[&str], env: &[(&str, &str)], needle: &str) {
    let out = vitrine(args, env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: exit {:?}, stderr: {err}", out.status.code());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got: {err}");
    assert!(lines[0].starts_with("error: "), "{args:?}: {err}");
    assert!(lines[0].contains(needle), "{args:?}: {err:?} should mention {needle:?}");
}
