// matmul_out_f16.wgsl: the output binding of the matmul kernels as f16 elements
// (needs SHADER_F16: the kernel's source starts with `enable f16;`). Each value is
// rounded once it is final: the epilogue's re-read (GELU after the bias) widens it
// back to f32. An activation whose only readers are matmuls, which read it with
// matmul_a_f16.wgsl.

@group(0) @binding(5) var<storage, read_write> out: array<f16>;

fn out_set(o: u32, v: f32) {
    out[o] = f16(v);
}

fn out_get(o: u32) -> f32 {
    return f32(out[o]);
}
