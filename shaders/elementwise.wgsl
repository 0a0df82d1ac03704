// elementwise.wgsl: out = (a + b) * ALPHA, e.g. DeiT's averaged heads (ALPHA = 0.5).
//
// Bindings (f32):
//   0 a   [LEN]
//   1 b   [LEN]
//   2 out [LEN]
// Dispatch: LEN invocations, workgroups of 64, linear over (x, y).

const LEN: u32 = 1u;
const ALPHA: f32 = 1.0;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= LEN) {
        return;
    }
    out[idx] = (a[idx] + b[idx]) * ALPHA;
}
