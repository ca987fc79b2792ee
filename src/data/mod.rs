//! The data the models learn: FFJORD's eight toy distributions (standardised), points drawn
//! by hand, and the user's own CSV files.
//!
//! Everything the networks see is standardised (about zero mean, unit spread, one scale for
//! both axes so shapes keep their aspect): the schedule of docs/architecture.md §3 assumes data of
//! unit scale, and one set of hyper-parameters then works for every dataset. Built-in sets
//! come standardised; a user's CSV keeps its own units and is standardised by the caller with
//! [`Normalization`], which also maps samples back.
//!
//! - `builtin`: the built-in sets by name; `toy`: their generators; `moments`: the
//!   population moments they are standardised by;
//! - `csv`: reading `x,y[,label]` files; `dataset`: points with optional labels;
//! - `normalization`: standardising and back; `placement`: moving standardised data away
//!   from the origin (the lesson on why that matters); `error`: why data could not be loaded.

mod builtin;
mod csv;
mod dataset;
mod error;
mod moments;
mod normalization;
mod placement;
mod toy;

pub use builtin::{BuiltIn, mixture, sample};
pub use csv::{csv_text, load_csv, parse_csv, write_csv};
pub use dataset::{Dataset, MAX_CLASSES};
pub use error::{DataError, LineProblem};
pub use normalization::Normalization;
pub use placement::Placement;
