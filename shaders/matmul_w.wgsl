// matmul_w.wgsl: the weight binding of the matmul kernels, f32 (see matmul_io.wgsl).
// Kernels read w through load_w (the vec4 kernels: element 4i .. 4i+3 as VEC)
// and load_w1 (matmul_scalar: element i); matmul_w_f16.wgsl reads packed halves.

@group(0) @binding(1) var<storage, read> w: array<VEC>;

fn load_w(i: u32) -> VEC {
    return w[i];
}

fn load_w1(i: u32) -> VEC {
    return w[i];
}
