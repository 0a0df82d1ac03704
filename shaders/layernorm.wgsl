// layernorm.wgsl: y = (x - mean) / sqrt(var + EPS) * weight + bias over the last dim.
// One invocation per row, two passes over the row (f32 statistics, biased
// variance as torch.nn.LayerNorm). Barrier-free.
// MODE 1 (backward): out = dx from x, weight and dy (binding 2), with
//   xhat = (x - mean) * rstd, g = dy * weight:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
//
// Bindings (f32, row-major):
//   0 x      [R, C]   R = B * N rows
//   1 weight [C]
//   2 bias   [C]      (MODE 1: dy [R, C])
//   3 out    [R, C]
// Dispatch: R invocations, workgroups of 64, linear over (x, y).

const R: u32 = 1u;
const C: u32 = 1u;
const EPS: f32 = 1e-6;
const MODE: u32 = 0u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= R) {
        return;
    }
    let base = r * C;
    var sum = 0.0;
    for (var c = 0u; c < C; c = c + 1u) {
        sum = sum + x[base + c];
    }
    let mean = sum / f32(C);
    var sq = 0.0;
    for (var c = 0u; c < C; c = c + 1u) {
        let d = x[base + c] - mean;
        sq = sq + d * d;
    }
    let inv = inverseSqrt(sq / f32(C) + EPS);
    if (MODE == 1u) {
        var mg = 0.0;
        var mgx = 0.0;
        for (var c = 0u; c < C; c = c + 1u) {
            let g = bias[base + c] * weight[c];
            mg = mg + g;
            mgx = mgx + g * (x[base + c] - mean) * inv;
        }
        mg = mg / f32(C);
        mgx = mgx / f32(C);
        for (var c = 0u; c < C; c = c + 1u) {
            let xhat = (x[base + c] - mean) * inv;
            out[base + c] = inv * (bias[base + c] * weight[c] - mg - xhat * mgx);
        }
        return;
    }
    for (var c = 0u; c < C; c = c + 1u) {
        out[base + c] = (x[base + c] - mean) * inv * weight[c] + bias[c];
    }
}
