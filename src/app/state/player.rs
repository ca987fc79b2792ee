//! The animation: which direction plays, the time t shown, and the particles at that time.
//!
//! Forward shows the data dissolving, `x_t = α(t) x₀ + σ(t) ε` with one ε per particle (or
//! Euler–Maruyama paths); reverse shows particles from N(0, I) flowing back under the score.
//! With auto-loop on, forward and reverse alternate forever, so a class sees the whole story
//! without anyone touching anything. Reverse runs use the newest weights at the start of
//! each loop, so the samples visibly improve as training goes on.

use std::sync::Arc;

use crate::Point;
use crate::math::flow::FlowOracle;
use crate::math::oracle::Oracle;
use crate::math::rng::{STREAM_EPS, normal2};
use crate::math::solvers::SamplerConfig;
use crate::math::{Process, Schedule};
use crate::train::SharedModel;

use crate::app::datasets::LoadedData;
use crate::app::noise_check::{self, NoiseCheck, NoiseChecker};
use crate::app::run_quality::{self, HeldOut, RunQuality, RunQualityState};
use crate::app::settings::{DataChoice, ForwardPaths, ScoreSource, Settings};
use crate::app::training::TrainState;
use crate::app::trajectory::{FORWARD_STEPS, GpuFrame, Job, Runner, Stored, TRAILS, Trajectory};
use crate::data::BuiltIn;

/// Seconds one direction takes at speed 1.
const DIRECTION_SECS: f64 = 4.0;
/// Forward time at which a loop takes the newest weights for its reverse run.
const REFRESH_AT_T: f64 = 0.7;
/// Pause on pure noise before the reverse run starts.
const HOLD_NOISE_SECS: f64 = 1.0;
/// Pause on the samples before the next forward run.
const HOLD_DATA_SECS: f64 = 2.0;
/// How long the loop may stay at noise for the network to reach `MIN_REVERSE_STEPS` (with the
/// note counting the steps) before it plays forward again: the reverse pass is the answer the
/// class waits for, and a slow trainer (a browser) reaches it within seconds.
const WAIT_FOR_NETWORK_SECS: f64 = 4.0;
/// Data points behind the exact score ("ideal denoiser"); its cost grows with them.
const ORACLE_POINTS: usize = 500;

/// The exact model the app compares with: the score (VP) or velocity (FM) of an even subset
/// of `ORACLE_POINTS` training points (its cost is particles × points per evaluation).
pub fn exact_oracle(points: &[Point], process: Process, schedule: Schedule) -> SharedModel {
    let stride = (points.len() / ORACLE_POINTS).max(1);
    let subset: Vec<Point> = points.iter().step_by(stride).copied().collect();
    match process {
        Process::Vp => Arc::new(Oracle::empirical(&subset, schedule)),
        Process::Fm => Arc::new(FlowOracle::empirical(&subset)),
    }
}

/// Seed of the per-particle forward noise ε.
const EPS_SEED: u32 = 0xF0A7;
/// Training steps before the loop plays reverse with the learned score: an untrained score
/// lets the reverse drift +½βx blow the particles off the canvas (×e^{B(1)/2} ≈ 150), which
/// looks like a bug rather than a lesson, and at 600 steps the default network's swiss roll
/// is still a blurred ring (sw2 2.1 × floor, Euler–Maruyama 100 steps; 1.4 × at 1200, 1.1 ×
/// at 1600). Natively the app trains that far within the first forward pass; in a browser the
/// first reverse run (seconds of the page's time) is then one worth watching. R still shows
/// an earlier one on request.
pub const MIN_REVERSE_STEPS: u64 = 1200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Forward,
    Reverse,
}

/// How each particle is coloured.
#[derive(Clone)]
pub enum Colors {
    /// One colour per particle (forward: by where it started in the data).
    PerParticle(Arc<Vec<[u8; 4]>>),
    /// All the same (reverse).
    Uniform([u8; 4]),
}

/// Everything the canvas draws for the current time.
pub struct Frame {
    /// The particles on the CPU (empty when they are `resident` on the GPU).
    pub points: Arc<Vec<Point>>,
    /// The particles in a GPU buffer, for the canvas to draw from (a reverse run on the GPU).
    pub resident: Option<GpuFrame>,
    pub colors: Colors,
    /// A few particles' paths up to now.
    pub trails: Vec<Vec<Point>>,
    /// The time the particles are at.
    pub t: f64,
    /// One line saying what is shown, most important parts first (separated by " · ").
    pub caption: String,
    /// Whether the paths are noisy (a stochastic sampler).
    pub jagged: bool,
    /// Set while the particles wait for a computation.
    pub waiting: Option<String>,
}

impl Frame {
    pub fn particle_count(&self) -> usize {
        self.resident.as_ref().map_or(self.points.len(), |g| g.len)
    }
}

/// What a reverse run depends on; a change restarts it.
#[derive(Clone, PartialEq)]
pub struct ReverseKey {
    pub process: Process,
    pub schedule: Schedule,
    pub cfg: SamplerConfig,
    pub particles: usize,
    pub source: ScoreSource,
    /// Identity of the data (the exact score depends on it).
    data: u64,
    /// Version of the learned weights (0 for the exact score).
    model_version: u64,
}

impl ReverseKey {
    /// The version of the learned weights the run uses (0 for the exact score).
    pub fn model_version(&self) -> u64 {
        self.model_version
    }

    fn same_run_settings(&self, other: &Self) -> bool {
        Self {
            model_version: 0,
            ..self.clone()
        } == Self {
            model_version: 0,
            ..other.clone()
        }
    }
}

#[derive(Clone, PartialEq)]
struct ForwardKey {
    schedule: Schedule,
    particles: usize,
    data: u64,
}

/// See [`Player::reverse_progress`].
#[derive(Clone, Debug)]
pub struct RunProgress {
    pub on_gpu: bool,
    pub steps_done: usize,
    pub total_steps: usize,
    /// Why the run failed, or why it went on on the CPU.
    pub failed: Option<String>,
}

pub struct Player {
    pub mode: Mode,
    pub t: f64,
    pub playing: bool,
    /// The device the window renders with: a reverse run of the learned score whose
    /// weights live on it keeps its particles there for the canvas to draw.
    pub render_device: Option<wgpu::Device>,
    hold_secs: f64,
    /// Seconds the loop has stayed at noise for the network (`WAIT_FOR_NETWORK_SECS`).
    waited_secs: f64,
    /// Set by a user action that should start reverse afresh with the newest weights.
    fresh_reverse: bool,
    /// Whether this forward phase already started a reverse run with newer weights.
    refreshed_this_loop: bool,
    /// Whether the score is good enough for the loop to play reverse.
    reverse_ready: bool,
    /// Training step of the newest weights.
    model_step: u64,
    /// Forward particles: their data point, their fixed noise, their colour.
    x0: Arc<Vec<Point>>,
    eps: Vec<Point>,
    colors: Arc<Vec<[u8; 4]>>,
    particles_of: (usize, u64),
    forward_em: Option<(ForwardKey, Runner)>,
    reverse: Option<(ReverseKey, Runner)>,
    /// The model the reverse run moves its particles with (the flow grid draws its flow).
    reverse_model: Option<SharedModel>,
    exact: Option<((Process, Schedule, u64), SharedModel)>,
    /// Whether x₁ reached N(0, I), for the schedule and data shown.
    pub noise: NoiseChecker,
    /// The quality of the last reverse run, once it ends.
    pub run_quality: RunQualityState,
}

impl Default for Player {
    fn default() -> Self {
        Self {
            mode: Mode::Forward,
            t: 0.0,
            playing: true,
            render_device: None,
            hold_secs: 0.0,
            waited_secs: 0.0,
            fresh_reverse: false,
            refreshed_this_loop: false,
            reverse_ready: false,
            model_step: 0,
            x0: Arc::default(),
            eps: Vec::new(),
            colors: Arc::default(),
            particles_of: (0, 0),
            forward_em: None,
            reverse: None,
            reverse_model: None,
            exact: None,
            noise: NoiseChecker::default(),
            run_quality: RunQualityState::default(),
        }
    }
}

impl Player {
    /// Switches direction and plays from its start (a user's request: a reverse run starts
    /// afresh with the newest weights).
    pub fn play_mode(&mut self, mode: Mode) {
        self.start(mode);
        if mode == Mode::Reverse {
            self.fresh_reverse = true;
        }
    }

    /// Plays a direction from its start, keeping any prepared reverse run.
    fn start(&mut self, mode: Mode) {
        self.mode = mode;
        self.t = match mode {
            Mode::Forward => 0.0,
            Mode::Reverse => 1.0,
        };
        self.playing = true;
        self.hold_secs = 0.0;
        if mode == Mode::Forward {
            self.refreshed_this_loop = false;
        }
    }

    pub fn toggle_play(&mut self) {
        self.playing = !self.playing;
        self.hold_secs = 0.0;
        if self.playing && self.at_end() {
            self.play_mode(self.mode);
        }
    }

    /// Moves t by `dt` (the ←/→ keys and the scrubber pause playback).
    pub fn scrub(&mut self, dt: f64) {
        self.playing = false;
        self.t = (self.t + dt).clamp(0.0, 1.0);
    }

    /// Pauses and moves one solver step on (`back`: one step back): in the reverse run to the
    /// next stored step of the sampler's time grid, in the forward process by 1/steps.
    pub fn step_once(&mut self, steps: usize, back: bool) {
        self.playing = false;
        match self.mode {
            Mode::Forward => {
                let dt = 1.0 / steps.max(1) as f64;
                self.t = (self.t + if back { -dt } else { dt }).clamp(0.0, 1.0);
            }
            Mode::Reverse => {
                let t = self.t;
                let next = self.reverse.as_ref().and_then(|(_, runner)| {
                    runner.with(|tr| {
                        let step = tr.step_near(t);
                        let to = if back {
                            step.saturating_sub(1)
                        } else {
                            (step + 1).min(tr.times.len().saturating_sub(1))
                        };
                        tr.times.get(to).copied()
                    })
                });
                if let Some(t) = next.flatten() {
                    self.t = t;
                }
            }
        }
    }

    /// The path of particle `i` through the reverse run so far, one point per stored step up
    /// to the time shown (None in the forward process, or where the run keeps its frames on
    /// the GPU).
    pub fn path_of(&self, i: usize) -> Option<Vec<Point>> {
        if self.mode != Mode::Reverse {
            return None;
        }
        let (_, runner) = self.reverse.as_ref()?;
        let t = self.t;
        runner
            .with(|tr| {
                let step = tr.step_near(t);
                tr.frames_until(step)
                    .map(|stored| match stored {
                        Stored::Cpu(points) => points.get(i).copied(),
                        Stored::Gpu(_) => None,
                    })
                    .collect::<Option<Vec<Point>>>()
            })
            .flatten()
    }

    pub fn set_t(&mut self, t: f64) {
        self.playing = false;
        self.t = t.clamp(0.0, 1.0);
    }

    fn at_end(&self) -> bool {
        match self.mode {
            Mode::Forward => self.t >= 1.0,
            Mode::Reverse => self.reverse_end().is_some_and(|end| self.t <= end),
        }
    }

    /// Time the finished reverse run ends at, if it is finished.
    fn reverse_end(&self) -> Option<f64> {
        let (_, runner) = self.reverse.as_ref()?;
        runner
            .with(|tr| tr.done.then(|| tr.times.last().copied()).flatten())
            .flatten()
    }

    /// The current reverse run's settings and the model it samples with.
    pub fn reverse_model(&self) -> Option<(&ReverseKey, &SharedModel)> {
        Some((self.reverse_key()?, self.reverse_model.as_ref()?))
    }

    /// Where the current reverse run stands: (samples on the GPU, steps computed, steps in
    /// all, failure).
    pub fn reverse_progress(&self) -> Option<RunProgress> {
        let (_, runner) = self.reverse.as_ref()?;
        runner.with(|tr| RunProgress {
            on_gpu: tr.on_gpu,
            steps_done: tr.steps_done(),
            total_steps: tr.total_steps,
            failed: tr.failed.clone().or_else(|| tr.gpu_failure.clone()),
        })
    }

    /// The sampler configuration of the current reverse run.
    pub fn reverse_key(&self) -> Option<&ReverseKey> {
        self.reverse.as_ref().map(|(k, _)| k)
    }

    /// The noise check for the current schedule, once computed.
    pub fn noise_check(&self) -> Option<NoiseCheck> {
        self.noise.latest().and_then(|r| r.as_ref().ok()).copied()
    }

    /// Forgets every computation (new data).
    pub fn invalidate(&mut self) {
        self.forward_em = None;
        self.reverse = None;
        self.reverse_model = None;
        self.exact = None;
        self.particles_of = (0, 0);
        self.noise.forget();
        self.run_quality.forget();
    }

    /// The exact model of the data on a process and schedule (cached).
    pub fn exact_model(
        &mut self,
        process: Process,
        schedule: Schedule,
        data: &LoadedData,
    ) -> SharedModel {
        let key = (process, schedule, data.version);
        if let Some((k, model)) = &self.exact
            && *k == key
        {
            return Arc::clone(model);
        }
        let model = exact_oracle(&data.points, process, schedule);
        self.exact = Some((key, Arc::clone(&model)));
        model
    }

    /// Advances the animation by `dt` seconds and keeps the computations in step with the
    /// settings, the data and the newest weights.
    pub fn update(&mut self, dt: f64, settings: &Settings, data: &LoadedData, train: &TrainState) {
        let schedule = settings.schedule.schedule();
        self.ensure_particles(settings.particles, data);
        self.noise
            .ensure("noise check", (schedule, data.version), || {
                noise_check::check(schedule, &data.points)
            });
        // Flow matching's straight path is shown by its exact marginals only.
        if settings.forward_paths == ForwardPaths::EulerMaruyama && settings.process().is_vp() {
            let key = ForwardKey {
                schedule,
                particles: settings.particles,
                data: data.version,
            };
            if self.forward_em.as_ref().is_none_or(|(k, _)| *k != key) {
                let job = Job::Forward {
                    schedule,
                    x0: Arc::clone(&self.x0),
                    seed: EPS_SEED,
                };
                self.forward_em = Some((key, Runner::start(job)));
            }
        } else {
            self.forward_em = None;
        }
        self.update_reverse(settings, data, train);
        self.measure_finished_run(settings, data);
        self.advance(
            dt * settings.speed as f64 / DIRECTION_SECS,
            settings.auto_loop,
        );
    }

    fn update_reverse(&mut self, settings: &Settings, data: &LoadedData, train: &TrainState) {
        let schedule = settings.schedule.schedule();
        let process = settings.process();
        let s = &settings.sampler;
        let cfg = SamplerConfig {
            kind: s.kind.on(process),
            steps: s.steps.max(1),
            eta: s.eta,
            seed: s.seed,
            ..SamplerConfig::default()
        };
        let (model, model_version) = match settings.score_source {
            ScoreSource::Exact => (Some(self.exact_model(process, schedule, data)), 0),
            ScoreSource::Learned => (
                train.model.as_ref().map(|m| Arc::clone(&m.model)),
                train.model_version,
            ),
        };
        let Some(model) = model else { return };
        self.model_step = train.model.as_ref().map_or(0, |m| m.trained_steps);
        self.reverse_ready =
            settings.score_source == ScoreSource::Exact || self.model_step >= MIN_REVERSE_STEPS;
        if !self.reverse_ready && !self.fresh_reverse && self.mode == Mode::Forward {
            // Nothing worth sampling yet; the loop keeps playing forward.
            return;
        }
        let wanted = ReverseKey {
            process,
            schedule,
            cfg,
            particles: settings.particles,
            source: settings.score_source,
            data: data.version,
            model_version,
        };
        let restart = match &self.reverse {
            None => true,
            Some((current, _)) if *current == wanted => false,
            Some((current, _)) if current.same_run_settings(&wanted) => {
                // Only newer weights: take them once per loop, while forward plays (unseen),
                // as late as lets the run (a fraction of a second) finish during the rest of
                // forward and the hold on noise: the samples then show what training has
                // learned by now, not two seconds ago; or when the user asks for a new run.
                let refresh = self.mode == Mode::Forward
                    && !self.refreshed_this_loop
                    && (self.t >= REFRESH_AT_T || !self.playing);
                if refresh {
                    self.refreshed_this_loop = true;
                }
                self.fresh_reverse || refresh
            }
            Some(_) => {
                // Other settings: show the new run at once, from noise if playing.
                if self.mode == Mode::Reverse && self.playing {
                    self.t = 1.0;
                    self.hold_secs = 0.0;
                }
                true
            }
        };
        self.fresh_reverse = false;
        if restart {
            // The GPU weights only when the canvas can draw from their device (in a browser
            // the frames come back to the CPU, so any device will do).
            let gpu = train
                .model
                .as_ref()
                .and_then(|m| m.gpu.as_ref())
                .filter(|g| {
                    settings.score_source == ScoreSource::Learned
                        && (cfg!(target_arch = "wasm32")
                            || self.render_device.as_ref() == Some(&g.ctx.device))
                })
                .map(|g| Box::new(g.clone()));
            self.reverse_model = Some(Arc::clone(&model));
            let job = Job::Reverse {
                schedule,
                model,
                cfg,
                particles: settings.particles,
                gpu,
            };
            self.reverse = Some((wanted, Runner::start(job)));
        }
    }

    fn advance(&mut self, step: f64, auto_loop: bool) {
        if self.hold_secs > 0.0 {
            self.hold_secs -= step * DIRECTION_SECS;
            if self.mode == Mode::Forward && !self.reverse_ready {
                self.waited_secs += step * DIRECTION_SECS;
                if self.hold_secs <= 0.0 && self.waited_secs < WAIT_FOR_NETWORK_SECS {
                    // Still at noise: the network is nearly there.
                    self.hold_secs = f64::MIN_POSITIVE;
                }
            }
            if self.hold_secs <= 0.0 {
                self.hold_secs = 0.0;
                self.waited_secs = 0.0;
                let next = match self.mode {
                    Mode::Forward if self.reverse_ready => Mode::Reverse,
                    _ => Mode::Forward,
                };
                self.start(next);
            }
            return;
        }
        if !self.playing {
            return;
        }
        match self.mode {
            Mode::Forward => {
                // EM paths: wait for the worker like reverse does.
                let newest = self
                    .forward_em
                    .as_ref()
                    .and_then(|(_, r)| r.with(|t| (t.times.last().copied(), t.done)));
                let mut t = self.t + step;
                if let Some((newest, done)) = newest
                    && !done
                {
                    t = t.min(newest.unwrap_or(0.0));
                }
                self.t = t.min(1.0);
                if self.t >= 1.0 {
                    self.reached_end(auto_loop, HOLD_NOISE_SECS);
                }
            }
            Mode::Reverse => {
                let Some((newest, done)) = self
                    .reverse
                    .as_ref()
                    .and_then(|(_, r)| r.with(|t| (t.times.last().copied(), t.done)))
                else {
                    return;
                };
                let Some(newest) = newest else { return };
                // The worker's newest frame is as far as playback can go.
                self.t = (self.t - step).max(newest);
                if done && self.t <= newest {
                    self.reached_end(auto_loop, HOLD_DATA_SECS);
                }
            }
        }
    }

    fn reached_end(&mut self, auto_loop: bool, hold: f64) {
        if auto_loop {
            self.hold_secs = hold;
        } else {
            self.playing = false;
        }
    }

    /// Forward particles: x₀ cycles through the data, ε is fixed per particle.
    fn ensure_particles(&mut self, n: usize, data: &LoadedData) {
        let key = (n, data.version);
        if self.particles_of == key {
            return;
        }
        let points = &data.points;
        let x0: Vec<Point> = (0..n).map(|i| points[i % points.len()]).collect();
        self.eps = (0..n)
            .map(|i| normal2(EPS_SEED, 0, i as u32, STREAM_EPS))
            .collect();
        self.colors = Arc::new(x0.iter().map(|p| hue_of(*p)).collect());
        self.x0 = Arc::new(x0);
        self.particles_of = key;
    }

    /// Takes in background results that have arrived (called before the UI draws).
    pub fn collect(&mut self) {
        self.noise.collect();
        self.run_quality.collect();
    }

    /// The quality of the reverse run shown: `None` without one, `Ok(None)` until it has
    /// ended and been measured.
    pub fn shown_run_quality(&self) -> Option<Result<Option<RunQuality>, String>> {
        let (_, runner) = self.reverse.as_ref()?;
        if !(self.mode == Mode::Reverse && self.at_end()) {
            // The particles on screen are not the run's result (yet).
            return Some(Ok(None));
        }
        Some(run_quality::of(&self.run_quality, runner.id()))
    }

    /// Starts measuring the reverse run once it has ended.
    fn measure_finished_run(&mut self, settings: &Settings, data: &LoadedData) {
        let Some((_, runner)) = &self.reverse else {
            return;
        };
        let Some(last) = runner.last_frame() else {
            return;
        };
        let held_out = match &settings.data {
            DataChoice::BuiltIn(name) if settings.placement.is_standard() => {
                BuiltIn::from_name(name).map(HeldOut::BuiltIn)
            }
            _ => None,
        }
        .unwrap_or_else(|| HeldOut::Resample(Arc::clone(&data.points)));
        self.run_quality.ensure("run quality", runner.id(), || {
            run_quality::measure(last, held_out)
        });
    }

    /// What to draw now.
    pub fn frame(&self, settings: &Settings) -> Frame {
        match self.mode {
            Mode::Forward => self.forward_frame(settings),
            Mode::Reverse => self.reverse_frame(settings),
        }
    }

    fn forward_frame(&self, settings: &Settings) -> Frame {
        let schedule = settings.schedule.schedule();
        let colors = Colors::PerParticle(Arc::clone(&self.colors));
        if let Some((_, runner)) = &self.forward_em {
            let found = runner.with(|tr| em_frame(tr, self.t));
            let (points, trails, waiting) = found.flatten().unwrap_or_else(|| {
                (
                    Arc::clone(&self.x0),
                    Vec::new(),
                    Some("computing paths…".to_owned()),
                )
            });
            return Frame {
                points,
                resident: None,
                colors,
                trails,
                t: self.t,
                caption: format!("forward · Euler–Maruyama paths · {FORWARD_STEPS} steps"),
                jagged: true,
                waiting: waiting.or_else(|| self.learning_note(settings)),
            };
        }
        let process = settings.process();
        let mut points = vec![[0.0; 2]; self.x0.len()];
        process.marginal(&schedule, self.t, &self.x0, &self.eps, &mut points);
        // Exact paths of a few particles: the same ε at every time on the way.
        let trails = (0..TRAILS.min(self.x0.len()))
            .map(|i| {
                let samples = 48;
                (0..=samples)
                    .map(|k| {
                        let s = self.t * k as f64 / samples as f64;
                        let (a, sg) = process.alpha_sigma(&schedule, s);
                        let (a, sg) = (a as f32, sg as f32);
                        let (x, e) = (self.x0[i], self.eps[i]);
                        [a * x[0] + sg * e[0], a * x[1] + sg * e[1]]
                    })
                    .collect()
            })
            .collect();
        Frame {
            points: Arc::new(points),
            resident: None,
            colors,
            trails,
            t: self.t,
            caption: "forward · exact marginals x_t = α(t)·x₀ + σ(t)·ε".to_owned(),
            jagged: false,
            waiting: self.learning_note(settings),
        }
    }

    /// While the loop waits for training before it plays reverse.
    fn learning_note(&self, settings: &Settings) -> Option<String> {
        (settings.auto_loop && !self.reverse_ready).then(|| {
            format!(
                "the network is learning: reverse plays after {MIN_REVERSE_STEPS} steps \
                 (now {})",
                self.model_step
            )
        })
    }

    fn reverse_frame(&self, settings: &Settings) -> Frame {
        let color = [255, 150, 60, 235];
        let label = settings.sampler.kind.label();
        let source = match settings.score_source {
            ScoreSource::Learned => "learned score",
            ScoreSource::Exact => "exact score (ideal denoiser)",
        };
        let empty = |waiting: &str| Frame {
            points: Arc::default(),
            resident: None,
            colors: Colors::Uniform(color),
            trails: Vec::new(),
            t: self.t,
            caption: format!("reverse · {label}"),
            jagged: settings.sampler.is_sde(),
            waiting: Some(waiting.to_owned()),
        };
        let Some((key, runner)) = &self.reverse else {
            return empty("waiting for the first weights from training…");
        };
        let found = runner.with(|tr| {
            if let Some(message) = &tr.failed {
                return Err(format!("sampling failed: {message}"));
            }
            let step = tr.step_near(self.t);
            let (_, stored) = tr.frame_at(step).ok_or("starting…")?;
            let trails = trails_until(tr, step);
            let device = if tr.on_gpu {
                " · on the GPU".to_owned()
            } else if let Some(e) = &tr.gpu_failure {
                format!(" · on the CPU (the GPU failed: {e})")
            } else {
                String::new()
            };
            let waiting = (!tr.done && step + 1 >= tr.times.len()).then(|| {
                format!(
                    "sampling… step {}/{} ({:.0}%)",
                    tr.steps_done(),
                    tr.total_steps,
                    100.0 * tr.steps_done() as f64 / tr.total_steps.max(1) as f64
                )
            });
            let t = tr.times.get(step).copied().unwrap_or(self.t);
            Ok((
                stored,
                trails,
                waiting,
                t,
                step,
                tr.total_steps,
                tr.nfe,
                device,
            ))
        });
        match found {
            Some(Ok((stored, trails, waiting, t, step, total, nfe, device))) => Frame {
                points: match &stored {
                    Stored::Cpu(points) => Arc::clone(points),
                    Stored::Gpu(_) => Arc::default(),
                },
                resident: match stored {
                    Stored::Gpu(frame) => Some(frame),
                    Stored::Cpu(_) => None,
                },
                colors: Colors::Uniform(color),
                trails,
                t,
                caption: format!(
                    "reverse · {label} · step {step}/{total} · {source} · NFE {nfe}{}{}",
                    if key.model_version > 0 {
                        format!(" · weights v{}", key.model_version)
                    } else {
                        String::new()
                    },
                    device
                ),
                jagged: settings.sampler.is_sde(),
                waiting,
            },
            Some(Err(message)) => empty(&message),
            None => empty("sampler unavailable"),
        }
    }
}

type FoundFrame = (Arc<Vec<Point>>, Vec<Vec<Point>>, Option<String>);

fn em_frame(tr: &Trajectory, t: f64) -> Option<FoundFrame> {
    let step = tr.step_near(t);
    // Forward paths are always computed on the CPU.
    let Stored::Cpu(points) = tr.frame_at(step)?.1 else {
        return None;
    };
    let waiting = (!tr.done && step + 1 >= tr.times.len()).then(|| "computing paths…".to_owned());
    Some((points, trails_until(tr, step), waiting))
}

/// Trails from step 0 to `step`, one polyline per traced particle.
fn trails_until(tr: &Trajectory, step: usize) -> Vec<Vec<Point>> {
    let upto = (step + 1).min(tr.trails.len());
    let count = tr.trails.first().map_or(0, Vec::len);
    (0..count)
        .map(|i| tr.trails[..upto].iter().map(|row| row[i]).collect())
        .collect()
}

/// A colour from the angle of a data point around the origin, so one sees where each part of
/// the data goes while it dissolves.
pub fn hue_of(p: Point) -> [u8; 4] {
    let h = (p[1].atan2(p[0]) / std::f32::consts::TAU + 0.5) * 6.0;
    let x = 1.0 - ((h % 2.0) - 1.0).abs();
    let (r, g, b) = match h as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    // Pastel: mix with white so every hue reads on a dark and a light background.
    let c = |v: f32| (255.0 * (0.35 + 0.6 * v)) as u8;
    [c(r), c(g), c(b), 230]
}
