// relpos.wgsl: Swin's relative position bias and its gradients.
// A window has N = WH * WW tokens; the table holds one value per relative
// offset (dy, dx) in [-(WH-1), WH-1] x [-(WW-1), WW-1] and head:
// table [(2WH-1) * (2WW-1), NH], index (dy + WH-1) * (2WW-1) + (dx + WW-1)
// (timm's `get_relative_position_index`).
//
// MODE 0: x = table -> out = bias [NH, N, N], bias[h, i, j] = table[idx(i - j), h].
// MODE 1: x = ds [ZB * NH * N, N] (gradient of the raw scores of the
//         softmax, which scaled them by 1 / INV_SCALE) -> out = d bias
//         [NH, N, N] = INV_SCALE * sum over the ZB window batches.
// MODE 2: x = d bias [NH, N, N] -> out = d table, summed over the pairs (i, j)
//         sharing an offset.
//
// Bindings (f32, row-major):
//   0 x    see MODE
//   1 out  see MODE
// Dispatch: one invocation per output element, workgroups of 64, linear over (x, y).

const WH: u32 = 1u;
const WW: u32 = 1u;
const NH: u32 = 1u;
const ZB: u32 = 1u;
const MODE: u32 = 0u;
const INV_SCALE: f32 = 1.0;
const N: u32 = WH * WW;
const TW: u32 = 2u * WW - 1u;
const TABLE: u32 = (2u * WH - 1u) * TW;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (MODE == 0u) {
        if (idx >= NH * N * N) {
            return;
        }
        let j = idx % N;
        let i = (idx / N) % N;
        let h = idx / (N * N);
        let t = (i / WW + WH - 1u - j / WW) * TW + (i % WW + WW - 1u - j % WW);
        out[idx] = x[t * NH + h];
    } else if (MODE == 1u) {
        if (idx >= NH * N * N) {
            return;
        }
        var s = 0.0;
        for (var z = 0u; z < ZB; z = z + 1u) {
            s = s + x[z * NH * N * N + idx];
        }
        out[idx] = s * INV_SCALE;
    } else {
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
                s = s + x[(h * N + i) * N + j];
            }
        }
        out[idx] = s;
    }
}
