// reuse.wgsl: DVT's feature / relation reuse resampling along a token axis.
// x is read as [OUTER, 1 + SIN * SIN, INNER]: token 0 is the class token, tokens 1.. a
// SIN x SIN grid in raster order. The grid is upsampled (nearest) to UP x UP
// (source row floor(u * SIN / UP)), then adaptive-average-pooled to SOUT x SOUT
// (output row i averages rows [floor(i * UP / SOUT), ceil((i + 1) * UP / SOUT))), as
// F.interpolate(mode='nearest') then F.adaptive_avg_pool2d; the class token is kept
// (KEEP 1) or zeroed (KEEP 0).
//
// Entry `forward` (op TokenResample): out [OUTER, 1 + SOUT * SOUT, INNER].
//   0 x,  1 out
// Entry `backward` (op TokenResampleGrad): the transpose: dx [OUTER, 1 + SIN * SIN, INNER]
//   from dy [OUTER, 1 + SOUT * SOUT, INNER].
//   0 dy, 1 dx
// Dispatch: one invocation per output element, workgroups of 64, linear over (x, y).

const OUTER: u32 = 1u;
const INNER: u32 = 1u;
const SIN: u32 = 1u;
const UP: u32 = 2u;
const SOUT: u32 = 1u;
const KEEP: u32 = 0u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;

fn bin_start(i: u32) -> u32 {
    return (i * UP) / SOUT;
}

fn bin_end(i: u32) -> u32 {
    return ((i + 1u) * UP + SOUT - 1u) / SOUT;
}

fn src(u: u32) -> u32 {
    return (u * SIN) / UP;
}

// How many upsampled rows of output bin i come from source row s.
fn hits(i: u32, s: u32) -> u32 {
    var n = 0u;
    for (var u = bin_start(i); u < bin_end(i); u++) {
        if (src(u) == s) {
            n++;
        }
    }
    return n;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let tout = 1u + SOUT * SOUT;
    let tin = 1u + SIN * SIN;
    if (i >= OUTER * tout * INNER) {
        return;
    }
    let c = i % INNER;
    let t = (i / INNER) % tout;
    let o = i / (INNER * tout);
    let base = o * tin * INNER + c;
    if (t == 0u) {
        if (KEEP == 1u) {
            out[i] = x[base];
        } else {
            out[i] = 0.0;
        }
        return;
    }
    let ty = (t - 1u) / SOUT;
    let tx = (t - 1u) % SOUT;
    let y0 = bin_start(ty);
    let y1 = bin_end(ty);
    let x0 = bin_start(tx);
    let x1 = bin_end(tx);
    var acc = 0.0;
    for (var u = y0; u < y1; u++) {
        for (var v = x0; v < x1; v++) {
            acc += x[base + (1u + src(u) * SIN + src(v)) * INNER];
        }
    }
    out[i] = acc / f32(y1 - y0) / f32(x1 - x0);
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let tout = 1u + SOUT * SOUT;
    let tin = 1u + SIN * SIN;
    if (i >= OUTER * tin * INNER) {
        return;
    }
    let c = i % INNER;
    let s = (i / INNER) % tin;
    let o = i / (INNER * tin);
    let base = o * tout * INNER + c;
    if (s == 0u) {
        if (KEEP == 1u) {
            dx[i] = dy[base];
        } else {
            dx[i] = 0.0;
        }
        return;
    }
    let sy = (s - 1u) / SIN;
    let sx = (s - 1u) % SIN;
    var acc = 0.0;
    for (var ty = 0u; ty < SOUT; ty++) {
        let hy = hits(ty, sy);
        if (hy == 0u) {
            continue;
        }
        let ky = f32(bin_end(ty) - bin_start(ty));
        for (var tx = 0u; tx < SOUT; tx++) {
            let hx = hits(tx, sx);
            if (hx == 0u) {
                continue;
            }
            let kx = f32(bin_end(tx) - bin_start(tx));
            acc += dy[base + (1u + ty * SOUT + tx) * INNER] * f32(hy * hx) / ky / kx;
        }
    }
    dx[i] = acc;
}
