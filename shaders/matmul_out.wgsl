// matmul_out.wgsl: the output binding of the matmul kernels, f32 (see matmul_io.wgsl).
// The epilogue writes through out_set and re-reads through out_get.

@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn out_set(o: u32, v: f32) {
    out[o] = v;
}

fn out_get(o: u32) -> f32 {
    return out[o];
}
