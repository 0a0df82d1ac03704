// transpose.wgsl: out[z, c, r] = x[z, r, c] (batched 2-D transpose), and
// column sums: MODE 1 gives out[c] = sum over z and r of x[z, r, c].
//
// Bindings (f32, row-major):
//   0 x   [Z, R, C]
//   1 out [Z, C, R] (MODE 0) or [C] (MODE 1)
// Dispatch: Z*R*C (MODE 0) or C (MODE 1) invocations, workgroups of 64, linear over (x, y).

const Z: u32 = 1u;
const R: u32 = 1u;
const C: u32 = 1u;
const MODE: u32 = 0u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (MODE == 0u) {
        if (idx >= Z * R * C) {
            return;
        }
        let r = idx % R;
        let c = (idx / R) % C;
        let z = idx / (R * C);
        out[idx] = x[(z * R + r) * C + c];
    } else {
        if (idx >= C) {
            return;
        }
        var s = 0.0;
        for (var i = 0u; i < Z * R; i = i + 1u) {
            s = s + x[i * C + idx];
        }
        out[idx] = s;
    }
}
