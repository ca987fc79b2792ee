//! Standardisation of a point cloud: `x̃ = (x − mean) / scale`, one scale for both axes.
//!
//! One scale (not one per axis) keeps a shape's aspect ratio, so a moon stays a moon and a
//! circle stays round. The scale is the root-mean-square per-axis deviation,
//! `scale² = E‖x − mean‖² / 2`, so standardised data has `E‖x̃‖² = 2`, like the N(0, I)
//! prior the forward process ends in.

use serde::{Deserialize, Serialize};

use crate::Point;

/// An affine map from data units to standardised units. Saved with a model (serde) so that
/// samples come back in the units of the user's CSV.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 2],
    pub scale: f32,
}

impl Default for Normalization {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Normalization {
    pub const IDENTITY: Self = Self {
        mean: [0.0, 0.0],
        scale: 1.0,
    };

    /// The mean and spread of `points`, accumulated in f64 (sums of many f32 squares lose
    /// digits fast). Degenerate input cannot be standardised: no points or non-finite ones
    /// give the identity, and a zero (or non-representable) spread keeps the mean but uses
    /// scale 1, so that `apply` never divides by zero.
    pub fn fit(points: &[Point]) -> Self {
        if points.is_empty() {
            return Self::IDENTITY;
        }
        let n = points.len() as f64;
        let mut mean = [0.0f64; 2];
        for p in points {
            mean[0] += p[0] as f64;
            mean[1] += p[1] as f64;
        }
        mean = [mean[0] / n, mean[1] / n];
        if !(mean[0].is_finite() && mean[1].is_finite()) {
            return Self::IDENTITY;
        }
        let sum_sq: f64 = points
            .iter()
            .map(|p| {
                let (dx, dy) = (p[0] as f64 - mean[0], p[1] as f64 - mean[1]);
                dx * dx + dy * dy
            })
            .sum();
        let scale = (sum_sq / (2.0 * n)).sqrt() as f32;
        let scale = if scale.is_normal() { scale } else { 1.0 };
        Self {
            mean: [mean[0] as f32, mean[1] as f32],
            scale,
        }
    }

    /// Data units → standardised units. In f64: a point and the mean can be further apart
    /// than f32 reaches (3e38 and a mean of −1e38), although the standardised point is small.
    #[inline]
    pub fn apply(&self, p: Point) -> Point {
        let (mean, scale) = (self.mean.map(f64::from), f64::from(self.scale));
        [
            ((f64::from(p[0]) - mean[0]) / scale) as f32,
            ((f64::from(p[1]) - mean[1]) / scale) as f32,
        ]
    }

    /// Standardised units → data units (for samples shown or saved in the CSV's units), in
    /// f64 for the same reason as `apply`.
    #[inline]
    pub fn invert(&self, p: Point) -> Point {
        let (mean, scale) = (self.mean.map(f64::from), f64::from(self.scale));
        [
            (f64::from(p[0]) * scale + mean[0]) as f32,
            (f64::from(p[1]) * scale + mean[1]) as f32,
        ]
    }

    pub fn apply_all(&self, points: &[Point]) -> Vec<Point> {
        points.iter().map(|&p| self.apply(p)).collect()
    }

    pub fn invert_all(&self, points: &[Point]) -> Vec<Point> {
        points.iter().map(|&p| self.invert(p)).collect()
    }
}
