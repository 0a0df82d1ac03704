// epilogue.wgsl: the fused matmul epilogue, shared by every matmul variant.
// y = residual + gamma * act(acc + bias), each stage switched by a constant.
// Expects the including kernel to declare M, N, HAS_BIAS, ACT, HAS_GAMMA,
// HAS_RES and the bindings bias [N], gamma [N], res [Z, M, N], out [Z, M, N].

fn epilogue_store(z: u32, r: u32, c: u32, acc: f32) {
    if (r >= M || c >= N) {
        return;
    }
    var y = acc;
    if (HAS_BIAS == 1u) {
        y = y + bias[c];
    }
    if (ACT == 1u) {
        y = gelu(y);
    }
    if (HAS_GAMMA == 1u) {
        y = y * gamma[c];
    }
    let o = (z * M + r) * N + c;
    if (HAS_RES == 1u) {
        y = y + res[o];
    }
    out[o] = y;
}

// Stores one row's 8 consecutive outputs (register and subgroup kernels).
fn store8(z: u32, r: u32, c0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    epilogue_store(z, r, c0 + 0u, lo.x);
    epilogue_store(z, r, c0 + 1u, lo.y);
    epilogue_store(z, r, c0 + 2u, lo.z);
    epilogue_store(z, r, c0 + 3u, lo.w);
    epilogue_store(z, r, c0 + 4u, hi.x);
    epilogue_store(z, r, c0 + 5u, hi.y);
    epilogue_store(z, r, c0 + 6u, hi.z);
    epilogue_store(z, r, c0 + 7u, hi.w);
}
