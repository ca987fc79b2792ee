//! Diffusion's probability-flow ODE beside flow matching, from the same noise: how straight
//! the paths are, and how sample quality grows with network evaluations (docs/architecture.md
//! §3.9). `PathsComparison` trains one network per process with the same settings and steps, so
//! the two are measured at equal training.
//!
//! Straightness is `S = mean_i L_i / mean_i |x_i(t_min) − x_i(1)|`, the mean length of the
//! paths over the mean distance between their ends: 1 for straight lines. It is measured on
//! a fine Heun run, so it describes the flow, not a solver's error. A straighter flow is
//! integrated accurately in fewer steps, which the quality curves show.

use std::sync::Arc;

use super::{Progress, Sweep, TeachError};
use crate::Point;
use crate::math::metrics::sliced_w2;
use crate::math::solvers::{Sampler, SamplerConfig, SamplerKind, prior};
use crate::math::{Process, Schedule, ScoreModel};
use crate::nn::{NetModel, TrainConfig, Trainer};

/// Heun steps of the run that measures straightness.
pub const FINE_STEPS: usize = 100;
/// The step counts of the quality curves.
pub const STEP_COUNTS: [usize; 6] = [1, 2, 4, 8, 16, 32];
/// The ODE solvers compared.
pub const SOLVERS: [SamplerKind; 2] = [SamplerKind::OdeEuler, SamplerKind::Heun];

/// Per solver of `SOLVERS`: (network evaluations, sw2 against held-out data) per step count.
pub type Curves = Vec<(SamplerKind, Vec<(usize, f64)>)>;

/// One model's paths and quality curves.
#[derive(Clone, Debug)]
pub struct PathReport {
    pub label: String,
    /// Mean path length over mean endpoint distance (≥ 1).
    pub straightness: f64,
    /// A few whole paths, for drawing.
    pub paths: Vec<Vec<Point>>,
    pub curves: Curves,
}

/// Runs `model`'s ODE from the prior of `seed`: its straightness and `keep` whole paths.
pub fn straightness(
    model: &dyn ScoreModel,
    schedule: Schedule,
    n: usize,
    seed: u32,
    keep: usize,
    progress: Progress<'_>,
) -> Result<(f64, Vec<Vec<Point>>), TeachError> {
    let cfg = SamplerConfig {
        kind: SamplerKind::Heun,
        steps: FINE_STEPS,
        seed,
        ..SamplerConfig::default()
    };
    let start = prior(n, seed);
    let mut x = start.clone();
    let mut length = vec![0.0f64; n];
    let mut paths: Vec<Vec<Point>> = start.iter().take(keep).map(|p| vec![*p]).collect();
    let mut sampler = Sampler::new(schedule, cfg);
    while !sampler.is_done() {
        let before = x.clone();
        sampler.step(model, &mut x);
        for ((l, a), b) in length.iter_mut().zip(&before).zip(&x) {
            *l += ((b[0] - a[0]) as f64).hypot((b[1] - a[1]) as f64);
        }
        for (path, p) in paths.iter_mut().zip(&x) {
            path.push(*p);
        }
        progress.tick(sampler.steps_done() as f64 / FINE_STEPS as f64)?;
    }
    let chord: f64 = start
        .iter()
        .zip(&x)
        .map(|(a, b)| ((b[0] - a[0]) as f64).hypot((b[1] - a[1]) as f64))
        .sum();
    let total: f64 = length.iter().sum();
    Ok((total / chord.max(f64::MIN_POSITIVE), paths))
}

/// Sliced W₂ to `held_out` after each of `STEP_COUNTS` for each of `SOLVERS`, from the prior
/// of `seed`.
pub fn quality_curves(
    model: &dyn ScoreModel,
    schedule: Schedule,
    held_out: &[Point],
    seed: u32,
    progress: Progress<'_>,
) -> Result<Curves, TeachError> {
    let total = (SOLVERS.len() * STEP_COUNTS.len()) as f64;
    let mut done = 0.0;
    let mut curves = Vec::new();
    for kind in SOLVERS {
        let mut curve = Vec::new();
        for steps in STEP_COUNTS {
            let cfg = SamplerConfig {
                kind,
                steps,
                seed,
                ..SamplerConfig::default()
            };
            let mut x = prior(held_out.len(), seed);
            let mut sampler = Sampler::new(schedule, cfg);
            sampler.run(model, &mut x);
            curve.push((sampler.nfe(), sliced_w2(&x, held_out)));
            done += 1.0;
            progress.tick(done / total)?;
        }
        curves.push((kind, curve));
    }
    Ok(curves)
}

/// Training steps per `PathsComparison::advance`: a slice a browser's frame can hold.
const TRAIN_CHUNK: u64 = 50;

/// What `PathsComparison` does next for the process under way.
enum Phase {
    Train(Box<Trainer>),
    Straightness(Box<NetModel>),
    Curves(Box<NetModel>, f64, Vec<Vec<Point>>),
}

/// A network per process trained from `base` (the same shape, seed, batch and learning rate;
/// flow matching's loss unweighted) for the same number of steps on the same data, then
/// measured from the same noise: the VP report, then the FM one. It advances in steps (a
/// slice of training or one measurement each), so a browser's frame loop keeps drawing.
pub struct PathsComparison {
    base: TrainConfig,
    data: Arc<[Point]>,
    steps: u64,
    held_out: Vec<Point>,
    /// sw2 between `held_out` and another draw of the data: the floor of the quality curves.
    floor: f64,
    seed: u32,
    /// Index into `Process::ALL` of the process under way.
    next: usize,
    phase: Option<Phase>,
    reports: Vec<PathReport>,
}

impl PathsComparison {
    /// `other` is a second draw of the data beside `held_out`, for the floor.
    pub fn new(
        base: TrainConfig,
        data: Arc<[Point]>,
        steps: u64,
        held_out: Vec<Point>,
        other: &[Point],
        seed: u32,
    ) -> Self {
        Self {
            base,
            data,
            steps: steps.max(1),
            floor: sliced_w2(other, &held_out),
            held_out,
            seed,
            next: 0,
            phase: None,
            reports: Vec::new(),
        }
    }

    /// The reports finished so far.
    pub fn reports(&self) -> &[PathReport] {
        &self.reports
    }
}

/// The reports (VP, then FM) and the floor of their quality curves.
pub type PathsResult = (Vec<PathReport>, f64);

impl Sweep for PathsComparison {
    type Output = PathsResult;

    /// One step; true when both reports are done.
    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        let Some(&process) = Process::ALL.get(self.next) else {
            return Ok(true);
        };
        let share = 1.0 / Process::ALL.len() as f64;
        let part = progress.sub(self.next as f64 * share, share);
        let schedule = self.base.schedule;
        self.phase = Some(match self.phase.take() {
            None => {
                let mut cfg = self.base.clone();
                cfg.net.process = process;
                cfg.net.param = crate::nn::Parameterization::Eps;
                Phase::Train(Box::new(Trainer::new(cfg, Arc::clone(&self.data))?))
            }
            Some(Phase::Train(mut trainer)) => {
                let chunk = TRAIN_CHUNK.min(self.steps - trainer.steps_done());
                for _ in 0..chunk {
                    trainer.step()?;
                }
                part.tick(0.7 * trainer.steps_done() as f64 / self.steps as f64)?;
                if trainer.steps_done() < self.steps {
                    Phase::Train(trainer)
                } else {
                    Phase::Straightness(Box::new(trainer.model(true)?))
                }
            }
            Some(Phase::Straightness(model)) => {
                let n = self.held_out.len();
                let (s, paths) = straightness(
                    model.as_ref(),
                    schedule,
                    n,
                    self.seed,
                    24,
                    part.sub(0.7, 0.15),
                )?;
                Phase::Curves(model, s, paths)
            }
            Some(Phase::Curves(model, straightness, paths)) => {
                let curves = quality_curves(
                    model.as_ref(),
                    schedule,
                    &self.held_out,
                    self.seed,
                    part.sub(0.85, 0.15),
                )?;
                self.reports.push(PathReport {
                    label: match process {
                        Process::Vp => "VP network",
                        Process::Fm => "FM network",
                    }
                    .to_owned(),
                    straightness,
                    paths,
                    curves,
                });
                self.next += 1;
                return Ok(self.next == Process::ALL.len());
            }
        });
        Ok(false)
    }

    fn so_far(&self) -> Option<PathsResult> {
        (!self.reports.is_empty()).then(|| (self.reports.clone(), self.floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::flow::FlowOracle;
    use crate::math::oracle::{Component, Oracle};

    fn gaussian() -> Component {
        Component {
            weight: 1.0,
            mean: [2.0, 0.0],
            cov: [[0.01, 0.0], [0.0, 0.01]],
        }
    }

    /// The comparison advances in small steps (a chunk of training, one measurement), the VP
    /// report first, and both networks see the same number of steps.
    #[test]
    fn the_comparison_advances_in_steps_vp_then_fm() {
        let data: Vec<Point> = crate::math::solvers::prior(200, 1);
        let base = TrainConfig {
            net: crate::nn::MlpConfig {
                width: 8,
                depth: 1,
                ..crate::nn::MlpConfig::default()
            },
            batch: 32,
            ..TrainConfig::default()
        };
        let steps = 120;
        let mut cmp =
            PathsComparison::new(base, data.into(), steps, prior(50, 2), &prior(50, 4), 3);
        let mut calls = 0;
        while !cmp.advance(Progress::none()).unwrap() {
            calls += 1;
            assert!(calls < 100, "never finished");
        }
        // Per process: build, ⌈120/50⌉ = 3 training slices, straightness, curves.
        assert_eq!(calls + 1, 2 * (1 + 3 + 2));
        let labels: Vec<_> = cmp.reports().iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["VP network", "FM network"]);
        assert!(cmp.advance(Progress::none()).unwrap());
        for r in cmp.reports() {
            assert!(r.straightness >= 1.0);
            assert_eq!(r.curves.len(), SOLVERS.len());
        }
    }

    /// Data that is a single point-like Gaussian: flow matching's paths are straight lines
    /// to it (S = 1 up to its width), while the VP-SDE's probability-flow paths bend (they
    /// shrink the noise towards the origin first: S clearly above 1).
    #[test]
    fn flow_matching_paths_are_straighter_than_the_vp_flows() {
        let fm = FlowOracle::new(vec![gaussian()]);
        let vp = Oracle::new(vec![gaussian()], Schedule::default());
        let (s_fm, paths) =
            straightness(&fm, Schedule::default(), 500, 3, 4, Progress::none()).unwrap();
        let (s_vp, _) =
            straightness(&vp, Schedule::default(), 500, 3, 4, Progress::none()).unwrap();
        assert!((1.0..1.01).contains(&s_fm), "FM straightness {s_fm}");
        assert!(s_vp > 1.05, "VP straightness {s_vp}");
        assert_eq!(paths.len(), 4);
        assert_eq!(paths[0].len(), FINE_STEPS + 1);
    }
}
