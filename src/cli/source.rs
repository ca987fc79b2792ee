//! `--dataset NAME|FILE.csv`: a built-in dataset by name or a user's CSV file, standardised for
//! the model, with fresh held-out draws for the metrics.

use anyhow::{Context, Result, bail};
use diffusion_playground::Point;
use diffusion_playground::data::{self, BuiltIn, Dataset, Normalization};
use diffusion_playground::math::Schedule;
use diffusion_playground::math::flow::FlowOracle;
use diffusion_playground::math::oracle::Oracle;

/// A resolved dataset: training points in standardised units and the way back to the user's.
pub struct Source {
    /// The name (built-in) or the path (CSV) as given.
    pub label: String,
    pub builtin: Option<BuiltIn>,
    /// Standardised points (all of a CSV file; a draw of n for a built-in).
    pub points: Vec<Point>,
    pub labels: Option<Vec<u32>>,
    pub normalization: Normalization,
}

impl Source {
    /// Resolves `spec` (a name or path the user gave) as a built-in name first, then as a
    /// CSV path.
    pub fn resolve(spec: &str, n: usize, seed: u64) -> Result<Self> {
        Self::resolve_with(spec, n, seed, None)
    }

    /// [`Source::resolve`] in given units: `normalization` maps the data's own units to the
    /// standardised ones (a model's, so its samples and these points compare), instead of the
    /// identity for a built-in and a fit for a CSV file.
    pub fn resolve_with(
        spec: &str,
        n: usize,
        seed: u64,
        normalization: Option<Normalization>,
    ) -> Result<Self> {
        if let Some(builtin) = BuiltIn::from_name(spec) {
            let d = builtin.sample(n, seed);
            let normalization = normalization.unwrap_or(Normalization::IDENTITY);
            return Ok(Self {
                label: spec.to_owned(),
                builtin: Some(builtin),
                points: normalization.apply_all(&d.points),
                labels: d.labels,
                normalization,
            });
        }
        if !spec.ends_with(".csv") && !std::path::Path::new(spec).exists() {
            let names: Vec<&str> = BuiltIn::all().iter().map(|b| b.name()).collect();
            bail!(
                "unknown dataset {spec:?}: expected one of {} or a CSV file",
                names.join(", ")
            );
        }
        let d: Dataset = data::load_csv(spec)?;
        let normalization = normalization.unwrap_or_else(|| Normalization::fit(&d.points));
        Ok(Self {
            label: spec.to_owned(),
            builtin: None,
            points: normalization.apply_all(&d.points),
            labels: d.labels,
            normalization,
        })
    }

    /// `n` standardised points independent of the training draw: a fresh draw for a built-in,
    /// a resample with replacement of the file for a CSV (its points are all there is).
    pub fn held_out(&self, n: usize, seed: u64) -> Vec<Point> {
        match self.builtin {
            Some(b) => self.normalization.apply_all(&b.sample(n, seed).points),
            None => {
                let len = self.points.len() as u32;
                (0..n as u32)
                    .map(|i| {
                        let u = diffusion_playground::math::rng::uniform(seed as u32, 7, i, 0);
                        self.points[((u * len as f32) as u32).min(len - 1) as usize]
                    })
                    .collect()
            }
        }
    }
}

impl Source {
    /// The exact score of this data under `schedule`: the true mixture for the Gaussian
    /// mixtures, the empirical score of the points (the "ideal denoiser") otherwise.
    pub fn oracle(&self, schedule: Schedule) -> Oracle {
        match self.builtin.and_then(BuiltIn::mixture) {
            Some(components) => Oracle::new(components, schedule),
            None => Oracle::empirical(&self.points, schedule),
        }
    }

    /// The exact flow-matching velocity, likewise.
    pub fn flow_oracle(&self) -> FlowOracle {
        match self.builtin.and_then(BuiltIn::mixture) {
            Some(components) => FlowOracle::new(components),
            None => FlowOracle::empirical(&self.points),
        }
    }
}

/// Seeds of the metric draws, far from any training seed.
pub const HELD_OUT_SEED: u64 = 0xC0FF_EE00;

/// Parses a positive count, for flags such as `--n`.
pub fn positive(name: &str, value: usize) -> Result<usize> {
    if value == 0 {
        bail!("--{name} must be at least 1");
    }
    Ok(value)
}

/// Writes points in the dataset's own units.
pub fn write_points(path: &str, points: &[Point], labels: Option<&[u32]>) -> Result<()> {
    data::write_csv(path, points, labels).with_context(|| format!("writing {path}"))
}
