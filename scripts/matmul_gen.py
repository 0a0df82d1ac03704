"""Pieces shared by the matmul kernel generators (gen_matmul_reg.py,
gen_matmul_subgroup.py): the A . W layout's weight reads and multiply-adds, and
writing or checking the generated shader."""

import pathlib
import sys


def w_columns(L):
    # W [K, N] read as vec4 along N: the two column vec4s of this invocation's 8
    # columns (clamped; the columns past N are computed but never stored).
    L.append("    let N4 = N / 4u;\n")
    L.append("    let wc0 = min(c0 / 4u, N4 - 1u);\n    let wc1 = min(c0 / 4u + 1u, N4 - 1u);\n")


def ab_w_rows(L):
    # Inside the K4 loop: rows 4k .. 4k+3 of W [K, N], low and high column vec4.
    for j in range(4):
        L.append(f"        let wrow{j} = wz + (k * 4u + {j}u) * N4;\n")
        L.append(f"        let wl{j} = load_w(wrow{j} + wc0);\n        let wh{j} = load_w(wrow{j} + wc1);\n")


def ab_fma(L, a, lo, hi):
    # acc += a.x * w_k0 + a.y * w_k1 + a.z * w_k2 + a.w * w_k3, for both column halves.
    for acc, half in ((lo, "l"), (hi, "h")):
        terms = " + ".join(f"{a}.{'xyzw'[j]} * w{half}{j}" for j in range(4))
        L.append(f"        {acc} = {acc} + {terms};\n")


def emit(script, shader, L):
    """Writes shaders/<shader>, or with --check exits non-zero when the committed one differs."""
    out = pathlib.Path(script).resolve().parent.parent / "shaders" / shader
    text = "".join(L)
    if "--check" in sys.argv:
        # The committed shader must be exactly this script's output.
        if not out.exists() or out.read_text() != text:
            sys.exit(f"{out} differs from the output of {pathlib.Path(script).name}: run it and commit the result")
        return
    out.write_text(text)
