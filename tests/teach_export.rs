//! Export: CSV, PNG, GIF and model files are written atomically and bad paths are errors.
#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] fns

use std::fs;

use diffusion_playground::data::Normalization;
use diffusion_playground::data::load_csv;
use diffusion_playground::math::Schedule;
use diffusion_playground::nn::{MlpConfig, SavedModel};
use diffusion_playground::teach::TeachError;
use diffusion_playground::teach::export::{
    View, encode_gif, load_model, render_points, save_model, write_gif, write_png,
    write_samples_csv,
};

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn csv_round_trips_with_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.csv");
    let pts = vec![[0.25f32, -1.5], [3.0, 1e-7]];
    write_samples_csv(&path, &pts, Some(&[0, 1])).unwrap();
    let back = load_csv(&path).unwrap();
    assert_eq!(back.points, pts);
    assert_eq!(back.labels, Some(vec![0, 1]));
    assert!(write_samples_csv(&dir.path().join("no/such/dir.csv"), &pts, None).is_err());
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn png_decodes_to_the_same_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("canvas.png");
    let (w, h) = (40, 30);
    let rgb = render_points(&[[0.0, 0.0], [1.0, 1.0]], None, View::default(), w, h, 1);
    write_png(&path, w as u32, h as u32, &rgb).unwrap();
    let img = image::open(&path).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (w as u32, h as u32));
    assert_eq!(img.into_raw(), rgb);
    // A buffer of the wrong size, an empty image, a missing directory: errors, no panic.
    assert!(matches!(
        write_png(&path, 41, 30, &rgb),
        Err(TeachError::Invalid(_))
    ));
    assert!(write_png(&path, 0, 0, &[]).is_err());
    let missing = dir.path().join("missing/canvas.png");
    assert!(matches!(
        write_png(&missing, 40, 30, &rgb),
        Err(TeachError::Io { .. })
    ));
    // A directory in the way of the file.
    let as_dir = dir.path().join("taken.png");
    fs::create_dir(&as_dir).unwrap();
    assert!(write_png(&as_dir, 40, 30, &rgb).is_err());
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn gif_has_every_frame_and_bad_input_leaves_old_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reverse.gif");
    let (w, h) = (32usize, 24usize);
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|k| {
            render_points(
                &[[k as f32 - 2.0, 0.0]],
                Some(&[k]),
                View::default(),
                w,
                h,
                1,
            )
        })
        .collect();
    write_gif(&path, w as u16, h as u16, &frames, 4).unwrap();
    let before = fs::read(&path).unwrap();
    let mut decoder = gif::DecodeOptions::new();
    decoder.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = decoder.read_info(fs::File::open(&path).unwrap()).unwrap();
    let mut count = 0;
    while let Some(frame) = dec.read_next_frame().unwrap() {
        assert_eq!(frame.delay, 4);
        // Exact palette: the pixels come back unchanged.
        let rgb: Vec<u8> = frame
            .buffer
            .chunks(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert_eq!(rgb, frames[count]);
        count += 1;
    }
    assert_eq!(count, 5);
    // Failures: no frames, a frame of the wrong size; the existing file is untouched.
    assert!(write_gif(&path, w as u16, h as u16, &[], 4).is_err());
    let mut bad = frames.clone();
    bad[2].pop();
    assert!(write_gif(&path, w as u16, h as u16, &bad, 4).is_err());
    assert_eq!(fs::read(&path).unwrap(), before);
    assert!(
        write_gif(
            &dir.path().join("nope/x.gif"),
            w as u16,
            h as u16,
            &frames,
            4
        )
        .is_err()
    );
    assert!(leftovers(dir.path()).is_empty());
}

/// Many colours fall back to quantisation instead of failing.
#[test]
fn gif_of_a_photo_like_frame_is_quantised() {
    let (w, h) = (32u16, 32u16);
    let frame: Vec<u8> = (0..w as usize * h as usize)
        .flat_map(|i| [(i % 251) as u8, (i * 7 % 253) as u8, (i * 13 % 255) as u8])
        .collect();
    let bytes = encode_gif(w, h, &[frame], 10).unwrap();
    assert!(bytes.starts_with(b"GIF89a"));
}

#[test]
fn models_save_and_load_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = MlpConfig {
        width: 8,
        depth: 1,
        ..MlpConfig::default()
    };
    let saved = SavedModel {
        params: config.init_params(3),
        config,
        schedule: Schedule::default(),
        t_min: 1e-3,
        dataset: "moons".into(),
        normalization: Normalization {
            mean: [0.0, 0.0],
            scale: 1.0,
        },
        steps: 10,
    };
    let path = dir.path().join("m.safetensors");
    save_model(&path, &saved).unwrap();
    let (back, model) = load_model(&path).unwrap();
    assert_eq!(back, saved);
    assert_eq!(model.params(), saved.params.as_slice());
    fs::write(&path, b"not a model").unwrap();
    assert!(matches!(load_model(&path), Err(TeachError::Weights(_))));
    assert!(load_model(&dir.path().join("absent.safetensors")).is_err());
}
