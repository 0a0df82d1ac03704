// unfold.wgsl: sliding-window patch extraction, PyTorch's nn.Unfold(K, S, P)
// (zero padding, dilation 1) followed by .transpose(1, 2), i.e. token-major:
//   cols[b, l, f] = xpad[b, c, oh * S + ki, ow * S + kj]   (0 in the padding)
//   l = oh * OW + ow,  f = c * K * K + ki * K + kj  (channel-major features)
//   OH = (H + 2P - K) / S + 1, OW = (W + 2P - K) / S + 1 (floor),
//   xpad[b, c, y, x] = image[b, c, y - P, x - P] inside, 0 outside.
// The image is read from x in one of two layouts (INPUT):
//   INPUT_IMAGE:  x [B, C, H, W]:  image[b, c, h, w] = x[((b * C + c) * H + h) * W + w]
//   INPUT_TOKENS: x [B, H * W, C]: image[b, c, h, w] = x[(b * H * W + h * W + w) * C + c]
//
// Entry `forward`:
//   0 x    [B, C, H, W] or [B, H * W, C]
//   1 cols [B, OH * OW, C * K * K]
//   Dispatch: B * OH * OW * C * K * K invocations, workgroups of 64, linear over (x, y).
//
// Entry `backward` (fold / col2im: one invocation per INPUT element, in the
// input's layout, gathering the (l, f) positions that read it; overlapping
// windows add up without atomics, no races):
//   dx[b, c, h, w] = sum over ki, kj in 0..K with h + P - ki = oh * S,
//                    w + P - kj = ow * S, oh < OH, ow < OW of dcols[b, oh * OW + ow, c * K * K + ki * K + kj]
//   0 dcols [B, OH * OW, C * K * K]
//   1 dx    [B, C, H, W] or [B, H * W, C] (the layout of the forward's x)
//   Dispatch: B * C * H * W invocations, workgroups of 64, linear over (x, y).
//
// The entries use disjoint sets of globals: `x` and `dcols` share binding 0,
// `cols` and `dx` binding 1 (each entry point's layout holds only the globals it uses).

const INPUT_IMAGE: u32 = 0u;
const INPUT_TOKENS: u32 = 1u;

const B: u32 = 1u;
const C: u32 = 1u;
const H: u32 = 1u;
const W: u32 = 1u;
const K: u32 = 1u;
const S: u32 = 1u;
const P: u32 = 0u;
const OH: u32 = 1u;
const OW: u32 = 1u;
const INPUT: u32 = 0u;

const F: u32 = C * K * K;
const L: u32 = OH * OW;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> cols: array<f32>;
@group(0) @binding(0) var<storage, read> dcols: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;

// Index of image[b, c, h, w] in the input layout.
fn input_index(b: u32, c: u32, h: u32, w: u32) -> u32 {
    if (INPUT == INPUT_TOKENS) {
        return (b * H * W + h * W + w) * C + c;
    }
    return ((b * C + c) * H + h) * W + w;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * L * F) {
        return;
    }
    let f = idx % F;
    let l = (idx / F) % L;
    let b = idx / (F * L);
    let c = f / (K * K);
    let ki = (f / K) % K;
    let kj = f % K;
    // Coordinates in the padded image.
    let yp = (l / OW) * S + ki;
    let xp = (l % OW) * S + kj;
    var v = 0.0;
    if (yp >= P && yp < H + P && xp >= P && xp < W + P) {
        v = x[input_index(b, c, yp - P, xp - P)];
    }
    cols[idx] = v;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * C * H * W) {
        return;
    }
    var b = 0u;
    var c = 0u;
    var h = 0u;
    var w = 0u;
    if (INPUT == INPUT_TOKENS) {
        c = idx % C;
        w = (idx / C) % W;
        h = (idx / (C * W)) % H;
        b = idx / (C * W * H);
    } else {
        w = idx % W;
        h = (idx / W) % H;
        c = (idx / (W * H)) % C;
        b = idx / (W * H * C);
    }
    // Padded coordinates; window (oh, ow) reads them at offset (ki, kj) when
    // yp = oh * S + ki and xp = ow * S + kj.
    let yp = h + P;
    let xp = w + P;
    var g = 0.0;
    for (var ki = 0u; ki < K; ki = ki + 1u) {
        if (ki > yp || (yp - ki) % S != 0u || (yp - ki) / S >= OH) {
            continue;
        }
        let oh = (yp - ki) / S;
        for (var kj = 0u; kj < K; kj = kj + 1u) {
            if (kj > xp || (xp - kj) % S != 0u || (xp - kj) / S >= OW) {
                continue;
            }
            let ow = (xp - kj) / S;
            g = g + dcols[(b * L + oh * OW + ow) * F + (c * K + ki) * K + kj];
        }
    }
    dx[idx] = g;
}
