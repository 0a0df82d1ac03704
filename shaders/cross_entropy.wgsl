// cross_entropy.wgsl: softmax cross-entropy with label smoothing, per row
// (timm's LabelSmoothingCrossEntropy before its batch mean). Log-softmax
// subtracts the row max and sums in f32.
//
// Entry `forward` (op CrossEntropy):
//   loss[b] = -(1 - S) * logp[b, y_b] - S * mean_k logp[b, k]
//   0 logits [B, K],  1 labels [B] (class indices stored as f32),  2 loss [B]
// Entry `backward` (op CrossEntropyGrad):
//   dlogits[b, k] = (softmax[b, k] - (1 - S) onehot(y_b)[k] - S / K) * dy[b]
//   0 logits [B, K],  1 labels [B],  2 dy [B] (each row's loss gradient),  3 dlogits [B, K]
// Dispatch: B invocations (one row each), workgroups of 64, linear over (x, y).
// `loss` and `dy` share binding 2; each entry uses one of them.

const B: u32 = 1u;
const K: u32 = 1u;
const S: f32 = 0.0;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;

struct RowStats {
    lse: f32,
    total: f32,
}

fn row_stats(o: u32) -> RowStats {
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
    return RowStats(mx + log(sum), total);
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = gid.x + gid.y * nwg.x * 64u;
    if (b >= B) {
        return;
    }
    let o = b * K;
    let r = row_stats(o);
    let y = u32(labels[b]);
    let nll = r.lse - logits[o + y];
    let smoothed = r.lse - r.total / f32(K);
    loss[b] = (1.0 - S) * nll + S * smoothed;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = gid.x + gid.y * nwg.x * 64u;
    if (b >= B) {
        return;
    }
    let o = b * K;
    let lse = row_stats(o).lse;
    let y = u32(labels[b]);
    for (var k = 0u; k < K; k = k + 1u) {
        var t = S / f32(K);
        if (k == y) {
            t = t + 1.0 - S;
        }
        dlogits[o + k] = (exp(logits[o + k] - lse) - t) * dy[b];
    }
}
