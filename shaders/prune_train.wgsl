// prune_train.wgsl: the backward rules and the distillation loss of DynamicViT's
// training (src/ops/prune.rs). Every entry writes binding 4.
//
// Entry `local_global_dh` (LocalGlobal's input gradient): dh [B, N, C] =
//   dout for c < L; p[b, n] * gm[b, c] / pm[b] for c >= L
//   (gm: mean over tokens of dout, pm: mean of the policy; p = pm = 1 when POLICY = 0).
//   0 dout [B, N, C],  1 policy [B, N],  2 gm [B, C],  3 pm [B],  4 dh [B, N, C]
// Entry `local_global_dp` (LocalGlobal's policy gradient):
//   dp[b, n] = sum_{c >= L} gm[b, c] * (h[b, n, c] - y[b, n, c]) / pm[b]
//   0 h [B, N, C],  1 y (the forward output),  2 gm [B, C],  3 pm [B],  4 dp [B, N]
// Entry `gumbel_keep_grad` (GumbelKeep's straight-through gradient): with
//   y0 = softmax(z + g)[0], dz[r] = dy[r] * y0 (1 - y0) * (1, -1).
//   0 z [R, 2],  1 g [R, 2],  2 dy [R],  4 dz [R, 2]
// Entry `kl_div` (KlDiv): out[b] = sum_k pt (log pt - log ps), p = softmax of each row
//   (F.kl_div(log_softmax(s), log_softmax(t), log_target=True) before the batch mean).
//   0 s [B, K],  1 t [B, K],  4 out [B]
// Entry `kl_div_grad`: ds[b, k] = dy[b] * (softmax(s)[b, k] - softmax(t)[b, k]).
//   0 s [B, K],  1 t [B, K],  2 dy [B],  4 ds [B, K]
// Dispatch: one invocation per output element (per row for kl_div), workgroups of 64.

const B: u32 = 1u;
const N: u32 = 1u;
const C: u32 = 2u;
const L: u32 = 1u;
const POLICY: u32 = 1u;
const R: u32 = 1u;
const K: u32 = 1u;

@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read> in3: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

@compute @workgroup_size(64)
fn local_global_dh(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= B * N * C) {
        return;
    }
    let c = i % C;
    if (c < L) {
        out[i] = in0[i];
        return;
    }
    let bn = i / C;
    let b = bn / N;
    var p = 1.0;
    var pm = 1.0;
    if (POLICY != 0u) {
        p = in1[bn];
        pm = in3[b];
    }
    out[i] = p * in2[b * C + c] / pm;
}

@compute @workgroup_size(64)
fn local_global_dp(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= B * N) {
        return;
    }
    let b = i / N;
    var s = 0.0;
    for (var c = L; c < C; c = c + 1u) {
        s = s + in2[b * C + c] * (in0[i * C + c] - in1[i * C + c]);
    }
    out[i] = s / in3[b];
}

@compute @workgroup_size(64)
fn gumbel_keep_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= R) {
        return;
    }
    let d = (in0[2u * r + 1u] + in1[2u * r + 1u]) - (in0[2u * r] + in1[2u * r]);
    let y0 = 1.0 / (1.0 + exp(d));
    let g = in2[r] * y0 * (1.0 - y0);
    out[2u * r] = g;
    out[2u * r + 1u] = -g;
}

// Row max and sum of exp(x - max) of row `b` of in0 (which = 0) or in1.
fn row_stats(which: u32, b: u32) -> vec2<f32> {
    var m = -3.0e38;
    for (var k = 0u; k < K; k = k + 1u) {
        if (which == 0u) {
            m = max(m, in0[b * K + k]);
        } else {
            m = max(m, in1[b * K + k]);
        }
    }
    var z = 0.0;
    for (var k = 0u; k < K; k = k + 1u) {
        if (which == 0u) {
            z = z + exp(in0[b * K + k] - m);
        } else {
            z = z + exp(in1[b * K + k] - m);
        }
    }
    return vec2<f32>(m, z);
}

@compute @workgroup_size(64)
fn kl_div(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = flat(gid, nwg);
    if (b >= B) {
        return;
    }
    let s = row_stats(0u, b);
    let t = row_stats(1u, b);
    var acc = 0.0;
    for (var k = 0u; k < K; k = k + 1u) {
        let lt = in1[b * K + k] - t.x - log(t.y);
        let ls = in0[b * K + k] - s.x - log(s.y);
        acc = acc + exp(lt) * (lt - ls);
    }
    out[b] = acc;
}

@compute @workgroup_size(64)
fn kl_div_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= B * K) {
        return;
    }
    let b = i / K;
    let s = row_stats(0u, b);
    let t = row_stats(1u, b);
    out[i] = in2[b] * (exp(in0[i] - s.x) / s.y - exp(in1[i] - t.x) / t.y);
}
