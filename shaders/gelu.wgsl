// gelu.wgsl: exact (erf) GELU, shared by the kernels that fuse it.
// No bindings. Prepended to a kernel by the shader registry.
//
// erf uses Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), so
// gelu(x) = 0.5 x (1 + erf(x / sqrt 2)) is within ~1e-7 |x| of the exact form.

fn erf_f32(x: f32) -> f32 {
    let s = sign(x);
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    return s * (1.0 - poly * exp(-a * a));
}

fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_f32(x * 0.70710678118654752));
}

// d/dx gelu(x) = Phi(x) + x * phi(x)
fn gelu_grad(x: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf_f32(x * 0.70710678118654752));
    let pdf = 0.39894228040143268 * exp(-0.5 * x * x);
    return cdf + x * pdf;
}
