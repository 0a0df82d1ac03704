// transpose.wgsl: the layout work of backward passes.
//
// Entry `transpose2d`: out[z, c, r] = x[z, r, c] (batched 2-D transpose).
//   0 x   [Z, R, C]
//   1 out [Z, C, R]
//   Dispatch: Z * R * C invocations, workgroups of 64, linear over (x, y).
//
// Entry `sum_rows`: column sums, out[c] = SCALE * sum over r of x[r, c]
// (rows summed in order, then scaled once; SCALE is 1 but for an attention
// bias gradient, which scales by the inverse of the softmax's scale).
//   0 x   [R, C]
//   1 out [C]
//   Dispatch: C invocations, workgroups of 64, linear over (x, y).

const Z: u32 = 1u;
const R: u32 = 1u;
const C: u32 = 1u;
const SCALE: f32 = 1.0;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn transpose2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= Z * R * C) {
        return;
    }
    let r = idx % R;
    let c = (idx / R) % C;
    let z = idx / (R * C);
    out[idx] = x[(z * R + r) * C + c];
}

@compute @workgroup_size(64)
fn sum_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= C) {
        return;
    }
    var s = 0.0;
    for (var i = 0u; i < R; i = i + 1u) {
        s = s + x[i * C + idx];
    }
    out[idx] = s * SCALE;
}
