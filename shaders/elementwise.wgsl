// elementwise.wgsl: one value per invocation.
// MODE 0: out = (a + b) * ALPHA   (DeiT's averaged heads, gradient sums)
// MODE 1: out = a * ALPHA         (b unused)
// MODE 2: out = a * b
// MODE 3: out = b * gelu'(a)      (a: GELU input, b: gradient of its output)
// MODE 4: out = ALPHA             (a, b unused)
// MODE 5: out = a * b[idx % BN]   (b [BN] broadcast over rows: layer scale)
//
// Bindings (f32):
//   0 a   [LEN]
//   1 b   [LEN]
//   2 out [LEN]
// Dispatch: LEN invocations, workgroups of 64, linear over (x, y).

const LEN: u32 = 1u;
const ALPHA: f32 = 1.0;
const MODE: u32 = 0u;
const BN: u32 = 1u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= LEN) {
        return;
    }
    switch MODE {
        case 0u: {
            out[idx] = (a[idx] + b[idx]) * ALPHA;
        }
        case 1u: {
            out[idx] = a[idx] * ALPHA;
        }
        case 2u: {
            out[idx] = a[idx] * b[idx];
        }
        case 3u: {
            out[idx] = b[idx] * gelu_grad(a[idx]);
        }
        case 4u: {
            out[idx] = ALPHA;
        }
        default: {
            out[idx] = a[idx] * b[idx % BN];
        }
    }
}
