//! The WGSL sources, loaded with `include_str!` and put together.
//!
//! WGSL has no `#include`, so a kernel file that calls functions of a library file (the RNG,
//! the activations) names it in [`ShaderFile::imports`] and [`compose`] prepends it. The test
//! `tests/shaders.rs` validates every file under `shaders/` with its imports through naga.

/// One file of `shaders/`.
#[derive(Clone, Copy, Debug)]
pub struct ShaderFile {
    /// File name inside `shaders/`.
    pub name: &'static str,
    pub source: &'static str,
    /// Library files prepended, in this order, before `source`.
    pub imports: &'static [&'static str],
}

macro_rules! shader {
    ($name:literal, [$($import:literal),*]) => {
        ShaderFile {
            name: $name,
            source: include_str!(concat!("../../shaders/", $name)),
            imports: &[$($import),*],
        }
    };
}

/// Every shader of the GPU backend (libraries first).
pub const FILES: &[ShaderFile] = &[
    shader!("rng.wgsl", []),
    shader!("activation.wgsl", []),
    shader!("embedding.wgsl", []),
    shader!("schedule.wgsl", []),
    shader!("matmul.wgsl", ["activation.wgsl"]),
    shader!("mlp.wgsl", ["activation.wgsl", "embedding.wgsl"]),
    shader!("dsm.wgsl", ["rng.wgsl", "schedule.wgsl", "embedding.wgsl"]),
    shader!("adam.wgsl", []),
    shader!("sampler.wgsl", ["rng.wgsl"]),
];

/// The file called `name`, if the backend has one.
pub fn file(name: &str) -> Option<&'static ShaderFile> {
    FILES.iter().find(|f| f.name == name)
}

/// The full source of `name`: its imports, then itself. `None` for an unknown name.
pub fn compose(name: &str) -> Option<String> {
    let f = file(name)?;
    let mut out = String::new();
    for import in f.imports {
        let lib = file(import)?;
        out.push_str(&format!("// ---- {} ----\n", lib.name));
        out.push_str(lib.source);
        out.push('\n');
    }
    out.push_str(&format!("// ---- {} ----\n", f.name));
    out.push_str(f.source);
    Some(out)
}
