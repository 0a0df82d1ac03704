// attention.wgsl: multi-head self-attention core, softmax(Q K^T * SCALE) V.
// One invocation per (batch, head, query token); online softmax (running max
// subtracted, f32 sums), so any token count works. HEAD_DIM is any size.
//
// Bindings (f32, row-major):
//   0 qkv [B, T, 3, H, D]   timm's qkv Linear output, C = H * D
//   1 out [B, T, H, D]      heads merged back: [B, T, C]
// Dispatch: B * H * T invocations, workgroups of 64, linear over (x, y).

const B: u32 = 1u;
const T: u32 = 1u;
const H: u32 = 1u;
const HEAD_DIM: u32 = 64u;
const SCALE: f32 = 0.125;

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * H * T) {
        return;
    }
    let i = idx % T;
    let h = (idx / T) % H;
    let b = idx / (T * H);
    let C = H * HEAD_DIM;
    let row = 3u * C;
    let q_off = (b * T + i) * row + h * HEAD_DIM;
    var q: array<f32, HEAD_DIM>;
    var acc: array<f32, HEAD_DIM>;
    for (var d = 0u; d < HEAD_DIM; d = d + 1u) {
        q[d] = qkv[q_off + d] * SCALE;
        acc[d] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    for (var j = 0u; j < T; j = j + 1u) {
        let k_off = (b * T + j) * row + C + h * HEAD_DIM;
        var s = 0.0;
        for (var d = 0u; d < HEAD_DIM; d = d + 1u) {
            s = s + q[d] * qkv[k_off + d];
        }
        let m_new = max(m, s);
        let corr = exp(m - m_new);
        let p = exp(s - m_new);
        l = l * corr + p;
        let v_off = k_off + C;
        for (var d = 0u; d < HEAD_DIM; d = d + 1u) {
            acc[d] = acc[d] * corr + p * qkv[v_off + d];
        }
        m = m_new;
    }
    let o_off = (b * T + i) * C + h * HEAD_DIM;
    let inv = 1.0 / l;
    for (var d = 0u; d < HEAD_DIM; d = d + 1u) {
        out[o_off + d] = acc[d] * inv;
    }
}
