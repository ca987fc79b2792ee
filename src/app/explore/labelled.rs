//! Labelled data for the guidance views (classifier guidance and classifier-free guidance):
//! a labelled built-in, a CSV file's label column, or the colours of a drawing.

use std::sync::Arc;

use egui::Color32;

use super::{Inputs, PALETTE};
use crate::Point;
use crate::data::BuiltIn;

/// Where the labelled points come from.
#[derive(Clone)]
enum Source {
    /// Fresh draws of a labelled built-in (the app trains on seed 0 of the same draw).
    BuiltIn(BuiltIn),
    /// The loaded data itself (standardised) and its labels: a CSV file or a drawing.
    Data {
        points: Arc<Vec<Point>>,
        labels: Arc<Vec<u32>>,
    },
}

/// Labelled data the guidance views work from.
#[derive(Clone)]
pub(super) struct Labelled {
    source: Source,
    pub classes: u32,
    /// Names the data in the UI.
    pub name: String,
    /// Changes whenever the data does (two drawings share a name).
    pub id: String,
}

impl Labelled {
    /// The labelled data in use, if it has two or more classes.
    pub fn of(inputs: &Inputs) -> Option<Self> {
        if let Some(builtin) = inputs.builtin.filter(|b| b.num_classes() > 0) {
            return Some(Self {
                source: Source::BuiltIn(builtin),
                classes: builtin.num_classes(),
                name: builtin.to_string(),
                id: builtin.to_string(),
            });
        }
        let labels = inputs.labels.as_ref()?;
        if inputs.num_classes < 2 || labels.len() != inputs.data.len() {
            return None;
        }
        Some(Self {
            source: Source::Data {
                points: Arc::clone(&inputs.data),
                labels: Arc::clone(labels),
            },
            classes: inputs.num_classes,
            name: inputs.data_label.clone(),
            id: format!(
                "{} · {} points · #{}",
                inputs.data_label,
                inputs.data.len(),
                inputs.data_version
            ),
        })
    }

    /// The built-in, if the data is one.
    pub fn builtin(&self) -> Option<BuiltIn> {
        match self.source {
            Source::BuiltIn(b) => Some(b),
            Source::Data { .. } => None,
        }
    }

    /// About `n` labelled points: a draw of `n` from a built-in, else every k-th point of
    /// the data (all of it when it has no more than `n`).
    pub fn draw(&self, n: usize) -> (Vec<Point>, Vec<u32>) {
        match &self.source {
            Source::BuiltIn(b) => {
                let d = b.sample(n, 0);
                let labels = d.labels.unwrap_or_else(|| vec![0; d.points.len()]);
                (d.points, labels)
            }
            Source::Data { points, labels } => {
                let stride = points.len().div_ceil(n.max(1)).max(1);
                (
                    points.iter().step_by(stride).copied().collect(),
                    labels.iter().step_by(stride).copied().collect(),
                )
            }
        }
    }
}

pub(super) fn pick(points: &[Point], labels: &[u32], class: u32) -> Vec<Point> {
    points
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l == class)
        .map(|(p, _)| *p)
        .collect()
}

pub(super) fn colour(class: u32) -> Color32 {
    PALETTE[class as usize % PALETTE.len()]
}
