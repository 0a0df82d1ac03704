// matmul_out_f16.wgsl: the output binding of the matmul kernels as f16 elements
// (needs SHADER_F16: the kernel's source starts with `enable f16;`). An activation
// whose only readers are matmuls, which read it with matmul_a_f16.wgsl. The unrolled
// kernels store acc + bias first and run GELU on the re-read value (epilogue_block),
// so those values are rounded twice. Values are clamped to f16's finite range
// (+-65504) first: an infinity would turn GELU's 0 for a large negative input into NaN.

@group(0) @binding(5) var<storage, read_write> out: array<f16>;

fn out_set(o: u32, v: f32) {
    out[o] = f16(clamp(v, -65504.0, 65504.0));
}

fn out_get(o: u32) -> f32 {
    return f32(out[o]);
}
