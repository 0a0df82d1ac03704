//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
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
