//! Every WGSL file of `shaders/` parses and validates with naga, with the library files it
//! imports prepended as the GPU backend composes them. No GPU needed.

use std::path::Path;

use diffusion_playground::gpu::shaders;
use wgpu::naga;

/// Parses and validates one composed source; the error names the file and naga's message.
fn validate(name: &str, source: &str) -> Result<naga::valid::ModuleInfo, String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| format!("{name}: parse error:\n{}", e.emit_to_string(source)))?;
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    validator
        .validate(&module)
        .map_err(|e| format!("{name}: invalid:\n{}", e.emit_to_string(source)))
}

#[test]
fn every_shader_file_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut seen = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("shaders/ exists") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        let on_disk = std::fs::read_to_string(&path).expect("readable shader");
        // A file the backend knows is validated as it composes it (imports first); any other
        // file (the app's) must stand alone.
        let source = match shaders::file(&name) {
            Some(f) => {
                assert_eq!(
                    f.source, on_disk,
                    "{name}: include_str! copy is stale; rebuild"
                );
                shaders::compose(&name).expect("imports exist")
            }
            None => on_disk,
        };
        if let Err(e) = validate(&name, &source) {
            failures.push(e);
        }
        seen += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        seen >= shaders::FILES.len(),
        "found only {seen} .wgsl files in {}",
        dir.display()
    );
}

#[test]
fn every_backend_shader_is_listed_with_existing_imports() {
    for f in shaders::FILES {
        for import in f.imports {
            assert!(
                shaders::file(import).is_some(),
                "{} imports unknown {import}",
                f.name
            );
        }
        let composed = shaders::compose(f.name).expect("composes");
        assert!(composed.contains(f.source));
    }
}

/// The kernels have the entry points the Rust side builds pipelines for.
#[test]
fn kernel_files_have_their_entry_points() {
    let expect: &[(&str, &[&str])] = &[
        ("matmul.wgsl", &["forward", "backward_dx", "backward_dw"]),
        (
            "mlp.wgsl",
            &["time_offset", "first_layer", "head", "head_dx", "head_dw"],
        ),
        ("dsm.wgsl", &["batch", "loss", "loss_reduce"]),
        ("adam.wgsl", &["adam"]),
        (
            "sampler.wgsl",
            &[
                "prior",
                "affine",
                "ode_stage",
                "dpm2m",
                "pc_norms",
                "pc_reduce",
                "pc_correct",
                "eps_out",
            ],
        ),
    ];
    for (name, entries) in expect {
        let source = shaders::compose(name).expect("known file");
        let module = naga::front::wgsl::parse_str(&source).expect("parses");
        for e in *entries {
            assert!(
                module
                    .entry_points
                    .iter()
                    .any(|ep| ep.name == *e && ep.stage == naga::ShaderStage::Compute),
                "{name} lacks compute entry point {e}"
            );
        }
    }
}
