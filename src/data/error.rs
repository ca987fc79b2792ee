//! What can go wrong with data: one enum, so the CLI prints one clear line and the app can
//! show the same line in a dialog. Messages start with `file:line:` like a compiler's, so
//! the user can jump to the offending line.

use std::io;

/// An error loading, validating or writing a dataset. `file` is the path as the user gave
/// it (or the dataset's name for points that came from elsewhere); `line` is 1-based and
/// counts every physical line, blank ones included.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}: cannot {action}: {source}")]
    Io {
        file: String,
        action: &'static str,
        source: io::Error,
    },

    #[error("{file}:{line}: not a text file ({reason})")]
    NotText {
        file: String,
        line: usize,
        reason: &'static str,
    },

    #[error("{file}:{line}: {problem}")]
    Line {
        file: String,
        line: usize,
        problem: LineProblem,
    },

    #[error("{file}: {found} point(s), but at least 2 are needed")]
    TooFewPoints { file: String, found: usize },

    #[error("{file}: point {index} ({x}, {y}) is not finite")]
    NonFinitePoint {
        file: String,
        index: usize,
        x: f32,
        y: f32,
    },

    #[error("{file}: {labels} labels for {points} points")]
    LabelCount {
        file: String,
        labels: usize,
        points: usize,
    },

    #[error(
        "{file}: label {label} of point {index} is too large (at most {max})",
        max = super::MAX_CLASSES - 1
    )]
    LabelTooLarge {
        file: String,
        index: usize,
        label: u32,
    },
}

/// What is wrong with one line of a CSV file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineProblem {
    #[error("{0:?} is not a number")]
    NotANumber(String),

    #[error("{0:?} is not a finite number")]
    NotFinite(String),

    #[error("{0:?} is out of the range of 32-bit floats (about ±3.4e38)")]
    OutOfRange(String),

    #[error("label {0:?} is not a whole number ≥ 0")]
    BadLabel(String),

    #[error("label {0:?} is too large (at most {max})", max = super::MAX_CLASSES - 1)]
    LabelTooLarge(String),

    #[error("expected 2 or 3 comma-separated fields (x,y[,label]), found {found}")]
    FieldCount { found: usize },

    #[error("{found} field(s), but line {first_line} has {expected}")]
    FieldMismatch {
        found: usize,
        expected: usize,
        first_line: usize,
    },
}
