//! The deforming grid: a regular grid of lines at t = 1 carried by a model's ODE flow map
//! towards the data, for either process — the picture of how the flow bends space. The flow
//! is integrated once (Heun) and every step kept, so scrubbing t only picks a frame.

use super::{Progress, TeachError};
use crate::Point;
use crate::math::solvers::{Sampler, SamplerConfig, SamplerKind};
use crate::math::{Schedule, ScoreModel};

/// A grid carried along the flow.
#[derive(Clone, Debug)]
pub struct Mesh {
    /// Lines per direction and points per line.
    pub lines: usize,
    pub per_line: usize,
    /// The times of the frames, from 1 down to t_min.
    pub times: Vec<f64>,
    /// Every frame: first the horizontal lines (y fixed at t = 1), then the vertical ones,
    /// `per_line` points each.
    pub frames: Vec<Vec<Point>>,
}

impl Mesh {
    /// The frame whose time is nearest `t`.
    pub fn at(&self, t: f64) -> &[Point] {
        let k = self
            .times
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - t).abs().total_cmp(&(b.1 - t).abs()))
            .map_or(0, |(k, _)| k);
        &self.frames[k]
    }

    /// The polylines of one frame.
    pub fn polylines<'a>(&self, frame: &'a [Point]) -> impl Iterator<Item = &'a [Point]> {
        frame.chunks(self.per_line)
    }
}

/// The regular grid over [−half, half]²: `lines` horizontal then `lines` vertical lines of
/// `per_line` points.
pub fn grid(half: f32, lines: usize, per_line: usize) -> Vec<Point> {
    let at = |k: usize, n: usize| -half + 2.0 * half * k as f32 / (n - 1).max(1) as f32;
    let horizontal =
        (0..lines).flat_map(|j| (0..per_line).map(move |i| [at(i, per_line), at(j, lines)]));
    let vertical =
        (0..lines).flat_map(|i| (0..per_line).map(move |j| [at(i, lines), at(j, per_line)]));
    horizontal.chain(vertical).collect()
}

/// Carries `grid(half, lines, per_line)` from t = 1 to t_min along `model`'s ODE in `steps`
/// Heun steps (the PF-ODE for a VP model, the velocity for a flow-matching one).
pub fn flow_mesh(
    model: &dyn ScoreModel,
    schedule: Schedule,
    half: f32,
    lines: usize,
    per_line: usize,
    steps: usize,
    progress: Progress<'_>,
) -> Result<Mesh, TeachError> {
    let mut x = grid(half, lines, per_line);
    let cfg = SamplerConfig {
        kind: SamplerKind::Heun,
        steps,
        ..SamplerConfig::default()
    };
    let mut sampler = Sampler::new(schedule, cfg);
    let (mut times, mut frames) = (vec![sampler.t()], vec![x.clone()]);
    while !sampler.is_done() {
        sampler.step(model, &mut x);
        times.push(sampler.t());
        frames.push(x.clone());
        progress.tick(sampler.steps_done() as f64 / steps as f64)?;
    }
    Ok(Mesh {
        lines,
        per_line,
        times,
        frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::flow::FlowOracle;
    use crate::math::oracle::Component;

    /// Flow matching on N(μ, s² I) maps x₁ to μ + s x₁ at t = 0 (an affine flow), so the grid
    /// stays a grid: scaled by s and moved to μ, at every frame by the closed form
    /// x_t = (1 − t) μ + √((1 − t)² s² + t²) x₁.
    #[test]
    fn a_gaussian_carries_the_grid_affinely() {
        let (mu, s2) = ([1.0, -0.5], 0.25f64);
        let fm = FlowOracle::new(vec![Component {
            weight: 1.0,
            mean: mu,
            cov: [[s2, 0.0], [0.0, s2]],
        }]);
        let mesh = flow_mesh(&fm, Schedule::default(), 2.0, 5, 9, 40, Progress::none()).unwrap();
        assert_eq!(mesh.frames.len(), 41);
        assert_eq!(mesh.frames[0], grid(2.0, 5, 9));
        let start = grid(2.0, 5, 9);
        for (t, frame) in mesh.times.iter().zip(&mesh.frames) {
            let scale = ((1.0 - t).powi(2) * s2 + t * t).sqrt();
            for (p, x1) in frame.iter().zip(&start) {
                for d in 0..2 {
                    let want = (1.0 - t) * mu[d] + scale * x1[d] as f64;
                    assert!((p[d] as f64 - want).abs() < 1e-3, "t {t}: {p:?} vs {want}");
                }
            }
        }
        assert_eq!(mesh.at(0.5).as_ptr(), mesh.frames[20].as_ptr());
        assert_eq!(mesh.polylines(mesh.at(1.0)).count(), 10);
    }
}
