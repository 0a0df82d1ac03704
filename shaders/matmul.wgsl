// matmul.wgsl: out = epilogue(A . W^T) with workgroup tiles and register micro-tiles.
// A 64x64 block of out per workgroup of 256 invocations, each computing 4x4;
// K advances 16 at a time through workgroup memory (2 x 64x16 f32 = 8 KiB,
// within WebGPU's 16 KiB). Loads are vec4 along K. The variant for real GPUs.
// Shapes, switches and bindings: matmul_io.wgsl; epilogue: epilogue.wgsl.
// Dispatch: (ceil(N/64), ceil(M/64), Z) workgroups of 16x16.

alias VEC = vec4<f32>;

// Tiles stored k-major: as_[k * 64 + row], ws[k * 64 + col].
var<workgroup> as_: array<f32, 1024>;
var<workgroup> ws: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let M = dims.m;
    let N = dims.n;
    let K4 = dims.k;
    let W_BATCHED = dims.w_batched;
    let z = wid.z;
    let row0 = wid.y * 64u;
    let col0 = wid.x * 64u;
    let tx = li % 16u;
    let ty = li / 16u;
    // Loader role: one vec4 of A and one of W per invocation per K step.
    let lr = li / 4u;
    let lk = li % 4u;
    let a_row = (z * M + min(row0 + lr, M - 1u)) * K4;
    let w_row = (z * W_BATCHED * N + min(col0 + lr, N - 1u)) * K4;
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) {
        acc[i] = vec4<f32>(0.0);
    }
    let steps = (K4 + 3u) / 4u;
    for (var s = 0u; s < steps; s = s + 1u) {
        let kv = s * 4u + lk;
        var av = vec4<f32>(0.0);
        var wv = vec4<f32>(0.0);
        if (kv < K4) {
            av = a[a_row + kv];
            wv = w[w_row + kv];
        }
        let kb = lk * 4u;
        as_[(kb + 0u) * 64u + lr] = av.x;
        as_[(kb + 1u) * 64u + lr] = av.y;
        as_[(kb + 2u) * 64u + lr] = av.z;
        as_[(kb + 3u) * 64u + lr] = av.w;
        ws[(kb + 0u) * 64u + lr] = wv.x;
        ws[(kb + 1u) * 64u + lr] = wv.y;
        ws[(kb + 2u) * 64u + lr] = wv.z;
        ws[(kb + 3u) * 64u + lr] = wv.w;
        workgroupBarrier();
        for (var k = 0u; k < 16u; k = k + 1u) {
            let wr = vec4<f32>(ws[k * 64u + tx], ws[k * 64u + tx + 16u], ws[k * 64u + tx + 32u], ws[k * 64u + tx + 48u]);
            for (var i = 0u; i < 4u; i = i + 1u) {
                acc[i] = acc[i] + as_[k * 64u + ty + 16u * i] * wr;
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = row0 + ty + 16u * i;
        epilogue_store(z, r, col0 + tx, acc[i].x);
        epilogue_store(z, r, col0 + tx + 16u, acc[i].y);
        epilogue_store(z, r, col0 + tx + 32u, acc[i].z);
        epilogue_store(z, r, col0 + tx + 48u, acc[i].w);
    }
}
