// softmax.wgsl: row softmax of scaled attention scores, max subtracted, f32 sums.
// out[r, j] = exp(SCALE * s[r, j] - max) / sum for j < T, and 0 for T <= j < TP
// (padding so the next matmul reads K = TP, a multiple of 4).
// Entry `forward` (op Softmax) computes that; entry `backward` (op SoftmaxGrad):
//   s is p [R, TP], dp [R, TP]; out = ds [R, T] with
//   ds[j] = SCALE * p[j] * (dp[j] - sum_k p[k] dp[k]).
// BIAS 1 (Swin's window attention): row r = (z * NH + h) * T + i adds
//   bias[h, i, j] to the scaled score, and with MASK 1 also timm's shifted-window
//   mask: -100 where tokens i and j of window w = z % NW come from different
//   regions of the rolled, padded (HP x WP) map (windows WH x WW, NWW per row,
//   shift SH / SW; a zero shift makes one region along that axis).
//
// Bindings (f32, row-major):
//   0 s    [R, T]    R = B * H * T rows of scores (backward: p [R, TP])
//   1 dp   [R, TP]   backward only (not bound for forward)
//   2 bias [NH, T, T] forward only (a dummy without BIAS; not bound for backward)
//   3 out  [R, TP]   (backward: ds [R, T])
// Dispatch: R invocations, workgroups of 64, linear over (x, y).

const R: u32 = 1u;
const T: u32 = 1u;
const TP: u32 = 4u;
const SCALE: f32 = 1.0;
const BIAS: u32 = 0u;
const NH: u32 = 1u;
const MASK: u32 = 0u;
const NW: u32 = 1u;
const NWW: u32 = 1u;
const WH: u32 = 1u;
const WW: u32 = 1u;
const HP: u32 = 1u;
const WP: u32 = 1u;
const SH: u32 = 0u;
const SW: u32 = 0u;

@group(0) @binding(0) var<storage, read> s: array<f32>;
@group(0) @binding(1) var<storage, read> dp: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// timm's region id (0..3 along each axis) of padded coordinate p on an axis of
// size n with window ws and shift sh.
fn region(p: u32, n: u32, ws: u32, sh: u32) -> u32 {
    if (sh == 0u) {
        return 0u;
    }
    if (p < n - ws) {
        return 0u;
    }
    if (p < n - sh) {
        return 1u;
    }
    return 2u;
}

fn region_of(w: u32, i: u32) -> u32 {
    let py = (w / NWW) * WH + i / WW;
    let px = (w % NWW) * WW + i % WW;
    return region(py, HP, WH, SH) * 3u + region(px, WP, WW, SW);
}

// What the row's logits add to the scaled score of column j.
fn added(r: u32, j: u32) -> f32 {
    if (BIAS == 0u) {
        return 0.0;
    }
    let i = r % T;
    let z = r / T;
    let h = z % NH;
    var a = bias[(h * T + i) * T + j];
    if (MASK == 1u) {
        let w = (z / NH) % NW;
        if (region_of(w, i) != region_of(w, j)) {
            a = a - 100.0;
        }
    }
    return a;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= R) {
        return;
    }
    let p0 = r * TP;
    var dot = 0.0;
    for (var j = 0u; j < T; j = j + 1u) {
        dot = dot + s[p0 + j] * dp[p0 + j];
    }
    for (var j = 0u; j < T; j = j + 1u) {
        out[r * T + j] = SCALE * s[p0 + j] * (dp[p0 + j] - dot);
    }
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= R) {
        return;
    }
    let i0 = r * T;
    let o0 = r * TP;
    var mx = -3.4e38;
    for (var j = 0u; j < T; j = j + 1u) {
        let l = s[i0 + j] * SCALE + added(r, j);
        out[o0 + j] = l;
        mx = max(mx, l);
    }
    var sum = 0.0;
    for (var j = 0u; j < T; j = j + 1u) {
        let e = exp(out[o0 + j] - mx);
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
