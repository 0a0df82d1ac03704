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
// Dispatch: ceil(M/8) * ceil(N/8) invocations (8x8 outputs each), workgroups of 64, grid z = Z.

alias VEC = f32;

// One invocation's 8x8 tile; a(r, k) = a[a0 + r * ar + k * ak], w(c, k) = w[w0 + c * wc + k * wk].
fn tile(gid: vec3<u32>, nwg: vec3<u32>, a_t: bool, w_t: bool) {
    let M = dims.m;
    let N = dims.n;
    let K = dims.k;
    let TILES_N = (N + 7u) / 8u;
    let t = gid.x + gid.y * nwg.x * 64u;
    let z = gid.z;
    let r0 = (t / TILES_N) * 8u;
    let c0 = (t % TILES_N) * 8u;
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
    let m1 = M - 1u;
    let n1 = N - 1u;
    let ral = vec4<u32>(a0) + vec4<u32>(min(r0, m1), min(r0 + 1u, m1), min(r0 + 2u, m1), min(r0 + 3u, m1)) * ar;
    let rah = vec4<u32>(a0) + vec4<u32>(min(r0 + 4u, m1), min(r0 + 5u, m1), min(r0 + 6u, m1), min(r0 + 7u, m1)) * ar;
    let wbl = vec4<u32>(w0) + vec4<u32>(min(c0, n1), min(c0 + 1u, n1), min(c0 + 2u, n1), min(c0 + 3u, n1)) * wc;
    let wbh = vec4<u32>(w0) + vec4<u32>(min(c0 + 4u, n1), min(c0 + 5u, n1), min(c0 + 6u, n1), min(c0 + 7u, n1)) * wc;
    var acc0l = vec4<f32>(0.0);
    var acc0h = vec4<f32>(0.0);
    var acc1l = vec4<f32>(0.0);
    var acc1h = vec4<f32>(0.0);
    var acc2l = vec4<f32>(0.0);
    var acc2h = vec4<f32>(0.0);
    var acc3l = vec4<f32>(0.0);
    var acc3h = vec4<f32>(0.0);
    var acc4l = vec4<f32>(0.0);
    var acc4h = vec4<f32>(0.0);
    var acc5l = vec4<f32>(0.0);
    var acc5h = vec4<f32>(0.0);
    var acc6l = vec4<f32>(0.0);
    var acc6h = vec4<f32>(0.0);
    var acc7l = vec4<f32>(0.0);
    var acc7h = vec4<f32>(0.0);
    for (var k = 0u; k < K; k = k + 1u) {
        let ko = k * wk;
        let wl = vec4<f32>(load_w1(wbl.x + ko), load_w1(wbl.y + ko), load_w1(wbl.z + ko), load_w1(wbl.w + ko));
        let wh = vec4<f32>(load_w1(wbh.x + ko), load_w1(wbh.y + ko), load_w1(wbh.z + ko), load_w1(wbh.w + ko));
        let ka = k * ak;
        let x0 = load_a1(ral.x + ka);
        let x1 = load_a1(ral.y + ka);
        let x2 = load_a1(ral.z + ka);
        let x3 = load_a1(ral.w + ka);
        let x4 = load_a1(rah.x + ka);
        let x5 = load_a1(rah.y + ka);
        let x6 = load_a1(rah.z + ka);
        let x7 = load_a1(rah.w + ka);
        acc0l = acc0l + x0 * wl;
        acc0h = acc0h + x0 * wh;
        acc1l = acc1l + x1 * wl;
        acc1h = acc1h + x1 * wh;
        acc2l = acc2l + x2 * wl;
        acc2h = acc2h + x2 * wh;
        acc3l = acc3l + x3 * wl;
        acc3h = acc3h + x3 * wh;
        acc4l = acc4l + x4 * wl;
        acc4h = acc4h + x4 * wh;
        acc5l = acc5l + x5 * wl;
        acc5h = acc5h + x5 * wh;
        acc6l = acc6l + x6 * wl;
        acc6h = acc6h + x6 * wh;
        acc7l = acc7l + x7 * wl;
        acc7h = acc7h + x7 * wh;
    }
    let bl = bias4(c0);
    let bh = bias4(c0 + 4u);
    store8(z, r0 + 0u, c0, acc0l + bl, acc0h + bh);
    store8(z, r0 + 1u, c0, acc1l + bl, acc1h + bh);
    store8(z, r0 + 2u, c0, acc2l + bl, acc2h + bh);
    store8(z, r0 + 3u, c0, acc3l + bl, acc3h + bh);
    store8(z, r0 + 4u, c0, acc4l + bl, acc4h + bh);
    store8(z, r0 + 5u, c0, acc5l + bl, acc5h + bh);
    store8(z, r0 + 6u, c0, acc6l + bl, acc6h + bh);
    store8(z, r0 + 7u, c0, acc7l + bl, acc7h + bh);
    epilogue_tile(z, r0, 8u, c0);
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
