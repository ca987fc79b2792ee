//! The user's own data as CSV: `x,y` or `x,y,label`, an optional header line.
//!
//! Strict on purpose: a silently skipped line or a NaN that slips into training costs a user
//! far more time than an error naming the file and line. Tolerant only of what editors and
//! exporters do without asking: a UTF-8 byte-order mark, CRLF line ends, blank lines,
//! whitespace around fields, double quotes around a field, labels written as floats (`2.0`,
//! as `numpy.savetxt` does).

use std::path::Path;

use super::dataset::{classes_of, validate_contents};
use super::{DataError, Dataset, LineProblem, MAX_CLASSES};
use crate::Point;

/// Largest CSV file `load_csv` reads: 64 MiB, about two million points at the ≤ 32 bytes a
/// line `write_csv` writes (more with shorter numbers). The app trains on 10,000 points and
/// its sample exports hold at most its 100,000 particles (about 3 MiB), so this is a wide
/// margin over the files the program writes for itself and over any 2D point cloud worth
/// training on two cores, while a file named by mistake (a disk image, a log) is refused at
/// once instead of filling memory.
pub const MAX_CSV_BYTES: u64 = 64 << 20;

/// Reads a CSV file into a [`Dataset`] in the file's own units (standardise it with
/// `Normalization::fit`). The dataset is named by the path as given; errors name it too.
/// Only a regular file of at most [`MAX_CSV_BYTES`] is read, without ever blocking on a
/// FIFO or a device (`fsutil::read_bounded`); anything else is a `DataError::Io`.
pub fn load_csv(path: impl AsRef<Path>) -> Result<Dataset, DataError> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let bytes = crate::fsutil::read_bounded(path, MAX_CSV_BYTES, "a CSV file").map_err(|e| {
        DataError::Io {
            file: file.clone(),
            action: "read",
            source: e.into_io_error(),
        }
    })?;
    parse_csv(&file, &bytes)
}

/// Parses CSV bytes (from a file, a drag-and-drop, a test); `file` names them in errors.
/// Never panics, whatever the bytes.
pub fn parse_csv(file: &str, bytes: &[u8]) -> Result<Dataset, DataError> {
    let text = as_text(file, bytes)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut table = Table::default();
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.trim();
        if !line.is_empty() {
            table
                .push(line, index + 1)
                .map_err(|problem| DataError::Line {
                    file: file.to_owned(),
                    line: index + 1,
                    problem,
                })?;
        }
    }
    if table.points.len() < 2 {
        return Err(DataError::TooFewPoints {
            file: file.to_owned(),
            found: table.points.len(),
        });
    }
    let labels = matches!(table.columns, Some((3, _))).then_some(table.labels);
    let num_classes = labels.as_deref().map_or(0, classes_of);
    Ok(Dataset {
        name: file.to_owned(),
        points: table.points,
        labels,
        num_classes,
    })
}

/// Writes `x,y[,label]` with a header, atomically: a temporary file in the same directory,
/// synced, then renamed over `path`, so a reader (or a crash) never sees half a file.
/// Floats are written in their shortest exact form, so `load_csv` gives back the same bits.
pub fn write_csv(
    path: impl AsRef<Path>,
    points: &[Point],
    labels: Option<&[u32]>,
) -> Result<(), DataError> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let text = csv_text(&file, points, labels)?;
    crate::fsutil::write_atomically(path, text.as_bytes()).map_err(|source| DataError::Io {
        file,
        action: "write",
        source,
    })
}

/// What [`write_csv`] writes, as text (a browser offers it as a download); `file` names it in
/// errors.
pub fn csv_text(file: &str, points: &[Point], labels: Option<&[u32]>) -> Result<String, DataError> {
    validate_contents(file, points, labels)?;
    let mut text = String::with_capacity(points.len() * 24 + 16);
    text.push_str(if labels.is_some() {
        "x,y,label\n"
    } else {
        "x,y\n"
    });
    // `{:?}` is the shortest representation that parses back to the same f32.
    match labels {
        Some(labels) => {
            for (p, label) in points.iter().zip(labels) {
                text.push_str(&format!("{:?},{:?},{label}\n", p[0], p[1]));
            }
        }
        None => {
            for p in points {
                text.push_str(&format!("{:?},{:?}\n", p[0], p[1]));
            }
        }
    }
    Ok(text)
}

/// Rows seen so far. The first non-blank line fixes the column count.
#[derive(Default)]
struct Table {
    /// (number of fields, line that fixed it).
    columns: Option<(usize, usize)>,
    points: Vec<Point>,
    labels: Vec<u32>,
}

impl Table {
    fn push(&mut self, line: &str, line_no: usize) -> Result<(), LineProblem> {
        let fields: Vec<&str> = line.split(',').map(unquote).collect();
        match self.columns {
            Some((expected, first_line)) if fields.len() != expected => {
                return Err(LineProblem::FieldMismatch {
                    found: fields.len(),
                    expected,
                    first_line,
                });
            }
            Some(_) => {}
            None => {
                if !(2..=3).contains(&fields.len()) {
                    return Err(LineProblem::FieldCount {
                        found: fields.len(),
                    });
                }
                self.columns = Some((fields.len(), line_no));
                // A header: a first line none of whose fields is a number.
                if fields.iter().all(|f| f.parse::<f64>().is_err()) {
                    return Ok(());
                }
            }
        }
        self.points
            .push([coordinate(fields[0])?, coordinate(fields[1])?]);
        if let Some(label) = fields.get(2) {
            self.labels.push(parse_label(label)?);
        }
        Ok(())
    }
}

/// The bytes as text, or the line of the first thing that makes them not text: invalid
/// UTF-8 or a NUL byte (valid UTF-8, but no text file has one; binary files do).
fn as_text<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, DataError> {
    let not_text = |at: usize, reason| DataError::NotText {
        file: file.to_owned(),
        line: 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count(),
        reason,
    };
    let (valid, utf8_error) = match std::str::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => (
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
            Some(e),
        ),
    };
    if let Some(at) = valid.bytes().position(|b| b == 0) {
        return Err(not_text(at, "it contains a NUL byte"));
    }
    match utf8_error {
        Some(e) => Err(not_text(e.valid_up_to(), "invalid UTF-8")),
        None => Ok(valid),
    }
}

/// A field without surrounding whitespace and one pair of surrounding double quotes.
fn unquote(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .map_or(field, str::trim)
}

/// A field as an error keeps it: its first 40 characters, then `…`. The error shows it with
/// `{:?}`, which escapes control characters, so a line of the file can neither flood the
/// message (a 60 MB line is one field) nor drive the terminal.
fn clip(field: &str) -> String {
    const MAX_CHARS: usize = 40;
    match field.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}…", &field[..at]),
        None => field.to_owned(),
    }
}

/// A finite number that also fits an f32 (1e39 is a finite f64 but an infinite f32).
/// The f32 comes from parsing the text directly, not from rounding an f64, which could
/// round twice and miss the exact float `write_csv` wrote.
fn coordinate(field: &str) -> Result<f32, LineProblem> {
    let not_a_number = || LineProblem::NotANumber(clip(field));
    let wide: f64 = field.parse().map_err(|_| not_a_number())?;
    if !wide.is_finite() {
        return Err(LineProblem::NotFinite(clip(field)));
    }
    let value: f32 = field.parse().map_err(|_| not_a_number())?;
    if !value.is_finite() {
        return Err(LineProblem::OutOfRange(clip(field)));
    }
    Ok(value)
}

/// A whole number in [0, MAX_CLASSES), written as an integer or as a float such as `2.0`.
fn parse_label(field: &str) -> Result<u32, LineProblem> {
    let bad = || LineProblem::BadLabel(clip(field));
    let value: f64 = field.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 || value.fract() != 0.0 {
        return Err(bad());
    }
    if value >= MAX_CLASSES as f64 {
        return Err(LineProblem::LabelTooLarge(clip(field)));
    }
    Ok(value as u32)
}
