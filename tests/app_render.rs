//! The headless `render` command: a PNG (and a GIF) of the process without a window or GPU.

use std::process::Command;

/// Runs `diffusion-playground render` at a small size with `extra` arguments; `Err` holds
/// its one-line error (stderr) when it exits non-zero.
fn render(extra: &[&str]) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_diffusion-playground"))
        .args(["render", "--size", "96", "--particles", "300"])
        .args(["--train-steps", "30"])
        .args(extra)
        .output()
        .expect("the binary runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The frames of a GIF, decoded to RGBA, with their delays (1/100 s).
struct GifFrames {
    width: u16,
    height: u16,
    repeat: gif::Repeat,
    frames: Vec<(Vec<u8>, u16)>,
}

fn decode_gif(path: &std::path::Path) -> GifFrames {
    let file = std::fs::File::open(path).expect("a GIF file");
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(file).expect("a GIF header");
    let (width, height) = (decoder.width(), decoder.height());
    let mut frames = Vec::new();
    while let Some(frame) = decoder.read_next_frame().expect("a decodable frame") {
        // Every frame covers the whole canvas (no partial updates to composite).
        assert_eq!(
            (frame.left, frame.top, frame.width, frame.height),
            (0, 0, width, height),
            "frame {} is not full-size",
            frames.len()
        );
        frames.push((frame.buffer.to_vec(), frame.delay));
    }
    GifFrames {
        width,
        height,
        repeat: decoder.repeat(),
        frames,
    }
}

/// Pixels (RGBA) that differ by more than a GIF quantisation step between two frames.
fn differing_pixels(a: &[u8], b: &[u8]) -> usize {
    assert_eq!(a.len(), b.len());
    a.chunks_exact(4)
        .zip(b.chunks_exact(4))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 24))
        .count()
}

#[test]
fn writes_a_png_and_a_gif() {
    const FRAMES: usize = 4;
    let dir = tempfile::tempdir().expect("temp dir");
    let png = dir.path().join("out.png");
    let gif = dir.path().join("out.gif");
    render(&[
        "--out",
        png.to_str().expect("utf-8 path"),
        "--gif",
        gif.to_str().expect("utf-8 path"),
        "--frames",
        &FRAMES.to_string(),
        "--steps",
        "8",
    ])
    .expect("renders");
    let reader = image::ImageReader::open(&png)
        .expect("the PNG file")
        .with_guessed_format()
        .expect("readable");
    assert_eq!(reader.format(), Some(image::ImageFormat::Png));
    let image = reader.decode().expect("a decodable PNG").to_rgb8();
    assert_eq!(image.dimensions(), (96, 96));
    // Particles are orange on a dark background.
    let orange = image
        .pixels()
        .filter(|p| p.0[0] > 150 && p.0[2] < 120)
        .count();
    assert!(orange > 20, "{orange} orange pixels");

    let g = decode_gif(&gif);
    assert_eq!((g.width, g.height), (96, 96));
    assert_eq!(g.repeat, gif::Repeat::Infinite);
    // Forward t = 0, …, 1 (`--frames` of them), then the reverse run: `--frames` evenly
    // spaced frames from the prior to the last step, plus the samples once more to pause on.
    let n = g.frames.len();
    assert_eq!(n, 2 * FRAMES + 1, "frames in the GIF");
    let pixels = 96 * 96;
    let diffs: Vec<usize> = (1..n)
        .map(|k| differing_pixels(&g.frames[k - 1].0, &g.frames[k].0))
        .collect();
    eprintln!("pixels differing from the previous frame: {diffs:?}");
    // Consecutive frames show particles that moved (all but the repeated final frame)...
    for (k, &d) in diffs.iter().enumerate().take(n - 2) {
        assert!(
            d > pixels / 100,
            "frames {k} and {} are nearly the same ({d} pixels differ)",
            k + 1
        );
    }
    // ...the data at t = 0 and the noise at t = 1 look nothing alike...
    let d = differing_pixels(&g.frames[0].0, &g.frames[FRAMES - 1].0);
    assert!(d > pixels / 20, "forward start vs end: {d} pixels differ");
    // ...and the last frame repeats the samples, with the long pauses on noise and samples.
    assert_eq!(diffs[n - 2], 0, "the final frame is repeated");
    // The PNG is the samples: the last frame, up to the GIF's palette.
    let png_rgba = image::DynamicImage::ImageRgb8(image).to_rgba8();
    let d = differing_pixels(png_rgba.as_raw(), &g.frames[n - 1].0);
    eprintln!("PNG vs last GIF frame: {d} pixels differ");
    assert!(
        d <= pixels / 50,
        "the PNG is not the last GIF frame ({d} pixels differ)"
    );
    let delays: Vec<u16> = g.frames.iter().map(|f| f.1).collect();
    assert_eq!(delays[FRAMES - 1], 120, "pause on pure noise: {delays:?}");
    assert_eq!(delays[n - 1], 120, "pause on the samples: {delays:?}");
    assert!(delays[0] < 120, "{delays:?}");
}

#[test]
fn the_exact_score_needs_no_training_and_bad_options_are_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let png = dir.path().join("oracle.png");
    let png_arg = png.to_str().expect("utf-8 path");
    render(&[
        "--oracle", "--mode", "forward", "--t", "0.3", "--out", png_arg,
    ])
    .expect("renders");
    assert!(png.exists());
    let bad = |extra: &[&str]| render(extra).expect_err("refused");
    assert!(bad(&["--sampler", "nope", "--out", png_arg]).contains("unknown sampler"));
    assert!(bad(&["--t", "2", "--out", png_arg]).contains("--t"));
    assert!(bad(&["--dataset", "/no/such.csv", "--out", png_arg]).contains("such.csv"));
    assert!(bad(&["--beta-max=-1", "--out", png_arg]).contains("β"));
}
