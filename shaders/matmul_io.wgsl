// matmul_io.wgsl: the shape uniform and bindings shared by every matmul
// kernel (matmul, matmul_reg, matmul_subgroup, matmul_scalar), which the
// registry composes as gelu + matmul_io + matmul_a + matmul_w + matmul_out (each
// f32 or f16: matmul_*_f16.wgsl) + kernel + epilogue.
//
// out[Z, M, N] = res + gamma * act(a[z] . w[z or 0]^T + bias)
// Bindings (row-major; f32, except a, w and out in the f16 variants):
//   0 a     [Z, M, K]       read as vec4 (K % 4 == 0) except by matmul_scalar
//   1 w     [Z or 1, N, K]  (nn.Linear layout [out, in])
//   2 bias  [N]             used when has_bias == 1
//   3 gamma [N]             layer scale, used when has_gamma == 1
//   4 res   [Z, M, N]       residual, used when has_res == 1
//   5 out   [Z, M, N]       Z = independent products (grid z; 1 for a linear layer)
//   6 dims  uniform MatmulDims
// Shapes and epilogue switches are uniform values, not constants: one
// pipeline per kernel serves every matmul of a model (compiling a fully
// unrolled kernel costs seconds on CPU adapters).

struct MatmulDims {
    m: u32,
    n: u32,
    // K / 4 for the vec4 kernels, K for matmul_scalar.
    k: u32,
    has_bias: u32,
    // 1: exact GELU.
    act: u32,
    has_gamma: u32,
    has_res: u32,
    // 1: w holds one [N, K] matrix per z; 0: shared by all z.
    w_batched: u32,
    // Z, for kernels that pack the products into one linear dispatch (matmul_reg).
    z: u32,
    // H > 0: the Z = B * H products are attention heads, written merged,
    // out [B, M, H * N] (epilogue.wgsl's out_index); 0: out [Z, M, N].
    heads: u32,
}

// binding 0, a: matmul_a.wgsl (f32) or matmul_a_f16.wgsl (packed halves).
// binding 1, w: matmul_w.wgsl (f32) or matmul_w_f16.wgsl (packed halves).
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
// binding 5, out: matmul_out.wgsl (f32) or matmul_out_f16.wgsl (f16 elements).
@group(0) @binding(6) var<uniform> dims: MatmulDims;

// f16 data (matmul_a_f16, matmul_w_f16) is read as vec2<u32>, four halves, low half
// first, widened to f32 (unpack2x16float: core WGSL, no SHADER_F16 needed).
// Elements 4i .. 4i+3 from the pair at index i:
fn unpack_half4(p: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
}

// Element i % 4 of the pair holding element i.
fn unpack_half1(p: vec2<u32>, i: u32) -> f32 {
    return unpack2x16float(p[(i / 2u) % 2u])[i % 2u];
}
