// pool.wgsl: token pooling for the head, x [B, T, C] -> [B, C].
// KIND_TOKEN: take token START (cls: 0, dist: 1); KIND_AVG: mean of tokens
// START..T (avg pool after the prefix tokens); KIND_MAX: max of tokens START..T.
//
// Entry `forward`:
//   0 x [B, T, C]
//   1 y [B, C]
//   Dispatch: B * C invocations, workgroups of 64, linear over (x, y).
//
// Entry `backward` (one invocation per INPUT element):
//   dx[b, t, c] = KIND_TOKEN: dy[b, c] if t == START
//                 KIND_AVG:   dy[b, c] / (T - START) if t >= START
//                 KIND_MAX:   dy[b, c] if t is the FIRST maximal token of START..T
//                 else 0 (x is read again for the argmax).
//   0 x  [B, T, C]
//   1 dy [B, C]
//   2 dx [B, T, C]
//   Dispatch: B * T * C invocations, workgroups of 64, linear over (x, y).
//
// `y` and `dy` share binding 1 (each entry point's layout holds only the
// globals it uses).

const KIND_TOKEN: u32 = 0u;
const KIND_AVG: u32 = 1u;
const KIND_MAX: u32 = 2u;

const B: u32 = 1u;
const T: u32 = 1u;
const C: u32 = 1u;
const KIND: u32 = 0u;
const START: u32 = 0u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * C) {
        return;
    }
    let c = idx % C;
    let b = idx / C;
    if (KIND == KIND_TOKEN) {
        y[idx] = x[(b * T + START) * C + c];
        return;
    }
    var s = 0.0;
    var mx = -3.4e38;
    for (var t = START; t < T; t = t + 1u) {
        let v = x[(b * T + t) * C + c];
        s = s + v;
        mx = max(mx, v);
    }
    if (KIND == KIND_AVG) {
        y[idx] = s / f32(T - START);
    } else {
        y[idx] = mx;
    }
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * T * C) {
        return;
    }
    let c = idx % C;
    let t = (idx / C) % T;
    let b = idx / (C * T);
    let g = dy[b * C + c];
    var v = 0.0;
    if (KIND == KIND_TOKEN && t == START) {
        v = g;
    } else if (KIND == KIND_AVG && t >= START) {
        v = g / f32(T - START);
    } else if (KIND == KIND_MAX && t >= START) {
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
    dx[idx] = v;
}
