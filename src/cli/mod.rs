//! The command line: `data`, `train`, `sample`, `nll`, `render`, `bench`. Each command is a
//! file; errors travel up as `anyhow` and `main` prints them as one line.

pub mod bench_cmd;
pub mod data_cmd;
pub mod model;
pub mod nll_cmd;
pub mod sample_cmd;
pub mod source;
pub mod train_cmd;

/// `--backend cpu|wgpu|auto` for the commands that run the network.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArg {
    /// cpu | wgpu | auto (auto: wgpu on a real GPU, the CPU otherwise).
    #[arg(long, default_value = "auto")]
    pub backend: String,
}
