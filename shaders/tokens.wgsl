// tokens.wgsl: prefix tokens (cls, dist, reg) + patch tokens + position embedding.
// POS_MODE 0: pos covers all T tokens (timm default);
//          1: pos covers patch tokens only (no_embed_class);
//          2: no position embedding.
// Backward (MODE): the input at binding 0 is dy [B, T, C], and
//   MODE 1: out = d patches [B, NP, C]
//   MODE 2: out = d prefix  [NPRE, C]   (summed over the batch)
//   MODE 3: out = d pos     [T or NP, C] (summed over the batch)
//
// Bindings (f32, row-major):
//   0 patches [B, NP, C]
//   1 prefix  [NPRE, C]          (cls, dist, reg concatenated; unused when NPRE == 0)
//   2 pos     [T or NP, C]       (unused when POS_MODE == 2)
//   3 out     [B, T, C]          T = NPRE + NP
// Dispatch: B * T * C invocations, workgroups of 64, linear over (x, y).

const B: u32 = 1u;
const NP: u32 = 1u;
const NPRE: u32 = 1u;
const C: u32 = 1u;
const POS_MODE: u32 = 0u;
const MODE: u32 = 0u;
const T: u32 = NPRE + NP;

@group(0) @binding(0) var<storage, read> patches: array<f32>;
@group(0) @binding(1) var<storage, read> prefix: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (MODE == 1u) {
        if (idx >= B * NP * C) {
            return;
        }
        let c = idx % C;
        let p = (idx / C) % NP;
        let b = idx / (C * NP);
        out[idx] = patches[(b * T + NPRE + p) * C + c];
        return;
    }
    if (MODE >= 2u) {
        // Rows of the summed gradient: prefix tokens, or the tokens pos covers.
        var first = 0u;
        var rows = NPRE;
        if (MODE == 3u) {
            rows = T;
            if (POS_MODE == 1u) {
                first = NPRE;
                rows = NP;
            }
        }
        if (idx >= rows * C) {
            return;
        }
        let c = idx % C;
        let t = first + idx / C;
        var s = 0.0;
        for (var b = 0u; b < B; b = b + 1u) {
            s = s + patches[(b * T + t) * C + c];
        }
        out[idx] = s;
        return;
    }
    if (idx >= B * T * C) {
        return;
    }
    let c = idx % C;
    let t = (idx / C) % T;
    let b = idx / (C * T);
    var v = 0.0;
    if (t < NPRE) {
        v = prefix[t * C + c];
    } else {
        v = patches[(b * NP + t - NPRE) * C + c];
    }
    if (POS_MODE == 0u) {
        v = v + pos[t * C + c];
    } else if (POS_MODE == 1u && t >= NPRE) {
        v = v + pos[(t - NPRE) * C + c];
    }
    out[idx] = v;
}
