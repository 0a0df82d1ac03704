#!/usr/bin/env python3
"""Writes shaders/matmul_reg.wgsl: the barrier-free 8x8 register-tile matmul.

The kernel is fully unrolled on purpose (array-in-loop versions ran ~5x slower
on lavapipe), so it is generated rather than typed. Run from the repo root:
    python3 scripts/gen_matmul_reg.py
(`--check` exits non-zero when the committed shader differs; tests/shaders.rs runs it)
"""

import pathlib
import sys

HEADER = '// matmul_reg.wgsl: out = epilogue(A . W^T), barrier-free register tiles.\n// Each invocation computes an 8x8 block of out from vec4 loads along K; no\n// workgroup memory and no barriers, which suits CPU-like adapters (lavapipe,\n// llvmpipe, SwiftShader) where barriers are expensive. Fully unrolled on purpose.\n//\n// Shapes, switches and bindings: matmul_io.wgsl; epilogue (store8, epilogue_tile): epilogue.wgsl.\n// Dispatch: ceil(M/8) * ceil(N/8) invocations, workgroups of 64, linear over (x, y); grid z = Z.\n\nalias VEC = vec4<f32>;\n\n@compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n    let M = dims.m;\n    let N = dims.n;\n    let K4 = dims.k;\n    let W_BATCHED = dims.w_batched;\n    let TILES_N = (N + 7u) / 8u;\n    let t = gid.x + gid.y * nwg.x * 64u;\n    let z = gid.z;\n    let tn = t % TILES_N;\n    let tm = t / TILES_N;\n    let r0 = tm * 8u;\n    let c0 = tn * 8u;\n    if (r0 >= M) {\n        return;\n    }\n'

def main():
    lines = [HEADER]
    for i in range(8):
        lines.append(f"    let ra{i} = (z * M + min(r0 + {i}u, M - 1u)) * K4;\n")
    for j in range(8):
        lines.append(f"    let wb{j} = (z * W_BATCHED * N + min(c0 + {j}u, N - 1u)) * K4;\n")
    for i in range(8):
        lines.append(f"    var acc{i}l = vec4<f32>(0.0);\n    var acc{i}h = vec4<f32>(0.0);\n")
    lines.append("    for (var k = 0u; k < K4; k = k + 1u) {\n")
    for j in range(8):
        lines.append(f"        let w{j} = w[wb{j} + k];\n")
    for i in range(8):
        lines.append(f"        let a{i} = a[ra{i} + k];\n")
        lines.append(f"        acc{i}l = acc{i}l + vec4<f32>(dot(a{i}, w0), dot(a{i}, w1), dot(a{i}, w2), dot(a{i}, w3));\n")
        lines.append(f"        acc{i}h = acc{i}h + vec4<f32>(dot(a{i}, w4), dot(a{i}, w5), dot(a{i}, w6), dot(a{i}, w7));\n")
    lines.append("    }\n")
    lines.append("    let bl = bias4(c0);\n    let bh = bias4(c0 + 4u);\n")
    for i in range(8):
        lines.append(f"    store8(z, r0 + {i}u, c0, acc{i}l + bl, acc{i}h + bh);\n")
    lines.append("    epilogue_tile(z, r0, 8u, c0);\n")
    lines.append("}\n")
    out = pathlib.Path(__file__).resolve().parent.parent / "shaders" / "matmul_reg.wgsl"
    text = "".join(lines)
    if "--check" in sys.argv:
        # The committed shader must be exactly this script's output.
        if not out.exists() or out.read_text() != text:
            sys.exit(f"{out} differs from the output of {pathlib.Path(__file__).name}: run it and commit the result")
        return
    out.write_text(text)


if __name__ == "__main__":
    main()
