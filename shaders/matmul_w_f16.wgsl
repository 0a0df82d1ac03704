// matmul_w_f16.wgsl: the weight binding of the matmul kernels as f16, two per u32
// (low half first), widened to f32 on load (matmul_io.wgsl's unpack_half4 /
// unpack_half1: no SHADER_F16 needed); the products and their sums stay f32.
// `--precision f16`.

// Read as vec2<u32>: one 8-byte load per vec4 of weights (lavapipe's storage loads
// are per-lane loops, one step per load whatever its width; two u32 loads cost two).
// The buffer holds a whole number of vec2s (the upload pads).
@group(0) @binding(1) var<storage, read> w: array<vec2<u32>>;

// Elements 4i .. 4i+3 (the vec4 kernels' index i).
fn load_w(i: u32) -> vec4<f32> {
    return unpack_half4(w[i]);
}

// Element i (matmul_scalar).
fn load_w1(i: u32) -> f32 {
    return unpack_half1(w[i / 4u], i);
}
