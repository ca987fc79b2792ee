//! The data the app trains on, whatever its source, in standardised units (DESIGN §3: the
//! schedule assumes data of unit scale). Loading never touches the current data: a bad CSV
//! returns an error and the caller keeps what it had.

use std::sync::Arc;

use crate::Point;
use crate::data::{BuiltIn, Dataset, Normalization, load_csv};

use super::settings::DataChoice;

/// Training points drawn from a built-in dataset.
pub const BUILTIN_POINTS: usize = 10_000;
/// Fewest strokes' points "train on drawing" accepts.
pub const MIN_DRAWN: usize = 20;

/// A dataset ready to train on.
#[derive(Clone, Debug)]
pub struct LoadedData {
    /// Shown in the UI: the built-in's name, the file name, or "drawing".
    pub label: String,
    /// Standardised points.
    pub points: Arc<Vec<Point>>,
    /// Maps the source's units to the standardised ones (identity for built-ins).
    pub normalization: Normalization,
}

impl LoadedData {
    /// Loads the data a choice names.
    pub fn load(choice: &DataChoice) -> Result<Self, String> {
        match choice {
            DataChoice::BuiltIn(name) => {
                let builtin = BuiltIn::from_name(name)
                    .ok_or_else(|| format!("no built-in dataset called {name:?}"))?;
                let data = builtin.sample(BUILTIN_POINTS, 0);
                Ok(Self {
                    label: name.clone(),
                    points: Arc::new(data.points),
                    normalization: Normalization::IDENTITY,
                })
            }
            DataChoice::Csv(path) => {
                let path = path.trim();
                if path.is_empty() {
                    return Err("type the path of a CSV file (x,y per line) first".to_owned());
                }
                let data = load_csv(path).map_err(|e| e.to_string())?;
                let label = std::path::Path::new(path)
                    .file_name()
                    .map_or_else(|| path.to_owned(), |f| f.to_string_lossy().into_owned());
                Ok(Self::standardised(label, data))
            }
            DataChoice::Drawn(points) => {
                if points.len() < MIN_DRAWN {
                    return Err(format!(
                        "draw at least {MIN_DRAWN} points first (there are {})",
                        points.len()
                    ));
                }
                let data = Dataset::from_points("drawing", points.clone(), None)
                    .map_err(|e| e.to_string())?;
                Ok(Self::standardised("drawing".to_owned(), data))
            }
        }
    }

    fn standardised(label: String, data: Dataset) -> Self {
        let normalization = Normalization::fit(&data.points);
        Self {
            label,
            points: Arc::new(normalization.apply_all(&data.points)),
            normalization,
        }
    }
}

/// Names of the built-in datasets, in menu order.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BuiltIn::all().iter().map(|b| b.name())
}
