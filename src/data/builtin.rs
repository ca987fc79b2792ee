//! The eight built-in datasets, by the names the CLI and the app use, sampled reproducibly
//! from a seed and standardised by their population moments.

use std::fmt;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::moments::{self, Moments};
use super::{Dataset, Normalization, toy};
use crate::math::oracle::Component;

/// A built-in toy distribution (FFJORD's definitions, see `toy.rs`). Serialised by its
/// CLI name, so saved settings read like the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BuiltIn {
    #[serde(rename = "swiss-roll")]
    SwissRoll,
    #[serde(rename = "moons")]
    Moons,
    #[serde(rename = "8-gaussians")]
    EightGaussians,
    #[serde(rename = "25-gaussians")]
    TwentyFiveGaussians,
    #[serde(rename = "checkerboard")]
    Checkerboard,
    #[serde(rename = "rings")]
    Rings,
    #[serde(rename = "spirals")]
    Spirals,
    #[serde(rename = "pinwheel")]
    Pinwheel,
}

impl BuiltIn {
    const ALL: [BuiltIn; 8] = [
        BuiltIn::SwissRoll,
        BuiltIn::Moons,
        BuiltIn::EightGaussians,
        BuiltIn::TwentyFiveGaussians,
        BuiltIn::Checkerboard,
        BuiltIn::Rings,
        BuiltIn::Spirals,
        BuiltIn::Pinwheel,
    ];

    /// Every built-in, in menu order.
    pub fn all() -> &'static [BuiltIn] {
        &Self::ALL
    }

    /// The name on the command line and in the UI.
    pub fn name(self) -> &'static str {
        match self {
            BuiltIn::SwissRoll => "swiss-roll",
            BuiltIn::Moons => "moons",
            BuiltIn::EightGaussians => "8-gaussians",
            BuiltIn::TwentyFiveGaussians => "25-gaussians",
            BuiltIn::Checkerboard => "checkerboard",
            BuiltIn::Rings => "rings",
            BuiltIn::Spirals => "spirals",
            BuiltIn::Pinwheel => "pinwheel",
        }
    }

    /// The built-in of that exact name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Number of classes the labels distinguish: the mixture component (8, 25), the moon (2),
    /// the ring (4), the spiral arm (2), the pinwheel arm (5); 0 for the unlabelled swiss
    /// roll (one continuous curve) and checkerboard (its squares are not separate shapes).
    pub fn num_classes(self) -> u32 {
        match self {
            BuiltIn::SwissRoll | BuiltIn::Checkerboard => 0,
            BuiltIn::Moons | BuiltIn::Spirals => 2,
            BuiltIn::EightGaussians => 8,
            BuiltIn::TwentyFiveGaussians => 25,
            BuiltIn::Rings => 4,
            BuiltIn::Pinwheel => toy::PINWHEEL_CLASSES,
        }
    }

    /// `n` i.i.d. standardised points (with labels where the dataset has classes).
    ///
    /// Deterministic in `seed` (rand's `StdRng`, so stable for a given rand version), and
    /// different seeds give independent draws: use one seed for training data and others for
    /// held-out data and the data-vs-data floor. The first k points of a draw of n > k are
    /// the draw of k with the same seed.
    pub fn sample(self, n: usize, seed: u64) -> Dataset {
        let m = self.moments();
        let scale = m.scale();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut points = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(if self.num_classes() > 0 { n } else { 0 });
        for _ in 0..n {
            let (p, label) = self.draw(&mut rng);
            points.push([
                ((p[0] - m.mean[0]) / scale) as f32,
                ((p[1] - m.mean[1]) / scale) as f32,
            ]);
            labels.extend(label);
        }
        let num_classes = self.num_classes();
        let labels = (num_classes > 0).then_some(labels);
        Dataset {
            name: self.name().to_owned(),
            points,
            labels,
            num_classes,
        }
    }

    /// The exact Gaussian mixture, for the datasets that are one (8 and 25 Gaussians), in
    /// the standardised coordinates of [`BuiltIn::sample`]: component k is label k, weights
    /// sum to 1, `cov` is the full 2×2 covariance `[[σ_xx, σ_xy], [σ_xy, σ_yy]]` (not a
    /// standard deviation). Feed it to `math::oracle::Oracle::new` for the exact score.
    pub fn mixture(self) -> Option<Vec<Component>> {
        let components = match self {
            BuiltIn::EightGaussians => toy::eight_gaussians_mixture(),
            BuiltIn::TwentyFiveGaussians => toy::twenty_five_gaussians_mixture(),
            _ => return None,
        };
        let m = self.moments();
        let s = m.scale();
        let total: f64 = components.iter().map(|c| c.weight).sum();
        Some(
            components
                .into_iter()
                .map(|c| Component {
                    weight: c.weight / total,
                    mean: [(c.mean[0] - m.mean[0]) / s, (c.mean[1] - m.mean[1]) / s],
                    cov: c.cov.map(|row| row.map(|v| v / (s * s))),
                })
                .collect(),
        )
    }

    /// The map from FFJORD's units to ours (`apply` standardises), for comparing with
    /// figures in papers that use FFJORD's coordinates.
    pub fn normalization(self) -> Normalization {
        let m = self.moments();
        Normalization {
            mean: [m.mean[0] as f32, m.mean[1] as f32],
            scale: m.scale() as f32,
        }
    }

    fn moments(self) -> Moments {
        moments::population(self)
    }

    fn draw(self, rng: &mut StdRng) -> toy::Draw {
        match self {
            BuiltIn::SwissRoll => toy::swiss_roll(rng),
            BuiltIn::Moons => toy::moons(rng),
            BuiltIn::EightGaussians => toy::eight_gaussians(rng),
            BuiltIn::TwentyFiveGaussians => toy::twenty_five_gaussians(rng),
            BuiltIn::Checkerboard => toy::checkerboard(rng),
            BuiltIn::Rings => toy::rings(rng),
            BuiltIn::Spirals => toy::spirals(rng),
            BuiltIn::Pinwheel => toy::pinwheel(rng),
        }
    }
}

impl fmt::Display for BuiltIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `builtin.sample(n, seed)`: n standardised points, deterministic in the seed.
pub fn sample(builtin: BuiltIn, n: usize, seed: u64) -> Dataset {
    builtin.sample(n, seed)
}

/// `builtin.mixture()`: the exact standardised Gaussian mixture, where there is one.
pub fn mixture(builtin: BuiltIn) -> Option<Vec<Component>> {
    builtin.mixture()
}
