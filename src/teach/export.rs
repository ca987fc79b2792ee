//! Files a teacher takes away: samples as CSV, a picture as PNG, an animation as GIF, the
//! model as safetensors.
//!
//! Every file is written atomically (encoded in memory, written to a temporary file in the
//! same directory, synced, renamed over the target), so a crash or a full disk never leaves
//! half a file behind, and a failed export leaves any existing file untouched. Bad input (a
//! buffer of the wrong size, a path in a missing directory) is an error naming the file,
//! never a panic.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use super::TeachError;
use crate::Point;
use crate::nn::{NetModel, SavedModel, weights};

/// Largest image accepted (pixels): far above any canvas, small enough not to exhaust memory.
pub const MAX_PIXELS: usize = 1 << 26;

/// Samples (and labels) as `x,y[,label]` (`data::write_csv`, itself atomic).
pub fn write_samples_csv(
    path: &Path,
    points: &[Point],
    labels: Option<&[u32]>,
) -> Result<(), TeachError> {
    Ok(crate::data::write_csv(path, points, labels)?)
}

fn check_rgb(file: &str, width: usize, height: usize, rgb: &[u8]) -> Result<(), TeachError> {
    let pixels = width
        .checked_mul(height)
        .filter(|&p| p > 0 && p <= MAX_PIXELS);
    match pixels {
        Some(p) if p * 3 == rgb.len() => Ok(()),
        _ => Err(TeachError::Invalid(format!(
            "{file}: an RGB image of {width}×{height} needs {} bytes, got {} \
             (at most {MAX_PIXELS} pixels)",
            width.saturating_mul(height).saturating_mul(3),
            rgb.len()
        ))),
    }
}

/// A PNG file's bytes for an 8-bit RGB buffer (rows top to bottom).
pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, TeachError> {
    use image::ImageEncoder;
    check_rgb("png", width as usize, height as usize, rgb)?;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| TeachError::Encode {
            file: "png".into(),
            format: "PNG",
            reason: e.to_string(),
        })?;
    Ok(out)
}

/// Writes an RGB buffer as a PNG file.
pub fn write_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<(), TeachError> {
    let file = path.display().to_string();
    check_rgb(&file, width as usize, height as usize, rgb)?;
    let bytes = encode_png(width, height, rgb)?;
    write_atomically(path, &bytes)
}

/// One GIF frame from RGB: an exact palette when the frame has at most 256 colours (the
/// usual case for rendered points), NeuQuant quantisation otherwise.
fn gif_frame(width: u16, height: u16, rgb: &[u8], delay_cs: u16) -> gif::Frame<'static> {
    let mut palette: HashMap<[u8; 3], u8> = HashMap::new();
    let mut colours = Vec::new();
    let mut indices = Vec::with_capacity(rgb.len() / 3);
    for px in rgb.chunks_exact(3) {
        let key = [px[0], px[1], px[2]];
        let next = palette.len();
        let index = match palette.get(&key) {
            Some(&i) => i,
            None if next < 256 => {
                palette.insert(key, next as u8);
                colours.extend_from_slice(&key);
                next as u8
            }
            None => {
                let mut frame = gif::Frame::from_rgb_speed(width, height, rgb, 10);
                frame.delay = delay_cs;
                return frame;
            }
        };
        indices.push(index);
    }
    gif::Frame {
        width,
        height,
        delay: delay_cs,
        palette: Some(colours),
        buffer: Cow::Owned(indices),
        ..gif::Frame::default()
    }
}

/// A looping GIF's bytes from RGB frames of one size, `delay_cs` hundredths of a second each.
pub fn encode_gif(
    width: u16,
    height: u16,
    frames: &[Vec<u8>],
    delay_cs: u16,
) -> Result<Vec<u8>, TeachError> {
    if frames.is_empty() {
        return Err(TeachError::Invalid("gif: no frames".into()));
    }
    for (k, f) in frames.iter().enumerate() {
        check_rgb(
            &format!("gif frame {k}"),
            width as usize,
            height as usize,
            f,
        )?;
    }
    let enc_err = |e: gif::EncodingError| TeachError::Encode {
        file: "gif".into(),
        format: "GIF",
        reason: e.to_string(),
    };
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, width, height, &[]).map_err(enc_err)?;
        encoder.set_repeat(gif::Repeat::Infinite).map_err(enc_err)?;
        for f in frames {
            encoder
                .write_frame(&gif_frame(width, height, f, delay_cs))
                .map_err(enc_err)?;
        }
    }
    Ok(out)
}

/// Writes RGB frames as a looping GIF file.
pub fn write_gif(
    path: &Path,
    width: u16,
    height: u16,
    frames: &[Vec<u8>],
    delay_cs: u16,
) -> Result<(), TeachError> {
    let bytes = encode_gif(width, height, frames, delay_cs).map_err(|e| match e {
        TeachError::Invalid(why) => TeachError::Invalid(format!("{}: {why}", path.display())),
        other => other,
    })?;
    write_atomically(path, &bytes)
}

/// Writes bytes (an encoded image, say) atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), TeachError> {
    write_atomically(path, bytes)
}

/// Writes text (a CSV table, say) atomically.
pub fn write_text(path: &Path, text: &str) -> Result<(), TeachError> {
    write_atomically(path, text.as_bytes())
}

/// Saves a model (`nn::weights::save`, atomic).
pub fn save_model(path: &Path, model: &SavedModel) -> Result<(), TeachError> {
    Ok(weights::save(path, model)?)
}

/// Loads a model and checks it can run: a bad file is refused with its reason, and the
/// caller's current model is not touched (it only changes on `Ok`).
pub fn load_model(path: &Path) -> Result<(SavedModel, NetModel), TeachError> {
    let saved = weights::load(path)?;
    let model = NetModel::from_saved(&saved)?;
    Ok((saved, model))
}

/// The plot window of [`render_points`]: data coordinates of the image's corners.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    pub min: Point,
    pub max: Point,
}

impl Default for View {
    /// Standardised data fits in [−3, 3]².
    fn default() -> Self {
        Self {
            min: [-3.0, -3.0],
            max: [3.0, 3.0],
        }
    }
}

/// Background and point colours of [`render_points`] (labels cycle through the palette).
pub const BACKGROUND: [u8; 3] = [18, 18, 24];
pub const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [188, 189, 34],
];

/// Draws points as small squares on a dark background into an RGB buffer (top row = max y):
/// frames for a GIF without a window.
pub fn render_points(
    points: &[Point],
    labels: Option<&[u32]>,
    view: View,
    width: usize,
    height: usize,
    radius: usize,
) -> Vec<u8> {
    let mut rgb: Vec<u8> = BACKGROUND
        .iter()
        .copied()
        .cycle()
        .take(width * height * 3)
        .collect();
    let (sx, sy) = (
        width as f32 / (view.max[0] - view.min[0]),
        height as f32 / (view.max[1] - view.min[1]),
    );
    let r = radius as isize;
    for (k, p) in points.iter().enumerate() {
        let colour = labels
            .and_then(|l| l.get(k))
            .map_or(PALETTE[0], |&l| PALETTE[l as usize % PALETTE.len()]);
        let px = ((p[0] - view.min[0]) * sx).floor();
        let py = ((view.max[1] - p[1]) * sy).floor();
        if !(px.is_finite() && py.is_finite()) {
            continue;
        }
        let (cx, cy) = (px as isize, py as isize);
        for y in cy - r..=cy + r {
            for x in cx - r..=cx + r {
                if x >= 0 && y >= 0 && (x as usize) < width && (y as usize) < height {
                    let i = 3 * (y as usize * width + x as usize);
                    rgb[i..i + 3].copy_from_slice(&colour);
                }
            }
        }
    }
    rgb
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TeachError> {
    crate::fsutil::write_atomically(path, bytes).map_err(|source| TeachError::Io {
        file: path.display().to_string(),
        action: "write",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_puts_points_where_they_belong() {
        let view = View {
            min: [0.0, 0.0],
            max: [4.0, 4.0],
        };
        let img = render_points(&[[0.5, 3.5], [9.0, 9.0]], Some(&[1, 0]), view, 4, 4, 0);
        assert_eq!(&img[0..3], &PALETTE[1]); // top-left pixel
        assert_eq!(&img[3..6], &BACKGROUND);
        assert_eq!(img.len(), 48);
    }

    #[test]
    fn frames_with_few_colours_get_an_exact_palette() {
        let rgb = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6];
        let f = gif_frame(2, 2, &rgb, 7);
        assert_eq!(f.palette.as_deref(), Some(&[1u8, 2, 3, 4, 5, 6][..]));
        assert_eq!(&*f.buffer, &[0, 1, 0, 1]);
        assert_eq!(f.delay, 7);
    }
}
