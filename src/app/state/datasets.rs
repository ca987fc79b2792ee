//! The data the app trains on, whatever its source, in standardised units (the schedule
//! assumes data of unit scale: docs/architecture.md §3). Loading never touches the current
//! data: a bad CSV returns an error and the caller keeps what it had.

use std::sync::Arc;

use crate::Point;
use crate::data::{BuiltIn, Dataset, Normalization, Placement, load_csv};

use crate::app::settings::DataChoice;

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
    /// One class per point, when the source has them (labelled built-ins, a CSV file's
    /// third column, the colours of a drawing).
    pub labels: Option<Arc<Vec<u32>>>,
    /// Classes in `labels` (one more than the largest); 0 when unlabelled.
    pub num_classes: u32,
    /// Unique to this load (caches of things computed from the data are keyed by it; an
    /// address could be reused by the next allocation).
    pub version: u64,
}

/// A number no earlier load had.
pub fn next_version() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Colours a drawing's points can have; a point's class is its colour's index.
pub const DRAW_CLASSES: u32 = 5;

/// Points being drawn in "draw your own" mode, each with the class (colour) it was painted
/// in, and the colour painting now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drawing {
    pub points: Vec<Point>,
    /// One per point, below [`DRAW_CLASSES`].
    pub labels: Vec<u32>,
    /// The class new points get.
    pub class: u32,
    /// Where each stroke starts in `points` (so the last one can be undone).
    pub strokes: Vec<usize>,
}

impl Drawing {
    /// Adds a point in the current class.
    pub fn push(&mut self, point: Point) {
        self.points.push(point);
        self.labels.push(self.class.min(DRAW_CLASSES - 1));
    }

    pub fn clear(&mut self) {
        self.points.clear();
        self.labels.clear();
        self.strokes.clear();
    }

    /// Marks the start of a stroke (a press or drag on the canvas).
    pub fn begin_stroke(&mut self) {
        if self.strokes.last() != Some(&self.points.len()) {
            self.strokes.push(self.points.len());
        }
    }

    /// Removes the last stroke's points; false when there is none.
    pub fn undo_stroke(&mut self) -> bool {
        let Some(start) = self.strokes.pop() else {
            return false;
        };
        self.points.truncate(start);
        self.labels.truncate(start);
        // A stroke that added nothing: undo the one before it too.
        if start == self.points.len() && self.strokes.last() == Some(&start) {
            self.strokes.pop();
        }
        true
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Points drawn in each class.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; DRAW_CLASSES as usize];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }
}

impl LoadedData {
    /// A few words on the classes: "3 classes", or "no labels".
    pub fn classes_text(&self) -> String {
        match (&self.labels, self.num_classes) {
            (None, _) | (_, 0) => "no labels".to_owned(),
            (Some(_), 1) => "1 class".to_owned(),
            (Some(_), n) => format!("{n} classes"),
        }
    }

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
                    labels: data.labels.map(Arc::new),
                    num_classes: data.num_classes,
                    version: next_version(),
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
            DataChoice::Drawn(points, labels) => {
                if points.len() < MIN_DRAWN {
                    return Err(format!(
                        "draw at least {MIN_DRAWN} points first (there are {})",
                        points.len()
                    ));
                }
                // Drawings saved before they had colours carry no labels.
                let labels = (labels.len() == points.len()).then(|| labels.clone());
                let data = Dataset::from_points("drawing", points.clone(), labels)
                    .map_err(|e| e.to_string())?;
                Ok(Self::standardised("drawing".to_owned(), data))
            }
        }
    }

    /// The data moved as `placement` says (standard: unchanged). The normalization still
    /// maps back to the data's own units.
    pub fn placed(self, placement: Placement) -> Self {
        if placement.is_standard() {
            return self;
        }
        let n = self.normalization;
        let scale = n.scale / placement.scale;
        Self {
            label: format!("{},{}", self.label, placement.describe()),
            points: Arc::new(self.points.iter().map(|&p| placement.apply(p)).collect()),
            normalization: Normalization {
                mean: [n.mean[0] - placement.shift * scale, n.mean[1]],
                scale,
            },
            version: next_version(),
            ..self
        }
    }

    /// Points from a CSV file's bytes (a browser hands over bytes, not a path).
    #[cfg(target_arch = "wasm32")]
    pub fn from_csv_bytes(name: &str, bytes: &[u8]) -> Result<Self, String> {
        let data = crate::data::parse_csv(name, bytes).map_err(|e| e.to_string())?;
        Ok(Self::standardised(name.to_owned(), data))
    }

    fn standardised(label: String, data: Dataset) -> Self {
        let normalization = Normalization::fit(&data.points);
        Self {
            version: next_version(),
            label,
            points: Arc::new(normalization.apply_all(&data.points)),
            normalization,
            num_classes: if data.labels.is_some() {
                data.num_classes
            } else {
                0
            },
            labels: data.labels.map(Arc::new),
        }
    }
}

/// Names of the built-in datasets, in menu order.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BuiltIn::all().iter().map(|b| b.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_removes_exactly_the_last_stroke() {
        let mut d = Drawing::default();
        d.begin_stroke();
        d.push([0.0, 0.0]);
        d.push([0.1, 0.0]);
        d.class = 1;
        d.begin_stroke();
        d.push([1.0, 1.0]);
        assert!(d.undo_stroke());
        assert_eq!(d.points, vec![[0.0, 0.0], [0.1, 0.0]]);
        assert_eq!(d.labels, vec![0, 0]);
        assert!(d.undo_stroke());
        assert!(d.is_empty());
        assert!(!d.undo_stroke());
    }

    #[test]
    fn placed_data_maps_back_to_the_same_units() {
        let points: Vec<Point> = (0..40)
            .map(|i| [10.0 + i as f32, 3.0 * (i as f32 * 0.3).sin()])
            .collect();
        let data = Dataset::from_points("t", points.clone(), None).unwrap();
        let standard = LoadedData::standardised("t".into(), data);
        let placement = Placement {
            shift: 4.0,
            scale: 2.5,
        };
        let placed = standard.clone().placed(placement);
        assert_ne!(placed.version, standard.version);
        for ((s, p), raw) in standard
            .points
            .iter()
            .zip(placed.points.iter())
            .zip(&points)
        {
            assert_eq!(*p, placement.apply(*s));
            let back = placed.normalization.invert(*p);
            assert!((back[0] - raw[0]).abs() < 1e-4 && (back[1] - raw[1]).abs() < 1e-4);
        }
        let same = standard.clone().placed(Placement::STANDARD);
        assert_eq!(same.version, standard.version);
    }
}
