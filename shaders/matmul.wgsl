// matmul.wgsl: out = epilogue(A . W^T) (or A . W, A^T . W) with workgroup tiles and
// register micro-tiles. A 64x64 block of out per workgroup of 256 invocations, each
// computing 4x4; K advances 16 at a time through workgroup memory (2 x 64x16 f32 =
// 8 KiB, within WebGPU's 16 KiB). Loads are vec4 along each operand's contiguous
// dimension. The variant for real GPUs. One entry point per operand layout:
//   main      a [Z, M, K] . w [N, K]^T   dims.k = K / 4 (K % 4 == 0)
//   main_ab   a [Z, M, K] . w [K, N]     dims.k = K / 4 (K % 4 == 0, N % 4 == 0)
//   main_atb  a [Z, K, M]^T . w [K, N]   dims.k = K     (M % 4 == 0, N % 4 == 0)
// (w has a leading Z when dims.w_batched == 1.)
// Shapes, switches and bindings: matmul_io.wgsl; epilogue: epilogue.wgsl.
// Dispatch: (ceil(N/64), ceil(M/64), Z) workgroups of 16x16.

alias VEC = vec4<f32>;

// Tiles stored k-major: as_[k * 64 + row], ws[k * 64 + col].
var<workgroup> as_: array<f32, 1024>;
var<workgroup> ws: array<f32, 1024>;

// Stores a vec4 of 4 consecutive k (k-major tile, one row or column).
fn put_k(tile_w: bool, kb: u32, i: u32, v: vec4<f32>) {
    if (tile_w) {
        ws[(kb + 0u) * 64u + i] = v.x;
        ws[(kb + 1u) * 64u + i] = v.y;
        ws[(kb + 2u) * 64u + i] = v.z;
        ws[(kb + 3u) * 64u + i] = v.w;
    } else {
        as_[(kb + 0u) * 64u + i] = v.x;
        as_[(kb + 1u) * 64u + i] = v.y;
        as_[(kb + 2u) * 64u + i] = v.z;
        as_[(kb + 3u) * 64u + i] = v.w;
    }
}

// Stores a vec4 of 4 consecutive rows or columns at one k.
fn put_mn(tile_w: bool, k: u32, i: u32, v: vec4<f32>) {
    let o = k * 64u + i;
    if (tile_w) {
        ws[o] = v.x;
        ws[o + 1u] = v.y;
        ws[o + 2u] = v.z;
        ws[o + 3u] = v.w;
    } else {
        as_[o] = v.x;
        as_[o + 1u] = v.y;
        as_[o + 2u] = v.z;
        as_[o + 3u] = v.w;
    }
}

fn tiled(wid: vec3<u32>, li: u32, a_t: bool, w_t: bool) {
    let M = dims.m;
    let N = dims.n;
    var K = dims.k * 4u;
    if (a_t) {
        K = dims.k;
    }
    let K4 = K / 4u;
    let M4 = M / 4u;
    let N4 = N / 4u;
    let z = wid.z;
    let zw = z * dims.w_batched;
    let row0 = wid.y * 64u;
    let col0 = wid.x * 64u;
    let tx = li % 16u;
    let ty = li / 16u;
    // Loader roles, one vec4 of A and one of W per invocation per K step:
    // along K (row li / 4, vec4 li % 4), or along M / N (k li / 16, vec4 li % 16).
    let lr = li / 4u;
    let lk = li % 4u;
    let kr = li / 16u;
    let mv = li % 16u;
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) {
        acc[i] = vec4<f32>(0.0);
    }
    let steps = (K + 15u) / 16u;
    for (var s = 0u; s < steps; s = s + 1u) {
        if (a_t) {
            let k = s * 16u + kr;
            var v = vec4<f32>(0.0);
            if (k < K) {
                v = load_a((z * K + k) * M4 + min(row0 / 4u + mv, M4 - 1u));
            }
            put_mn(false, kr, mv * 4u, v);
        } else {
            let kv = s * 4u + lk;
            var v = vec4<f32>(0.0);
            if (kv < K4) {
                v = load_a((z * M + min(row0 + lr, M - 1u)) * K4 + kv);
            }
            put_k(false, lk * 4u, lr, v);
        }
        if (w_t) {
            let k = s * 16u + kr;
            var v = vec4<f32>(0.0);
            if (k < K) {
                v = load_w((zw * K + k) * N4 + min(col0 / 4u + mv, N4 - 1u));
            }
            put_mn(true, kr, mv * 4u, v);
        } else {
            let kv = s * 4u + lk;
            var v = vec4<f32>(0.0);
            if (kv < K4) {
                v = load_w((zw * N + min(col0 + lr, N - 1u)) * K4 + kv);
            }
            put_k(true, lk * 4u, lr, v);
        }
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

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    tiled(wid, li, false, false);
}

@compute @workgroup_size(16, 16)
fn main_ab(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    tiled(wid, li, false, true);
}

@compute @workgroup_size(16, 16)
fn main_atb(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    tiled(wid, li, true, true);
}
