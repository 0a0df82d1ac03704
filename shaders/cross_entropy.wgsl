// cross_entropy.wgsl: softmax cross-entropy with label smoothing, per row
// (timm's LabelSmoothingCrossEntropy before its batch mean):
//   loss[b] = -(1 - S) * logp[b, y_b] - S * mean_k logp[b, k]
// MODE 1 (backward): out = dlogits [B, K] = (softmax - (1 - S) onehot - S / K) * dy[b].
// Log-softmax subtracts the row max and sums in f32.
//
// Bindings (f32, row-major):
//   0 logits [B, K]
//   1 labels [B]      class indices stored as f32
//   2 dy     [B]      MODE 1 only: gradient of each row's loss
//   3 out    [B]      (MODE 1: [B, K])
// Dispatch: B invocations, workgroups of 64, linear over (x, y).

const B: u32 = 1u;
const K: u32 = 1u;
const S: f32 = 0.0;
const MODE: u32 = 0u;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = gid.x + gid.y * nwg.x * 64u;
    if (b >= B) {
        return;
    }
    let o = b * K;
    var mx = -3.4e38;
    for (var k = 0u; k < K; k = k + 1u) {
        mx = max(mx, logits[o + k]);
    }
    var sum = 0.0;
    var total = 0.0;
    for (var k = 0u; k < K; k = k + 1u) {
        sum = sum + exp(logits[o + k] - mx);
        total = total + logits[o + k];
    }
    let lse = mx + log(sum);
    let y = u32(labels[b]);
    if (MODE == 0u) {
        let nll = lse - logits[o + y];
        let smoothed = lse - total / f32(K);
        out[b] = (1.0 - S) * nll + S * smoothed;
        return;
    }
    for (var k = 0u; k < K; k = k + 1u) {
        var t = S / f32(K);
        if (k == y) {
            t = t + 1.0 - S;
        }
        out[o + k] = (exp(logits[o + k] - lse) - t) * dy[b];
    }
}
