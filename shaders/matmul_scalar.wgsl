// matmul_scalar.wgsl: out = epilogue(A . W^T) for any K (scalar loads).
// Used when K % 4 != 0 (e.g. a 7x7x3 patch embedding, K = 147).
//
// Shapes, switches and bindings: matmul_io.wgsl (dims.k = K here, scalar loads);
// epilogue: epilogue.wgsl.
// Dispatch: ceil(M/4) * ceil(N/4) invocations (4x4 outputs each), workgroups of 64, grid z = Z.

alias VEC = f32;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let M = dims.m;
    let N = dims.n;
    let K = dims.k;
    let W_BATCHED = dims.w_batched;
    let TILES_N = (N + 3u) / 4u;
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
