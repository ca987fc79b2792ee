//! The headless `render` command: a PNG (and a GIF) of the process without a window or GPU.

use clap::Parser;
use diffusion_playground::app::render::{RenderArgs, render};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: RenderArgs,
}

fn args(extra: &[&str]) -> RenderArgs {
    let base = [
        "render",
        "--size",
        "96",
        "--particles",
        "300",
        "--train-steps",
        "30",
    ];
    Cli::parse_from(base.iter().chain(extra)).args
}

#[test]
fn writes_a_png_and_a_gif() {
    let dir = tempfile::tempdir().expect("temp dir");
    let png = dir.path().join("out.png");
    let gif = dir.path().join("out.gif");
    let a = args(&[
        "--out",
        png.to_str().expect("utf-8 path"),
        "--gif",
        gif.to_str().expect("utf-8 path"),
        "--frames",
        "4",
        "--steps",
        "8",
    ]);
    render(&a).expect("renders");
    let image = image::open(&png).expect("a PNG").to_rgb8();
    assert_eq!(image.dimensions(), (96, 96));
    // Particles are orange on a dark background.
    let orange = image
        .pixels()
        .filter(|p| p.0[0] > 150 && p.0[2] < 120)
        .count();
    assert!(orange > 20, "{orange} orange pixels");
    let bytes = std::fs::read(&gif).expect("a GIF");
    assert!(bytes.starts_with(b"GIF89a"));
    // Forward and reverse frames, each direction `--frames` long (plus the last one).
    let frames = bytes.windows(2).filter(|w| w == &[0x21, 0xF9]).count();
    assert!(frames >= 8, "{frames} frames");
}

#[test]
fn the_exact_score_needs_no_training_and_bad_options_are_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let png = dir.path().join("oracle.png");
    let png_arg = png.to_str().expect("utf-8 path");
    render(&args(&[
        "--oracle", "--mode", "forward", "--t", "0.3", "--out", png_arg,
    ]))
    .expect("renders");
    assert!(png.exists());
    let bad = |extra: &[&str]| render(&args(extra)).expect_err("refused").to_string();
    assert!(bad(&["--sampler", "nope", "--out", png_arg]).contains("unknown sampler"));
    assert!(bad(&["--t", "2", "--out", png_arg]).contains("--t"));
    assert!(bad(&["--dataset", "/no/such.csv", "--out", png_arg]).contains("such.csv"));
    assert!(bad(&["--beta-max=-1", "--out", png_arg]).contains("β"));
}
