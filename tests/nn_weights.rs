//! Weights files: exact round trip, atomic writes, and hostile files rejected with an error
//! that names the file (never a panic).
#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] fns

use std::collections::HashMap;
use std::path::Path;

use diffusion_playground::data::Normalization;
use diffusion_playground::math::Schedule;
use diffusion_playground::nn::weights::{self, FORMAT, SavedModel, WeightsError};
use diffusion_playground::nn::{Activation, Embedding, MlpConfig, Parameterization};
use safetensors::tensor::{Dtype, TensorView};

fn model() -> SavedModel {
    let config = MlpConfig {
        width: 24,
        depth: 2,
        activation: Activation::Gelu,
        embedding: Embedding::Sinusoidal { dim: 8 },
        param: Parameterization::Score,
        num_classes: 0,
        ..MlpConfig::default()
    };
    let mut params = config.init_params(3);
    // Values that a lossy round trip would change: subnormals, large, negative zero.
    params[0] = 1e-40;
    params[1] = -0.0;
    params[2] = 3.0e38;
    SavedModel {
        config,
        schedule: Schedule::Cosine { beta_cap: 20.0 },
        t_min: 1e-3,
        dataset: "swiss-roll".to_string(),
        normalization: Normalization {
            mean: [0.25, -1.5],
            scale: 3.75,
        },
        steps: 1234,
        params,
    }
}

/// The metadata `to_bytes` writes, for building altered files.
fn metadata(m: &SavedModel) -> HashMap<String, String> {
    HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        (
            "config".to_string(),
            serde_json::to_string(&m.config).unwrap(),
        ),
        (
            "schedule".to_string(),
            serde_json::to_string(&m.schedule).unwrap(),
        ),
        ("t_min".to_string(), m.t_min.to_string()),
        ("dataset".to_string(), m.dataset.clone()),
        (
            "normalization".to_string(),
            serde_json::to_string(&m.normalization).unwrap(),
        ),
        ("steps".to_string(), m.steps.to_string()),
    ])
}

/// A file with the model's tensors, each passed through `alter(name, dtype, shape, bytes)`
/// (None drops it), plus `extra` tensors, and metadata `meta`.
/// A tensor as (dtype, shape, bytes).
type Blob = (Dtype, Vec<usize>, Vec<u8>);
/// Rewrites (or, with None, drops) a tensor given its name and blob parts.
type Alter<'a> = &'a dyn Fn(&str, Dtype, Vec<usize>, Vec<u8>) -> Option<Blob>;

fn build(
    m: &SavedModel,
    meta: HashMap<String, String>,
    alter: Alter,
    extra: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
) -> Vec<u8> {
    let mut blobs = Vec::new();
    for (l, layer) in m.config.layers().iter().enumerate() {
        let le = |xs: &[f32]| xs.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        let w = (
            format!("layers.{l}.weight"),
            vec![layer.fan_in, layer.fan_out],
            le(layer.weight(&m.params)),
        );
        let b = (
            format!("layers.{l}.bias"),
            vec![layer.fan_out],
            le(layer.bias(&m.params)),
        );
        for (name, shape, bytes) in [w, b] {
            if let Some((dtype, shape, bytes)) = alter(&name, Dtype::F32, shape, bytes) {
                blobs.push((name, dtype, shape, bytes));
            }
        }
    }
    blobs.extend(extra);
    let views: Vec<(String, TensorView)> = blobs
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, &Some(meta)).unwrap()
}

fn keep(_: &str, d: Dtype, s: Vec<usize>, b: Vec<u8>) -> Option<Blob> {
    Some((d, s, b))
}

fn rejected(bytes: &[u8]) -> WeightsError {
    let err =
        weights::from_bytes(bytes, "hostile.safetensors").expect_err("a bad file was accepted");
    assert!(
        err.to_string().contains("hostile.safetensors"),
        "error does not name the file: {err}"
    );
    err
}

#[test]
fn round_trip_is_exact() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    weights::save(&path, &m).unwrap();
    let back = weights::load(&path).unwrap();
    assert_eq!(back.params.len(), m.params.len());
    for (a, b) in back.params.iter().zip(&m.params) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
    assert_eq!(back, m);
    // Our own builder writes the same thing, so the hostile variants below differ only where
    // they mean to.
    assert_eq!(
        weights::from_bytes(&build(&m, metadata(&m), &keep, vec![]), "x").unwrap(),
        m
    );
}

#[test]
fn save_is_atomic_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut m = model();
    weights::save(&path, &m).unwrap();
    m.steps = 99;
    weights::save(&path, &m).unwrap();
    assert_eq!(weights::load(&path).unwrap().steps, 99);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temporary files left behind: {names:?}");
    // A directory that does not exist: an I/O error naming the file, nothing written.
    let missing = dir.path().join("no/such/dir/m.safetensors");
    let err = weights::save(&missing, &m).unwrap_err();
    assert!(matches!(err, WeightsError::Io { .. }) && err.to_string().contains("m.safetensors"));
}

#[test]
fn save_refuses_bad_models() {
    let mut m = model();
    m.params.pop();
    assert!(matches!(
        weights::to_bytes(&m),
        Err(WeightsError::Invalid { .. })
    ));
    let mut m = model();
    m.params[5] = f32::NAN;
    assert!(weights::to_bytes(&m).is_err());
    let mut m = model();
    m.normalization.scale = 0.0;
    assert!(weights::to_bytes(&m).is_err());
}

#[test]
fn missing_and_unreadable_files_are_io_errors() {
    let err = weights::load(Path::new("/nonexistent/model.safetensors")).unwrap_err();
    assert!(matches!(err, WeightsError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/model.safetensors"));
}

#[test]
fn corrupt_bytes_are_rejected() {
    let good = weights::to_bytes(&model()).unwrap();
    // Truncated anywhere: inside the length, the header or the data.
    for cut in [0, 3, 8, 20, good.len() / 2, good.len() - 1] {
        assert!(
            matches!(rejected(&good[..cut]), WeightsError::Format { .. }),
            "cut at {cut}"
        );
    }
    // Trailing garbage.
    let mut long = good.clone();
    long.extend_from_slice(&[0u8; 7]);
    rejected(&long);
    // A header length far past the end, and one of 2⁶⁴ − 1.
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    rejected(&huge);
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    rejected(&huge);
    // Garbage (valid length, not JSON), and JSON that is not a safetensors header.
    for header in [
        &b"\xff\xfe garbage {{{"[..],
        b"[1, 2, 3]",
        b"{\"a\": {\"dtype\": \"F32\"}}",
    ] {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        rejected(&bytes);
    }
    // Random bytes.
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    rejected(&noise);
}

#[test]
fn wrong_shapes_dtypes_and_values_are_rejected() {
    let m = model();
    let meta = metadata(&m);
    // Shape: the first weight transposed (same byte count).
    let transposed = build(
        &m,
        meta.clone(),
        &|n, d, s, b| {
            Some((
                d,
                if n == "layers.0.weight" {
                    vec![s[1], s[0]]
                } else {
                    s
                },
                b,
            ))
        },
        vec![],
    );
    assert!(matches!(rejected(&transposed), WeightsError::Shape { .. }));
    // Dtype: F16 with the same byte count as a shape of twice the elements would not do; use
    // I32 of the same shape, and F64 of half the elements.
    let as_i32 = build(
        &m,
        meta.clone(),
        &|n, d, s, b| Some((if n == "layers.1.bias" { Dtype::I32 } else { d }, s, b)),
        vec![],
    );
    assert!(matches!(rejected(&as_i32), WeightsError::Dtype { .. }));
    let as_f64 = build(
        &m,
        meta.clone(),
        &|n, d, s, b| {
            if n == "layers.2.bias" {
                Some((Dtype::F64, vec![s[0] / 2], b))
            } else {
                Some((d, s, b))
            }
        },
        vec![],
    );
    assert!(matches!(rejected(&as_f64), WeightsError::Dtype { .. }));
    // Values: a NaN and an infinity.
    for bad in [f32::NAN, f32::INFINITY] {
        let file = build(
            &m,
            meta.clone(),
            &|n, d, s, mut b| {
                if n == "layers.1.weight" {
                    b[40..44].copy_from_slice(&bad.to_le_bytes());
                }
                Some((d, s, b))
            },
            vec![],
        );
        assert!(matches!(rejected(&file), WeightsError::NonFinite { .. }));
    }
    // A missing tensor and an extra one.
    let missing = build(
        &m,
        meta.clone(),
        &|n, d, s, b| (n != "layers.2.weight").then_some((d, s, b)),
        vec![],
    );
    assert!(matches!(
        rejected(&missing),
        WeightsError::MissingTensor { .. }
    ));
    let extra = build(
        &m,
        meta.clone(),
        &keep,
        vec![("layers.3.weight".into(), Dtype::F32, vec![1], vec![0; 4])],
    );
    assert!(matches!(
        rejected(&extra),
        WeightsError::UnexpectedTensor { .. }
    ));
}

#[test]
fn wrong_or_missing_metadata_is_rejected() {
    let m = model();
    let with = |key: &str, value: Option<&str>| {
        let mut meta = metadata(&m);
        match value {
            Some(v) => meta.insert(key.to_string(), v.to_string()),
            None => meta.remove(key),
        };
        build(&m, meta, &keep, vec![])
    };
    for key in [
        "format",
        "config",
        "schedule",
        "t_min",
        "dataset",
        "normalization",
        "steps",
    ] {
        assert!(
            matches!(
                rejected(&with(key, None)),
                WeightsError::MissingMetadata { .. }
            ),
            "{key}"
        );
    }
    // A config that does not match the tensors (wider), one that is invalid, one not JSON.
    let wider = MlpConfig {
        width: 25,
        ..m.config.clone()
    };
    assert!(matches!(
        rejected(&with(
            "config",
            Some(&serde_json::to_string(&wider).unwrap())
        )),
        WeightsError::Shape { .. }
    ));
    let deeper = MlpConfig {
        depth: 3,
        ..m.config.clone()
    };
    let err = rejected(&with(
        "config",
        Some(&serde_json::to_string(&deeper).unwrap()),
    ));
    assert!(
        matches!(
            err,
            WeightsError::Shape { .. } | WeightsError::MissingTensor { .. }
        ),
        "{err}"
    );
    let invalid = MlpConfig {
        width: 0,
        ..m.config.clone()
    };
    assert!(matches!(
        rejected(&with(
            "config",
            Some(&serde_json::to_string(&invalid).unwrap())
        )),
        WeightsError::BadMetadata { .. }
    ));
    let huge = r#"{"width":100000000,"depth":3,"activation":"Silu","embedding":{"Sinusoidal":{"dim":32}},"param":"Eps"}"#;
    assert!(matches!(
        rejected(&with("config", Some(huge))),
        WeightsError::BadMetadata { .. }
    ));
    // Valid but far larger than the file: refused before anything is allocated for it.
    let big = r#"{"width":4096,"depth":32,"activation":"Silu","embedding":{"Sinusoidal":{"dim":32}},"param":"Eps"}"#;
    assert!(matches!(
        rejected(&with("config", Some(big))),
        WeightsError::Invalid { .. }
    ));
    for (key, value) in [
        ("config", "{not json"),
        ("config", r#"{"width":24}"#),
        ("format", "something-else"),
        ("schedule", r#"{"Linear":{"beta_min":5.0,"beta_max":1.0}}"#),
        ("schedule", "linear"),
        ("t_min", "0"),
        ("t_min", "NaN"),
        ("t_min", "abc"),
        ("normalization", r#"{"mean":[0,0],"scale":-1}"#),
        ("normalization", r#"{"mean":[0],"scale":1}"#),
        ("steps", "-3"),
    ] {
        assert!(
            matches!(
                rejected(&with(key, Some(value))),
                WeightsError::BadMetadata { .. }
            ),
            "{key} = {value}"
        );
    }
}

#[test]
fn load_reads_a_file_written_elsewhere_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.safetensors");
    let good = weights::to_bytes(&model()).unwrap();
    std::fs::write(&path, &good[..good.len() - 10]).unwrap();
    let err = weights::load(&path).unwrap_err();
    assert!(err.to_string().contains("broken.safetensors"), "{err}");
}

/// A class-conditional model: its class rows travel in `layers.0.weight` (checked against the
/// config's `num_classes`), and it evaluates the same after a round trip.
#[test]
fn conditional_models_round_trip_and_are_shape_checked() {
    use diffusion_playground::nn::NetModel;
    let mut m = model();
    m.config.num_classes = 3;
    m.params = m.config.init_params(3);
    for (i, p) in m.params.iter_mut().enumerate() {
        *p += 0.1 * (i as f32 * 0.3).sin();
    }
    let bytes = weights::to_bytes(&m).unwrap();
    let back = weights::from_bytes(&bytes, "cond.safetensors").unwrap();
    assert_eq!(back, m);
    let shape = |cfg: &MlpConfig| vec![cfg.input_dim(), cfg.width];
    assert_eq!(shape(&m.config), vec![2 + 8 + 4, 24]);
    let a = NetModel::from_saved(&m).unwrap();
    let b = NetModel::from_saved(&back).unwrap();
    let xs = [[0.3f32, -0.2], [1.0, 0.5]];
    for class in [Some(0), Some(2), None] {
        let (mut ea, mut eb) = ([[0.0f32; 2]; 2], [[0.0f32; 2]; 2]);
        a.eps_class(&xs, 0.4, class, &mut ea);
        b.eps_class(&xs, 0.4, class, &mut eb);
        assert_eq!(ea, eb);
    }
    // The config claims other classes than the tensors hold: a shape error on layer 0.
    for classes in [0u32, 2, 4] {
        let mut meta = metadata(&m);
        let other = MlpConfig {
            num_classes: classes,
            ..m.config.clone()
        };
        meta.insert("config".into(), serde_json::to_string(&other).unwrap());
        match rejected(&build(&m, meta, &keep, vec![])) {
            WeightsError::Shape {
                name,
                got,
                expected,
                ..
            } => {
                assert_eq!(name, "layers.0.weight");
                assert_eq!((got, expected), (shape(&m.config), shape(&other)));
            }
            e => panic!("{classes} classes: {e}"),
        }
    }
    // Too many classes is an invalid config.
    let mut meta = metadata(&m);
    let mut huge = serde_json::to_value(&m.config).unwrap();
    huge["num_classes"] = serde_json::json!(100_000);
    meta.insert("config".into(), huge.to_string());
    assert!(matches!(
        rejected(&build(&m, meta, &keep, vec![])),
        WeightsError::BadMetadata { .. }
    ));
}

/// Files written before classes existed (no `num_classes` in the config) load as
/// unconditional models, and unconditional models are still written that way.
#[test]
fn files_without_classes_load_unconditional() {
    let m = model();
    let mut meta = metadata(&m);
    assert!(!meta["config"].contains("num_classes"));
    let old = r#"{"width":24,"depth":2,"activation":"Gelu","embedding":{"Sinusoidal":{"dim":8}},"param":"Score"}"#;
    meta.insert("config".into(), old.into());
    let back = weights::from_bytes(&build(&m, meta, &keep, vec![]), "old.safetensors").unwrap();
    assert_eq!(back.config.num_classes, 0);
    assert_eq!(back, m);
}
