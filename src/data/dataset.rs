//! A dataset: points with optional class labels, whatever its origin.

use super::DataError;
use crate::Point;

/// Labels must be below this. Guidance keeps one embedding per class, so a stray huge label
/// in a user's file would otherwise allocate gigabytes instead of giving an error.
pub const MAX_CLASSES: u32 = 256;

/// Points in 2D with optional class labels (for classifier-free guidance).
///
/// Built-in datasets are standardised; CSV data is in the file's own units. `num_classes`
/// is 0 when there are no labels, otherwise one more than the largest possible label (for
/// built-ins the number of classes of the distribution, even if a small draw misses one).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub points: Vec<Point>,
    pub labels: Option<Vec<u32>>,
    pub num_classes: u32,
}

impl Dataset {
    /// Points from anywhere else, e.g. drawn by hand on the canvas. Validated as strictly as
    /// a CSV file: at least 2 finite points (a diffusion model of one point is a delta, and
    /// its standardisation would divide by zero), one label per point, labels below
    /// [`MAX_CLASSES`].
    pub fn from_points(
        name: impl Into<String>,
        points: Vec<Point>,
        labels: Option<Vec<u32>>,
    ) -> Result<Self, DataError> {
        let name = name.into();
        validate(&name, &points, labels.as_deref())?;
        let num_classes = labels.as_deref().map_or(0, classes_of);
        Ok(Self {
            name,
            points,
            labels,
            num_classes,
        })
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// One more than the largest label (0 for no labels).
pub(super) fn classes_of(labels: &[u32]) -> u32 {
    labels.iter().max().map_or(0, |&m| m + 1)
}

/// The checks shared by [`Dataset::from_points`] and `write_csv`, minus the point count
/// (writing a tiny file is allowed; loading it is not).
pub(super) fn validate_contents(
    file: &str,
    points: &[Point],
    labels: Option<&[u32]>,
) -> Result<(), DataError> {
    if let Some(index) = points
        .iter()
        .position(|p| !(p[0].is_finite() && p[1].is_finite()))
    {
        let [x, y] = points[index];
        return Err(DataError::NonFinitePoint {
            file: file.to_owned(),
            index,
            x,
            y,
        });
    }
    if let Some(labels) = labels {
        if labels.len() != points.len() {
            return Err(DataError::LabelCount {
                file: file.to_owned(),
                labels: labels.len(),
                points: points.len(),
            });
        }
        if let Some(index) = labels.iter().position(|&l| l >= MAX_CLASSES) {
            return Err(DataError::LabelTooLarge {
                file: file.to_owned(),
                index,
                label: labels[index],
            });
        }
    }
    Ok(())
}

fn validate(file: &str, points: &[Point], labels: Option<&[u32]>) -> Result<(), DataError> {
    if points.len() < 2 {
        return Err(DataError::TooFewPoints {
            file: file.to_owned(),
            found: points.len(),
        });
    }
    validate_contents(file, points, labels)
}
