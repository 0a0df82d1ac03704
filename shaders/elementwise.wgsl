// elementwise.wgsl: one value per invocation.
// EW_ADD_SCALE: out = (a + b) * ALPHA   (DeiT's averaged heads, gradient sums)
// EW_SCALE: out = a * ALPHA         (b unused)
// EW_MUL: out = a * b
// EW_GELU_GRAD: out = b * gelu'(a)      (a: GELU input, b: gradient of its output)
// EW_FILL: out = ALPHA             (a, b unused)
// EW_MUL_COL: out = a * b[idx % BN]   (b [BN] broadcast over rows: layer scale)
// EW_MUL_ROW: out = a * b[idx / BN] * ALPHA   (one b per row of BN values)
// EW_DIV_ROW: out = a / (b[idx / BN] + ALPHA)   (the Performer's normalisation)
// EW_PRM_EXP: out = exp(a - b[idx / BN] / 2) * ALPHA   (the Performer's feature map:
//             a = z w^T, b = |z|^2, ALPHA = 1 / sqrt(m))
// Entry `row_dot`: out[r] = sum_n a[r * BN + n] * b[r * BN + n], LEN = rows.
//
// Bindings (f32):
//   0 a   [LEN]
//   1 b   [LEN]
//   2 out [LEN]
// Dispatch: LEN invocations, workgroups of 64, linear over (x, y).

const LEN: u32 = 1u;
const ALPHA: f32 = 1.0;
// The modes (Rust: `ew_code` in src/ops/elementwise.rs).
const EW_ADD_SCALE: u32 = 0u;
const EW_SCALE: u32 = 1u;
const EW_MUL: u32 = 2u;
const EW_GELU_GRAD: u32 = 3u;
const EW_FILL: u32 = 4u;
const EW_MUL_COL: u32 = 5u;
const EW_MUL_ROW: u32 = 6u;
const EW_DIV_ROW: u32 = 7u;
const EW_PRM_EXP: u32 = 8u;

const MODE: u32 = EW_ADD_SCALE;
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
        case EW_ADD_SCALE: {
            out[idx] = (a[idx] + b[idx]) * ALPHA;
        }
        case EW_SCALE: {
            out[idx] = a[idx] * ALPHA;
        }
        case EW_MUL: {
            out[idx] = a[idx] * b[idx];
        }
        case EW_GELU_GRAD: {
            out[idx] = b[idx] * gelu_grad(a[idx]);
        }
        case EW_FILL: {
            out[idx] = ALPHA;
        }
        case EW_MUL_ROW: {
            out[idx] = a[idx] * b[idx / BN] * ALPHA;
        }
        case EW_DIV_ROW: {
            out[idx] = a[idx] / (b[idx / BN] + ALPHA);
        }
        case EW_PRM_EXP: {
            out[idx] = exp(a[idx] - 0.5 * b[idx / BN]) * ALPHA;
        }
        case EW_MUL_COL, default: {
            out[idx] = a[idx] * b[idx % BN];
        }
    }
}

@compute @workgroup_size(64)
fn row_dot(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= LEN) {
        return;
    }
    var s = 0.0;
    for (var n = 0u; n < BN; n++) {
        s += a[r * BN + n] * b[r * BN + n];
    }
    out[r] = s;
}
