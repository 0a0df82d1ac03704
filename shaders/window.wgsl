// window.wgsl: Swin's token rearrangements, as gathers (one invocation per
// output element, each reads at most one input element; no atomics).
// Tokens are [B, H, W, C] row-major (timm's NHWC), windows [B * NW, WH * WW, C]
// with NW = NWH * NWW windows of WH x WW, NWH = ceil(H / WH), NWW = ceil(W / WW).
// Each entry's backward is another entry: window_partition <-> window_reverse,
// patch_merge <-> patch_merge_grad.
//
// Entry `window_partition`: timm's `_attn` preamble: roll by (-SH, -SW), zero-pad to
// (NWH*WH, NWW*WW), window_partition.
//   0 x       [B, H*W, C]
//   1 windows [B * NW, WH * WW, C]
//   Dispatch: B * NW * WH * WW * C invocations, workgroups of 64, linear over (x, y).
//
// Entry `window_reverse`: timm's window_reverse, crop, roll by (SH, SW).
//   0 win [B * NW, WH * WW, C]
//   1 out [B, H*W, C]
//   Dispatch: B * H * W * C invocations, workgroups of 64, linear over (x, y).
//
// Entry `window_reverse_add`: the same plus the residual (Swin's `x + attn(x)`).
//   0 win     [B * NW, WH * WW, C]
//   1 res     [B, H*W, C]
//   2 out_res [B, H*W, C]
//   Dispatch: B * H * W * C invocations, workgroups of 64, linear over (x, y).
//
// Entry `patch_merge`: timm's PatchMerging gather (zero-pad to even, 2x2 neighbours,
// channel order (w offset, h offset, c)), H2 = ceil(H / 2), W2 = ceil(W / 2).
//   0 x      [B, H*W, C]
//   1 merged [B, H2*W2, 4C]
//   Dispatch: B * H2 * W2 * 4 * C invocations, workgroups of 64, linear over (x, y).
//
// Entry `patch_merge_grad`: the backward of `patch_merge`.
//   0 dmerged [B, H2*W2, 4C]
//   1 dx      [B, H*W, C]
//   Dispatch: B * H * W * C invocations, workgroups of 64, linear over (x, y).
//
// Globals of different entries share binding indices (each entry point's
// layout holds only the globals it uses).

const B: u32 = 1u;
const H: u32 = 1u;
const W: u32 = 1u;
const C: u32 = 1u;
const WH: u32 = 1u;
const WW: u32 = 1u;
const SH: u32 = 0u;
const SW: u32 = 0u;
const NWH: u32 = (H + WH - 1u) / WH;
const NWW: u32 = (W + WW - 1u) / WW;
const NW: u32 = NWH * NWW;
const N: u32 = WH * WW;
const H2: u32 = (H + 1u) / 2u;
const W2: u32 = (W + 1u) / 2u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> windows: array<f32>;
@group(0) @binding(0) var<storage, read> win: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> res: array<f32>;
@group(0) @binding(2) var<storage, read_write> out_res: array<f32>;
@group(0) @binding(1) var<storage, read_write> merged: array<f32>;
@group(0) @binding(0) var<storage, read> dmerged: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn window_partition(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * NW * N * C) {
        return;
    }
    let c = idx % C;
    let i = (idx / C) % N;
    let w = (idx / (C * N)) % NW;
    let b = idx / (C * N * NW);
    let py = (w / NWW) * WH + i / WW;
    let px = (w % NWW) * WW + i % WW;
    var v = 0.0;
    if (py < H && px < W) {
        let y = (py + SH) % H;
        let xx = (px + SW) % W;
        v = x[((b * H + y) * W + xx) * C + c];
    }
    windows[idx] = v;
}

// The window element that output element idx of the reverse reads.
fn reverse_source(idx: u32) -> u32 {
    let c = idx % C;
    let xx = (idx / C) % W;
    let y = (idx / (C * W)) % H;
    let b = idx / (C * W * H);
    let py = (y + H - SH % H) % H;
    let px = (xx + W - SW % W) % W;
    let w = (py / WH) * NWW + px / WW;
    let i = (py % WH) * WW + px % WW;
    return ((b * NW + w) * N + i) * C + c;
}

@compute @workgroup_size(64)
fn window_reverse(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * H * W * C) {
        return;
    }
    out[idx] = win[reverse_source(idx)];
}

@compute @workgroup_size(64)
fn window_reverse_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * H * W * C) {
        return;
    }
    out_res[idx] = win[reverse_source(idx)] + res[idx];
}

@compute @workgroup_size(64)
fn patch_merge(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * H2 * W2 * 4u * C) {
        return;
    }
    let c = idx % C;
    let k = (idx / C) % 4u;
    let x2 = (idx / (4u * C)) % W2;
    let y2 = (idx / (4u * C * W2)) % H2;
    let b = idx / (4u * C * W2 * H2);
    let y = 2u * y2 + k % 2u;
    let xx = 2u * x2 + k / 2u;
    var v = 0.0;
    if (y < H && xx < W) {
        v = x[((b * H + y) * W + xx) * C + c];
    }
    merged[idx] = v;
}

@compute @workgroup_size(64)
fn patch_merge_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * H * W * C) {
        return;
    }
    let c = idx % C;
    let xx = (idx / C) % W;
    let y = (idx / (C * W)) % H;
    let b = idx / (C * W * H);
    let k = (xx % 2u) * 2u + y % 2u;
    dx[idx] = dmerged[(((b * H2 + y / 2u) * W2 + xx / 2u) * 4u + k) * C + c];
}
