//! Kernels as data: the shader registry ([`SHADERS`]: every WGSL file,
//! compiled in with `include_str!`) and [`KernelKey`] (a shader, an entry point
//! and the constants that specialise it). A leaf module: the graph and the ops
//! name kernels with it, `gpu` compiles them; neither depends on the other.
//!
//! A shader declares its tunable values as ordinary WGSL constants with
//! defaults (`const TM: u32 = 8u;`), so each file validates on its own.
//! Specialisation replaces the value of named constants, nothing else: no
//! recursion, no control flow in templates. The pipeline cache key is the
//! shader name plus its constants.

use crate::error::{Error, Result};

const GELU: &str = include_str!("../shaders/gelu.wgsl");
const EPILOGUE: &str = include_str!("../shaders/epilogue.wgsl");
const MATMUL_IO: &str = include_str!("../shaders/matmul_io.wgsl");
const MATMUL_W: &str = include_str!("../shaders/matmul_w.wgsl");
const MATMUL_W_F16: &str = include_str!("../shaders/matmul_w_f16.wgsl");
const MATMUL_A: &str = include_str!("../shaders/matmul_a.wgsl");
const MATMUL_A_F16: &str = include_str!("../shaders/matmul_a_f16.wgsl");
const MATMUL_OUT: &str = include_str!("../shaders/matmul_out.wgsl");
const MATMUL_OUT_F16: &str = include_str!("../shaders/matmul_out_f16.wgsl");
const ENABLE_F16: &str = include_str!("../shaders/enable_f16.wgsl");
const MATMUL: &str = include_str!("../shaders/matmul.wgsl");
const MATMUL_REG: &str = include_str!("../shaders/matmul_reg.wgsl");
const MATMUL_SUBGROUP: &str = include_str!("../shaders/matmul_subgroup.wgsl");
const MATMUL_SCALAR: &str = include_str!("../shaders/matmul_scalar.wgsl");

/// Every kernel, by name, as the list of shader files it is made of (shared
/// parts such as `gelu.wgsl` are concatenated with the kernel; WGSL allows
/// module-scope declarations in any order).
pub const SHADERS: &[(&str, &[&str])] = &[
    // The matmul kernels: [ENABLE_F16,] GELU, MATMUL_IO, the a, w and out bindings, the
    // kernel, EPILOGUE. Plain names are f32 throughout; `_f16`: f16 weights (`--precision
    // f16`); `_ah` / `_oh`: the left operand / the output an f16 activation
    // (`Graph::store_activations_f16`; `_oh` needs SHADER_F16).
    ("matmul", &[GELU, MATMUL_IO, MATMUL_A, MATMUL_W, MATMUL_OUT, MATMUL, EPILOGUE]),
    ("matmul_reg", &[GELU, MATMUL_IO, MATMUL_A, MATMUL_W, MATMUL_OUT, MATMUL_REG, EPILOGUE]),
    ("matmul_subgroup", &[GELU, MATMUL_IO, MATMUL_A, MATMUL_W, MATMUL_OUT, MATMUL_SUBGROUP, EPILOGUE]),
    ("matmul_scalar", &[GELU, MATMUL_IO, MATMUL_A, MATMUL_W, MATMUL_OUT, MATMUL_SCALAR, EPILOGUE]),
    ("matmul_f16", &[GELU, MATMUL_IO, MATMUL_A, MATMUL_W_F16, MATMUL_OUT, MATMUL, EPILOGUE]),
    ("matmul_reg_f16", &[GELU, MATMUL_IO, MATMUL_A, MATMUL_W_F16, MATMUL_OUT, MATMUL_REG, EPILOGUE]),
    ("matmul_subgroup_f16", &[GELU, MATMUL_IO, MATMUL_A, MATMUL_W_F16, MATMUL_OUT, MATMUL_SUBGROUP, EPILOGUE]),
    ("matmul_scalar_f16", &[GELU, MATMUL_IO, MATMUL_A, MATMUL_W_F16, MATMUL_OUT, MATMUL_SCALAR, EPILOGUE]),
    ("matmul_f16_ah", &[GELU, MATMUL_IO, MATMUL_A_F16, MATMUL_W_F16, MATMUL_OUT, MATMUL, EPILOGUE]),
    ("matmul_reg_f16_ah", &[GELU, MATMUL_IO, MATMUL_A_F16, MATMUL_W_F16, MATMUL_OUT, MATMUL_REG, EPILOGUE]),
    ("matmul_subgroup_f16_ah", &[GELU, MATMUL_IO, MATMUL_A_F16, MATMUL_W_F16, MATMUL_OUT, MATMUL_SUBGROUP, EPILOGUE]),
    ("matmul_scalar_f16_ah", &[GELU, MATMUL_IO, MATMUL_A_F16, MATMUL_W_F16, MATMUL_OUT, MATMUL_SCALAR, EPILOGUE]),
    ("matmul_f16_oh", &[ENABLE_F16, GELU, MATMUL_IO, MATMUL_A, MATMUL_W_F16, MATMUL_OUT_F16, MATMUL, EPILOGUE]),
    ("matmul_reg_f16_oh", &[ENABLE_F16, GELU, MATMUL_IO, MATMUL_A, MATMUL_W_F16, MATMUL_OUT_F16, MATMUL_REG, EPILOGUE]),
    ("matmul_subgroup_f16_oh", &[ENABLE_F16, GELU, MATMUL_IO, MATMUL_A, MATMUL_W_F16, MATMUL_OUT_F16, MATMUL_SUBGROUP, EPILOGUE]),
    ("matmul_scalar_f16_oh", &[ENABLE_F16, GELU, MATMUL_IO, MATMUL_A, MATMUL_W_F16, MATMUL_OUT_F16, MATMUL_SCALAR, EPILOGUE]),
    ("matmul_f16_ah_oh", &[ENABLE_F16, GELU, MATMUL_IO, MATMUL_A_F16, MATMUL_W_F16, MATMUL_OUT_F16, MATMUL, EPILOGUE]),
    ("matmul_reg_f16_ah_oh", &[ENABLE_F16, GELU, MATMUL_IO, MATMUL_A_F16, MATMUL_W_F16, MATMUL_OUT_F16, MATMUL_REG, EPILOGUE]),
    ("matmul_subgroup_f16_ah_oh", &[ENABLE_F16, GELU, MATMUL_IO, MATMUL_A_F16, MATMUL_W_F16, MATMUL_OUT_F16, MATMUL_SUBGROUP, EPILOGUE]),
    ("matmul_scalar_f16_ah_oh", &[ENABLE_F16, GELU, MATMUL_IO, MATMUL_A_F16, MATMUL_W_F16, MATMUL_OUT_F16, MATMUL_SCALAR, EPILOGUE]),
    ("layernorm", &[include_str!("../shaders/layernorm.wgsl")]),
    ("attention", &[include_str!("../shaders/attention.wgsl")]),
    ("heads", &[include_str!("../shaders/heads.wgsl")]),
    ("softmax", &[include_str!("../shaders/softmax.wgsl")]),
    ("im2col", &[include_str!("../shaders/im2col.wgsl")]),
    ("tokens", &[include_str!("../shaders/tokens.wgsl")]),
    ("pool", &[include_str!("../shaders/pool.wgsl")]),
    ("token_pool", &[include_str!("../shaders/token_pool.wgsl")]),
    ("masked_softmax", &[include_str!("../shaders/masked_softmax.wgsl")]),
    ("select", &[include_str!("../shaders/select.wgsl")]),
    ("prune", &[include_str!("../shaders/prune.wgsl")]),
    ("prune_train", &[include_str!("../shaders/prune_train.wgsl")]),
    ("slice", &[include_str!("../shaders/slice.wgsl")]),
    ("unfold", &[include_str!("../shaders/unfold.wgsl")]),
    ("elementwise", &[GELU, include_str!("../shaders/elementwise.wgsl")]),
    ("transpose", &[include_str!("../shaders/transpose.wgsl")]),
    ("cross_entropy", &[include_str!("../shaders/cross_entropy.wgsl")]),
    ("optim", &[include_str!("../shaders/optim.wgsl")]),
    ("grad", &[include_str!("../shaders/grad.wgsl")]),
    ("window", &[include_str!("../shaders/window.wgsl")]),
    ("relpos", &[include_str!("../shaders/relpos.wgsl")]),
    ("reuse", &[include_str!("../shaders/reuse.wgsl")]),
    ("concat", &[include_str!("../shaders/concat.wgsl")]),
];

/// The full WGSL source of a kernel (its parts concatenated).
pub fn source(name: &str) -> Result<String> {
    SHADERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, parts)| parts.join("\n"))
        .ok_or_else(|| Error::Shader { name: name.into(), msg: "no such shader".into() })
}

/// A constant value substituted into a shader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Const {
    /// A `u32` constant.
    U32(u32),
    /// An `f32` constant, by its bits (so that keys hash and compare exactly).
    F32Bits(u32),
}

impl Const {
    /// An `f32` constant.
    pub fn f32(v: f32) -> Self {
        Const::F32Bits(v.to_bits())
    }
    fn wgsl(&self) -> String {
        match self {
            Const::U32(v) => format!("{v}u"),
            Const::F32Bits(b) => {
                let v = f32::from_bits(*b);
                // Debug formatting round-trips f32 exactly and always has a '.' or 'e'.
                format!("{v:?}")
            }
        }
    }
}

/// A shader name with the constants that specialise it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelKey {
    /// Shader name in [`SHADERS`].
    pub shader: &'static str,
    /// Entry point.
    pub entry: &'static str,
    /// Constants replaced in the source, in order.
    pub consts: Vec<(&'static str, Const)>,
}

impl KernelKey {
    /// A key without constants.
    pub fn new(shader: &'static str, entry: &'static str) -> Self {
        KernelKey { shader, entry, consts: Vec::new() }
    }
    /// Adds a constant.
    pub fn with(mut self, name: &'static str, value: Const) -> Self {
        self.consts.push((name, value));
        self
    }
    /// Adds a `u32` constant.
    pub fn u(self, name: &'static str, v: u32) -> Self {
        self.with(name, Const::U32(v))
    }
}

/// Replaces the value of each named `const NAME: T = value;` declaration.
/// Fails if a constant is not declared exactly once.
pub fn specialize(name: &str, src: &str, consts: &[(&str, Const)]) -> Result<String> {
    let mut out = src.to_string();
    for (cname, value) in consts {
        let pat = format!("const {cname}:");
        let mut hits = out.match_indices(&pat).map(|(i, _)| i);
        let start = hits.next().ok_or_else(|| Error::Shader { name: name.into(), msg: format!("constant {cname} is not declared") })?;
        if hits.next().is_some() {
            return Err(Error::Shader { name: name.into(), msg: format!("constant {cname} declared twice") });
        }
        let eq = out[start..].find('=').map(|i| start + i);
        let semi = out[start..].find(';').map(|i| start + i);
        let (Some(eq), Some(semi)) = (eq, semi) else {
            return Err(Error::Shader { name: name.into(), msg: format!("constant {cname} has no value") });
        };
        if eq > semi {
            return Err(Error::Shader { name: name.into(), msg: format!("constant {cname} has no value") });
        }
        out.replace_range(eq + 1..semi, &format!(" {}", value.wgsl()));
    }
    Ok(out)
}
