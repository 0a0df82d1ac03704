//! A small graph built from ops directly, to show the layers under the model
//! families: an MLP on patch tokens (LayerNorm -> Linear + GELU -> Linear with
//! a residual -> mean over tokens), planned, compiled and run on the GPU, and
//! checked against the graph's plain CPU reference.
//!
//! ```sh
//! cargo run --release --example custom_graph
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use vitrine::graph::Graph;
use vitrine::ops::{Act, PoolMode};
use vitrine::{Engine, Result};

fn run() -> Result<()> {
    let (b, t, c, hidden) = (2, 49, 32, 64); // batch, tokens, channels, MLP width
    let mut g = Graph::new();
    let x = g.input(&[b, t, c]); // [B, T, C]
    g.scope("mlp");
    let (nw, nb) = (g.param("norm.weight", &[c]), g.param("norm.bias", &[c]));
    let h = g.layernorm(x, nw, nb, 1e-6)?;
    let (w1, b1) = (g.param("fc1.weight", &[hidden, c]), g.param("fc1.bias", &[hidden]));
    let h = g.linear_fused(h, w1, Some(b1), Act::Gelu, None, None)?; // [B, T, hidden]
    let (w2, b2) = (g.param("fc2.weight", &[c, hidden]), g.param("fc2.bias", &[c]));
    let y = g.linear_fused(h, w2, Some(b2), Act::None, None, Some(x))?; // x + fc2(...)
    g.scope("pool");
    let pooled = g.pool(y, PoolMode::Avg(0))?; // [B, C]
    g.output(pooled);

    // Deterministic weights and input (any values work; names are the graph's).
    let mut seed = 1u32;
    let mut rand = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    };
    let weights: HashMap<String, Vec<f32>> =
        g.param_table().into_iter().map(|(name, shape)| (name, rand(shape.iter().product()))).collect();
    let input = rand(b * t * c);

    let mut engine = Engine::new_blocking()?;
    let exe = engine.compile(&g, &weights)?; // plan + upload + pipelines + bind groups, once
    let plan = exe.plan();
    println!(
        "graph: {} tensors, {} dispatches in {} scopes, {} activation slots ({} bytes), {} pipelines",
        g.tensors.len(),
        plan.steps.len(),
        plan.scopes.len(),
        plan.slots.len(),
        plan.activation_bytes(),
        engine.pipeline_count()
    );
    let gpu = pollster::block_on(exe.run(&engine.ctx, &[&input]))?; // write input, record, one submit, read back
    let cpu = g.eval_cpu(&[input], &weights)?;
    let diff = gpu[0].iter().zip(&cpu[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("output [{b}, {c}]: first values {:?}", &gpu[0][..4]);
    println!("max |gpu - cpu| = {diff:.2e}");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
