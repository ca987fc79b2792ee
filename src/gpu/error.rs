//! Everything that can go wrong on the GPU, as messages a person can act on.

/// A failure of the WGSL backend. None of them aborts the process: the caller falls back to
/// the CPU backend (see `crate::backend`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found ({0})")]
    NoAdapter(String),
    #[error("the GPU adapter {adapter} refused a device: {reason}")]
    RequestDevice { adapter: String, reason: String },
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    /// A buffer larger than the device allows (checked before allocating).
    #[error(
        "{what} needs {bytes} bytes, more than this GPU allows in one buffer ({limit} bytes); \
         use a smaller batch, width or particle count"
    )]
    TooLarge {
        what: String,
        bytes: u64,
        limit: u64,
    },
    #[error("the GPU ran out of memory while {0}")]
    OutOfMemory(String),
    /// A wgpu validation or internal error: a bug, or a device without what the kernels need.
    #[error("GPU error while {what}: {message}")]
    Device { what: String, message: String },
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
    #[error("invalid network or training settings: {0}")]
    Config(String),
    /// Settings the WGSL backend does not implement (the CPU backend does): the caller
    /// falls back to the CPU.
    #[error("the GPU backend does not support {0}; the CPU backend does")]
    Unsupported(String),
    /// In a browser, where nothing may wait for the GPU: a readback asked for but not yet
    /// arrived (ask again on a later frame).
    #[error("{0} are still on their way back from the GPU")]
    Pending(&'static str),
    /// The training loss became NaN or infinite; the weights of the last finite step are kept.
    #[error("the loss became non-finite at step {step}; training paused, last good weights kept")]
    NonFinite { step: u64 },
}

/// Refuses network configs the WGSL kernels do not implement: class-conditional networks
/// (`MlpConfig::num_classes > 0`), whose class rows of `W₀` the kernels would ignore.
pub fn check_supported(config: &crate::nn::MlpConfig) -> Result<(), GpuError> {
    if config.is_conditional() {
        return Err(GpuError::Unsupported(format!(
            "class-conditional networks ({} classes)",
            config.num_classes
        )));
    }
    Ok(())
}

/// Refuses flow-matching networks in `GpuModel`, whose ε̂ read-back converts outputs on the
/// VP path only, so such a model runs on its CPU twin. (`GpuSampler` and GPU training support
/// both processes.)
pub fn check_samples(config: &crate::nn::MlpConfig) -> Result<(), GpuError> {
    check_supported(config)?;
    if config.process == crate::math::Process::Fm {
        return Err(GpuError::Unsupported(
            "sampling a flow-matching network".to_owned(),
        ));
    }
    Ok(())
}

impl From<crate::nn::NnError> for GpuError {
    fn from(e: crate::nn::NnError) -> Self {
        GpuError::Config(e.to_string())
    }
}
