// optim.wgsl: optimizer steps on one parameter tensor, in place.
// MODE 0, AdamW (torch.optim.AdamW): p -= lr * wd * p; m = b1 m + (1 - b1) g;
//   v = b2 v + (1 - b2) g^2; p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// MODE 1, SGD with momentum (torch.optim.SGD): g += wd * p; m = mu m + g; p -= lr * m
// MODE 2, SGD with Nesterov momentum (torch.optim.SGD(nesterov=True), timm's `sgd`):
//   g += wd * p; m = mu m + g; p -= lr * (g + mu m)
// (bc1 = 1 - b1^t, bc2 = 1 - b2^t). Gradients are multiplied by s[0] first
// (the global-norm clipping factor from grad.wgsl, 1 when clipping is off).
//
// Bindings (f32):
//   0 g     [N]  gradient
//   1 p     [N]  parameter (updated)
//   2 m     [N]  first moment / momentum buffer (updated)
//   3 v     [N]  second moment (updated; unused by SGD)
//   4 h     uniform Hyper
//   5 s     [2]  clipping factor in s[0]
// N is the parameter buffer's length, so one pipeline serves every tensor.
// Dispatch: N invocations, workgroups of 64, linear over (x, y).

const MODE: u32 = 0u;

struct Hyper {
    lr: f32,
    wd: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    bc1: f32,
    bc2: f32,
    pad: f32,
}

@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<uniform> h: Hyper;
@group(0) @binding(5) var<storage, read> s: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= arrayLength(&p)) {
        return;
    }
    let grad = g[i] * s[0];
    if (MODE == 0u) {
        var w = p[i] * (1.0 - h.lr * h.wd);
        let m1 = h.b1 * m[i] + (1.0 - h.b1) * grad;
        let v1 = h.b2 * v[i] + (1.0 - h.b2) * grad * grad;
        m[i] = m1;
        v[i] = v1;
        w = w - (h.lr / h.bc1) * m1 / (sqrt(v1) / sqrt(h.bc2) + h.eps);
        p[i] = w;
    } else {
        let gd = grad + h.wd * p[i];
        let m1 = h.b1 * m[i] + gd;
        m[i] = m1;
        if (MODE == 2u) {
            p[i] = p[i] - h.lr * (gd + h.b1 * m1);
        } else {
            p[i] = p[i] - h.lr * m1;
        }
    }
}
