// token_pool.wgsl: strided 1-D pooling over the token axis (HVT), as
// torch.nn.MaxPool1d / AvgPool1d(kernel_size=K, stride=S) with no padding and
// floor mode, applied to the tokens of each channel:
//   out[b, j, c] = reduce(x[b, S * j + i, c] for i in 0..K), j in 0..N_OUT,
//   N_OUT = (N - K) / S + 1; trailing tokens that no window covers are dropped.
// KIND_MAX: the window's maximum; KIND_AVG: its mean (sum / K).
//
// Entry `forward`:
//   0 x [B, N, C]
//   1 y [B, N_OUT, C]
//   Dispatch: B * N_OUT * C invocations, workgroups of 64, linear over (x, y).
//
// Entry `backward` (one invocation per INPUT element, gathering over the
// windows that cover its token: no atomics, no races):
//   dx[b, t, c] = sum over windows j covering t of
//     KIND_MAX: dy[b, j, c] if t is the window's FIRST maximal token (PyTorch's rule), else 0
//     KIND_AVG: dy[b, j, c] / K
//   0 x  [B, N, C]      (read for the argmax)
//   1 dy [B, N_OUT, C]
//   2 dx [B, N, C]
//   Dispatch: B * N * C invocations, workgroups of 64, linear over (x, y).
//
// The entries use disjoint sets of globals; `y` and `dy` share binding 1
// (each entry point's layout holds only the globals it uses).

const KIND_MAX: u32 = 0u;
const KIND_AVG: u32 = 1u;

const B: u32 = 1u;
const N: u32 = 1u;
const C: u32 = 1u;
const K: u32 = 1u;
const S: u32 = 1u;
const N_OUT: u32 = 1u;
const KIND: u32 = 0u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// The first token (absolute index) holding the maximum of window j of (b, c),
// and that maximum: strict `>` keeps the earliest of equal values.
fn window_argmax(b: u32, j: u32, c: u32) -> u32 {
    let t0 = j * S;
    var arg = t0;
    var mx = x[(b * N + t0) * C + c];
    for (var i = 1u; i < K; i = i + 1u) {
        let v = x[(b * N + t0 + i) * C + c];
        if (v > mx) {
            mx = v;
            arg = t0 + i;
        }
    }
    return arg;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * N_OUT * C) {
        return;
    }
    let c = idx % C;
    let j = (idx / C) % N_OUT;
    let b = idx / (C * N_OUT);
    if (KIND == KIND_MAX) {
        y[idx] = x[(b * N + window_argmax(b, j, c)) * C + c];
        return;
    }
    var s = 0.0;
    for (var i = 0u; i < K; i = i + 1u) {
        s = s + x[(b * N + j * S + i) * C + c];
    }
    y[idx] = s / f32(K);
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * N * C) {
        return;
    }
    let c = idx % C;
    let t = (idx / C) % N;
    let b = idx / (C * N);
    // Windows j with j * S <= t < j * S + K, within 0..N_OUT.
    var j_lo = 0u;
    if (t + 1u > K) {
        j_lo = (t + 1u - K + S - 1u) / S;
    }
    let j_hi = min(t / S + 1u, N_OUT);
    var g = 0.0;
    for (var j = j_lo; j < j_hi; j = j + 1u) {
        let d = dy[(b * N_OUT + j) * C + c];
        if (KIND == KIND_AVG) {
            g = g + d / f32(K);
        } else if (window_argmax(b, j, c) == t) {
            g = g + d;
        }
    }
    dx[idx] = g;
}
