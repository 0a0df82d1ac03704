// grad.wgsl: gradients between the backward pass and the optimizer.
//
// Entry `accumulate` (micro-batches): acc[i] += g[i] for i < arrayLength(acc).
//   (The first micro-batch copies g into acc with a buffer copy.)
//   0 g    [>= N] gradient of this micro-batch
//   1 acc  [N]    running sum (updated)
//   Dispatch: N invocations, workgroups of 64, linear over (x, y).
//
// Entry `sumsq` (global-norm clipping, one dispatch per parameter tensor):
//   partial[k] = sum over i < arrayLength(p) of g[i]^2, by ONE workgroup of 256
//   (fixed order: the result is deterministic).
//   0 g       [>= N] gradient (or accumulated gradient)
//   2 p       [N]    the parameter (only its length is used)
//   3 partial [T]    one sum per parameter tensor (zero-initialised; updated)
//   4 idx     uniform vec4<u32>, x = k
//   Dispatch: 1 workgroup.
//
// Entry `factor`: norm = sqrt(sum partial); scale[0] = min(1, max_norm / (norm + 1e-6))
//   (torch.nn.utils.clip_grad_norm_), scale[1] = norm.
//   3 partial [T]
//   5 scale   [2] (updated; the optimizer multiplies every gradient by scale[0])
//   6 clip    uniform vec4<f32>, x = max_norm
//   Dispatch: 1 workgroup.

@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read> p: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
@group(0) @binding(4) var<uniform> idx: vec4<u32>;
@group(0) @binding(5) var<storage, read_write> scale: array<f32>;
@group(0) @binding(6) var<uniform> clip: vec4<f32>;

var<workgroup> red: array<f32, 256>;

// Sum of `s` over the 256 invocations of a workgroup (fixed tree order).
fn reduce(lid: u32, s: f32) -> f32 {
    red[lid] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if (lid < w) {
            red[lid] = red[lid] + red[lid + w];
        }
        workgroupBarrier();
    }
    return red[0];
}

@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i < arrayLength(&acc)) {
        acc[i] = acc[i] + g[i];
    }
}

@compute @workgroup_size(256)
fn sumsq(@builtin(local_invocation_index) lid: u32) {
    let n = arrayLength(&p);
    var s = 0.0;
    for (var i = lid; i < n; i = i + 256u) {
        let x = g[i];
        s = s + x * x;
    }
    let total = reduce(lid, s);
    if (lid == 0u) {
        partial[idx.x] = total;
    }
}

@compute @workgroup_size(256)
fn factor(@builtin(local_invocation_index) lid: u32) {
    let n = arrayLength(&partial);
    var s = 0.0;
    for (var i = lid; i < n; i = i + 256u) {
        s = s + partial[i];
    }
    let total = reduce(lid, s);
    if (lid == 0u) {
        let norm = sqrt(total);
        scale[0] = min(1.0, clip.x / (norm + 1e-6));
        scale[1] = norm;
    }
}
