// matmul_io.wgsl: constants and bindings shared by the vec4 matmul kernels
// (matmul, matmul_reg, matmul_subgroup), which the registry composes as
// gelu + matmul_io + kernel + epilogue.
//
// out[Z, M, N] = res + gamma * act(a[z] . w[z or 0]^T + bias)
// Bindings (f32, row-major):
//   0 a     [Z, M, K]       read as vec4 (K % 4 == 0)
//   1 w     [Z or 1, N, K]  read as vec4 (nn.Linear layout [out, in])
//   2 bias  [N]             used when HAS_BIAS == 1
//   3 gamma [N]             layer scale, used when HAS_GAMMA == 1
//   4 res   [Z, M, N]       residual, used when HAS_RES == 1
//   5 out   [Z, M, N]       Z = independent products (grid z; 1 for a linear layer)

const M: u32 = 1u;
const N: u32 = 1u;
const K4: u32 = 1u;
const HAS_BIAS: u32 = 1u;
const ACT: u32 = 0u;
const HAS_GAMMA: u32 = 0u;
const HAS_RES: u32 = 0u;
// W_BATCHED == 1: w holds one [N, K] matrix per z; 0: shared by all z.
const W_BATCHED: u32 = 0u;

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
