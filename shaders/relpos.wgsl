// relpos.wgsl: Swin's relative position bias and its gradient.
// A window has N = WH * WW tokens; the table holds one value per relative
// offset (dy, dx) in [-(WH-1), WH-1] x [-(WW-1), WW-1] and head:
// table [(2WH-1) * (2WW-1), NH], index (dy + WH-1) * (2WW-1) + (dx + WW-1)
// (timm's `get_relative_position_index`).
//
// Entry `forward`: bias[h, i, j] = table[idx(i - j), h].
//   0 table [(2WH-1) * (2WW-1), NH]
//   1 bias  [NH, N, N]
//   Dispatch: NH * N * N invocations, workgroups of 64, linear over (x, y).
//
// Entry `backward`: d table, summed over the pairs (i, j) sharing an offset
// (one invocation per table entry, gathering: no atomics).
//   0 dbias  [NH, N, N]
//   1 dtable [(2WH-1) * (2WW-1), NH]
//   Dispatch: (2WH-1) * (2WW-1) * NH invocations, workgroups of 64, linear over (x, y).
//
// (The gradient of the bias itself, the softmax's ds / scale summed over the
// windows and the batch, is a column sum: `sum_rows` in transpose.wgsl.)
//
// `table` and `dbias` share binding 0, `bias` and `dtable` binding 1 (each
// entry point's layout holds only the globals it uses).

const WH: u32 = 1u;
const WW: u32 = 1u;
const NH: u32 = 1u;
const N: u32 = WH * WW;
const TW: u32 = 2u * WW - 1u;
const TABLE: u32 = (2u * WH - 1u) * TW;

@group(0) @binding(0) var<storage, read> table: array<f32>;
@group(0) @binding(1) var<storage, read_write> bias: array<f32>;
@group(0) @binding(0) var<storage, read> dbias: array<f32>;
@group(0) @binding(1) var<storage, read_write> dtable: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= NH * N * N) {
        return;
    }
    let j = idx % N;
    let i = (idx / N) % N;
    let h = idx / (N * N);
    let t = (i / WW + WH - 1u - j / WW) * TW + (i % WW + WW - 1u - j % WW);
    bias[idx] = table[t * NH + h];
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= TABLE * NH) {
        return;
    }
    let h = idx % NH;
    let t = idx / NH;
    // offset (dy, dx) = (t / TW - (WH-1), t % TW - (WW-1)); pairs with i - j = offset
    let oy = i32(t / TW) - i32(WH - 1u);
    let ox = i32(t % TW) - i32(WW - 1u);
    var s = 0.0;
    for (var i = 0u; i < N; i = i + 1u) {
        let jy = i32(i / WW) - oy;
        let jx = i32(i % WW) - ox;
        if (jy >= 0 && jy < i32(WH) && jx >= 0 && jx < i32(WW)) {
            let j = u32(jy) * WW + u32(jx);
            s = s + dbias[(h * N + i) * N + j];
        }
    }
    dtable[idx] = s;
}
