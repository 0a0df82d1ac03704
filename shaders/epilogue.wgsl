// epilogue.wgsl: the fused matmul epilogue, shared by every matmul variant.
// y = residual + gamma * act(acc + bias), each stage switched by a uniform
// (dims in matmul_io.wgsl); bindings bias [N], gamma [N], res [Z, M, N], out [Z, M, N].

// The epilogue of one value already computed (pre-activation sum without bias).
fn epilogue_value(o: u32, c: u32, acc: f32) -> f32 {
    var y = acc;
    if (dims.has_bias == 1u) {
        y = y + bias[c];
    }
    if (dims.act == 1u) {
        y = gelu(y);
    }
    if (dims.has_gamma == 1u) {
        y = y * gamma[c];
    }
    if (dims.has_res == 1u) {
        y = y + res[o];
    }
    return y;
}

fn epilogue_store(z: u32, r: u32, c: u32, acc: f32) {
    if (r >= dims.m || c >= dims.n) {
        return;
    }
    let o = (z * dims.m + r) * dims.n + c;
    out[o] = epilogue_value(o, c, acc);
}

// The unrolled kernels (register, subgroup) store their many accumulators raw
// with store8, then finish their tile with epilogue_tile: one loop, so GELU's
// code is compiled once instead of once per accumulator (seconds of JIT on
// CPU adapters). Each invocation re-reads only what it wrote itself.

// Stores one row's 8 consecutive raw sums.
fn store8(z: u32, r: u32, c0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (r >= dims.m) {
        return;
    }
    let o = (z * dims.m + r) * dims.n + c0;
    let n = dims.n;
    if (c0 + 0u < n) { out[o + 0u] = lo.x; }
    if (c0 + 1u < n) { out[o + 1u] = lo.y; }
    if (c0 + 2u < n) { out[o + 2u] = lo.z; }
    if (c0 + 3u < n) { out[o + 3u] = lo.w; }
    if (c0 + 4u < n) { out[o + 4u] = hi.x; }
    if (c0 + 5u < n) { out[o + 5u] = hi.y; }
    if (c0 + 6u < n) { out[o + 6u] = hi.z; }
    if (c0 + 7u < n) { out[o + 7u] = hi.w; }
}

// Applies the epilogue in place to rows [r0, r0 + rows) x columns [c0, c0 + 8)
// of out[z], which this invocation stored with store8. The bounds come from the
// uniform, so the compiler keeps the loop rolled.
fn epilogue_tile(z: u32, r0: u32, rows: u32, c0: u32) {
    if (dims.has_bias + dims.act + dims.has_gamma + dims.has_res == 0u) {
        return;
    }
    let r1 = min(r0 + rows, dims.m);
    let c1 = min(c0 + 8u, dims.n);
    for (var r = r0; r < r1; r = r + 1u) {
        for (var c = c0; c < c1; c = c + 1u) {
            let o = (z * dims.m + r) * dims.n + c;
            out[o] = epilogue_value(o, c, out[o]);
        }
    }
}
