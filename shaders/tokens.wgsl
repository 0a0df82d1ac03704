// tokens.wgsl: prefix tokens (cls, dist, reg) + patch tokens + position embedding,
// out [B, T, C], T = NPRE + NP (timm's VisionTransformer._pos_embed).
// POS_MODE: POS_ALL: pos [T, C] covers all tokens (timm default);
//           POS_PATCHES: pos [NP, C] covers the patch tokens only (no_embed_class);
//           POS_NONE: no position embedding.
//
// Entry `forward`:
//   0 patches [B, NP, C]
//   1 prefix  [NPRE, C]    (cls, dist, reg concatenated; unused when NPRE == 0)
//   2 pos     [T or NP, C] (unused with POS_NONE)
//   3 out     [B, T, C]
//   Dispatch: B * T * C invocations, workgroups of 64, linear over (x, y).
//
// Entry `patch_grad` (d patches: the patch rows of dy):
//   0 dy       [B, T, C]
//   1 dpatches [B, NP, C]
//   Dispatch: B * NP * C invocations, workgroups of 64, linear over (x, y).
//
// Entry `batch_sum` (d prefix or d pos: rows FIRST..FIRST + ROWS of dy summed
// over the batch; prefix: 0, NPRE; pos: 0, T or NPRE, NP):
//   0 dy   [B, T, C]
//   1 dsum [ROWS, C]
//   Dispatch: ROWS * C invocations, workgroups of 64, linear over (x, y).
//
// `patches` and `dy` share binding 0, `prefix`, `dpatches` and `dsum`
// binding 1 (each entry point's layout holds only the globals it uses).

const POS_ALL: u32 = 0u;
const POS_PATCHES: u32 = 1u;
const POS_NONE: u32 = 2u;

const B: u32 = 1u;
const NP: u32 = 1u;
const NPRE: u32 = 1u;
const C: u32 = 1u;
const POS_MODE: u32 = 0u;
const FIRST: u32 = 0u;
const ROWS: u32 = 1u;
const T: u32 = NPRE + NP;

@group(0) @binding(0) var<storage, read> patches: array<f32>;
@group(0) @binding(1) var<storage, read> prefix: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dpatches: array<f32>;
@group(0) @binding(1) var<storage, read_write> dsum: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
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
    if (POS_MODE == POS_ALL) {
        v = v + pos[t * C + c];
    } else if (POS_MODE == POS_PATCHES && t >= NPRE) {
        v = v + pos[(t - NPRE) * C + c];
    }
    out[idx] = v;
}

@compute @workgroup_size(64)
fn patch_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * NP * C) {
        return;
    }
    let c = idx % C;
    let p = (idx / C) % NP;
    let b = idx / (C * NP);
    dpatches[idx] = dy[(b * T + NPRE + p) * C + c];
}

@compute @workgroup_size(64)
fn batch_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= ROWS * C) {
        return;
    }
    let c = idx % C;
    let t = FIRST + idx / C;
    var s = 0.0;
    for (var b = 0u; b < B; b = b + 1u) {
        s = s + dy[(b * T + t) * C + c];
    }
    dsum[idx] = s;
}
