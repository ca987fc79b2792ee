//! Every sampler of docs/architecture.md §3, stepping particles from noise (t = 1) to data.
//!
//! All of them drive one [`ScoreModel`] (ε̂) through a [`Sampler`] that advances one step at a
//! time, so the app can animate any of them and the CLI can run them to the end. In terms of
//! ε̂ the score is `s = −ε̂/σ` and
//! - reverse SDE: `dx = [−½ β x − β s] dt + √β dW̄`,
//! - PF-ODE: `dx/dt = −½ β (x + s)`.
//!
//! On a flow-matching model (`ScoreModel::process` = FM) the ODE solvers integrate the learned
//! velocity, `dx/dt = v`, and the SDE is the reverse SDE with diffusion ς(t)² = 2t that has
//! the same marginals: with `ε̂ = x + (1 − t) v` and `s = −ε̂/t`,
//! `dx = [v − ½ς² s] dt + ς dW̄ = (v + ε̂) dt + √(2t) dW̄` — finite on all of [0, 1] and
//! noiseless at the data end. The VP-only samplers run there as their counterpart
//! (`SamplerKind::on`).
//!
//! Time grids: the SDE/ODE solvers use N uniform steps from t = 1 to t_min (DPM-Solver: uniform
//! in λ over the same range); DDPM and DDIM use
//! the discrete times t_i = i/N with ᾱ_i = α(t_i)², ending at t = 0 (their last step returns
//! the denoised x̂₀), so a step count means the same for every sampler.

use serde::{Deserialize, Serialize};

use super::model::ScoreModel;
use super::process::Process;
use super::rng::{STREAM_CORRECTOR, STREAM_PRIOR, STREAM_STEP, normal2};
use super::schedule::Schedule;
use crate::Point;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SamplerKind {
    /// Euler–Maruyama on the reverse SDE.
    Em,
    /// Euler on the probability-flow ODE.
    OdeEuler,
    /// Heun's second-order method on the PF-ODE.
    Heun,
    /// Classical fourth-order Runge–Kutta on the PF-ODE.
    Rk4,
    /// DDPM ancestral sampling with the posterior variance β̃.
    Ddpm,
    /// DDIM with stochasticity η (η = 0: a first-order PF-ODE solver).
    Ddim,
    /// DPM-Solver++(2M): second-order multistep in λ = log(α/σ) on data predictions.
    Dpm2m,
    /// Predictor–corrector: an Euler–Maruyama step, then one Langevin corrector step.
    Pc,
    /// Plain Langevin dynamics on s(x, t_min): the lecture's failure case.
    Langevin,
}

impl SamplerKind {
    pub const ALL: [SamplerKind; 9] = [
        SamplerKind::Em,
        SamplerKind::OdeEuler,
        SamplerKind::Heun,
        SamplerKind::Rk4,
        SamplerKind::Ddpm,
        SamplerKind::Ddim,
        SamplerKind::Dpm2m,
        SamplerKind::Pc,
        SamplerKind::Langevin,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Em => "em",
            SamplerKind::OdeEuler => "ode-euler",
            SamplerKind::Heun => "heun",
            SamplerKind::Rk4 => "rk4",
            SamplerKind::Ddpm => "ddpm",
            SamplerKind::Ddim => "ddim",
            SamplerKind::Dpm2m => "dpm2m",
            SamplerKind::Pc => "pc",
            SamplerKind::Langevin => "langevin",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A label for the UI.
    pub fn label(self) -> &'static str {
        match self {
            SamplerKind::Em => "Euler–Maruyama (SDE)",
            SamplerKind::OdeEuler => "Euler (ODE)",
            SamplerKind::Heun => "Heun (ODE)",
            SamplerKind::Rk4 => "RK4 (ODE)",
            SamplerKind::Ddpm => "DDPM ancestral (SDE)",
            SamplerKind::Ddim => "DDIM (η)",
            SamplerKind::Dpm2m => "DPM-Solver++(2M) (ODE)",
            SamplerKind::Pc => "Predictor–corrector (SDE)",
            SamplerKind::Langevin => "Langevin at t_min",
        }
    }

    /// Whether the sampler injects noise (DDIM counts as stochastic only with η > 0).
    pub fn is_stochastic(self) -> bool {
        matches!(
            self,
            SamplerKind::Em | SamplerKind::Ddpm | SamplerKind::Pc | SamplerKind::Langevin
        )
    }

    /// Whether the kind is defined for `process` (flow matching: the reverse SDE and the three
    /// ODE solvers).
    pub fn supports(self, process: Process) -> bool {
        process == Process::Vp
            || matches!(
                self,
                SamplerKind::Em | SamplerKind::OdeEuler | SamplerKind::Heun | SamplerKind::Rk4
            )
    }

    /// What this kind means on `process`: itself where defined; on flow matching DDIM (η = 0
    /// on the straight path is exactly Euler) becomes Euler, DPM-Solver Heun, and the other
    /// stochastic samplers the reverse SDE.
    pub fn on(self, process: Process) -> SamplerKind {
        match self {
            _ if self.supports(process) => self,
            SamplerKind::Ddim => SamplerKind::OdeEuler,
            SamplerKind::Dpm2m => SamplerKind::Heun,
            _ => SamplerKind::Em,
        }
    }

    /// Network evaluations per step.
    pub fn nfe_per_step(self) -> usize {
        match self {
            SamplerKind::Heun | SamplerKind::Pc => 2,
            SamplerKind::Rk4 => 4,
            _ => 1,
        }
    }
}

/// Everything a sampler run depends on besides the model and the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    pub kind: SamplerKind,
    pub steps: usize,
    pub t_min: f64,
    /// DDIM's η: 0 is deterministic, 1 matches DDPM's posterior variance.
    pub eta: f64,
    /// Signal-to-noise ratio r of the Langevin corrector (Song et al. use 0.16 for VP).
    pub snr: f64,
    /// Step size δ of plain Langevin; `None` uses σ(t_min)², the largest the score's
    /// Lipschitz constant ~1/σ² allows near sharp data.
    pub langevin_step: Option<f64>,
    /// Seed of the starting noise and of every noise increment.
    pub seed: u32,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            kind: SamplerKind::Em,
            steps: 100,
            t_min: 1e-3,
            eta: 0.0,
            snr: 0.16,
            langevin_step: None,
            seed: 0,
        }
    }
}

/// Draws the N(0, I) starting particles; the same seed gives the same start for every sampler,
/// so SDE and ODE runs differ only in the sampler.
pub fn prior(n: usize, seed: u32) -> Vec<Point> {
    (0..n)
        .map(|i| normal2(seed, 0, i as u32, STREAM_PRIOR))
        .collect()
}

/// The times t_0 = start > t_1 > … > t_N a sampler visits (the GPU sampler uses the same).
pub fn time_grid(schedule: &Schedule, cfg: &SamplerConfig) -> Vec<f64> {
    let n = cfg.steps.max(1);
    match cfg.kind {
        SamplerKind::Ddpm | SamplerKind::Ddim => {
            (0..=n).map(|i| (n - i) as f64 / n as f64).collect()
        }
        SamplerKind::Langevin => vec![cfg.t_min; n + 1],
        // Exponential integrators step in λ; a uniform-t grid would leave one huge λ step
        // at the end (λ → ∞ as t → 0), so DPM-Solver uses its paper's uniform-λ grid.
        SamplerKind::Dpm2m => {
            let (l1, l0) = (schedule.lambda(1.0), schedule.lambda(cfg.t_min));
            (0..=n)
                .map(|i| schedule.t_of_lambda(l1 + i as f64 * (l0 - l1) / n as f64))
                .collect()
        }
        _ => (0..=n)
            .map(|i| 1.0 - i as f64 * (1.0 - cfg.t_min) / n as f64)
            .collect(),
    }
}

/// A sampler in progress: call [`Sampler::step`] until [`Sampler::is_done`].
pub struct Sampler {
    cfg: SamplerConfig,
    schedule: Schedule,
    /// The model's process, read at each step.
    process: Process,
    /// Times t_0 = start > t_1 > … > t_N.
    grid: Vec<f64>,
    step: usize,
    nfe: usize,
    eps: Vec<Point>,
    scratch: Vec<Point>,
    /// RK stage accumulators.
    acc: Vec<Point>,
    /// DPM-Solver++(2M): the previous data prediction and its λ step.
    prev_x0: Option<(Vec<Point>, f64)>,
}

impl Sampler {
    pub fn new(schedule: Schedule, cfg: SamplerConfig) -> Self {
        let n = cfg.steps.max(1);
        let grid = time_grid(&schedule, &cfg);
        Self {
            cfg: SamplerConfig { steps: n, ..cfg },
            schedule,
            process: Process::Vp,
            grid,
            step: 0,
            nfe: 0,
            eps: Vec::new(),
            scratch: Vec::new(),
            acc: Vec::new(),
            prev_x0: None,
        }
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.cfg.steps
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// The time the particles are at now.
    pub fn t(&self) -> f64 {
        self.grid[self.step]
    }

    /// Network evaluations so far.
    pub fn nfe(&self) -> usize {
        self.nfe
    }

    /// Runs all remaining steps.
    pub fn run(&mut self, model: &dyn ScoreModel, x: &mut [Point]) {
        while !self.is_done() {
            self.step(model, x);
        }
    }

    fn eval(&mut self, model: &dyn ScoreModel, x: &[Point], t: f64) {
        self.eps.resize(x.len(), [0.0; 2]);
        model.eps(x, t as f32, &mut self.eps);
        self.nfe += 1;
    }

    /// PF-ODE drift −½β(x + s) = −½β(x − ε̂/σ), from the ε̂ last evaluated.
    fn ode_drift(&self, x: &[Point], t: f64, out: &mut [Point]) {
        let beta = self.schedule.beta(t);
        let (c_x, c_e) = (
            (-0.5 * beta) as f32,
            (0.5 * beta / self.schedule.sigma(t)) as f32,
        );
        for ((o, p), e) in out.iter_mut().zip(x).zip(&self.eps) {
            *o = [c_x * p[0] + c_e * e[0], c_x * p[1] + c_e * e[1]];
        }
    }

    /// Advances every particle by one step.
    pub fn step(&mut self, model: &dyn ScoreModel, x: &mut [Point]) {
        if self.is_done() {
            return;
        }
        self.process = model.process();
        if self.step == 0 && !self.cfg.kind.supports(self.process) {
            self.cfg.kind = self.cfg.kind.on(self.process);
            self.grid = time_grid(&self.schedule, &self.cfg);
        }
        if self.process == Process::Fm {
            self.fm_step(model, x);
            self.step += 1;
            return;
        }
        let (t, s) = (self.grid[self.step], self.grid[self.step + 1]);
        let h = s - t; // negative: time runs backwards
        let k = self.step as u32;
        let seed = self.cfg.seed;
        match self.cfg.kind {
            SamplerKind::Em => {
                self.eval(model, x, t);
                em_step(&self.schedule, t, h, x, &self.eps, seed, k, STREAM_STEP);
            }
            SamplerKind::OdeEuler => {
                self.eval(model, x, t);
                let mut d = std::mem::take(&mut self.scratch);
                d.resize(x.len(), [0.0; 2]);
                self.ode_drift(x, t, &mut d);
                axpy(x, h as f32, &d);
                self.scratch = d;
            }
            SamplerKind::Heun => self.heun_step(model, x, t, h),
            SamplerKind::Rk4 => self.rk4_step(model, x, t, h),
            SamplerKind::Ddpm => {
                self.eval(model, x, t);
                self.ddim_step(x, t, s, 1.0, k);
            }
            SamplerKind::Ddim => {
                self.eval(model, x, t);
                self.ddim_step(x, t, s, self.cfg.eta, k);
            }
            SamplerKind::Dpm2m => self.dpm2m_step(model, x, t, s),
            SamplerKind::Pc => {
                self.eval(model, x, t);
                em_step(&self.schedule, t, h, x, &self.eps, seed, k, STREAM_STEP);
                self.eval(model, x, s);
                self.langevin_corrector(x, s, k);
            }
            SamplerKind::Langevin => {
                self.eval(model, x, t);
                let delta = self
                    .cfg
                    .langevin_step
                    .unwrap_or_else(|| self.schedule.sigma(t).powi(2));
                langevin_step(
                    x,
                    &self.eps,
                    self.schedule.sigma(t),
                    delta,
                    seed,
                    k,
                    STREAM_STEP,
                );
            }
        }
        self.step += 1;
    }

    /// One flow-matching step from t to t + h (h < 0) on the velocity.
    fn fm_step(&mut self, model: &dyn ScoreModel, x: &mut [Point]) {
        let (t, s) = (self.grid[self.step], self.grid[self.step + 1]);
        let h = s - t;
        match self.cfg.kind {
            SamplerKind::OdeEuler => {
                let mut d = std::mem::take(&mut self.scratch);
                d.resize(x.len(), [0.0; 2]);
                self.drift(model, x, t, &mut d);
                axpy(x, h as f32, &d);
                self.scratch = d;
            }
            SamplerKind::Heun => self.heun_step(model, x, t, h),
            SamplerKind::Rk4 => self.rk4_step(model, x, t, h),
            // `supports` leaves only the reverse SDE: x += h (v + ε̂) + √(2t|h|) z.
            _ => {
                let mut v = std::mem::take(&mut self.scratch);
                v.resize(x.len(), [0.0; 2]);
                self.drift(model, x, t, &mut v);
                let (hf, omt) = (h as f32, (1.0 - t) as f32);
                let noise = (2.0 * t * -h).sqrt() as f32;
                let k = self.step as u32;
                for (i, (p, v)) in x.iter_mut().zip(&v).enumerate() {
                    let z = normal2(self.cfg.seed, k, i as u32, STREAM_STEP);
                    for d in 0..2 {
                        let eps = p[d] + omt * v[d];
                        p[d] += hf * (v[d] + eps) + noise * z[d];
                    }
                }
                self.scratch = v;
            }
        }
    }

    /// Evaluates the model at (x, t) and writes the ODE drift dx/dt: the PF-ODE's on VP, the
    /// velocity on flow matching.
    fn drift(&mut self, model: &dyn ScoreModel, x: &[Point], t: f64, out: &mut [Point]) {
        if self.process == Process::Fm {
            model.velocity(x, t as f32, out);
            self.nfe += 1;
        } else {
            self.eval(model, x, t);
            self.ode_drift(x, t, out);
        }
    }

    fn heun_step(&mut self, model: &dyn ScoreModel, x: &mut [Point], t: f64, h: f64) {
        let n = x.len();
        let mut d1 = std::mem::take(&mut self.acc);
        let mut x2 = std::mem::take(&mut self.scratch);
        d1.resize(n, [0.0; 2]);
        x2.resize(n, [0.0; 2]);
        self.drift(model, x, t, &mut d1);
        x2.copy_from_slice(x);
        axpy(&mut x2, h as f32, &d1);
        let mut d2 = vec![[0.0; 2]; n];
        self.drift(model, &x2, t + h, &mut d2);
        for ((p, a), b) in x.iter_mut().zip(&d1).zip(&d2) {
            p[0] += 0.5 * h as f32 * (a[0] + b[0]);
            p[1] += 0.5 * h as f32 * (a[1] + b[1]);
        }
        self.acc = d1;
        self.scratch = x2;
    }

    fn rk4_step(&mut self, model: &dyn ScoreModel, x: &mut [Point], t: f64, h: f64) {
        let n = x.len();
        let mut sum = std::mem::take(&mut self.acc);
        let mut stage = std::mem::take(&mut self.scratch);
        sum.clear();
        sum.resize(n, [0.0; 2]);
        stage.resize(n, [0.0; 2]);
        let mut d = vec![[0.0; 2]; n];
        // k1 at (t, x); k2 at (t + h/2, x + h/2 k1); k3 at (t + h/2, x + h/2 k2); k4 at (t + h, x + h k3).
        let stages = [(0.0, 1.0), (0.5, 2.0), (0.5, 2.0), (1.0, 1.0)];
        stage.copy_from_slice(x);
        for (i, &(c, w)) in stages.iter().enumerate() {
            self.drift(model, &stage, t + c * h, &mut d);
            axpy(&mut sum, w, &d);
            if let Some(&(c_next, _)) = stages.get(i + 1) {
                stage.copy_from_slice(x);
                axpy(&mut stage, (c_next * h) as f32, &d);
            }
        }
        axpy(x, (h / 6.0) as f32, &sum);
        self.acc = sum;
        self.scratch = stage;
    }

    /// DDIM from t to s: x_s = α_s x̂₀ + √(σ_s² − c²) ε̂ + c z with
    /// c = η (σ_s/σ_t) √(1 − α_t²/α_s²). η = 1 is DDPM ancestral with the posterior variance β̃.
    fn ddim_step(&mut self, x: &mut [Point], t: f64, s: f64, eta: f64, k: u32) {
        let sch = &self.schedule;
        let (a_t, g_t, a_s, g_s) = (sch.alpha(t), sch.sigma(t), sch.alpha(s), sch.sigma(s));
        let c = eta * (g_s / g_t) * (1.0 - (a_t / a_s).powi(2)).max(0.0).sqrt();
        let dir = (g_s * g_s - c * c).max(0.0).sqrt();
        let (ca, cg, cd, cc) = (
            (a_s / a_t) as f32,
            (a_s * g_t / a_t) as f32,
            dir as f32,
            c as f32,
        );
        for (i, (p, e)) in x.iter_mut().zip(&self.eps).enumerate() {
            // α_s x̂₀ = (α_s/α_t)(x − σ_t ε̂)
            let z = if cc > 0.0 {
                normal2(self.cfg.seed, k, i as u32, STREAM_STEP)
            } else {
                [0.0; 2]
            };
            for d in 0..2 {
                p[d] = ca * p[d] - cg * e[d] + cd * e[d] + cc * z[d];
            }
        }
    }

    /// DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): with h = λ_s − λ_t and data predictions
    /// D (first step: D = x̂₀(t); later: D = (1 + 1/2r) x̂₀(t) − (1/2r) x̂₀(previous), r = h_prev/h),
    /// x_s = (σ_s/σ_t) x − α_s (e^{−h} − 1) D.
    fn dpm2m_step(&mut self, model: &dyn ScoreModel, x: &mut [Point], t: f64, s: f64) {
        self.eval(model, x, t);
        let sch = self.schedule;
        let (a_t, g_t, a_s, g_s) = (sch.alpha(t), sch.sigma(t), sch.alpha(s), sch.sigma(s));
        let h = sch.lambda(s) - sch.lambda(t);
        let x0: Vec<Point> = x
            .iter()
            .zip(&self.eps)
            .map(|(p, e)| {
                [
                    ((p[0] as f64 - g_t * e[0] as f64) / a_t) as f32,
                    ((p[1] as f64 - g_t * e[1] as f64) / a_t) as f32,
                ]
            })
            .collect();
        let (w_now, w_prev) = match &self.prev_x0 {
            Some((_, h_prev)) => {
                let r = h_prev / h;
                (1.0 + 0.5 / r, -0.5 / r)
            }
            None => (1.0, 0.0),
        };
        let (cx, cd) = ((g_s / g_t) as f32, (-a_s * (-h).exp_m1()) as f32);
        for (i, p) in x.iter_mut().enumerate() {
            let mut d = [w_now as f32 * x0[i][0], w_now as f32 * x0[i][1]];
            if let Some((prev, _)) = &self.prev_x0 {
                d[0] += w_prev as f32 * prev[i][0];
                d[1] += w_prev as f32 * prev[i][1];
            }
            p[0] = cx * p[0] + cd * d[0];
            p[1] = cx * p[1] + cd * d[1];
        }
        self.prev_x0 = Some((x0, h));
    }

    /// Langevin corrector at time t (Song et al. 2021, Alg. 5): step ε = 2 (r ‖z‖/‖s‖)² with
    /// the batch-mean norms, then x ← x + ε s + √(2ε) z.
    fn langevin_corrector(&mut self, x: &mut [Point], t: f64, k: u32) {
        let sigma = self.schedule.sigma(t);
        let n = x.len().max(1) as f64;
        let (mut s_norm, mut z_norm) = (0.0f64, 0.0f64);
        let z: Vec<Point> = (0..x.len())
            .map(|i| normal2(self.cfg.seed, k, i as u32, STREAM_CORRECTOR))
            .collect();
        for (e, zi) in self.eps.iter().zip(&z) {
            s_norm += ((e[0] * e[0] + e[1] * e[1]) as f64).sqrt() / sigma;
            z_norm += ((zi[0] * zi[0] + zi[1] * zi[1]) as f64).sqrt();
        }
        let ratio = (self.cfg.snr * z_norm / n) / (s_norm / n).max(1e-12);
        let delta = 2.0 * ratio * ratio;
        let (cs, cz) = ((-delta / sigma) as f32, (2.0 * delta).sqrt() as f32);
        for ((p, e), zi) in x.iter_mut().zip(&self.eps).zip(&z) {
            p[0] += cs * e[0] + cz * zi[0];
            p[1] += cs * e[1] + cz * zi[1];
        }
    }
}

/// x += a·y.
fn axpy(x: &mut [Point], a: f32, y: &[Point]) {
    for (p, d) in x.iter_mut().zip(y) {
        p[0] += a * d[0];
        p[1] += a * d[1];
    }
}

/// Euler–Maruyama on the reverse SDE from t to t + h (h < 0):
/// x ← x + h (−½βx + β ε̂/σ) + √(β|h|) z.
#[allow(clippy::too_many_arguments)]
fn em_step(
    schedule: &Schedule,
    t: f64,
    h: f64,
    x: &mut [Point],
    eps: &[Point],
    seed: u32,
    k: u32,
    stream: u32,
) {
    let beta = schedule.beta(t);
    let (cx, ce) = (
        (1.0 - 0.5 * beta * h) as f32,
        (h * beta / schedule.sigma(t)) as f32,
    );
    let noise = (beta * -h).sqrt() as f32;
    for (i, (p, e)) in x.iter_mut().zip(eps).enumerate() {
        let z = normal2(seed, k, i as u32, stream);
        p[0] = cx * p[0] + ce * e[0] + noise * z[0];
        p[1] = cx * p[1] + ce * e[1] + noise * z[1];
    }
}

/// x ← x + δ s + √(2δ) z with s = −ε̂/σ.
fn langevin_step(
    x: &mut [Point],
    eps: &[Point],
    sigma: f64,
    delta: f64,
    seed: u32,
    k: u32,
    stream: u32,
) {
    let (cs, cz) = ((-delta / sigma) as f32, (2.0 * delta).sqrt() as f32);
    for (i, (p, e)) in x.iter_mut().zip(eps).enumerate() {
        let z = normal2(seed, k, i as u32, stream);
        p[0] += cs * e[0] + cz * z[0];
        p[1] += cs * e[1] + cz * z[1];
    }
}

/// Samples `n` particles from the prior and runs the sampler to the end; returns the particles
/// and the number of network evaluations.
pub fn sample(
    model: &dyn ScoreModel,
    schedule: Schedule,
    cfg: SamplerConfig,
    n: usize,
) -> (Vec<Point>, usize) {
    let mut x = prior(n, cfg.seed);
    let mut sampler = Sampler::new(schedule, cfg);
    sampler.run(model, &mut x);
    (x, sampler.nfe())
}
