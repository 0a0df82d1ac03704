// pool.wgsl: token pooling for the head.
// MODE 0: take token START (cls: 0, dist: 1); MODE 1: mean of tokens
// START..T (avg pool after the prefix tokens); MODE 2: max of tokens START..T.
// MODE 3/4/5: the backward of 0/1/2: out = dx [B, T, C] from dy [B, C]
// (max: the gradient goes to the first maximal token, as x is read again).
//
// Bindings (f32, row-major):
//   0 x   [B, T, C]
//   1 dy  [B, C]      backward only
//   2 out [B, C]      (backward: [B, T, C])
// Dispatch: B * C invocations (backward: B * T * C), workgroups of 64, linear over (x, y).

const B: u32 = 1u;
const T: u32 = 1u;
const C: u32 = 1u;
const MODE: u32 = 0u;
const START: u32 = 0u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (MODE >= 3u) {
        if (idx >= B * T * C) {
            return;
        }
        let c = idx % C;
        let t = (idx / C) % T;
        let b = idx / (C * T);
        let g = dy[b * C + c];
        var v = 0.0;
        if (MODE == 3u && t == START) {
            v = g;
        } else if (MODE == 4u && t >= START) {
            v = g / f32(T - START);
        } else if (MODE == 5u && t >= START) {
            var arg = START;
            var mx = x[(b * T + START) * C + c];
            for (var u = START + 1u; u < T; u = u + 1u) {
                let xv = x[(b * T + u) * C + c];
                if (xv > mx) {
                    mx = xv;
                    arg = u;
                }
            }
            if (arg == t) {
                v = g;
            }
        }
        out[idx] = v;
        return;
    }
    if (idx >= B * C) {
        return;
    }
    let c = idx % C;
    let b = idx / C;
    if (MODE == 0u) {
        out[idx] = x[(b * T + START) * C + c];
        return;
    }
    var s = 0.0;
    var mx = -3.4e38;
    for (var t = START; t < T; t = t + 1u) {
        let v = x[(b * T + t) * C + c];
        s = s + v;
        mx = max(mx, v);
    }
    if (MODE == 1u) {
        out[idx] = s / f32(T - START);
    } else {
        out[idx] = mx;
    }
}
