// matmul_a.wgsl: the left operand binding of the matmul kernels, f32 (see matmul_io.wgsl).
// Kernels read a through load_a (the vec4 kernels: element 4i .. 4i+3 as VEC) and
// load_a1 (matmul_scalar: element i); matmul_a_f16.wgsl reads packed halves.

@group(0) @binding(0) var<storage, read> a: array<VEC>;

fn load_a(i: u32) -> VEC {
    return a[i];
}

fn load_a1(i: u32) -> VEC {
    return a[i];
}
