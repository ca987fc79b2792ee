//! Every WGSL file of `shaders/` is one the code loads, and validates with naga as the code
//! loads it. No GPU needed.
//!
//! Two code paths load shaders:
//! - the compute backend (`gpu::kernels`) builds one pipeline per kernel `K::ALL` from
//!   `shaders::compose(file)`: the file's imports, then the file, all from `shaders::FILES`
//!   (`include_str!`). An unknown name composes to nothing, which the backend would only see
//!   as a pipeline error at run time;
//! - the app's paint callbacks (under `src/app/`) each `include_str!` one render shader.
//!
//! A `.wgsl` file on disk that neither path reaches fails `every_shader_file_is_loaded`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use diffusion_playground::gpu::kernels::K;
use diffusion_playground::gpu::shaders;
use wgpu::naga;

/// Parses and validates one composed source; the error names the file and naga's message.
fn validate(name: &str, source: &str) -> Result<naga::Module, String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| format!("{name}: parse error:\n{}", e.emit_to_string(source)))?;
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    validator
        .validate(&module)
        .map_err(|e| format!("{name}: invalid:\n{}", e.emit_to_string(source)))?;
    Ok(module)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `.wgsl` file names under `shaders/`.
fn files_on_disk() -> BTreeSet<String> {
    let dir = root().join("shaders");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable dir entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("wgsl"))
        .map(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name")
                .to_owned()
        })
        .collect()
}

/// The files the compute backend loads: those of its kernels, and their imports.
fn compute_files() -> BTreeSet<&'static str> {
    let mut files = BTreeSet::new();
    for k in K::ALL {
        let (file, _) = k.entry_point();
        files.insert(file);
        if let Some(f) = shaders::file(file) {
            files.extend(f.imports.iter().copied());
        }
    }
    files
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("readable dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().and_then(|e| e.to_str()) == Some("rs") {
            out.push(path);
        }
    }
}

/// A render shader of the app: the file, the Rust file that loads it, and the vertex entry
/// points that file builds pipelines from (its `"vs_…"` string literals).
struct RenderShader {
    name: String,
    loader: PathBuf,
    vertex_entries: Vec<String>,
}

/// The render shaders: every `include_str!("…/shaders/NAME.wgsl")` under `src/` (the compute
/// backend's `shaders::FILES` builds its paths with `concat!` and is not matched), resolved
/// from the including file, so a literal that points elsewhere is not counted.
fn render_files() -> Vec<RenderShader> {
    const NEEDLE: &str = "include_str!(\"";
    let shaders_dir = root()
        .join("shaders")
        .canonicalize()
        .expect("shaders/ exists");
    let mut sources = Vec::new();
    rust_files(&root().join("src"), &mut sources);
    let mut found = Vec::new();
    for path in sources {
        let text = std::fs::read_to_string(&path).expect("readable source");
        let vertex_entries: Vec<String> = text
            .match_indices("\"vs_")
            .map(|(at, _)| {
                let rest = &text[at + 1..];
                rest[..rest.find('"').expect("closing quote")].to_owned()
            })
            .collect();
        for (at, _) in text.match_indices(NEEDLE) {
            let rest = &text[at + NEEDLE.len()..];
            let literal = &rest[..rest.find('"').expect("closing quote")];
            if !literal.ends_with(".wgsl") {
                continue;
            }
            let target = path.parent().expect("a directory").join(literal);
            let target = target
                .canonicalize()
                .unwrap_or_else(|e| panic!("{}: {literal}: {e}", path.display()));
            assert_eq!(
                target.parent(),
                Some(shaders_dir.as_path()),
                "{} includes a shader outside shaders/: {literal}",
                path.display()
            );
            found.push(RenderShader {
                name: target
                    .file_name()
                    .and_then(|n| n.to_str())
                    .expect("utf-8 name")
                    .to_owned(),
                loader: path.clone(),
                vertex_entries: vertex_entries.clone(),
            });
        }
    }
    found
}

/// No shader on disk is dead, and every file the code loads is on disk: the compute
/// backend's list (`shaders::FILES`) is exactly the kernels' files and their imports, and
/// every other file is a render shader of the app.
#[test]
fn every_shader_file_is_loaded() {
    let on_disk = files_on_disk();
    let compute = compute_files();
    let render = render_files();
    assert!(!render.is_empty(), "no render shader found in src/");
    let listed: BTreeSet<&str> = shaders::FILES.iter().map(|f| f.name).collect();
    assert_eq!(
        listed, compute,
        "shaders::FILES should hold exactly the files the kernels K::ALL use and import"
    );
    let mut loaded: BTreeSet<String> = compute.iter().map(|s| s.to_string()).collect();
    for r in &render {
        assert!(
            !compute.contains(r.name.as_str()),
            "{} is both a compute and a render shader ({})",
            r.name,
            r.loader.display()
        );
        loaded.insert(r.name.clone());
    }
    let dead: Vec<&String> = on_disk.difference(&loaded).collect();
    assert!(
        dead.is_empty(),
        "shaders/ files no code path loads: {dead:?} (loaded: {loaded:?})"
    );
    let missing: Vec<&String> = loaded.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "loaded but not in shaders/: {missing:?}"
    );
}

/// Each kernel's module, composed as the backend composes it, validates and has the kernel's
/// entry point as a compute shader.
#[test]
fn every_kernel_module_validates_with_its_entry_point() {
    let mut failures = Vec::new();
    for k in K::ALL {
        let (file, entry) = k.entry_point();
        let Some(source) = shaders::compose(file) else {
            failures.push(format!(
                "{}: {file} (or an import) is not in shaders::FILES",
                k.name()
            ));
            continue;
        };
        match validate(file, &source) {
            Ok(module) => {
                if !module
                    .entry_points
                    .iter()
                    .any(|ep| ep.name == entry && ep.stage == naga::ShaderStage::Compute)
                {
                    failures.push(format!("{file} lacks compute entry point {entry}"));
                }
            }
            Err(e) => failures.push(e),
        }
    }
    // Library files are validated as part of the kernels that import them; one imported by no
    // kernel is caught by `every_shader_file_is_loaded`.
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Each render shader of the app validates on its own, with the vertex entry points its Rust
/// file names and the `fs_main` fragment entry point `callback::Pipeline` builds from.
#[test]
fn every_render_shader_validates_with_its_entry_points() {
    let mut failures = Vec::new();
    for r in render_files() {
        let source = std::fs::read_to_string(root().join("shaders").join(&r.name))
            .unwrap_or_else(|e| panic!("{}: {e}", r.name));
        let module = match validate(&r.name, &source) {
            Ok(module) => module,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let has = |stage, name: &str| {
            module
                .entry_points
                .iter()
                .any(|ep| ep.stage == stage && ep.name == name)
        };
        if r.vertex_entries.is_empty() {
            failures.push(format!("{}: names no vs_* entry point", r.loader.display()));
        }
        for entry in &r.vertex_entries {
            if !has(naga::ShaderStage::Vertex, entry) {
                failures.push(format!("{}: no vertex entry point {entry}", r.name));
            }
        }
        if !has(naga::ShaderStage::Fragment, "fs_main") {
            failures.push(format!("{}: no fs_main fragment entry point", r.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every import of a listed file is listed, and a composed module is its imports, in order,
/// then the file itself.
#[test]
fn every_backend_shader_is_listed_with_existing_imports() {
    for f in shaders::FILES {
        let composed = shaders::compose(f.name).expect("composes");
        let mut at = 0;
        for import in f.imports {
            let lib = shaders::file(import)
                .unwrap_or_else(|| panic!("{} imports unknown {import}", f.name));
            let found = composed[at..]
                .find(lib.source)
                .unwrap_or_else(|| panic!("{}: {import} missing or out of order", f.name));
            at += found + lib.source.len();
        }
        assert!(
            composed[at..].ends_with(f.source),
            "{}: the file itself should come last",
            f.name
        );
    }
}
