// matmul_a_f16.wgsl: the left operand binding of the matmul kernels as f16, two per
// u32 (low half first: the layout matmul_out_f16.wgsl's f16 elements have), widened
// to f32 on load; the products and their sums stay f32. An activation that another
// matmul wrote in f16 (`--precision f16` on an adapter with SHADER_F16).

// Read as vec2<u32> like matmul_w_f16.wgsl's weights (f16 slots are whole vec2s).
@group(0) @binding(0) var<storage, read> a: array<vec2<u32>>;

// Elements 4i .. 4i+3 (the vec4 kernels' index i).
fn load_a(i: u32) -> vec4<f32> {
    return unpack_half4(a[i]);
}

// Element i (matmul_scalar).
fn load_a1(i: u32) -> f32 {
    return unpack_half1(a[i / 4u], i);
}
