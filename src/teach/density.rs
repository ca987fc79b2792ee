//! Log-density heatmaps and the held-out NLL.
//!
//! The model's density comes from the instantaneous change of variables along the PF-ODE
//! (docs/architecture.md §3): `log p_t(x) = log N(x(1); 0, I) + ∫_t^1 ∇·f(x(s), s) ds`
//! with `f = −½β (x + s_θ)`, the divergence exact in 2D (`math::likelihood`). Next to it the
//! closed form of the noised data, exact for mixtures and for a set of points alike:
//! `p_t = Σ_k w_k N(α μ_k, α² Σ_k + σ² I)` (`math::oracle`). For the training points that is
//! the forward density the Fokker–Planck equation evolves, a heatmap that follows the time
//! scrubber.

use serde::{Deserialize, Serialize};

use super::{Progress, Sweep, TeachError};
use crate::Point;
use crate::math::ScoreModel;
use crate::math::likelihood::{LikelihoodConfig, flow, standard_normal_log_density};
use crate::math::oracle::Oracle;
use crate::math::schedule::Schedule;

/// Largest grid accepted (a 1000×1000 heatmap is already more than a canvas shows).
pub const MAX_CELLS: usize = 1 << 20;

/// Points whose PF-ODE is integrated per progress tick (and per job step of a map).
pub const MAP_CHUNK: usize = 256;

/// A regular grid of cell centres over `[min, max]`; row-major, row 0 at the smallest y.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub min: Point,
    pub max: Point,
    pub nx: usize,
    pub ny: usize,
}

impl Grid {
    pub fn new(min: Point, max: Point, nx: usize, ny: usize) -> Result<Self, TeachError> {
        let finite = min.iter().chain(&max).all(|v| v.is_finite());
        if !finite || min[0] >= max[0] || min[1] >= max[1] {
            return Err(TeachError::Invalid(format!(
                "grid: need finite min < max (got {min:?}, {max:?})"
            )));
        }
        if nx == 0 || ny == 0 || nx.saturating_mul(ny) > MAX_CELLS {
            return Err(TeachError::Invalid(format!(
                "grid: {nx}×{ny} cells (1 to {MAX_CELLS} allowed)"
            )));
        }
        Ok(Self { min, max, nx, ny })
    }

    /// `[−half, half]²` with n×n cells: standardised data lives in about [−3, 3]².
    pub fn square(half: f32, n: usize) -> Result<Self, TeachError> {
        Self::new([-half, -half], [half, half], n, n)
    }

    pub fn len(&self) -> usize {
        self.nx * self.ny
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn cell_size(&self) -> [f32; 2] {
        [
            (self.max[0] - self.min[0]) / self.nx as f32,
            (self.max[1] - self.min[1]) / self.ny as f32,
        ]
    }

    /// The centre of cell (i, j), i along x.
    pub fn centre(&self, i: usize, j: usize) -> Point {
        let h = self.cell_size();
        [
            self.min[0] + (i as f32 + 0.5) * h[0],
            self.min[1] + (j as f32 + 0.5) * h[1],
        ]
    }

    /// Every cell centre, row by row.
    pub fn points(&self) -> Vec<Point> {
        (0..self.ny)
            .flat_map(|j| (0..self.nx).map(move |i| self.centre(i, j)))
            .collect()
    }
}

/// log p_t on a grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heatmap {
    pub grid: Grid,
    pub t: f64,
    /// One value per cell, in the order of [`Grid::points`].
    pub log_density: Vec<f64>,
}

impl Heatmap {
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.log_density[j * self.grid.nx + i]
    }

    /// Σ p × cell area: close to 1 when the grid covers the distribution (a check of either
    /// computation that needs no closed form).
    pub fn mass(&self) -> f64 {
        let h = self.grid.cell_size();
        self.log_density
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| v.exp())
            .sum::<f64>()
            * (h[0] * h[1]) as f64
    }

    /// Smallest and largest finite value.
    pub fn range(&self) -> Option<(f64, f64)> {
        self.log_density
            .iter()
            .filter(|v| v.is_finite())
            .fold(None, |acc, &v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })
    }

    /// An RGB image (nx × ny, the top row at the largest y) of log p with a perceptual colour
    /// map: `depth` nats below the maximum and lower are dark, the maximum is bright. Log
    /// scale, because p itself spans hundreds of orders of magnitude.
    pub fn to_rgb(&self, depth: f64) -> Vec<u8> {
        let (_, hi) = self.range().unwrap_or((0.0, 0.0));
        let depth = if depth.is_finite() && depth > 0.0 {
            depth
        } else {
            10.0
        };
        let mut rgb = Vec::with_capacity(3 * self.grid.len());
        for j in (0..self.grid.ny).rev() {
            for i in 0..self.grid.nx {
                let v = self.at(i, j);
                let u = if v.is_finite() {
                    ((v - (hi - depth)) / depth).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                rgb.extend_from_slice(&viridis(u));
            }
        }
        rgb
    }
}

/// Viridis by linear interpolation between five of its colours.
pub fn viridis(u: f64) -> [u8; 3] {
    const STOPS: [[f64; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let x = u.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - k as f64;
    let mix = |c: usize| (STOPS[k][c] * (1.0 - f) + STOPS[k + 1][c] * f).round() as u8;
    [mix(0), mix(1), mix(2)]
}

fn check_time(t: f64) -> Result<(), TeachError> {
    if t.is_finite() && t > 0.0 && t < 1.0 {
        Ok(())
    } else {
        Err(TeachError::Invalid(format!(
            "density: t must be in (0, 1) (got {t})"
        )))
    }
}

/// The exact log p_t of a mixture (or of points, with `Oracle::empirical`) on the grid.
pub fn exact_log_density(oracle: &Oracle, grid: &Grid, t: f64) -> Result<Heatmap, TeachError> {
    check_time(t)?;
    Ok(Heatmap {
        grid: *grid,
        t,
        log_density: oracle.log_density(&grid.points(), t),
    })
}

/// The forward density p_t of a dataset, exact: the training points noised to time t form a
/// mixture of Gaussians N(α x_i, σ² I) (the Fokker–Planck solution from the empirical data).
pub fn forward_density(
    points: &[Point],
    schedule: Schedule,
    grid: &Grid,
    t: f64,
) -> Result<Heatmap, TeachError> {
    let mut sweep = ForwardDensity::new(points, schedule, *grid, t)?;
    while !sweep.advance(Progress::none())? {}
    sweep
        .so_far()
        .ok_or_else(|| TeachError::Invalid("forward density: the map is not complete".into()))
}

/// Cells of the forward map per [`ForwardDensity`] step (each a sum over the data points).
pub const FORWARD_CHUNK: usize = 1024;

/// [`forward_density`] as a [`Sweep`]: `FORWARD_CHUNK` cells per step (in a browser the page
/// keeps drawing), the map given once complete.
pub struct ForwardDensity {
    oracle: Oracle,
    grid: Grid,
    t: f64,
    cells: Vec<Point>,
    log_density: Vec<f64>,
}

impl ForwardDensity {
    pub fn new(
        points: &[Point],
        schedule: Schedule,
        grid: Grid,
        t: f64,
    ) -> Result<Self, TeachError> {
        schedule.validate()?;
        check_time(t)?;
        if points.is_empty() {
            return Err(TeachError::Invalid("forward density: no points".into()));
        }
        Ok(Self {
            oracle: Oracle::empirical(points, schedule),
            cells: grid.points(),
            log_density: Vec::with_capacity(grid.len()),
            grid,
            t,
        })
    }
}

impl Sweep for ForwardDensity {
    type Output = Heatmap;

    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        let start = self.log_density.len();
        let end = (start + FORWARD_CHUNK).min(self.cells.len());
        self.log_density
            .extend(self.oracle.log_density(&self.cells[start..end], self.t));
        progress.tick(end as f64 / self.cells.len().max(1) as f64)?;
        Ok(end == self.cells.len())
    }

    fn so_far(&self) -> Option<Heatmap> {
        (self.log_density.len() == self.cells.len()).then(|| Heatmap {
            grid: self.grid,
            t: self.t,
            log_density: self.log_density.clone(),
        })
    }
}

/// log p_t under the model: each cell centre is carried along the PF-ODE from t to 1 with
/// `cfg.steps` RK4 steps, its divergence integrated beside it (`cfg.t_min` is ignored: the
/// heatmap's own `t` is the start).
pub fn model_log_density(
    model: &dyn ScoreModel,
    schedule: Schedule,
    grid: &Grid,
    t: f64,
    cfg: &LikelihoodConfig,
    progress: Progress<'_>,
) -> Result<Heatmap, TeachError> {
    check_time(t)?;
    schedule.validate()?;
    let cfg = LikelihoodConfig { t_min: t, ..*cfg };
    let (log_density, _) =
        log_likelihood_chunked(model, &schedule, &grid.points(), &cfg, progress)?;
    Ok(Heatmap {
        grid: *grid,
        t,
        log_density,
    })
}

/// `likelihood::log_likelihood` in chunks, ticking between them; returns the values and NFE.
fn log_likelihood_chunked(
    model: &dyn ScoreModel,
    schedule: &Schedule,
    xs: &[Point],
    cfg: &LikelihoodConfig,
    progress: Progress<'_>,
) -> Result<(Vec<f64>, usize), TeachError> {
    let mut out = Vec::with_capacity(xs.len());
    let mut nfe = 0;
    progress.tick(0.0)?;
    for chunk in xs.chunks(MAP_CHUNK) {
        let (values, spent) = log_density_chunk(model, schedule, chunk, cfg);
        nfe = nfe.max(spent);
        out.extend(values);
        progress.tick(out.len() as f64 / xs.len().max(1) as f64)?;
    }
    Ok((out, nfe))
}

/// log p at `xs` along the PF-ODE from `cfg.t_min` to 1 (one chunk of a map), and the
/// evaluations each point took.
pub fn log_density_chunk(
    model: &dyn ScoreModel,
    schedule: &Schedule,
    xs: &[Point],
    cfg: &LikelihoodConfig,
) -> (Vec<f64>, usize) {
    let f = flow(model, schedule, xs, cfg);
    let values =
        f.x1.iter()
            .zip(&f.delta)
            .map(|(x1, d)| standard_normal_log_density(x1) + d)
            .collect();
    (values, f.nfe)
}

/// The held-out negative log-likelihood in nats per point (2D), in the model's standardised
/// coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Nll {
    pub nats: f64,
    /// Standard error of the mean over the points.
    pub std_error: f64,
    pub n: usize,
    /// Network evaluations per point along its PF-ODE.
    pub nfe: usize,
}

impl Nll {
    /// The NLL of the same points in the data's own units, where standardising divided by
    /// `scale`: the Jacobian of x ↦ (x − m)/s adds 2 log s nats in 2D.
    pub fn in_data_units(&self, scale: f64) -> f64 {
        self.nats + 2.0 * scale.ln()
    }
}

/// −mean log p_{t_min}(x) over `held_out` along the PF-ODE.
pub fn held_out_nll(
    model: &dyn ScoreModel,
    schedule: Schedule,
    held_out: &[Point],
    cfg: &LikelihoodConfig,
    progress: Progress<'_>,
) -> Result<Nll, TeachError> {
    schedule.validate()?;
    check_time(cfg.t_min)?;
    if held_out.is_empty() {
        return Err(TeachError::Invalid("NLL: no held-out points".into()));
    }
    let (ll, nfe) = log_likelihood_chunked(model, &schedule, held_out, cfg, progress)?;
    let n = ll.len() as f64;
    let mean = ll.iter().sum::<f64>() / n;
    let var = ll.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    if !mean.is_finite() {
        return Err(TeachError::Invalid(
            "NLL: the likelihood integration diverged".into(),
        ));
    }
    Ok(Nll {
        nats: -mean,
        std_error: (var / n).sqrt(),
        n: ll.len(),
        nfe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_centres_and_order() {
        let g = Grid::new([0.0, 0.0], [2.0, 1.0], 2, 1).unwrap();
        assert_eq!(g.points(), vec![[0.5, 0.5], [1.5, 0.5]]);
        assert!(Grid::new([0.0, 0.0], [0.0, 1.0], 2, 2).is_err());
        assert!(Grid::new([0.0, 0.0], [1.0, 1.0], 0, 2).is_err());
        assert!(Grid::new([f32::NAN, 0.0], [1.0, 1.0], 2, 2).is_err());
    }

    #[test]
    fn colour_map_ends_and_image_orientation() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        let g = Grid::new([0.0, 0.0], [1.0, 2.0], 1, 2).unwrap();
        let h = Heatmap {
            grid: g,
            t: 0.5,
            log_density: vec![-100.0, 0.0],
        };
        // top row (largest y) is the bright one
        assert_eq!(h.to_rgb(10.0), vec![253, 231, 37, 68, 1, 84]);
    }
}
