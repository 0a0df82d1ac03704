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
// Entry `backward` (d scores; one invocation per row, recomputing its max and
// sums). It also writes the row's m, c = (G1 + EPS / N * G2) / D and D for
// `policy_backward`:
//   0 a  [B, H, N, N]
//   1 p  [B, N]
//   2 dy [B, H, N, N]
//   3 da [B, H, N, N]
//   4 stats [B * H * N, 3]
//   Dispatch: B * H * N invocations, workgroups of 64, linear over (x, y).
//
// Entry `policy_backward` (d policy; gather form, no atomics, no barriers): one
// invocation per (b, k) walks the H * N rows of sample b and adds
// (dy[r, k] - c_r) / D_r * exp(a[r, k] - m_r) for q != k, from `backward`'s stats.
//   0 a  [B, H, N, N]
//   2 dy [B, H, N, N]
//   3 stats [B * H * N, 3]
//   4 dp [B, N]
//   Dispatch: B * N invocations, workgroups of 64, linear over (x, y).
//
// The entries share bindings 0 and 1; `y` and `dy` share binding 2; `da` and
// the stats read back share binding 3, the stats written and `dp` binding 4
// (each entry point's layout holds only the globals it uses).

const B: u32 = 1u;
const H: u32 = 1u;
const N: u32 = 1u;
const EPS: f32 = 1e-6;
// Below every finite f32: the max's starting value.
const NEG_MAX: f32 = -3.4028235e38;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> da: array<f32>;
@group(0) @binding(3) var<storage, read> stats_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> dp: array<f32>;

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
    stats[3u * r] = m;
    stats[3u * r + 1u] = c;
    stats[3u * r + 2u] = d;
}

@compute @workgroup_size(64)
fn policy_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= B * N) {
        return;
    }
    let b = i / N;
    let k = i % N;
    var acc = 0.0;
    for (var h = 0u; h < H; h = h + 1u) {
        for (var q = 0u; q < N; q = q + 1u) {
            if (q == k) {
                continue;
            }
            let r = (b * H + h) * N + q;
            let idx = r * N + k;
            acc = acc + (dy[idx] - stats_in[3u * r + 1u]) / stats_in[3u * r + 2u] * exp(a[idx] - stats_in[3u * r]);
        }
    }
    dp[i] = acc;
}
