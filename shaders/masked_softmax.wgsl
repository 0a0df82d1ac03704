// masked_softmax.wgsl: softmax over the keys with a per-sample key policy, as
// DynamicViT's Attention.softmax_with_policy (every block while training).
// For scores a [B, H, N, N] (row r = (b * H + h) * N + q is query q; column k a key)
// and policy p [B, N] (1 = kept):
//   P[b, q, k] = p[b, k] + (1 - p[b, k]) * (q == k)  (a dropped key stays visible to itself)
//   m = max_k a[r, k]                                 (over ALL keys, masked ones too)
//   e[r, k] = exp(a[r, k] - m) * P[b, q, k]           (f32)
//   S = sum_k e[r, k], D = S + EPS
//   y[r, k] = (e[r, k] + EPS / N) / D
//
// Gradients, with g = dy[r, :], t_k = (g_k - c) / D, c = sum_k g_k y[r, k]:
//   da[r, k] = t_k * e[r, k] + (k == k*) * dm,
//     k* = the row's FIRST maximal key (strict >), and the gradient through the
//     max (it enters y only through the eps terms):
//     dm = EPS * (S * G2 / N - G1) / D^2,  G1 = sum_k g_k e_k,  G2 = sum_k g_k
//   dp[b, k] = sum over h, q != k of t_k * exp(a[r, k] - m)   (dP/dp = 1 - (q == k))
//
// Entry `forward` (one invocation per row):
//   0 a [B, H, N, N]
//   1 p [B, N]
//   2 y [B, H, N, N]
//   Dispatch: B * H * N invocations, workgroups of 64, linear over (x, y).
//
// Entry `backward` (d scores; one invocation per row, recomputing its max and sums):
//   0 a  [B, H, N, N]
//   1 p  [B, N]
//   2 dy [B, H, N, N]
//   3 da [B, H, N, N]
//   Dispatch: B * H * N invocations, workgroups of 64, linear over (x, y).
//
// Entry `policy_backward` (d policy; gather form, no atomics): one workgroup of
// 64 per (b, block of 64 keys), one invocation per key k = block * 64 + lid. The
// workgroup walks every row (h, q) of sample b, reduces the row's max and sums
// together (shared by its 64 keys), and each invocation adds its key's term.
//   0 a  [B, H, N, N]
//   1 p  [B, N]
//   2 dy [B, H, N, N]
//   3 dp [B, N]
//   Dispatch: B * KB workgroups, KB = ceil(N / 64), linear over (x, y).
//
// The entries share bindings 0 and 1; `y` and `dy` share binding 2, `da` and
// `dp` binding 3 (each entry point's layout holds only the globals it uses).

const B: u32 = 1u;
const H: u32 = 1u;
const N: u32 = 1u;
// Key blocks of 64 per sample in `policy_backward`: ceil(N / 64).
const KB: u32 = 1u;
const EPS: f32 = 1e-6;
// Below every finite f32: the max's starting value.
const NEG_MAX: f32 = -3.4028235e38;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> da: array<f32>;
@group(0) @binding(3) var<storage, read_write> dp: array<f32>;

var<workgroup> red_max: array<f32, 64>;
var<workgroup> red_sum: array<vec3<f32>, 64>;

// P[b, q, k]: the key's policy, or 1 on the diagonal. (p + (1 - p) rounds to
// exactly 1 in f32 for p in [0, 1], so this equals the reference's formula.)
fn key_weight(b: u32, q: u32, k: u32) -> f32 {
    return select(p[b * N + k], 1.0, k == q);
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= B * H * N) {
        return;
    }
    let q = r % N;
    let b = r / (H * N);
    let base = r * N;
    var m = NEG_MAX;
    for (var k = 0u; k < N; k = k + 1u) {
        m = max(m, a[base + k]);
    }
    var s = 0.0;
    for (var k = 0u; k < N; k = k + 1u) {
        let e = exp(a[base + k] - m) * key_weight(b, q, k);
        y[base + k] = e;
        s = s + e;
    }
    let inv = 1.0 / (s + EPS);
    let eps_n = EPS / f32(N);
    for (var k = 0u; k < N; k = k + 1u) {
        y[base + k] = (y[base + k] + eps_n) * inv;
    }
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= B * H * N) {
        return;
    }
    let q = r % N;
    let b = r / (H * N);
    let base = r * N;
    var m = a[base];
    var kmax = 0u;
    for (var k = 1u; k < N; k = k + 1u) {
        let v = a[base + k];
        if (v > m) {
            m = v;
            kmax = k;
        }
    }
    // e into da (read back below); S, G1 = sum g e, G2 = sum g.
    var s = 0.0;
    var g1 = 0.0;
    var g2 = 0.0;
    for (var k = 0u; k < N; k = k + 1u) {
        let e = exp(a[base + k] - m) * key_weight(b, q, k);
        let g = dy[base + k];
        da[base + k] = e;
        s = s + e;
        g1 = g1 + g * e;
        g2 = g2 + g;
    }
    let d = s + EPS;
    let c = (g1 + EPS / f32(N) * g2) / d;
    for (var k = 0u; k < N; k = k + 1u) {
        da[base + k] = (dy[base + k] - c) / d * da[base + k];
    }
    da[base + kmax] = da[base + kmax] + EPS * (s * g2 / f32(N) - g1) / (d * d);
}

// Max of `v` over the workgroup's 64 invocations (fixed tree order); every
// invocation gets it. The trailing barrier lets the next call overwrite `red_max`.
fn reduce_max(lid: u32, v: f32) -> f32 {
    red_max[lid] = v;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w = w / 2u) {
        if (lid < w) {
            red_max[lid] = max(red_max[lid], red_max[lid + w]);
        }
        workgroupBarrier();
    }
    let out = red_max[0];
    workgroupBarrier();
    return out;
}

// Sum of `v` over the workgroup's 64 invocations, as `reduce_max`.
fn reduce_sum(lid: u32, v: vec3<f32>) -> vec3<f32> {
    red_sum[lid] = v;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w = w / 2u) {
        if (lid < w) {
            red_sum[lid] = red_sum[lid] + red_sum[lid + w];
        }
        workgroupBarrier();
    }
    let out = red_sum[0];
    workgroupBarrier();
    return out;
}

@compute @workgroup_size(64)
fn policy_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    // Uniform across the workgroup: the barriers below stay in uniform control flow.
    if (w >= B * KB) {
        return;
    }
    let b = w / KB;
    let k = (w % KB) * 64u + lid;
    var acc = 0.0;
    for (var h = 0u; h < H; h = h + 1u) {
        for (var q = 0u; q < N; q = q + 1u) {
            let base = ((b * H + h) * N + q) * N;
            var lm = NEG_MAX;
            for (var j = lid; j < N; j = j + 64u) {
                lm = max(lm, a[base + j]);
            }
            let m = reduce_max(lid, lm);
            var ls = vec3<f32>(0.0);
            for (var j = lid; j < N; j = j + 64u) {
                let e = exp(a[base + j] - m) * key_weight(b, q, j);
                let g = dy[base + j];
                ls = ls + vec3<f32>(e, g * e, g);
            }
            let sums = reduce_sum(lid, ls);
            let d = sums.x + EPS;
            let c = (sums.y + EPS / f32(N) * sums.z) / d;
            if (k < N && k != q) {
                acc = acc + (dy[base + k] - c) / d * exp(a[base + k] - m);
            }
        }
    }
    if (k < N) {
        dp[b * N + k] = acc;
    }
}
