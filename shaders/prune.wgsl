// prune.wgsl: DynamicViT's score predictor pieces (src/ops/prune.rs).
//
// Entry `local_global` (op LocalGlobal): h [B, N, C] -> out [B, N, C]; channels
// c < L copied, channels c >= L replaced by sum_n h[b, n, c] p[b, n] / sum_n p[b, n]
// (p = 1 when POLICY is 0). Invocations 0 .. B * N * L copy one local value each;
// the next B * (C - L) each own one global column: sum it once, write it N times.
//   0 h [B, N, C],  1 policy [B, N] (unused when POLICY = 0),  2 out [B, N, C]
//   Dispatch: B * N * L + B * (C - L) invocations.
//
// Entry `gumbel_keep` (op GumbelKeep): z [R, 2], g [R, 2] (the Gumbel noise, in the
// policy binding) -> out [R] = 1 where z0 + g0 >= z1 + g1 (argmax of softmax(z + g),
// ties to "keep"), else 0.
//   0 z [R, 2],  1 g [R, 2],  2 out [R]
//   Dispatch: R invocations.
//
// Entry `policy_prefix` (op PolicyPrefix): keep [B, N] -> out [B, 1 + N], a 1 for the
// class token first.
//   0 keep [B, N],  2 out [B, 1 + N]
//   Dispatch: B * (1 + N) invocations.
//
// Entry `keep_score` (op KeepScore): z [R, 2] -> out [R] = log_softmax(z)[0],
// as PyTorch computes it: (z0 - m) - log(exp(z0 - m) + exp(z1 - m)), m = max.
//   0 z [R, 2],  2 out [R]
//   Dispatch: R invocations.

const B: u32 = 1u;
const N: u32 = 1u;
const C: u32 = 2u;
const L: u32 = 1u;
const POLICY: u32 = 0u;
const R: u32 = 1u;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> policy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

@compute @workgroup_size(64)
fn local_global(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    let locals = B * N * L;
    if (i < locals) {
        let idx = (i / L) * C + i % L;
        out[idx] = src[idx];
        return;
    }
    let g = i - locals;
    if (g >= B * (C - L)) {
        return;
    }
    let b = g / (C - L);
    let c = L + g % (C - L);
    var num = 0.0;
    var den = 0.0;
    for (var t = 0u; t < N; t = t + 1u) {
        var p = 1.0;
        if (POLICY != 0u) {
            p = policy[b * N + t];
        }
        num = num + src[(b * N + t) * C + c] * p;
        den = den + p;
    }
    let mean = num / den;
    for (var t = 0u; t < N; t = t + 1u) {
        out[(b * N + t) * C + c] = mean;
    }
}

@compute @workgroup_size(64)
fn keep_score(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= R) {
        return;
    }
    let z0 = src[2u * r];
    let z1 = src[2u * r + 1u];
    let m = max(z0, z1);
    out[r] = (z0 - m) - log(exp(z0 - m) + exp(z1 - m));
}

@compute @workgroup_size(64)
fn gumbel_keep(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= R) {
        return;
    }
    out[r] = select(0.0, 1.0, src[2u * r] + policy[2u * r] >= src[2u * r + 1u] + policy[2u * r + 1u]);
}

@compute @workgroup_size(64)
fn policy_prefix(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= B * (N + 1u)) {
        return;
    }
    let j = i % (N + 1u);
    if (j == 0u) {
        out[i] = 1.0;
    } else {
        out[i] = src[(i / (N + 1u)) * N + j - 1u];
    }
}
