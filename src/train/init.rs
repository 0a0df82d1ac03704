//! Fresh weights as timm's `VisionTransformer.init_weights` (mode '') makes
//! them: Linear weights trunc_normal(std 0.02) with zero bias, LayerNorm
//! (1, 0), pos_embed / dist_token trunc_normal(0.02), cls / reg tokens
//! normal(1e-6), layer scale gammas `init_values`, and the patch-embedding
//! conv with PyTorch's default (uniform +-1/sqrt(fan_in)).

use super::data::Rng;
use std::collections::HashMap;

fn normal(rng: &mut Rng) -> f64 {
    // Box-Muller.
    let u1 = rng.unit().max(f64::MIN_POSITIVE);
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Values for one tensor; `init_values` is the layer-scale init.
pub fn init_tensor(name: &str, shape: &[usize], init_values: Option<f64>, rng: &mut Rng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let leaf = name.rsplit('.').next().unwrap_or(name);
    let trunc = |rng: &mut Rng, std: f64| -> Vec<f32> {
        (0..n)
            .map(|_| loop {
                let x = normal(rng);
                if x.abs() <= 2.0 / std {
                    break (x * std) as f32;
                }
            })
            .collect()
    };
    if name.starts_with("patch_embed.proj.") {
        // Conv2d default: kaiming_uniform(a=sqrt(5)) -> U(-1/sqrt(fan_in), +).
        let fan_in = if shape.len() == 4 { shape[1] * shape[2] * shape[3] } else { 1 };
        let bound = 1.0 / (fan_in as f64).sqrt();
        return (0..n).map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32).collect();
    }
    match leaf {
        "gamma" => vec![init_values.unwrap_or(1.0) as f32; n],
        "cls_token" | "reg_token" => (0..n).map(|_| (normal(rng) * 1e-6) as f32).collect(),
        "pos_embed" | "dist_token" => trunc(rng, 0.02),
        "bias" => vec![0.0; n],
        "weight" if shape.len() == 1 => vec![1.0; n], // LayerNorm
        _ => trunc(rng, 0.02),                        // Linear weights, anything else
    }
}

/// Fresh weights for every tensor of a model's table (name, shape).
pub fn init_weights(table: &[(String, Vec<usize>)], init_values: Option<f64>, seed: u64) -> HashMap<String, Vec<f32>> {
    let mut rng = Rng::new(seed);
    table.iter().map(|(name, shape)| (name.clone(), init_tensor(name, shape, init_values, &mut rng))).collect()
}
