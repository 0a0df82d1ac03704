// softmax.wgsl: row softmax of scaled attention scores, max subtracted, f32 sums.
// out[r, j] = exp(SCALE * s[r, j] - max) / sum for j < T, and 0 for T <= j < TP
// (padding so the next matmul reads K = TP, a multiple of 4).
//
// Bindings (f32, row-major):
//   0 s   [R, T]    R = B * H * T rows of scores
//   1 out [R, TP]
// Dispatch: R invocations, workgroups of 64, linear over (x, y).

const R: u32 = 1u;
const T: u32 = 1u;
const TP: u32 = 4u;
const SCALE: f32 = 1.0;

@group(0) @binding(0) var<storage, read> s: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= R) {
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
