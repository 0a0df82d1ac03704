// matmul_reg.wgsl: out = epilogue(A . W^T), barrier-free register tiles.
// Each invocation computes an 8x8 block of out from vec4 loads along K; no
// workgroup memory and no barriers, which suits CPU-like adapters (lavapipe,
// llvmpipe, SwiftShader) where barriers are expensive. Fully unrolled on purpose.
//
// Shapes, switches and bindings: matmul_io.wgsl; epilogue (store8, epilogue_tile): epilogue.wgsl.
// Dispatch: ceil(M/8) * ceil(N/8) invocations, workgroups of 64, linear over (x, y); grid z = Z.

alias VEC = vec4<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let M = dims.m;
    let N = dims.n;
    let K4 = dims.k;
    let W_BATCHED = dims.w_batched;
    let TILES_N = (N + 7u) / 8u;
    let t = gid.x + gid.y * nwg.x * 64u;
    let z = gid.z;
    let tn = t % TILES_N;
    let tm = t / TILES_N;
    let r0 = tm * 8u;
    let c0 = tn * 8u;
    if (r0 >= M) {
        return;
    }
    let ra0 = (z * M + min(r0 + 0u, M - 1u)) * K4;
    let ra1 = (z * M + min(r0 + 1u, M - 1u)) * K4;
    let ra2 = (z * M + min(r0 + 2u, M - 1u)) * K4;
    let ra3 = (z * M + min(r0 + 3u, M - 1u)) * K4;
    let ra4 = (z * M + min(r0 + 4u, M - 1u)) * K4;
    let ra5 = (z * M + min(r0 + 5u, M - 1u)) * K4;
    let ra6 = (z * M + min(r0 + 6u, M - 1u)) * K4;
    let ra7 = (z * M + min(r0 + 7u, M - 1u)) * K4;
    let wb0 = (z * W_BATCHED * N + min(c0 + 0u, N - 1u)) * K4;
    let wb1 = (z * W_BATCHED * N + min(c0 + 1u, N - 1u)) * K4;
    let wb2 = (z * W_BATCHED * N + min(c0 + 2u, N - 1u)) * K4;
    let wb3 = (z * W_BATCHED * N + min(c0 + 3u, N - 1u)) * K4;
    let wb4 = (z * W_BATCHED * N + min(c0 + 4u, N - 1u)) * K4;
    let wb5 = (z * W_BATCHED * N + min(c0 + 5u, N - 1u)) * K4;
    let wb6 = (z * W_BATCHED * N + min(c0 + 6u, N - 1u)) * K4;
    let wb7 = (z * W_BATCHED * N + min(c0 + 7u, N - 1u)) * K4;
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
    for (var k = 0u; k < K4; k = k + 1u) {
        let w0 = w[wb0 + k];
        let w1 = w[wb1 + k];
        let w2 = w[wb2 + k];
        let w3 = w[wb3 + k];
        let w4 = w[wb4 + k];
        let w5 = w[wb5 + k];
        let w6 = w[wb6 + k];
        let w7 = w[wb7 + k];
        let a0 = a[ra0 + k];
        acc0l = acc0l + vec4<f32>(dot(a0, w0), dot(a0, w1), dot(a0, w2), dot(a0, w3));
        acc0h = acc0h + vec4<f32>(dot(a0, w4), dot(a0, w5), dot(a0, w6), dot(a0, w7));
        let a1 = a[ra1 + k];
        acc1l = acc1l + vec4<f32>(dot(a1, w0), dot(a1, w1), dot(a1, w2), dot(a1, w3));
        acc1h = acc1h + vec4<f32>(dot(a1, w4), dot(a1, w5), dot(a1, w6), dot(a1, w7));
        let a2 = a[ra2 + k];
        acc2l = acc2l + vec4<f32>(dot(a2, w0), dot(a2, w1), dot(a2, w2), dot(a2, w3));
        acc2h = acc2h + vec4<f32>(dot(a2, w4), dot(a2, w5), dot(a2, w6), dot(a2, w7));
        let a3 = a[ra3 + k];
        acc3l = acc3l + vec4<f32>(dot(a3, w0), dot(a3, w1), dot(a3, w2), dot(a3, w3));
        acc3h = acc3h + vec4<f32>(dot(a3, w4), dot(a3, w5), dot(a3, w6), dot(a3, w7));
        let a4 = a[ra4 + k];
        acc4l = acc4l + vec4<f32>(dot(a4, w0), dot(a4, w1), dot(a4, w2), dot(a4, w3));
        acc4h = acc4h + vec4<f32>(dot(a4, w4), dot(a4, w5), dot(a4, w6), dot(a4, w7));
        let a5 = a[ra5 + k];
        acc5l = acc5l + vec4<f32>(dot(a5, w0), dot(a5, w1), dot(a5, w2), dot(a5, w3));
        acc5h = acc5h + vec4<f32>(dot(a5, w4), dot(a5, w5), dot(a5, w6), dot(a5, w7));
        let a6 = a[ra6 + k];
        acc6l = acc6l + vec4<f32>(dot(a6, w0), dot(a6, w1), dot(a6, w2), dot(a6, w3));
        acc6h = acc6h + vec4<f32>(dot(a6, w4), dot(a6, w5), dot(a6, w6), dot(a6, w7));
        let a7 = a[ra7 + k];
        acc7l = acc7l + vec4<f32>(dot(a7, w0), dot(a7, w1), dot(a7, w2), dot(a7, w3));
        acc7h = acc7h + vec4<f32>(dot(a7, w4), dot(a7, w5), dot(a7, w6), dot(a7, w7));
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
