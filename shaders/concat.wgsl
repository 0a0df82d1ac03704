// concat.wgsl: [.., CA] ++ [.., CB] -> [.., CA + CB] along the last dimension
// (DVT's reused features joined to the tokens before norm2).
//
// Entry `forward` (op ConcatLast): out[r, j] = a[r, j] for j < CA, b[r, j - CA] after.
//   0 a [ROWS, CA],  1 b [ROWS, CB],  2 out [ROWS, CA + CB]
// Dispatch: one invocation per output element, workgroups of 64, linear over (x, y).

const ROWS: u32 = 1u;
const CA: u32 = 1u;
const CB: u32 = 1u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let w = CA + CB;
    if (i >= ROWS * w) {
        return;
    }
    let r = i / w;
    let j = i % w;
    if (j < CA) {
        out[i] = a[r * CA + j];
    } else {
        out[i] = b[r * CB + j - CA];
    }
}
