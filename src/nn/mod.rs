//! The score network: MLP, CPU reference backend, DSM training, weights.
//!
//! - `mlp`: the config and the flat parameter layout (shared with the WGSL backend);
//! - `embedding`: the time embedding; `fastmath`: vectorisable exp/sigmoid/sin/cos and the
//!   activations;
//! - `gemm` (with `gemm_avx2.rs`), `cpu`, `simd` (private): the CPU kernels, the forward,
//!   backward and forward-mode passes, and run-time AVX2/FMA dispatch;
//! - `adam`: Adam and the EMA of the weights;
//! - `train_config`: a run's settings and what changing them means;
//! - `batch`: the DSM batches (the CPU twin of `shaders/dsm.wgsl`); `dsm`: the loss and the
//!   CPU `Trainer`;
//! - `model`: `NetModel`, the network as a `ScoreModel`; `weights`: safetensors files;
//! - `bench`: throughput figures for the CLI.

pub mod adam;
pub mod batch;
pub mod bench;
mod cpu;
pub mod dsm;
pub mod embedding;
pub mod fastmath;
mod gemm;
pub mod mlp;
pub mod model;
mod simd;
pub mod train_config;
pub mod weights;

pub use adam::{Adam, Ema};
pub use batch::{DsmSample, DsmSampler, IMPORTANCE_TABLE_SIZE, ImportanceTable};
pub use dsm::Trainer;
pub use embedding::TimeEmbedding;
pub use mlp::{Activation, Embedding, LayerLayout, MlpConfig, Parameterization};
pub use model::NetModel;
pub use train_config::{
    ConfigChange, DEFAULT_CLASS_DROPOUT, MAX_BATCH, Setting, TrainConfig, Weighting,
};
pub use weights::{SavedModel, WeightsError};

/// Why a network could not be built, trained or run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NnError {
    #[error("invalid network config: {0}")]
    InvalidConfig(String),
    #[error("invalid training setting: {0}")]
    InvalidTraining(String),
    #[error("parameter buffer has {got} values, the config needs {expected}")]
    ParamLength { expected: usize, got: usize },
    #[error("parameters contain NaN or infinite values")]
    NonFiniteParams,
    #[error("the training data is empty")]
    EmptyData,
    #[error("training point {index} is NaN or infinite")]
    NonFiniteData { index: usize },
    #[error("invalid class labels: {0}")]
    InvalidLabels(String),
    #[error("step {step}: the loss or gradient is NaN or infinite; the update was skipped")]
    NonFinite { step: u64 },
}
