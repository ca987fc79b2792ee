//! Saving and loading weights as safetensors, with everything needed to use them again.
//!
//! Tensors: `layers.{l}.weight` (f32, shape `[fan_in, fan_out]`: our row-major layout of
//! `mlp`, the transpose of PyTorch's `nn.Linear.weight`) and `layers.{l}.bias` (`[fan_out]`),
//! for `l = 0..=depth`. A class-conditional network's class rows are rows `2 + E ..` of
//! `layers.0.weight` (`fan_in = 2 + E + num_classes + 1`, see `mlp`), so they are saved, loaded
//! and shape-checked with the rest; its `config` carries `num_classes`, which files written
//! before classes existed lack (they load as unconditional).
//!
//! String metadata: `format` (`FORMAT`), `config` (the `MlpConfig` as JSON), `schedule` (the
//! `Schedule` as JSON), `t_min`, `dataset`, `normalization` (`{"mean":[mx,my],"scale":s}`:
//! data = mean + scale · model space), `steps`.
//!
//! A loader must not trust the file: every key, dtype, shape and value is checked against the
//! config it claims, and anything wrong is an error naming the file, never a panic. Text from
//! the file that reaches an error (a key's value, a tensor's name, a parser's message) is
//! escaped and cut short (`fsutil::quoted`). `dataset` is only a label: nothing here or in
//! the callers opens the path it may name (the CLI takes a model's data from `--data`).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::mlp::MlpConfig;
use crate::data::Normalization;
use crate::fsutil::{ReadError, printable, quoted};
use crate::math::Schedule;

/// Value of the `format` metadata key.
pub const FORMAT: &str = "diffusion-playground/mlp-v1";
/// Largest weights file `load` reads and `save` writes: 256 MiB, 64 million f32 parameters.
/// The app's largest network (width 512, 6 hidden layers) takes under 6 MiB and a CLI network
/// of width 1024 and depth 32 about 130 MiB, so every network worth training on 2D points
/// fits with room to spare; the largest config `MlpConfig::validate` allows (width 4096,
/// depth 32: about 2 GiB) does not, and `save` refuses it rather than write a file `load`
/// would refuse.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// A trained network with what it was trained on.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedModel {
    pub config: MlpConfig,
    pub schedule: Schedule,
    pub t_min: f32,
    /// The dataset's name (or CSV path), for display. A reader uses it for held-out data only
    /// when it is exactly a built-in name; a path in it is never opened.
    pub dataset: String,
    /// The map from the data's units to the standardised units the model was trained in.
    pub normalization: Normalization,
    /// Training steps done.
    pub steps: u64,
    /// The flat parameter buffer (layout of `mlp`).
    pub params: Vec<f32>,
}

/// Why a weights file could not be written or read. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{file}: file is {bytes} bytes or more, over the {MAX_FILE_BYTES} bytes a weights file may have"
    )]
    TooLarge { file: String, bytes: u64 },
    #[error("{file} is not a weights file saved by diffusion-playground ({reason})")]
    Format { file: String, reason: String },
    #[error(
        "{file} is a safetensors file, but not one saved by diffusion-playground (it has no `{key}` entry)"
    )]
    MissingMetadata { file: String, key: &'static str },
    #[error("{file}: metadata `{key}` is invalid: {reason}")]
    BadMetadata {
        file: String,
        key: &'static str,
        reason: String,
    },
    #[error("{file}: tensor `{name}` is missing")]
    MissingTensor { file: String, name: String },
    #[error("{file}: unexpected tensor {name} (not part of the model's config)")]
    UnexpectedTensor { file: String, name: String },
    #[error("{file}: tensor `{name}` has dtype {dtype}, expected F32")]
    Dtype {
        file: String,
        name: String,
        dtype: String,
    },
    #[error("{file}: tensor `{name}` has shape {got:?}, but the config needs {expected:?}")]
    Shape {
        file: String,
        name: String,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{file}: tensor `{name}` holds a NaN or infinite value")]
    NonFinite { file: String, name: String },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

/// Most characters of a reason taken from a parser of the file's contents.
const REASON_CHARS: usize = 200;

fn tensor_names(l: usize) -> (String, String) {
    (format!("layers.{l}.weight"), format!("layers.{l}.bias"))
}

/// Checks the parts a file must agree on (shared by save and load).
fn check_model(m: &SavedModel, file: &str) -> Result<(), WeightsError> {
    let bad = |key: &'static str, reason: String| WeightsError::BadMetadata {
        file: file.to_string(),
        key,
        reason,
    };
    m.config
        .validate()
        .map_err(|e| bad("config", e.to_string()))?;
    m.schedule
        .validate()
        .map_err(|e| bad("schedule", e.to_string()))?;
    if !(m.t_min > 0.0 && m.t_min < 1.0) {
        return Err(bad("t_min", format!("must be in (0, 1), got {}", m.t_min)));
    }
    let n = &m.normalization;
    if !(n.mean.iter().all(|v| v.is_finite()) && n.scale.is_finite() && n.scale > 0.0) {
        return Err(bad(
            "normalization",
            format!("mean must be finite and scale positive, got {n:?}"),
        ));
    }
    if m.params.len() != m.config.num_params() {
        return Err(WeightsError::Invalid {
            file: file.to_string(),
            reason: format!(
                "{} parameters for a config that has {}",
                m.params.len(),
                m.config.num_params()
            ),
        });
    }
    Ok(())
}

/// The file's bytes.
pub fn to_bytes(model: &SavedModel) -> Result<Vec<u8>, WeightsError> {
    to_bytes_named(model, "<memory>")
}

fn to_bytes_named(model: &SavedModel, file: &str) -> Result<Vec<u8>, WeightsError> {
    check_model(model, file)?;
    if let Some(i) = model.params.iter().position(|v| !v.is_finite()) {
        return Err(WeightsError::Invalid {
            file: file.to_string(),
            reason: format!("parameter {i} is not finite"),
        });
    }
    let json = |v: Result<String, serde_json::Error>| {
        v.map_err(|e| WeightsError::Invalid {
            file: file.to_string(),
            reason: e.to_string(),
        })
    };
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert(
        "config".to_string(),
        json(serde_json::to_string(&model.config))?,
    );
    meta.insert(
        "schedule".to_string(),
        json(serde_json::to_string(&model.schedule))?,
    );
    meta.insert("t_min".to_string(), model.t_min.to_string());
    meta.insert("dataset".to_string(), model.dataset.clone());
    meta.insert(
        "normalization".to_string(),
        json(serde_json::to_string(&model.normalization))?,
    );
    meta.insert("steps".to_string(), model.steps.to_string());

    let layers = model.config.layers();
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(2 * layers.len());
    for (l, layer) in layers.iter().enumerate() {
        let (w_name, b_name) = tensor_names(l);
        let le = |xs: &[f32]| xs.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        blobs.push((
            w_name,
            vec![layer.fan_in, layer.fan_out],
            le(layer.weight(&model.params)),
        ));
        blobs.push((b_name, vec![layer.fan_out], le(layer.bias(&model.params))));
    }
    let mut views = Vec::with_capacity(blobs.len());
    for (name, shape, bytes) in &blobs {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(|e| {
            WeightsError::Invalid {
                file: file.to_string(),
                reason: e.to_string(),
            }
        })?;
        views.push((name.clone(), view));
    }
    let bytes = safetensors::serialize(views, &Some(meta)).map_err(|e| WeightsError::Invalid {
        file: file.to_string(),
        reason: e.to_string(),
    })?;
    // Never write what `load` would refuse.
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(WeightsError::TooLarge {
            file: file.to_string(),
            bytes: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Writes `model` to `path` atomically: a temporary file in the same directory, synced, then
/// renamed over `path`, so a reader never sees half a file.
pub fn save(path: &Path, model: &SavedModel) -> Result<(), WeightsError> {
    let file = path.display().to_string();
    let bytes = to_bytes_named(model, &file)?;
    crate::fsutil::write_atomically(path, &bytes)
        .map_err(|source| WeightsError::Io { file, source })
}

/// Reads and validates a weights file: a regular file of at most [`MAX_FILE_BYTES`], read
/// without ever blocking on a FIFO or a device (`fsutil::read_bounded`).
pub fn load(path: &Path) -> Result<SavedModel, WeightsError> {
    let file = path.display().to_string();
    let data = crate::fsutil::read_bounded(path, MAX_FILE_BYTES, "a weights file").map_err(
        |e| match e {
            ReadError::TooLarge { bytes, .. } => WeightsError::TooLarge {
                file: file.clone(),
                bytes,
            },
            e => WeightsError::Io {
                file: file.clone(),
                source: e.into_io_error(),
            },
        },
    )?;
    from_bytes(&data, &file)
}

/// Parses and validates the bytes of a weights file; `file` names it in errors.
pub fn from_bytes(bytes: &[u8], file: &str) -> Result<SavedModel, WeightsError> {
    // The parser's own words (`HeaderTooLarge`, …) mean little to a user: say what they mean.
    let format_err = |e: safetensors::SafeTensorError| WeightsError::Format {
        file: file.to_string(),
        reason: if format!("{e:?}").contains("Header") {
            "its header is invalid".to_owned()
        } else {
            "its contents do not add up: it may be cut short or damaged".to_owned()
        },
    };
    let tensors = SafeTensors::deserialize(bytes).map_err(format_err)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(format_err)?;
    let empty = HashMap::new();
    let meta = header.metadata().as_ref().unwrap_or(&empty);

    let get = |key: &'static str| {
        meta.get(key).ok_or_else(|| WeightsError::MissingMetadata {
            file: file.to_string(),
            key,
        })
    };
    // Parsers' messages may repeat part of the file.
    let bad = |key: &'static str, reason: String| WeightsError::BadMetadata {
        file: file.to_string(),
        key,
        reason: printable(&reason, REASON_CHARS),
    };
    let format = get("format")?;
    if format != FORMAT {
        return Err(bad(
            "format",
            format!("expected `{FORMAT}`, got {}", quoted(format, 40)),
        ));
    }
    let config: MlpConfig =
        serde_json::from_str(get("config")?).map_err(|e| bad("config", e.to_string()))?;
    let schedule: Schedule =
        serde_json::from_str(get("schedule")?).map_err(|e| bad("schedule", e.to_string()))?;
    let t_min: f32 = get("t_min")?
        .parse()
        .map_err(|e| bad("t_min", format!("{e}")))?;
    let dataset = get("dataset")?.clone();
    let normalization: Normalization = serde_json::from_str(get("normalization")?)
        .map_err(|e| bad("normalization", e.to_string()))?;
    let steps: u64 = get("steps")?
        .parse()
        .map_err(|e| bad("steps", format!("{e}")))?;
    // The config decides the tensors; validate it before sizing anything from it.
    config
        .validate()
        .map_err(|e| bad("config", e.to_string()))?;

    // A small file must not make us allocate for a huge config: its tensors must fit in it
    // (small mismatches get the more telling shape errors below).
    let needed = config.num_params() as u64 * 4;
    if needed > (bytes.len() as u64).max(1 << 24) {
        return Err(WeightsError::Invalid {
            file: file.to_string(),
            reason: format!(
                "the config needs {} parameters, more than the {} bytes of the file hold",
                config.num_params(),
                bytes.len()
            ),
        });
    }
    let layers = config.layers();
    let mut expected: HashMap<String, (usize, Vec<usize>)> = HashMap::new();
    for (l, layer) in layers.iter().enumerate() {
        let (w, b) = tensor_names(l);
        expected.insert(w, (layer.weight_offset, vec![layer.fan_in, layer.fan_out]));
        expected.insert(b, (layer.bias_offset, vec![layer.fan_out]));
    }
    if let Some(name) = tensors
        .names()
        .into_iter()
        .find(|n| !expected.contains_key(n.as_str()))
    {
        return Err(WeightsError::UnexpectedTensor {
            file: file.to_string(),
            name: quoted(name, 40),
        });
    }
    let mut params = vec![0.0f32; config.num_params()];
    let mut names: Vec<&String> = expected.keys().collect();
    names.sort();
    for name in names {
        let (offset, shape) = &expected[name];
        let view = tensors
            .tensor(name)
            .map_err(|_| WeightsError::MissingTensor {
                file: file.to_string(),
                name: name.clone(),
            })?;
        if view.dtype() != Dtype::F32 {
            let dtype = format!("{:?}", view.dtype());
            return Err(WeightsError::Dtype {
                file: file.to_string(),
                name: name.clone(),
                dtype,
            });
        }
        if view.shape() != shape.as_slice() {
            let got = view.shape().to_vec();
            return Err(WeightsError::Shape {
                file: file.to_string(),
                name: name.clone(),
                got,
                expected: shape.clone(),
            });
        }
        let dst = &mut params[*offset..*offset + shape.iter().product::<usize>()];
        for (d, b) in dst.iter_mut().zip(view.data().chunks_exact(4)) {
            *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        if dst.iter().any(|v| !v.is_finite()) {
            return Err(WeightsError::NonFinite {
                file: file.to_string(),
                name: name.clone(),
            });
        }
    }
    let model = SavedModel {
        config,
        schedule,
        t_min,
        dataset,
        normalization,
        steps,
        params,
    };
    check_model(&model, file)?;
    Ok(model)
}
