// im2col.wgsl: patches of a stride = kernel convolution, as rows of a matmul.
// Row (b, py, px), column k = (c, ky, kx), the order of a conv weight
// [D, CIN, P, P] flattened, so patch embedding = im2col + matmul(A, W^T).
// GH = IH / P, GW = IW / P (floor, as the conv), K = CIN * P * P.
//
// Entry `forward`:
//   0 img  [B, CIN, IH, IW]
//   1 cols [B * GH * GW, K]
//   Dispatch: B * GH * GW * K invocations, workgroups of 64, linear over (x, y).
//
// Entry `backward` (col2im: one invocation per image element, each read by at
// most one column element; zero where the conv drops pixels):
//   0 dcols [B * GH * GW, K]
//   1 dimg  [B, CIN, IH, IW]
//   Dispatch: B * CIN * IH * IW invocations, workgroups of 64, linear over (x, y).
//
// `img` and `dcols` share binding 0, `cols` and `dimg` binding 1 (each entry
// point's layout holds only the globals it uses).

const B: u32 = 1u;
const CIN: u32 = 3u;
const IH: u32 = 16u;
const IW: u32 = 16u;
const P: u32 = 16u;
const GH: u32 = IH / P;
const GW: u32 = IW / P;
const K: u32 = CIN * P * P;

@group(0) @binding(0) var<storage, read> img: array<f32>;
@group(0) @binding(1) var<storage, read_write> cols: array<f32>;
@group(0) @binding(0) var<storage, read> dcols: array<f32>;
@group(0) @binding(1) var<storage, read_write> dimg: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * GH * GW * K) {
        return;
    }
    let k = idx % K;
    let rowi = idx / K;
    let px = rowi % GW;
    let py = (rowi / GW) % GH;
    let b = rowi / (GW * GH);
    let kx = k % P;
    let ky = (k / P) % P;
    let c = k / (P * P);
    let y = py * P + ky;
    let x = px * P + kx;
    cols[idx] = img[((b * CIN + c) * IH + y) * IW + x];
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= B * CIN * IH * IW) {
        return;
    }
    let x = idx % IW;
    let y = (idx / IW) % IH;
    let c = (idx / (IW * IH)) % CIN;
    let b = idx / (IW * IH * CIN);
    var v = 0.0;
    if (y < GH * P && x < GW * P) {
        let row = (b * GH + y / P) * GW + x / P;
        v = dcols[row * K + (c * P + y % P) * P + x % P];
    }
    dimg[idx] = v;
}
