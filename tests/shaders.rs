//! Every kernel in shaders/ parses and validates with naga and translates to
//! SPIR-V, MSL, HLSL and GLSL (every entry point; GLSL not for the kernels that
//! `enable f16`: naga's GLSL writer has no f16 and wgpu's GL backend never offers
//! SHADER_F16, so they never run there), with no GPU. Also validates specialised
//! variants (odd head dims, layer-scale epilogues) the models actually use.

use std::collections::HashSet;
use std::path::Path;
use vitrine::gpu::kernels::{source, specialize, Const, SHADERS};

fn translate(name: &str, src: &str) {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: validation: {e:?}"));
    assert!(!module.entry_points.is_empty(), "{name}: no entry point");
    for ep in &module.entry_points {
        let name = format!("{name}:{}", ep.name);
        translate_entry(&name, &module, &info, ep.stage, ep.name.clone(), !src.starts_with("enable f16;"));
    }
}

/// One entry point of a validated module to the four targets.
fn translate_entry(name: &str, module: &naga::Module, info: &naga::valid::ModuleInfo, stage: naga::ShaderStage, entry: String, glsl: bool) {
    let spv = naga::back::spv::write_vec(
        module,
        info,
        &naga::back::spv::Options::default(),
        Some(&naga::back::spv::PipelineOptions { shader_stage: stage, entry_point: entry.clone() }),
    )
    .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
    assert!(spv.len() > 20, "{name}: empty SPIR-V");

    let (msl, _) = naga::back::msl::write_string(
        module,
        info,
        &naga::back::msl::Options::default(),
        &naga::back::msl::PipelineOptions { entry_point: Some((stage, entry.clone())), ..Default::default() },
    )
    .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));
    assert!(msl.contains("kernel"), "{name}: MSL has no kernel");

    let mut hlsl = String::new();
    let hopts = naga::back::hlsl::Options::default();
    let hpipe = naga::back::hlsl::PipelineOptions { entry_point: Some((stage, entry.clone())) };
    naga::back::hlsl::Writer::new(&mut hlsl, &hopts, &hpipe).write(module, info, None).unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));
    assert!(hlsl.contains("numthreads"), "{name}: HLSL has no numthreads");

    if !glsl {
        return;
    }
    let mut glsl = String::new();
    let gopts = naga::back::glsl::Options { version: naga::back::glsl::Version::Desktop(430), ..Default::default() };
    let gpipe = naga::back::glsl::PipelineOptions { shader_stage: stage, entry_point: entry, multiview: None };
    naga::back::glsl::Writer::new(&mut glsl, module, info, &gopts, &gpipe, naga::proc::BoundsCheckPolicies::default())
        .and_then(|mut w| w.write())
        .unwrap_or_else(|e| panic!("{name}: GLSL: {e}"));
    assert!(glsl.contains("local_size_x"), "{name}: GLSL has no local_size");
}

#[test]
fn every_shader_validates_and_translates() {
    assert!(!SHADERS.is_empty(), "no shader registered");
    for (name, _) in SHADERS {
        translate(name, &source(name).unwrap());
    }
}

#[test]
fn every_wgsl_file_is_registered() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(files.len() >= 8, "found only {} shaders in {}", files.len(), dir.display());
    let used: HashSet<&str> = SHADERS.iter().flat_map(|(_, parts)| parts.iter().copied()).collect();
    for f in &files {
        assert!(used.contains(f.as_str()), "a shader file is not in the registry: {}", f.lines().next().unwrap_or(""));
    }
}

#[test]
fn specialised_variants_validate() {
    let cases: &[(&str, &[(&str, Const)])] = &[
        ("attention", &[("HEAD_DIM", Const::U32(15)), ("T", Const::U32(197)), ("SCALE", Const::f32(15f32.powf(-0.5)))]),
        // (matmul kernels take their shapes from a uniform: nothing to specialise)
        ("heads", &[("B", Const::U32(3)), ("T", Const::U32(197)), ("TP", Const::U32(200)), ("H", Const::U32(6)), ("D", Const::U32(64))]),
        ("softmax", &[("R", Const::U32(591)), ("T", Const::U32(197)), ("TP", Const::U32(200)), ("SCALE", Const::f32(0.125))]),
        ("layernorm", &[("EPS", Const::f32(1e-5)), ("C", Const::U32(768))]),
    ];
    for (name, consts) in cases {
        let src = specialize(name, &source(name).unwrap(), consts).unwrap();
        translate(name, &src);
    }
}

/// The generated kernels are exactly their generators' output (python3 runs
/// each script with `--check`, which compares without writing).
#[test]
fn generated_shaders_equal_their_generators_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for script in ["scripts/gen_matmul_reg.py", "scripts/gen_matmul_subgroup.py"] {
        let out = std::process::Command::new("python3")
            .arg(root.join(script))
            .arg("--check")
            .output()
            .unwrap_or_else(|e| panic!("python3 {script}: {e} (python3 is needed to check generated shaders)"));
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
