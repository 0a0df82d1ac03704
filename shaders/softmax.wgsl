// softmax.wgsl: row softmax of scaled attention scores, max subtracted, f32 sums.
// out[r, j] = exp(SCALE * s[r, j] - max) / sum for j < T, and 0 for T <= j < TP
// (padding so the next matmul reads K = TP, a multiple of 4).
// MODE 1 (backward): s is p [R, TP], dp [R, TP]; out = ds [R, T] with
//   ds[j] = SCALE * p[j] * (dp[j] - sum_k p[k] dp[k]).
//
// Bindings (f32, row-major):
//   0 s   [R, T]    R = B * H * T rows of scores (MODE 1: p [R, TP])
//   1 dp  [R, TP]   MODE 1 only
//   2 out [R, TP]   (MODE 1: [R, T])
// Dispatch: R invocations, workgroups of 64, linear over (x, y).

const R: u32 = 1u;
const T: u32 = 1u;
const TP: u32 = 4u;
const SCALE: f32 = 1.0;
const MODE: u32 = 0u;

@group(0) @binding(0) var<storage, read> s: array<f32>;
@group(0) @binding(1) var<storage, read> dp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= R) {
        return;
    }
    if (MODE == 1u) {
        let p0 = r * TP;
        var dot = 0.0;
        for (var j = 0u; j < T; j = j + 1u) {
            dot = dot + s[p0 + j] * dp[p0 + j];
        }
        for (var j = 0u; j < T; j = j + 1u) {
            out[r * T + j] = SCALE * s[p0 + j] * (dp[p0 + j] - dot);
        }
        return;
    }
    let i0 = r * T;
    let o0 = r * TP;
    var mx = -3.4e38;
    for (var j = 0u; j < T; j = j + 1u) {
        mx = max(mx, s[i0 + j] * SCALE);
    }
    var sum = 0.0;
    for (var j = 0u; j < T; j = j + 1u) {
        let e = exp(s[i0 + j] * SCALE - mx);
        out[o0 + j] = e;
        sum = sum + e;
    }
    let inv = 1.0 / sum;
    for (var j = 0u; j < T; j = j + 1u) {
        out[o0 + j] = out[o0 + j] * inv;
    }
    for (var j = T; j < TP; j = j + 1u) {
        out[o0 + j] = 0.0;
    }
}
