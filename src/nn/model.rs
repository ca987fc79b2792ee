//! The trained network as a `ScoreModel`: what the samplers and the likelihood drive.
//!
//! A class-conditional network (`MlpConfig::num_classes > 0`) is evaluated for one class at a
//! time (`eps_class`, `eps_div_class`); its class row of `W₀` is folded into layer 0's
//! per-time offset, so a conditional evaluation costs what an unconditional one does. The
//! plain `ScoreModel` methods use the null class ∅ (the unconditional model that
//! classifier-free guidance needs); `teach::guidance` combines the two.

use rayon::prelude::*;

use super::NnError;
use super::cpu::{CpuNet, EvalWorkspace, TrainWorkspace, WorkspacePool};
use super::mlp::{MlpConfig, Parameterization};
use super::simd::all_finite;
use super::weights::SavedModel;
use crate::Point;
use crate::math::model::{velocity_div_from_eps, velocity_from_eps};
use crate::math::{Process, Schedule, ScoreModel};

/// Particles per parallel task: enough work (~0.1 ms for the reference net) to amortise a
/// rayon hand-off, few enough activations (2 × 126 KB at width 128) to stay in L2, and a
/// multiple of the kernel's 6 rows.
pub const EVAL_CHUNK: usize = 252;

/// A network (config + flat parameters) under a schedule, evaluated on the CPU.
///
/// `Sync`: each rayon thread borrows its own workspace, so `eps` allocates nothing after the
/// first calls. Points are evaluated in parallel chunks of `EVAL_CHUNK`.
pub struct NetModel {
    config: MlpConfig,
    schedule: Schedule,
    params: Vec<f32>,
    net: CpuNet,
    pool: WorkspacePool<EvalWorkspace>,
}

impl Clone for NetModel {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            schedule: self.schedule,
            params: self.params.clone(),
            net: self.net.clone(),
            pool: WorkspacePool::new(),
        }
    }
}

impl std::fmt::Debug for NetModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetModel")
            .field("config", &self.config)
            .field("schedule", &self.schedule)
            .field("num_params", &self.params.len())
            .finish()
    }
}

impl NetModel {
    /// Checks the config, schedule and parameters (length, finiteness).
    pub fn new(config: MlpConfig, schedule: Schedule, params: Vec<f32>) -> Result<Self, NnError> {
        config.validate()?;
        schedule
            .validate()
            .map_err(|e| NnError::InvalidTraining(e.to_string()))?;
        config.check_params(&params)?;
        if !all_finite(&params) {
            return Err(NnError::NonFiniteParams);
        }
        let mut net = CpuNet::new(&config);
        net.load(&params, false);
        Ok(Self {
            config,
            schedule,
            params,
            net,
            pool: WorkspacePool::new(),
        })
    }

    /// The model stored in a weights file.
    pub fn from_saved(saved: &SavedModel) -> Result<Self, NnError> {
        Self::new(saved.config.clone(), saved.schedule, saved.params.clone())
    }

    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// α(t), σ(t) of the network's path in f32 (from the f64 schedule for VP).
    fn alpha_sigma(&self, t: f32) -> (f32, f32) {
        let (a, s) = self.config.process.alpha_sigma(&self.schedule, t as f64);
        (a as f32, s as f32)
    }

    /// The number of classes (0: unconditional).
    pub fn num_classes(&self) -> u32 {
        self.config.num_classes
    }

    /// The raw network outputs `o` at a time per point (general path: each row embeds its
    /// own t), for the null class ∅. For tests and for comparing backends.
    pub fn raw_output(&self, xs: &[Point], ts: &[f32], out: &mut [Point]) {
        self.raw_output_with_classes(xs, ts, None, out);
    }

    /// As `raw_output`, with a class per point (`None` = ∅; all ∅ when `classes` is `None`):
    /// the training forward pass, which gathers the class rows per row.
    pub fn raw_output_with_classes(
        &self,
        xs: &[Point],
        ts: &[f32],
        classes: Option<&[Option<u32>]>,
        out: &mut [Point],
    ) {
        assert_eq!(xs.len(), ts.len());
        assert_eq!(xs.len(), out.len());
        if let Some(c) = classes {
            assert_eq!(xs.len(), c.len());
        }
        let mut ws = TrainWorkspace::default();
        let ld = self.net.input_ld();
        for (chunk, ((xs, ts), out)) in xs
            .chunks(EVAL_CHUNK)
            .zip(ts.chunks(EVAL_CHUNK))
            .zip(out.chunks_mut(EVAL_CHUNK))
            .enumerate()
        {
            let rows = xs.len();
            ws.ensure(&self.net, rows);
            if self.config.is_conditional() {
                for (r, row) in ws.class_rows[..rows].iter_mut().enumerate() {
                    let class = classes.and_then(|c| c[chunk * EVAL_CHUNK + r]);
                    *row = self.config.class_row(class).unwrap_or(0) as u32;
                }
            }
            for (row, x) in ws.input.chunks_exact_mut(ld).zip(xs) {
                row[..2].copy_from_slice(x);
            }
            self.net.embedding().write_rows(ts, &mut ws.input, ld, 2);
            self.net.forward(&self.params, &mut ws, rows);
            out.as_flattened_mut().copy_from_slice(&ws.out[..2 * rows]);
        }
    }

    /// ε̂ at a time per point.
    pub fn eps_per_point(&self, xs: &[Point], ts: &[f32], out: &mut [Point]) {
        self.raw_output(xs, ts, out);
        for ((o, x), &t) in out.iter_mut().zip(xs).zip(ts) {
            let (alpha, sigma) = self.alpha_sigma(t);
            *o = eps_of(&self.config, *o, *x, alpha, sigma);
        }
    }

    /// ε̂ (or the raw output) for one chunk at one time and class.
    fn eps_chunk(
        &self,
        xs: &[Point],
        t: f32,
        class: Option<u32>,
        out: &mut [Point],
        ws: &mut EvalWorkspace,
        want: Want,
    ) {
        let (mut c0, mut emb) = (std::mem::take(&mut ws.c0), std::mem::take(&mut ws.emb));
        self.net
            .time_offset(&self.params, t, class, &mut c0, &mut emb);
        self.net.output_at_time(&self.params, &c0, xs, ws, out);
        (ws.c0, ws.emb) = (c0, emb);
        if want == Want::Eps {
            let (alpha, sigma) = self.alpha_sigma(t);
            to_eps(&self.config, xs, out, alpha, sigma);
        }
    }

    /// ε̂ and ∇·ε̂ (or the raw output and its divergence) for one chunk at one time and class.
    #[allow(clippy::too_many_arguments)]
    fn eps_div_chunk(
        &self,
        xs: &[Point],
        t: f32,
        class: Option<u32>,
        out: &mut [Point],
        div: &mut [f32],
        ws: &mut EvalWorkspace,
        want: Want,
    ) {
        let (mut c0, mut emb) = (std::mem::take(&mut ws.c0), std::mem::take(&mut ws.emb));
        let mut jac = std::mem::take(&mut ws.jac);
        jac.resize(xs.len(), [0.0; 2]);
        self.net
            .time_offset(&self.params, t, class, &mut c0, &mut emb);
        self.net
            .output_and_jacobian_diag(&self.params, &c0, xs, ws, out, &mut jac);
        let (alpha, sigma) = self.alpha_sigma(t);
        if want == Want::Eps {
            to_eps(&self.config, xs, out, alpha, sigma);
        }
        for (d, j) in div.iter_mut().zip(&jac) {
            let trace = j[0] + j[1];
            *d = match (want, self.config.process, self.config.param) {
                (Want::Raw, ..) | (_, Process::Vp, Parameterization::Eps) => trace,
                (_, Process::Fm, _) => 2.0 + alpha * trace,
                (_, Process::Vp, Parameterization::Score) => -sigma * trace,
                (_, Process::Vp, Parameterization::X0) => (2.0 - alpha * trace) / sigma,
            };
        }
        (ws.c0, ws.emb, ws.jac) = (c0, emb, jac);
    }
}

/// What an evaluation returns: ε̂, or the raw output (a flow-matching network's velocity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Eps,
    Raw,
}

/// ε̂ from the raw output o at x (docs/architecture.md §3: score `ε̂ = −σ o`, x₀
/// `ε̂ = (x − α o)/σ`; flow matching `ε̂ = x + (1 − t) v = x + α o`).
fn eps_of(config: &MlpConfig, o: Point, x: Point, alpha: f32, sigma: f32) -> Point {
    match config.process {
        Process::Vp => config.param.eps_from_output(o, x, alpha, sigma),
        Process::Fm => [x[0] + alpha * o[0], x[1] + alpha * o[1]],
    }
}

/// Raw outputs → ε̂ in place.
fn to_eps(config: &MlpConfig, xs: &[Point], out: &mut [Point], alpha: f32, sigma: f32) {
    if config.process == Process::Fm || config.param != Parameterization::Eps {
        for (o, x) in out.iter_mut().zip(xs) {
            *o = eps_of(config, *o, *x, alpha, sigma);
        }
    }
}

impl NetModel {
    /// ε̂(x, t | class) for every point: `Some(y)` for class y < `num_classes`, `None` (or a
    /// class out of range) for the null class ∅. An unconditional network ignores `class`.
    pub fn eps_class(&self, xs: &[Point], t: f32, class: Option<u32>, out: &mut [Point]) {
        self.eval(xs, t, class, out, Want::Eps);
    }

    fn eval(&self, xs: &[Point], t: f32, class: Option<u32>, out: &mut [Point], want: Want) {
        assert_eq!(xs.len(), out.len(), "eps: xs and out differ in length");
        if xs.len() <= EVAL_CHUNK {
            self.pool
                .with(|ws| self.eps_chunk(xs, t, class, out, ws, want));
        } else {
            xs.par_chunks(EVAL_CHUNK)
                .zip(out.par_chunks_mut(EVAL_CHUNK))
                .for_each(|(xs, out)| {
                    self.pool
                        .with(|ws| self.eps_chunk(xs, t, class, out, ws, want))
                });
        }
    }

    /// ε̂ and its exact divergence for `class` (as `eps_class`).
    pub fn eps_div_class(
        &self,
        xs: &[Point],
        t: f32,
        class: Option<u32>,
        out: &mut [Point],
        div: &mut [f32],
    ) {
        self.eval_div(xs, t, class, out, div, Want::Eps);
    }

    fn eval_div(
        &self,
        xs: &[Point],
        t: f32,
        class: Option<u32>,
        out: &mut [Point],
        div: &mut [f32],
        want: Want,
    ) {
        assert_eq!(xs.len(), out.len(), "eps_div: xs and out differ in length");
        assert_eq!(xs.len(), div.len(), "eps_div: xs and div differ in length");
        if xs.len() <= EVAL_CHUNK {
            self.pool
                .with(|ws| self.eps_div_chunk(xs, t, class, out, div, ws, want));
        } else {
            xs.par_chunks(EVAL_CHUNK)
                .zip(out.par_chunks_mut(EVAL_CHUNK))
                .zip(div.par_chunks_mut(EVAL_CHUNK))
                .for_each(|((xs, out), div)| {
                    self.pool
                        .with(|ws| self.eps_div_chunk(xs, t, class, out, div, ws, want))
                });
        }
    }
}

/// The network for the null class ∅ (for an unconditional network: the network).
impl ScoreModel for NetModel {
    fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        self.eps_class(xs, t, None, out);
    }

    /// Exact divergence: forward-mode derivatives along x₀ and x₁ through the network (about
    /// three forward passes), instead of four extra evaluations and a finite-difference error.
    fn eps_div(&self, xs: &[Point], t: f32, out: &mut [Point], div: &mut [f32]) {
        self.eps_div_class(xs, t, None, out, div);
    }

    fn process(&self) -> Process {
        self.config.process
    }

    /// A flow-matching network's raw output is v, also at t = 1 (where v from ε̂ is 0/0).
    fn velocity(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        match self.config.process {
            Process::Fm => self.eval(xs, t, None, out, Want::Raw),
            Process::Vp => velocity_from_eps(self, xs, t, out),
        }
    }

    fn velocity_div(&self, xs: &[Point], t: f32, out: &mut [Point], div: &mut [f32]) {
        match self.config.process {
            Process::Fm => self.eval_div(xs, t, None, out, div, Want::Raw),
            Process::Vp => velocity_div_from_eps(self, xs, t, out, div),
        }
    }
}
