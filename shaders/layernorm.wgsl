// layernorm.wgsl: y = (x - mean) / sqrt(var + EPS) * weight + bias over the last dim.
// One invocation per row, two passes over the row for the statistics (f32,
// biased variance as torch.nn.LayerNorm). Barrier-free.
//
// Entry `forward`:
//   0 x      [R, C]   R = B * N rows
//   1 weight [C]
//   2 bias   [C]
//   3 y      [R, C]
//   Dispatch: R invocations, workgroups of 64, linear over (x, y).
//
// Entry `backward` (dx only; d weight and d bias are column sums, other ops):
//   with xhat = (x - mean) * rstd, g = dy * weight:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
//   0 x      [R, C]
//   1 weight [C]
//   2 dy     [R, C]
//   3 dx     [R, C]
//   Dispatch: R invocations, workgroups of 64, linear over (x, y).
//
// `bias` and `dy` share binding 2, `y` and `dx` binding 3 (each entry point's
// layout holds only the globals it uses).

const R: u32 = 1u;
const C: u32 = 1u;
const EPS: f32 = 1e-6;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// (mean, 1 / sqrt(var + EPS)) of the row starting at `base`.
fn row_stats(base: u32) -> vec2<f32> {
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
    return vec2<f32>(mean, inverseSqrt(sq / f32(C) + EPS));
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= R) {
        return;
    }
    let base = r * C;
    let stats = row_stats(base);
    let mean = stats.x;
    let inv = stats.y;
    for (var c = 0u; c < C; c = c + 1u) {
        y[base + c] = (x[base + c] - mean) * inv * weight[c] + bias[c];
    }
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= R) {
        return;
    }
    let base = r * C;
    let stats = row_stats(base);
    let mean = stats.x;
    let inv = stats.y;
    var mg = 0.0;
    var mgx = 0.0;
    for (var c = 0u; c < C; c = c + 1u) {
        let g = dy[base + c] * weight[c];
        mg = mg + g;
        mgx = mgx + g * (x[base + c] - mean) * inv;
    }
    mg = mg / f32(C);
    mgx = mgx / f32(C);
    for (var c = 0u; c < C; c = c + 1u) {
        let xhat = (x[base + c] - mean) * inv;
        dx[base + c] = inv * (dy[base + c] * weight[c] - mg - xhat * mgx);
    }
}
