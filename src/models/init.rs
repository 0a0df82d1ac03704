//! Fresh-weight rules shared by the families (each family's
//! [`Arch::init`](super::family::Arch::init) decides which apply to its
//! tensors): timm's `VisionTransformer.init_weights` (mode ''): Linear weights
//! trunc_normal(std 0.02) with zero bias, LayerNorm (1, 0), pos_embed /
//! dist_token trunc_normal(0.02), cls / reg tokens normal(1e-6), layer scale
//! gammas `init_values`, and the patch-embedding conv with PyTorch's default
//! (uniform +-1/sqrt(fan_in)).

use crate::rng::{normal, Rng};

/// `n` draws of trunc_normal(0, std) cut at +-2 (timm's absolute cut).
pub fn trunc_normal(n: usize, std: f64, rng: &mut Rng) -> Vec<f32> {
    (0..n)
        .map(|_| loop {
            let x = normal(rng);
            if x.abs() <= 2.0 / std {
                break (x * std) as f32;
            }
        })
        .collect()
}

/// `n` draws of U(-bound, bound): PyTorch's default Conv2d / Linear init
/// (kaiming_uniform(a = sqrt(5))) has bound 1/sqrt(fan_in).
pub fn uniform(n: usize, bound: f64, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32).collect()
}

/// timm's ViT rules by tensor name; `layer_scale` is the gammas' init value.
pub fn timm_vit(name: &str, shape: &[usize], layer_scale: Option<f64>, rng: &mut Rng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let leaf = name.rsplit('.').next().unwrap_or(name);
    if name.starts_with("patch_embed.proj.") {
        // The conv's weight as PyTorch inits it; its bias with bound 1 (as
        // vitrine always has: the bias does not know the weight's fan-in).
        let fan_in = if shape.len() == 4 { shape[1] * shape[2] * shape[3] } else { 1 };
        return uniform(n, 1.0 / (fan_in as f64).sqrt(), rng);
    }
    match leaf {
        "gamma" => vec![layer_scale.unwrap_or(1.0) as f32; n],
        "cls_token" | "reg_token" => (0..n).map(|_| (normal(rng) * 1e-6) as f32).collect(),
        "pos_embed" | "dist_token" => trunc_normal(n, 0.02, rng),
        "bias" => vec![0.0; n],
        "weight" if shape.len() == 1 => vec![1.0; n], // LayerNorm
        _ => trunc_normal(n, 0.02, rng),              // Linear weights, anything else
    }
}

/// `nn.init.orthogonal_` of a `[rows, cols]` Gaussian matrix, times `gain`: orthonormal rows
/// when `rows <= cols` (orthonormal columns otherwise), by Gram-Schmidt in f64 over the
/// shorter side (the same distribution as PyTorch's sign-corrected QR).
pub fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut Rng) -> Vec<f32> {
    let (n, len) = if rows <= cols { (rows, cols) } else { (cols, rows) };
    let mut v: Vec<Vec<f64>> = Vec::with_capacity(n);
    while v.len() < n {
        let mut x: Vec<f64> = (0..len).map(|_| crate::rng::normal(rng)).collect();
        for u in &v {
            let d: f64 = x.iter().zip(u).map(|(a, b)| a * b).sum();
            x.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
        }
        let norm = x.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 1e-8 {
            v.push(x.into_iter().map(|a| a / norm).collect());
        }
    }
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let x = if rows <= cols { v[r][c] } else { v[c][r] };
            out[r * cols + c] = (x * gain) as f32;
        }
    }
    out
}
