// matmul_scalar.wgsl: out = epilogue(A . W^T) (or A . W, A^T . W) for any shape (scalar loads).
// Used when the vec4 kernels' alignment does not hold (e.g. a 7x7x3 patch
// embedding, K = 147; a 10-class head's gradients).
//   main      a [Z, M, K] . w [N, K]^T
//   main_ab   a [Z, M, K] . w [K, N]
//   main_atb  a [Z, K, M]^T . w [K, N]
// (w has a leading Z when dims.w_batched == 1.)
//
// Shapes, switches and bindings: matmul_io.wgsl (dims.k = K here, scalar loads);
// epilogue: epilogue.wgsl.
// Dispatch: ceil(M/4) * ceil(N/4) invocations (4x4 outputs each), workgroups of 64, grid z = Z.

alias VEC = f32;

// One invocation's 4x4 tile; a(r, k) = a[a0 + r * ar + k * ak], w(c, k) = w[w0 + c * wc + k * wk].
fn tile(gid: vec3<u32>, nwg: vec3<u32>, a_t: bool, w_t: bool) {
    let M = dims.m;
    let N = dims.n;
    let K = dims.k;
    let TILES_N = (N + 3u) / 4u;
    let t = gid.x + gid.y * nwg.x * 64u;
    let z = gid.z;
    let r0 = (t / TILES_N) * 4u;
    let c0 = (t % TILES_N) * 4u;
    if (r0 >= M) {
        return;
    }
    let a0 = z * M * K;
    let w0 = z * dims.w_batched * N * K;
    var ar = K;
    var ak = 1u;
    if (a_t) {
        ar = 1u;
        ak = M;
    }
    var wc = K;
    var wk = 1u;
    if (w_t) {
        wc = 1u;
        wk = N;
    }
    let ra = vec4<u32>(a0) + vec4<u32>(min(r0, M - 1u), min(r0 + 1u, M - 1u), min(r0 + 2u, M - 1u), min(r0 + 3u, M - 1u)) * ar;
    let wb = vec4<u32>(w0) + vec4<u32>(min(c0, N - 1u), min(c0 + 1u, N - 1u), min(c0 + 2u, N - 1u), min(c0 + 3u, N - 1u)) * wc;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < K; k = k + 1u) {
        let ko = k * wk;
        let wv = vec4<f32>(load_w1(wb.x + ko), load_w1(wb.y + ko), load_w1(wb.z + ko), load_w1(wb.w + ko));
        let ka = k * ak;
        acc0 = acc0 + a[ra.x + ka] * wv;
        acc1 = acc1 + a[ra.y + ka] * wv;
        acc2 = acc2 + a[ra.z + ka] * wv;
        acc3 = acc3 + a[ra.w + ka] * wv;
    }
    let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            epilogue_store(z, r0 + i, c0 + j, rows[i][j]);
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    tile(gid, nwg, false, false);
}

@compute @workgroup_size(64)
fn main_ab(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    tile(gid, nwg, false, true);
}

@compute @workgroup_size(64)
fn main_atb(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    tile(gid, nwg, true, true);
}
