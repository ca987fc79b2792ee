//! diffusion-playground: with no subcommand, the app; otherwise one of the headless commands.
//! In a browser (wasm32) there is no command line: the page starts the app (web/).

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {
    diffusion_playground::app::web::start();
}
