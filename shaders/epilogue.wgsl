// epilogue.wgsl: the fused matmul epilogue, shared by every matmul variant.
// y = residual + gamma * act(acc + bias), each stage switched by a uniform
// (dims in matmul_io.wgsl); bindings bias [N], gamma [N], res [Z, M, N], out [Z, M, N]
// (written with out_set, re-read with out_get: matmul_out.wgsl or matmul_out_f16.wgsl).

// The epilogue of one product `acc` (without bias) at out index o, column c.
fn epilogue_value(o: u32, c: u32, acc: f32) -> f32 {
    var y = acc;
    if (dims.has_bias == 1u) {
        y = y + bias[c];
    }
    return epilogue_after_bias(o, c, y);
}

// GELU, layer scale and residual of a value that has its bias.
fn epilogue_after_bias(o: u32, c: u32, x: f32) -> f32 {
    var y = x;
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

// Where product z's row r, column c lies in out (and res): [Z, M, N], or with
// dims.heads = H the heads merged, [Z / H, M, H * N] (no head-merge pass after p . v).
fn out_index(z: u32, r: u32, c: u32) -> u32 {
    let h = dims.heads;
    if (h == 0u) {
        return (z * dims.m + r) * dims.n + c;
    }
    return (((z / h) * dims.m + r) * h + z % h) * dims.n + c;
}

fn epilogue_store(z: u32, r: u32, c: u32, acc: f32) {
    if (r >= dims.m || c >= dims.n) {
        return;
    }
    let o = out_index(z, r, c);
    out_set(o, epilogue_value(o, c, acc));
}

// The unrolled kernels (register, subgroup) add the bias of their 8 columns
// to every accumulator (bias8: two vec4 loads per invocation), store the sums
// with store8, then run the rest of the epilogue with epilogue_tile: one loop
// over the invocation's tile, so GELU's code (erf, exp) is compiled once
// instead of once per accumulator (seconds of JIT on CPU adapters; branches
// per value inline cost even more). Each invocation re-reads only what it wrote.

// The bias of columns c0..c0+3, or zeros without one (the unused binding is a
// zeroed dummy buffer; indices are clamped into it).
fn bias4(c0: u32) -> vec4<f32> {
    let last = arrayLength(&bias) - 1u;
    let b = vec4<f32>(bias[min(c0, last)], bias[min(c0 + 1u, last)], bias[min(c0 + 2u, last)], bias[min(c0 + 3u, last)]);
    return b * f32(dims.has_bias);
}

// Stores one row's 4 consecutive values (columns past N are skipped).
fn store4(z: u32, r: u32, c0: u32, v: vec4<f32>) {
    if (r >= dims.m) {
        return;
    }
    let o = out_index(z, r, c0);
    let n = dims.n;
    if (c0 + 0u < n) { out_set(o + 0u, v.x); }
    if (c0 + 1u < n) { out_set(o + 1u, v.y); }
    if (c0 + 2u < n) { out_set(o + 2u, v.z); }
    if (c0 + 3u < n) { out_set(o + 3u, v.w); }
}

// Stores one row's 8 consecutive values (columns past N are skipped).
fn store8(z: u32, r: u32, c0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    store4(z, r, c0, lo);
    store4(z, r, c0 + 4u, hi);
}

// GELU, layer scale and residual, in place, on rows [r0, r0 + rows) x columns
// [c0, c0 + 8) of out[z] that this invocation stored with store8 (bias added).
// The bounds come from the uniform, so the loop stays rolled.
fn epilogue_tile(z: u32, r0: u32, rows: u32, c0: u32) {
    epilogue_block(z, r0, rows, c0, 8u);
}

// epilogue_tile over `cols` columns (store4's tiles: 4).
fn epilogue_block(z: u32, r0: u32, rows: u32, c0: u32, cols: u32) {
    if (dims.act + dims.has_gamma + dims.has_res == 0u) {
        return;
    }
    let r1 = min(r0 + rows, dims.m);
    let c1 = min(c0 + cols, dims.n);
    for (var r = r0; r < r1; r = r + 1u) {
        for (var c = c0; c < c1; c = c + 1u) {
            let o = out_index(z, r, c);
            out_set(o, epilogue_after_bias(o, c, out_get(o)));
        }
    }
}
