// slice.wgsl: a window of the last dimension (DynamicViT's local / global
// channel split, T2T's k / q / v split).
//
// Entry `forward` (op SliceLast): out[r, j] = x[r, START + j], j < LEN, for x [ROWS, COLS].
//   0 x [ROWS, COLS],  1 out [ROWS, LEN]
// Entry `backward` (op SliceLastGrad): dx[r, c] = dy[r, c - START] inside the window, 0 outside.
//   0 dy [ROWS, LEN],  1 dx [ROWS, COLS]
// Dispatch: one invocation per output element, workgroups of 64, linear over (x, y).
// `x` / `dy` share binding 0 and `out` / `dx` binding 1; each entry uses one of each.

const ROWS: u32 = 1u;
const COLS: u32 = 1u;
const START: u32 = 0u;
const LEN: u32 = 1u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= ROWS * LEN) {
        return;
    }
    out[i] = x[(i / LEN) * COLS + START + i % LEN];
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= ROWS * COLS) {
        return;
    }
    let c = i % COLS;
    var v = 0.0;
    if (c >= START && c < START + LEN) {
        v = dy[(i / COLS) * LEN + c - START];
    }
    dx[i] = v;
}
