//! diffusion-playground: with no subcommand, the app; otherwise one of the headless commands.

mod cli;

use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a dataset to CSV.
    Data(cli::data_cmd::DataArgs),
    /// Train a score network and save it as safetensors.
    Train(cli::train_cmd::TrainArgs),
    /// Sample with a trained model or an exact score; optionally print quality metrics.
    Sample(cli::sample_cmd::SampleArgs),
    /// Held-out negative log-likelihood along the PF-ODE.
    Nll(cli::nll_cmd::NllArgs),
    /// Throughput of training and sampling per backend.
    Bench(cli::bench_cmd::BenchArgs),
    /// Draw the forward and reverse process to a PNG (and a GIF) without a window.
    Render(cli::render_cmd::RenderArgs),
}

fn main() -> std::process::ExitCode {
    quiet_headless_vulkan();
    let cli = Cli::parse();
    let result = match &cli.command {
        None => diffusion_playground::app::run(cli.exit_after),
        Some(Command::Data(a)) => cli::data_cmd::run(a),
        Some(Command::Train(a)) => cli::train_cmd::run(a),
        Some(Command::Sample(a)) => cli::sample_cmd::run(a),
        Some(Command::Nll(a)) => cli::nll_cmd::run(a),
        Some(Command::Bench(a)) => cli::bench_cmd::run(a),
        Some(Command::Render(a)) => cli::render_cmd::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, joined.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Without a desktop session (no XDG_RUNTIME_DIR: CI, ssh), Mesa's Vulkan device-select layer
/// tries to reach a Wayland compositor and prints "XDG_RUNTIME_DIR is invalid" twice per
/// adapter scan. It has nothing to select there, so switch it off; with a session it stays on
/// (it picks the right GPU on multi-GPU laptops).
#[allow(unsafe_code)] // `env::set_var` (unsafe since edition 2024), before any thread exists
fn quiet_headless_vulkan() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}
