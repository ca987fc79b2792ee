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

use clap::{Parser, Subcommand};
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

// The entry point (from src/main.rs).

#[derive(Parser, Debug)]
#[command(
    name = "diffusion-playground",
    version,
    about = "Watch and steer diffusion models on 2D point clouds"
)]
struct Cli {
    /// Close the app window after this many seconds (for smoke tests and demos).
    #[arg(long)]
    exit_after: Option<f64>,
    /// Soak drill: the app changes one setting (dataset, schedule, sampler, steps, SDE/ODE,
    /// particles, weights saved and loaded, exports) every this many seconds and prints a
    /// `soak {json}` line a minute (scripts/soak.sh). Starts from the default settings and
    /// never saves them.
    #[arg(long, value_name = "SECS")]
    drill: Option<f64>,
    /// Where the drill writes its weights and exports.
    #[arg(long, value_name = "DIR", requires = "drill")]
    drill_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a dataset to CSV.
    Data(data_cmd::DataArgs),
    /// Train a score network and save it as safetensors.
    Train(train_cmd::TrainArgs),
    /// Sample with a trained model or an exact score; optionally print quality metrics.
    Sample(sample_cmd::SampleArgs),
    /// Held-out negative log-likelihood along the PF-ODE.
    Nll(nll_cmd::NllArgs),
    /// Throughput of training and sampling per backend.
    Bench(bench_cmd::BenchArgs),
    /// Draw the forward and reverse process to a PNG (and a GIF) without a window.
    Render(render_cmd::RenderArgs),
}

/// The command line: the app, or one of the headless commands.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Parsing starts no thread, so the environment can still be set.
    quiet_headless_vulkan(cli.command.is_none());
    let result = match &cli.command {
        None => diffusion_playground::app::run(diffusion_playground::app::RunOptions {
            exit_after_secs: cli.exit_after,
            drill: cli.drill.map(|every| {
                let dir = cli
                    .drill_dir
                    .clone()
                    .unwrap_or_else(|| std::env::temp_dir().join("diffusion-playground-drill"));
                (every, dir)
            }),
        }),
        Some(Command::Data(a)) => data_cmd::run(a),
        Some(Command::Train(a)) => train_cmd::run(a),
        Some(Command::Sample(a)) => sample_cmd::run(a),
        Some(Command::Nll(a)) => nll_cmd::run(a),
        Some(Command::Bench(a)) => bench_cmd::run(a),
        Some(Command::Render(a)) => render_cmd::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, joined; a cause the line already ends with
            // (an error that prints its source, such as `DataError::Io`) is not repeated.
            let mut line = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                if line.is_empty() {
                    line = cause;
                } else if !line.ends_with(&cause) {
                    line = format!("{line}: {cause}");
                }
            }
            eprintln!("error: {line}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Without a desktop session (no XDG_RUNTIME_DIR: CI, ssh), Mesa's Vulkan device-select layer
/// tries to reach a Wayland compositor and prints "XDG_RUNTIME_DIR is invalid" twice per
/// adapter scan. It has nothing to select there, so switch it off; with a session it stays on
/// (it picks the right GPU on multi-GPU laptops).
#[allow(unsafe_code)] // `env::set_var` (unsafe since edition 2024), before any thread exists
fn quiet_headless_vulkan(window: bool) {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: called in `main` right after parsing the arguments (which starts no
        // thread), before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    // The window on a software renderer (Mesa's llvmpipe): rasterise on the thread that
    // submits rather than on a pool of one thread per core: the frame takes about as long
    // (measured at 1280×800: 25.0 vs 24.1 ms), and training, which shares those cores, gets
    // ~40 % more steps. Not for the headless commands, whose wgpu compute on llvmpipe wants
    // every core. Real GPUs ignore the variable; a value the user set is kept.
    if window && std::env::var_os("LP_NUM_THREADS").is_none() {
        // SAFETY: as above, before any other thread exists.
        unsafe { std::env::set_var("LP_NUM_THREADS", "0") };
    }
}
