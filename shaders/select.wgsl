// select.wgsl: choosing tokens by score (DynamicViT's pruning). u32 indices.
//
// Entry `topk` (op TopK): per row of x [ROWS, COLS], the K largest values in
// descending order and their column indices; ties go to the lower index.
// One invocation per element: its rank is the number of elements that beat it
// (greater, or equal at a lower index); ranks below K are written. One pass,
// no sort, no atomics.
//   0 x           [ROWS, COLS]  f32
//   1 top_values  [ROWS, K]     f32
//   2 top_indices [ROWS, K]     u32
//   Dispatch: ROWS * COLS invocations, workgroups of 64, linear over (x, y).
//
// Entries `scatter_zero` then `scatter_rows` (op ScatterRows, two launches):
// dst [ROWS, COLS] = 0, then dst[r, idx[r, k]] = src[r, k] (indices distinct
// within a row, as top-k's are; out-of-range indices are skipped).
//   0 src [ROWS, K]    f32   (scatter_rows only)
//   1 idx [ROWS, K]    u32   (scatter_rows only)
//   2 dst [ROWS, COLS] f32
//   Dispatch: ROWS * COLS (zero) and ROWS * K (scatter) invocations.
//
// Entry `gather_tokens` (op GatherTokens): for src [B, N, C], the first P tokens
// as they are, then the picked ones: dst[b, j, c] = src[b, j, c] for j < P, and
// src[b, P + idx[b, j - P], c] after (0 for a token >= N).
//   0 src [B, N, C] f32,  1 idx [B, K] u32,  2 dst [B, P + K, C] f32
//   Dispatch: B * (P + K) * C invocations.
//
// Entry `gather_tokens_grad` (op GatherTokensGrad): dst[b, n, c] = src[b, n, c] for
// n < P, else the sum over k with P + idx[b, k] == n of src[b, P + k, c] (gather
// form: repeated indices add up, no atomics).
//   0 src [B, P + K, C] f32 (dy),  1 idx [B, K] u32,  2 dst [B, N, C] f32
//   Dispatch: B * N * C invocations.
//
// Globals sharing a binding number are never used by the same entry point.

const ROWS: u32 = 1u;
const COLS: u32 = 1u;
const K: u32 = 1u;
const B: u32 = 1u;
const N: u32 = 1u;
const C: u32 = 1u;
const P: u32 = 0u;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> top_values: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> top_indices: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

@compute @workgroup_size(64)
fn topk(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= ROWS * COLS) {
        return;
    }
    let r = i / COLS;
    let j = i % COLS;
    let row = r * COLS;
    let v = src[i];
    var rank = 0u;
    for (var u = 0u; u < COLS; u = u + 1u) {
        let w = src[row + u];
        if (w > v || (w == v && u < j)) {
            rank = rank + 1u;
        }
    }
    if (rank < K) {
        top_values[r * K + rank] = v;
        top_indices[r * K + rank] = j;
    }
}

@compute @workgroup_size(64)
fn scatter_zero(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i < ROWS * COLS) {
        dst[i] = 0.0;
    }
}

@compute @workgroup_size(64)
fn scatter_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= ROWS * K) {
        return;
    }
    let col = idx[i];
    if (col < COLS) {
        dst[(i / K) * COLS + col] = src[i];
    }
}

@compute @workgroup_size(64)
fn gather_tokens(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= B * (P + K) * C) {
        return;
    }
    let c = i % C;
    let bj = i / C;
    let b = bj / (P + K);
    let j = bj % (P + K);
    var n = j;
    if (j >= P) {
        n = P + idx[b * K + j - P];
    }
    var v = 0.0;
    if (n < N) {
        v = src[(b * N + n) * C + c];
    }
    dst[i] = v;
}

@compute @workgroup_size(64)
fn gather_tokens_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= B * N * C) {
        return;
    }
    let c = i % C;
    let n = (i / C) % N;
    let b = i / (C * N);
    if (n < P) {
        dst[i] = src[(b * (P + K) + n) * C + c];
        return;
    }
    var s = 0.0;
    for (var k = 0u; k < K; k = k + 1u) {
        if (P + idx[b * K + k] == n) {
            s = s + src[(b * (P + K) + P + k) * C + c];
        }
    }
    dst[i] = s;
}
