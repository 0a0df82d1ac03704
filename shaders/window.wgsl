// window.wgsl: Swin's token rearrangements, as gathers (one invocation per
// output element, each reads at most one input element; no atomics).
// Tokens are [B, H, W, C] row-major (timm's NHWC), windows [B * NW, WH * WW, C]
// with NW = NWH * NWW windows of WH x WW, NWH = ceil(H / WH), NWW = ceil(W / WW).
//
// MODE 0 partition: x [B, H*W, C] -> windows. timm's `_attn`: roll by
//        (-SH, -SW), zero-pad to (NWH*WH, NWW*WW), window_partition.
// MODE 1 reverse: windows -> [B, H*W, C]: window_reverse, crop, roll by
//        (SH, SW); with RES = 1 the residual `res` [B, H*W, C] is added.
//        (MODE 1 is also the backward of MODE 0, and MODE 0 of MODE 1.)
// MODE 2 merge: x [B, H*W, C] -> [B, H2*W2, 4C], H2 = ceil(H / 2): timm's
//        PatchMerging (zero-pad to even, 2x2 neighbours, channel order
//        (w offset, h offset, c)).
// MODE 3 merge backward: d [B, H2*W2, 4C] -> d x [B, H*W, C].
//
// Bindings (f32, row-major):
//   0 x    see MODE
//   1 res  [B, H*W, C]   MODE 1 with RES = 1 only
//   2 out  see MODE
// Dispatch: one invocation per output element, workgroups of 64, linear over (x, y).

const B: u32 = 1u;
const H: u32 = 1u;
const W: u32 = 1u;
const C: u32 = 1u;
const WH: u32 = 1u;
const WW: u32 = 1u;
const SH: u32 = 0u;
const SW: u32 = 0u;
const MODE: u32 = 0u;
const RES: u32 = 0u;
const NWH: u32 = (H + WH - 1u) / WH;
const NWW: u32 = (W + WW - 1u) / WW;
const NW: u32 = NWH * NWW;
const N: u32 = WH * WW;
const H2: u32 = (H + 1u) / 2u;
const W2: u32 = (W + 1u) / 2u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> res: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    let c = idx % C;
    if (MODE == 0u) {
        if (idx >= B * NW * N * C) {
            return;
        }
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
        out[idx] = v;
    } else if (MODE == 1u) {
        if (idx >= B * H * W * C) {
            return;
        }
        let xx = (idx / C) % W;
        let y = (idx / (C * W)) % H;
        let b = idx / (C * W * H);
        let py = (y + H - SH % H) % H;
        let px = (xx + W - SW % W) % W;
        let w = (py / WH) * NWW + px / WW;
        let i = (py % WH) * WW + px % WW;
        var v = x[((b * NW + w) * N + i) * C + c];
        if (RES == 1u) {
            v = v + res[idx];
        }
        out[idx] = v;
    } else if (MODE == 2u) {
        if (idx >= B * H2 * W2 * 4u * C) {
            return;
        }
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
        out[idx] = v;
    } else {
        if (idx >= B * H * W * C) {
            return;
        }
        let xx = (idx / C) % W;
        let y = (idx / (C * W)) % H;
        let b = idx / (C * W * H);
        let k = (xx % 2u) * 2u + y % 2u;
        out[idx] = x[(((b * H2 + y / 2u) * W2 + xx / 2u) * 4u + k) * C + c];
    }
}
