// heads.wgsl: moves attention heads between timm's token layout and
// per-head matrices, so attention runs on the matmul kernels.
// HEADS_SPLIT: x = qkv [B, T, 3, H, D] -> out [B*H, T, D], part PART (0 q, 1 k)
// HEADS_SPLIT_VT: x = qkv [B, T, 3, H, D] -> out [B*H, D, TP], v transposed, zero for t >= T
// HEADS_MERGE: x = o   [B*H, T, D]     -> out [B, T, H*D] (heads merged, timm order; the
//              attention builders no longer use it: p . v writes merged, Graph::bmm_heads)
// Backward: HEADS_SPLIT_GRAD: x = dq or dk [B*H, T, D] -> d qkv [B, T, 3C], part PART, zeros elsewhere
//           HEADS_SPLIT_VT_GRAD: x = d vt [B*H, D, TP]    -> d qkv [B, T, 3C], part 2, zeros elsewhere
//           HEADS_MERGE_GRAD: x = d out [B, T, C]      -> d o [B*H, T, D]
//
// Bindings (f32, row-major):
//   0 x    see MODE
//   1 acc  added to out by the *_GRAD scatters when HAS_ACC == 1 (a gradient sum folded in)
//   2 out  see MODE
// Dispatch: one invocation per output element, workgroups of 64, linear over (x, y).

const B: u32 = 1u;
const T: u32 = 1u;
const TP: u32 = 4u;
const H: u32 = 1u;
const D: u32 = 1u;
// The modes (Rust: `heads_code` in src/ops/attention.rs).
const HEADS_SPLIT: u32 = 0u;
const HEADS_SPLIT_VT: u32 = 1u;
const HEADS_MERGE: u32 = 2u;
const HEADS_SPLIT_GRAD: u32 = 3u;
const HEADS_SPLIT_VT_GRAD: u32 = 4u;
const HEADS_MERGE_GRAD: u32 = 5u;

const MODE: u32 = HEADS_SPLIT;
const PART: u32 = 0u;
const HAS_ACC: u32 = 0u;
const C: u32 = H * D;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> acc: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (MODE == HEADS_SPLIT) {
        if (idx >= B * H * T * D) {
            return;
        }
        let d = idx % D;
        let t = (idx / D) % T;
        let z = idx / (D * T);
        let h = z % H;
        let b = z / H;
        out[idx] = x[(b * T + t) * 3u * C + PART * C + h * D + d];
    } else if (MODE == HEADS_SPLIT_VT) {
        if (idx >= B * H * D * TP) {
            return;
        }
        let t = idx % TP;
        let d = (idx / TP) % D;
        let z = idx / (TP * D);
        let h = z % H;
        let b = z / H;
        var v = 0.0;
        if (t < T) {
            v = x[(b * T + t) * 3u * C + 2u * C + h * D + d];
        }
        out[idx] = v;
    } else if (MODE == HEADS_MERGE) {
        if (idx >= B * T * C) {
            return;
        }
        let d = idx % D;
        let h = (idx / D) % H;
        let t = (idx / C) % T;
        let b = idx / (C * T);
        out[idx] = x[((b * H + h) * T + t) * D + d];
    } else if (MODE == HEADS_MERGE_GRAD) {
        if (idx >= B * H * T * D) {
            return;
        }
        let d = idx % D;
        let t = (idx / D) % T;
        let z = idx / (D * T);
        out[idx] = x[((z / H) * T + t) * C + (z % H) * D + d];
    } else {
        if (idx >= B * T * 3u * C) {
            return;
        }
        let d = idx % D;
        let h = (idx / D) % H;
        let part = (idx / C) % 3u;
        let t = (idx / (3u * C)) % T;
        let b = idx / (3u * C * T);
        let z = b * H + h;
        var v = 0.0;
        if (MODE == HEADS_SPLIT_GRAD && part == PART) {
            v = x[(z * T + t) * D + d];
        } else if (MODE == HEADS_SPLIT_VT_GRAD && part == 2u) {
            v = x[(z * D + d) * TP + t];
        }
        if (HAS_ACC == 1u) {
            v = v + acc[idx];
        }
        out[idx] = v;
    }
}
