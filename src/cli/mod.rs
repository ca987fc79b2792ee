//! The command line: `data`, `train`, `sample`, `nll`, `render`, `bench`. Each command is a
//! file; errors travel up as `anyhow` and `main` prints them as one line.
//!
//! - `data_cmd`, `train_cmd`, `sample_cmd`, `nll_cmd`, `render_cmd`, `bench_cmd`: the
//!   commands;
//! - `model`: the `--model FILE | --oracle NAME` argument group of `sample` and `nll`;
//! - `source`: the `--dataset` argument (a built-in name or a CSV file).

pub mod bench_cmd;
pub mod bench_explore;
pub mod data_cmd;
pub mod model;
pub mod nll_cmd;
pub mod render_cmd;
pub mod sample_cmd;
pub mod source;
pub mod train_cmd;

use diffusion_playground::backend::{self, BackendChoice, Selection};

/// `--backend cpu|wgpu|auto` for the commands that run the network.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArg {
    /// cpu | wgpu | auto (auto: wgpu on a real GPU, the CPU when the only adapter is a CPU
    /// such as lavapipe, or when there is none).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendChoice,
}

impl BackendArg {
    /// Picks the backend and says which on stderr, with the adapter's name.
    pub fn select(&self) -> Selection {
        let selection = backend::select(self.backend);
        eprintln!("{}", selection.line);
        selection
    }
}

fn parse_backend(s: &str) -> Result<BackendChoice, String> {
    s.parse()
        .map_err(|_| format!("unknown backend {s:?}: expected cpu, wgpu or auto"))
}
