//! The computations behind the teaching views: pure library code, no UI.
//!
//! Each heavy computation takes a [`Progress`]: it reports the fraction done and stops with
//! [`TeachError::Cancelled`] as soon as its cancel flag is raised, so the app can run it on a
//! worker thread and keep drawing frames.
//!
//! - `quality_steps`: sample quality against NFE for every sampler, learned and exact score;
//! - `density`: log-density heatmaps along the PF-ODE and in closed form, held-out NLL;
//! - `denoiser`: the ideal denoiser (exact score of the training points) against a network;
//! - `guidance`: classifier guidance by Bayes' rule and classifier-free guidance;
//! - `naive`: running time backwards without the score, and (annealed) Langevin dynamics;
//! - `ablation`: two training runs that differ in one setting; `weighting`: three loss
//!   weightings with the same loss and different samples;
//! - `formulas`: the SDEs and the PF-ODE of the current schedule with numbers;
//! - `lessons`: the guided tour of presets; `export`: CSV, PNG and GIF files.

pub mod ablation;
pub mod denoiser;
pub mod density;
pub mod export;
pub mod formulas;
pub mod guidance;
pub mod lessons;
pub mod mesh;
pub mod naive;
pub mod paths;
pub mod quality_steps;
pub mod weighting;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::Point;
use crate::math::ScoreModel;
use crate::math::schedule::Schedule;
use crate::math::solvers::{Sampler, SamplerConfig, prior};

/// Why a teaching computation stopped or refused its input.
#[derive(Debug, thiserror::Error)]
pub enum TeachError {
    /// The cancel flag was raised; partial results are dropped.
    #[error("cancelled")]
    Cancelled,
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error(transparent)]
    Schedule(#[from] crate::math::schedule::ScheduleError),
    #[error(transparent)]
    Nn(#[from] crate::nn::NnError),
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Weights(#[from] crate::nn::WeightsError),
    #[error("{file}: cannot {action}: {source}")]
    Io {
        file: String,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("{file}: cannot encode {format}: {reason}")]
    Encode {
        file: String,
        format: &'static str,
        reason: String,
    },
}

/// A computation that advances in steps, each a bounded piece of work, and can show what it
/// has so far: what a view runs as a job (`app::jobs::Task::start_sweep`), so that a browser's
/// frame loop keeps drawing while it runs and the view fills in as results come.
pub trait Sweep: Send + 'static {
    type Output: Clone + Send + 'static;
    /// One step; true when the sweep is complete.
    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError>;
    /// What there is to show so far (`None`: nothing yet); once complete, the result.
    fn so_far(&self) -> Option<Self::Output>;
}

/// A progress callback and a cancel flag, either optional. Copyable, so a computation can
/// hand a sub-range of itself ([`Progress::sub`]) to a helper.
#[derive(Clone, Copy)]
pub struct Progress<'a> {
    cancel: Option<&'a AtomicBool>,
    report: Option<&'a (dyn Fn(f64) + Sync)>,
    /// This view covers `[offset, offset + span]` of the caller's 0…1.
    offset: f64,
    span: f64,
}

impl Default for Progress<'_> {
    fn default() -> Self {
        Self::none()
    }
}

impl<'a> Progress<'a> {
    /// Neither reports nor stops (tests, the CLI).
    pub fn none() -> Self {
        Self {
            cancel: None,
            report: None,
            offset: 0.0,
            span: 1.0,
        }
    }

    /// Reports to `report` (a fraction in 0…1) and stops when `cancel` becomes true.
    pub fn new(cancel: &'a AtomicBool, report: &'a (dyn Fn(f64) + Sync)) -> Self {
        Self {
            cancel: Some(cancel),
            report: Some(report),
            ..Self::none()
        }
    }

    /// Only a cancel flag.
    pub fn cancellable(cancel: &'a AtomicBool) -> Self {
        Self {
            cancel: Some(cancel),
            ..Self::none()
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Reports `fraction` of this task done; `Err(Cancelled)` if asked to stop.
    pub fn tick(&self, fraction: f64) -> Result<(), TeachError> {
        if self.is_cancelled() {
            return Err(TeachError::Cancelled);
        }
        if let Some(report) = self.report {
            report(self.offset + self.span * fraction.clamp(0.0, 1.0));
        }
        Ok(())
    }

    /// The part `[start, start + span]` of this task, as a task of its own.
    pub fn sub(&self, start: f64, span: f64) -> Progress<'a> {
        Progress {
            offset: self.offset + self.span * start,
            span: self.span * span,
            ..*self
        }
    }
}

/// Runs a sampler to the end from the prior of `cfg.seed`, ticking after every step; returns
/// the particles and the network evaluations spent.
pub fn sample_with_progress(
    model: &dyn ScoreModel,
    schedule: Schedule,
    cfg: SamplerConfig,
    n: usize,
    progress: Progress<'_>,
) -> Result<(Vec<Point>, usize), TeachError> {
    let mut x = prior(n, cfg.seed);
    let nfe = run_with_progress(model, schedule, cfg, &mut x, progress)?;
    Ok((x, nfe))
}

/// A sweep whose results `f` turns into a view's own (with what else the view shows beside).
pub struct MapSweep<S, F> {
    pub sweep: S,
    pub f: F,
}

impl<S, T, F> Sweep for MapSweep<S, F>
where
    S: Sweep,
    T: Clone + Send + 'static,
    F: Fn(S::Output) -> T + Send + 'static,
{
    type Output = T;

    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        self.sweep.advance(progress)
    }

    fn so_far(&self) -> Option<T> {
        self.sweep.so_far().map(&self.f)
    }
}

/// One solver step of `x` with the model a [`SamplingSweep`] owns.
pub type SampleStep = Box<dyn FnMut(&mut Sampler, &mut [Point]) + Send>;
/// What a [`SamplingSweep`] makes of its samples.
pub type Finish<T> = Box<dyn FnOnce(Vec<Point>) -> Result<T, TeachError> + Send>;

/// A reverse run from N(0, I) as a [`Sweep`]: one solver step per `advance` (through `step`,
/// which owns the model: a guided one may borrow what it also owns), then `finish` turns the
/// samples into the view's result.
pub struct SamplingSweep<T> {
    sampler: Sampler,
    x: Vec<Point>,
    step: SampleStep,
    finish: Option<Finish<T>>,
    result: Option<T>,
}

impl<T> SamplingSweep<T> {
    pub fn new(
        schedule: Schedule,
        cfg: SamplerConfig,
        n: usize,
        step: SampleStep,
        finish: Finish<T>,
    ) -> Self {
        Self {
            sampler: Sampler::new(schedule, cfg),
            x: prior(n, cfg.seed),
            step,
            finish: Some(finish),
            result: None,
        }
    }
}

impl<T: Clone + Send + 'static> Sweep for SamplingSweep<T> {
    type Output = T;

    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        if !self.sampler.is_done() {
            (self.step)(&mut self.sampler, &mut self.x);
            let steps = self.sampler.config().steps.max(1) as f64;
            progress.tick(self.sampler.steps_done() as f64 / steps)?;
            return Ok(false);
        }
        if let Some(finish) = self.finish.take() {
            self.result = Some(finish(std::mem::take(&mut self.x))?);
        }
        Ok(true)
    }

    fn so_far(&self) -> Option<T> {
        self.result.clone()
    }
}

/// Runs a sampler to the end from the given particles, ticking after every step.
pub fn run_with_progress(
    model: &dyn ScoreModel,
    schedule: Schedule,
    cfg: SamplerConfig,
    x: &mut [Point],
    progress: Progress<'_>,
) -> Result<usize, TeachError> {
    let mut sampler = Sampler::new(schedule, cfg);
    let steps = sampler.config().steps as f64;
    progress.tick(0.0)?;
    while !sampler.is_done() {
        sampler.step(model, x);
        progress.tick(sampler.steps_done() as f64 / steps)?;
    }
    Ok(sampler.nfe())
}

/// Checks the shared inputs of a sampling computation.
pub(crate) fn check_sampling(
    schedule: &Schedule,
    t_min: f64,
    n: usize,
    what: &str,
) -> Result<(), TeachError> {
    schedule.validate()?;
    if !(t_min.is_finite() && t_min > 0.0 && t_min < 1.0) {
        return Err(TeachError::Invalid(format!(
            "{what}: t_min must be in (0, 1) (got {t_min})"
        )));
    }
    if n == 0 {
        return Err(TeachError::Invalid(format!("{what}: no particles")));
    }
    Ok(())
}

/// A score model that predicts ε̂ = 0, i.e. the score s = 0 everywhere: what is left of the
/// reverse SDE and the PF-ODE when nothing is known about the data (`naive`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ZeroScore;

impl ScoreModel for ZeroScore {
    fn eps(&self, _xs: &[Point], _t: f32, out: &mut [Point]) {
        out.iter_mut().for_each(|o| *o = [0.0; 2]);
    }

    fn eps_div(&self, _xs: &[Point], _t: f32, out: &mut [Point], div: &mut [f32]) {
        out.iter_mut().for_each(|o| *o = [0.0; 2]);
        div.iter_mut().for_each(|d| *d = 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn progress_reports_sub_ranges_and_cancels() {
        let cancel = AtomicBool::new(false);
        let seen = Mutex::new(Vec::new());
        let report = |f: f64| seen.lock().unwrap().push(f);
        let p = Progress::new(&cancel, &report);
        p.sub(0.5, 0.5).sub(0.5, 0.5).tick(1.0).unwrap();
        p.sub(0.5, 0.5).tick(0.0).unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![1.0, 0.5]);
        cancel.store(true, Ordering::Relaxed);
        assert!(matches!(p.tick(0.1), Err(TeachError::Cancelled)));
        assert!(Progress::none().tick(0.3).is_ok());
    }

    /// A sampling sweep is the same reverse run as `sample_with_progress`, one solver step
    /// per advance, with `finish` applied once at the end.
    #[test]
    fn a_sampling_sweep_is_the_run_one_step_at_a_time() {
        use crate::math::oracle::Oracle;
        use crate::math::solvers::SamplerKind;
        let schedule = Schedule::default();
        let points: Vec<Point> = (0..50).map(|i| [i as f32 * 0.1, 1.0]).collect();
        let oracle = std::sync::Arc::new(Oracle::empirical(&points, schedule));
        let cfg = SamplerConfig {
            kind: SamplerKind::Heun,
            steps: 12,
            seed: 4,
            ..SamplerConfig::default()
        };
        let (whole, _) =
            sample_with_progress(oracle.as_ref(), schedule, cfg, 300, Progress::none())
                .expect("runs");
        let model = std::sync::Arc::clone(&oracle);
        let mut sweep = SamplingSweep::new(
            schedule,
            cfg,
            300,
            Box::new(move |sampler, x| sampler.step(model.as_ref(), x)),
            Box::new(|x| Ok(x.len())),
        );
        let mut advances = 0;
        while !sweep.advance(Progress::none()).expect("advances") {
            assert!(sweep.so_far().is_none(), "nothing before the end");
            advances += 1;
        }
        assert_eq!(advances, 12, "one solver step per advance");
        assert_eq!(sweep.so_far(), Some(300));
        assert_eq!(sweep.x, Vec::<Point>::new(), "the samples went to `finish`");
        // The same particles as the whole run (checked through a second sweep's finish).
        let model = std::sync::Arc::clone(&oracle);
        let mut same = SamplingSweep::new(
            schedule,
            cfg,
            300,
            Box::new(move |sampler, x| sampler.step(model.as_ref(), x)),
            Box::new(Ok),
        );
        while !same.advance(Progress::none()).expect("advances") {}
        assert_eq!(same.so_far().expect("done"), whole);
    }
}
