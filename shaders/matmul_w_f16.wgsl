// matmul_w_f16.wgsl: the weight binding of the matmul kernels as f16, two per u32
// (low half first), widened to f32 on load with unpack2x16float (core WGSL: no
// SHADER_F16 needed); the products and their sums stay f32. `--precision f16`.

@group(0) @binding(1) var<storage, read> w: array<u32>;

// Elements 4i .. 4i+3 (the vec4 kernels' index i).
fn load_w(i: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w[2u * i]), unpack2x16float(w[2u * i + 1u]));
}

// Element i (matmul_scalar).
fn load_w1(i: u32) -> f32 {
    return unpack2x16float(w[i / 2u])[i % 2u];
}
