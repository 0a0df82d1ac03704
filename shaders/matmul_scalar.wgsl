// matmul_scalar.wgsl: out = epilogue(A . W^T) for any K (scalar loads).
// Used when K % 4 != 0 (e.g. a 7x7x3 patch embedding, K = 147).
//
// Bindings (f32, row-major):
//   0 a     [Z, M, K]
//   1 w     [Z or 1, N, K]  (nn.Linear layout [out, in])
//   2 bias  [N]     used when HAS_BIAS == 1
//   3 gamma [N]     used when HAS_GAMMA == 1
//   4 res   [Z, M, N]  used when HAS_RES == 1
//   5 out   [Z, M, N]   (Z = batch of independent products, grid z)
// Dispatch: ceil(M/4) * ceil(N/4) invocations (4x4 outputs each), workgroups of 64, grid z = Z.

const M: u32 = 1u;
const N: u32 = 1u;
const K: u32 = 1u;
const HAS_BIAS: u32 = 1u;
const ACT: u32 = 0u;
const HAS_GAMMA: u32 = 0u;
const HAS_RES: u32 = 0u;
// W_BATCHED == 1: w holds one [N, K] matrix per z; 0: shared by all z.
const W_BATCHED: u32 = 0u;
const TILES_N: u32 = (N + 3u) / 4u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let z = gid.z;
    let r0 = (t / TILES_N) * 4u;
    let c0 = (t % TILES_N) * 4u;
    if (r0 >= M) {
        return;
    }
    let ra = (vec4<u32>(z * M) + vec4<u32>(min(r0, M - 1u), min(r0 + 1u, M - 1u), min(r0 + 2u, M - 1u), min(r0 + 3u, M - 1u))) * K;
    let wb = (vec4<u32>(z * W_BATCHED * N) + vec4<u32>(min(c0, N - 1u), min(c0 + 1u, N - 1u), min(c0 + 2u, N - 1u), min(c0 + 3u, N - 1u))) * K;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < K; k = k + 1u) {
        let wk = vec4<f32>(w[wb.x + k], w[wb.y + k], w[wb.z + k], w[wb.w + k]);
        acc0 = acc0 + a[ra.x + k] * wk;
        acc1 = acc1 + a[ra.y + k] * wk;
        acc2 = acc2 + a[ra.z + k] * wk;
        acc3 = acc3 + a[ra.w + k] * wk;
    }
    let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            epilogue_store(z, r0 + i, c0 + j, rows[i][j]);
        }
    }
}
