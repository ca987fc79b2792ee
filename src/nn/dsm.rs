//! Denoising score matching (DESIGN §3): the loss, its batches and the `Trainer`.
//!
//! `L(θ) = E_t E_x₀ E_ε w(t) ‖ε̂_θ(α x₀ + σ ε, t) − ε‖²`, estimated on a batch of B triples
//! `(x₀, t, ε)` as `(1/B) Σ_i w_i ‖ε̂_i − ε_i‖²`.
//!
//! Sample i of step k is a pure function of `(seed, k, i)` through the counter-based RNG of
//! `math::rng`, so a run is reproducible and a GPU kernel can redraw the same batch:
//! data index `⌊u·n⌋` with `u = uniform(seed, k, i, STREAM_INDEX)`, time from
//! `uniform(seed, k, i, STREAM_TIME)`, noise `normal2(seed, k, i, STREAM_EPS)`.
//! The step enters the RNG as `k mod 2³²`.
//!
//! **Classes** (classifier-free guidance, Ho & Salimans): a conditional network
//! (`MlpConfig::num_classes > 0`) trained on labelled data sees sample i's label `labels[index]`,
//! replaced by the null class ∅ when `uniform(seed, k, i, STREAM_CLASS_DROP) < class_dropout`,
//! so one network learns both ε̂(x, t | y) and ε̂(x, t | ∅). Without labels every sample is ∅:
//! the network is then an ordinary unconditional model.

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::NnError;
use super::adam::{Adam, Ema};
use super::cpu::{CpuNet, TrainWorkspace, WorkspacePool};
use super::mlp::{MlpConfig, Parameterization};
use super::model::NetModel;
use super::simd::multiversion;
use crate::Point;
use crate::math::Schedule;
use crate::math::rng::{
    STREAM_CLASS_DROP, STREAM_EPS, STREAM_INDEX, STREAM_TIME, normal2, uniform,
};

/// Rows per chunk of a batch: a chunk's activations (≈ 0.4 MB for width 128) stay in L2, and
/// batch 256 splits into one chunk per core. The chunking (and the grouping of chunks, see
/// `MAX_GROUPS`) depends on the batch only, so the gradient, summed in a fixed order, is
/// bitwise the same for any thread count.
pub const CHUNK_ROWS: usize = 128;
/// Most gradient buffers a step sums (groups of consecutive chunks): enough tasks to keep
/// the cores busy, few enough that the sum stays small.
pub const MAX_GROUPS: usize = 8;
/// Entries of the importance sampler's inverse-CDF table (a GPU kernel uses the same table).
pub const IMPORTANCE_TABLE_SIZE: usize = 1024;
/// Largest batch accepted.
pub const MAX_BATCH: usize = 1 << 20;

/// How the loss weighs times, and how t is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Weighting {
    /// `w = 1`, `t ~ U[t_min, 1]`: the usual ε-loss (DDPM's "simple" loss).
    #[default]
    Uniform,
    /// `w = 1/σ²`, `t ~ U[t_min, 1]`: the score-matching loss of the lecture,
    /// `E‖s_θ − ∇log p(x_t|x₀)‖²` written in ε; its variance explodes as t → 0.
    InverseSigma2,
    /// The same loss, but `t ~ π(t) ∝ 1/σ(t)²` on [t_min, 1] with per-sample weight
    /// `w/π = Z/(1 − t_min)`, a constant (`Z = ∫ σ⁻² dt`): small t are drawn often instead of
    /// amplified. The factor 1/(1 − t_min) makes its expectation equal `InverseSigma2`'s.
    Importance,
}

impl Weighting {
    pub const ALL: [Weighting; 3] = [
        Weighting::Uniform,
        Weighting::InverseSigma2,
        Weighting::Importance,
    ];

    /// Name used on the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Weighting::Uniform => "uniform",
            Weighting::InverseSigma2 => "inverse-sigma2",
            Weighting::Importance => "importance",
        }
    }
}

/// Everything a training run needs besides its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub net: MlpConfig,
    pub schedule: Schedule,
    /// Adam's learning rate.
    pub lr: f32,
    pub batch: usize,
    pub seed: u32,
    /// Smallest training time (DESIGN §3).
    pub t_min: f32,
    pub weighting: Weighting,
    /// Decay of the weights' moving average (with warm-up, see `adam::Ema`).
    pub ema_decay: f32,
    /// Probability p ∈ [0, 1] that a sample's class is replaced by the null class ∅ (classifier-
    /// free guidance's label dropout; used only by conditional networks with labelled data).
    pub class_dropout: f32,
}

/// The usual label dropout of classifier-free guidance.
pub const DEFAULT_CLASS_DROPOUT: f32 = 0.1;

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            net: MlpConfig::default(),
            schedule: Schedule::default(),
            lr: 2e-3,
            batch: 256,
            seed: 0,
            t_min: 1e-3,
            weighting: Weighting::Uniform,
            ema_decay: 0.999,
            class_dropout: DEFAULT_CLASS_DROPOUT,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), NnError> {
        self.net.validate()?;
        self.schedule
            .validate()
            .map_err(|e| NnError::InvalidTraining(e.to_string()))?;
        check_lr(self.lr)?;
        check_batch(self.batch)?;
        check_t_min(self.t_min)?;
        check_ema_decay(self.ema_decay)?;
        check_class_dropout(self.class_dropout)?;
        Ok(())
    }
}

fn check_class_dropout(p: f32) -> Result<(), NnError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(NnError::InvalidTraining(format!(
            "class dropout must be in [0, 1] (got {p})"
        )))
    }
}

/// Labels, if given, must be one per point and below `num_classes` (for a conditional
/// network; an unconditional one ignores them).
fn check_labels(labels: Option<&[u32]>, points: usize, num_classes: u32) -> Result<(), NnError> {
    let Some(labels) = labels else {
        return Ok(());
    };
    if labels.len() != points {
        return Err(NnError::InvalidLabels(format!(
            "{} labels for {points} points",
            labels.len()
        )));
    }
    if num_classes > 0
        && let Some(index) = labels.iter().position(|&l| l >= num_classes)
    {
        return Err(NnError::InvalidLabels(format!(
            "point {index} has label {}, but the network has {num_classes} classes",
            labels[index]
        )));
    }
    Ok(())
}

fn check_lr(lr: f32) -> Result<(), NnError> {
    if lr.is_finite() && lr > 0.0 {
        Ok(())
    } else {
        Err(NnError::InvalidTraining(format!(
            "learning rate must be finite and positive (got {lr})"
        )))
    }
}

fn check_batch(batch: usize) -> Result<(), NnError> {
    if (1..=MAX_BATCH).contains(&batch) {
        Ok(())
    } else {
        Err(NnError::InvalidTraining(format!(
            "batch must be in 1..={MAX_BATCH} (got {batch})"
        )))
    }
}

fn check_t_min(t_min: f32) -> Result<(), NnError> {
    if t_min > 0.0 && t_min < 1.0 {
        Ok(())
    } else {
        Err(NnError::InvalidTraining(format!(
            "t_min must be in (0, 1) (got {t_min})"
        )))
    }
}

fn check_ema_decay(decay: f32) -> Result<(), NnError> {
    if (0.0..1.0).contains(&decay) {
        Ok(())
    } else {
        Err(NnError::InvalidTraining(format!(
            "EMA decay must be in [0, 1) (got {decay})"
        )))
    }
}

/// Data must be non-empty and finite.
fn check_data(data: &[Point]) -> Result<(), NnError> {
    if data.is_empty() {
        return Err(NnError::EmptyData);
    }
    match data
        .iter()
        .position(|p| !(p[0].is_finite() && p[1].is_finite()))
    {
        Some(index) => Err(NnError::NonFiniteData { index }),
        None => Ok(()),
    }
}

multiversion! {
    /// Whether no element is NaN or ±∞ (an exponent of all ones), as one vectorisable pass.
    pub(crate) fn all_finite(xs: &[f32]) -> bool {
        let mut bad = 0u32;
        for x in xs {
            bad |= u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000);
        }
        bad == 0
    }
}

multiversion! {
    /// `out = Σ_c chunk_grads[c·n + lo ..]` over `chunks` chunks, in chunk order.
    fn sum_chunks(out: &mut [f32], chunk_grads: &[f32], n: usize, lo: usize, chunks: usize) {
        out.copy_from_slice(&chunk_grads[lo..lo + out.len()]);
        for c in 1..chunks {
            let src = &chunk_grads[c * n + lo..c * n + lo + out.len()];
            for (o, &g) in out.iter_mut().zip(src) {
                *o += g;
            }
        }
    }
}

/// The inverse CDF of `π(t) ∝ 1/σ(t)²` on [t_min, 1], tabulated at `IMPORTANCE_TABLE_SIZE + 1`
/// equally spaced probabilities and interpolated linearly between them.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportanceTable {
    /// `t_of_u[j] = F⁻¹(j / N)`; `t_of_u[0] = t_min`, `t_of_u[N] = 1`.
    pub t_of_u: Vec<f32>,
    /// `Z = ∫_{t_min}^1 σ(t)⁻² dt`.
    pub normalizer: f64,
    /// Per-sample weight `Z / (1 − t_min)`.
    pub weight: f32,
}

impl ImportanceTable {
    /// Integrates π on a fine grid uniform in log t (π ~ 1/(β_min t) near 0, so most of its
    /// mass is in the first decades), trapezoid rule in f64, then inverts the cumulative sum.
    pub fn new(schedule: &Schedule, t_min: f32) -> Self {
        const FINE: usize = 1 << 14;
        let (s0, s1) = ((t_min as f64).ln(), 0.0f64);
        let ds = (s1 - s0) / FINE as f64;
        // π(t) dt = σ⁻² t ds in s = ln t.
        let density = |s: f64| {
            let t = s.exp();
            t / schedule.sigma(t).powi(2)
        };
        let mut cdf = Vec::with_capacity(FINE + 1);
        cdf.push(0.0f64);
        let mut prev = density(s0);
        for m in 1..=FINE {
            let cur = density(s0 + m as f64 * ds);
            let last = cdf[m - 1];
            cdf.push(last + 0.5 * (prev + cur) * ds);
            prev = cur;
        }
        let z = cdf[FINE];
        let n = IMPORTANCE_TABLE_SIZE;
        let mut t_of_u = Vec::with_capacity(n + 1);
        let mut m = 0;
        for j in 0..=n {
            let target = z * j as f64 / n as f64;
            while m + 1 < FINE && cdf[m + 1] < target {
                m += 1;
            }
            let span = cdf[m + 1] - cdf[m];
            let frac = if span > 0.0 {
                ((target - cdf[m]) / span).clamp(0.0, 1.0)
            } else {
                0.0
            };
            t_of_u.push((s0 + (m as f64 + frac) * ds).exp() as f32);
        }
        t_of_u[0] = t_min;
        t_of_u[n] = 1.0;
        Self {
            t_of_u,
            normalizer: z,
            weight: (z / (1.0 - t_min as f64)) as f32,
        }
    }

    /// t for a uniform `u ∈ (0, 1)`: linear interpolation in the table.
    #[inline]
    pub fn sample(&self, u: f32) -> f32 {
        let n = self.t_of_u.len() - 1;
        let x = u * n as f32;
        let j = (x as usize).min(n - 1);
        let f = x - j as f32;
        self.t_of_u[j] + f * (self.t_of_u[j + 1] - self.t_of_u[j])
    }
}

/// One training example of a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DsmSample {
    /// Index of x₀ in the data.
    pub index: usize,
    pub t: f32,
    pub eps: Point,
    pub alpha: f32,
    pub sigma: f32,
    /// `α x₀ + σ ε`.
    pub x_t: Point,
    /// The loss weight of this sample (see `Weighting`).
    pub weight: f32,
    /// The class the network sees: the point's label, or `None` for the null class ∅ (label
    /// dropped, no labels, or an unconditional network).
    pub class: Option<u32>,
}

/// Draws DSM samples; a pure function of its settings and `(step, i)`.
#[derive(Clone, Debug)]
pub struct DsmSampler {
    seed: u32,
    schedule: Schedule,
    t_min: f32,
    weighting: Weighting,
    table: Option<ImportanceTable>,
    /// Whether samples carry classes (a conditional network), and the label dropout.
    conditional: bool,
    class_dropout: f32,
}

impl DsmSampler {
    /// A sampler for an unconditional network (every sample's class is `None`).
    pub fn new(seed: u32, schedule: Schedule, t_min: f32, weighting: Weighting) -> Self {
        let table =
            (weighting == Weighting::Importance).then(|| ImportanceTable::new(&schedule, t_min));
        Self {
            seed,
            schedule,
            t_min,
            weighting,
            table,
            conditional: false,
            class_dropout: 0.0,
        }
    }

    /// The sampler of a training run: as `new`, with classes when `cfg.net` is conditional.
    pub fn for_config(cfg: &TrainConfig) -> Self {
        Self::new(cfg.seed, cfg.schedule, cfg.t_min, cfg.weighting)
            .with_classes(cfg.net.is_conditional(), cfg.class_dropout)
    }

    /// Samples carry their point's label (`draw_labelled`), dropped to ∅ with probability
    /// `dropout`; `conditional = false` turns classes off.
    pub fn with_classes(mut self, conditional: bool, dropout: f32) -> Self {
        self.conditional = conditional;
        self.class_dropout = dropout;
        self
    }

    /// Whether the label of sample `i` of `step` is dropped (replaced by ∅):
    /// `uniform(seed, step, i, STREAM_CLASS_DROP) < p`.
    #[inline]
    pub fn drops_label(&self, step: u64, i: usize) -> bool {
        uniform(self.seed, step as u32, i as u32, STREAM_CLASS_DROP) < self.class_dropout
    }

    /// The importance table, when the weighting uses one.
    pub fn table(&self) -> Option<&ImportanceTable> {
        self.table.as_ref()
    }

    /// Sample `i` of step `step`, without labels (its class is ∅).
    #[inline]
    pub fn draw(&self, data: &[Point], step: u64, i: usize) -> DsmSample {
        self.draw_labelled(data, None, step, i)
    }

    /// Sample `i` of step `step`; with `labels` (one per point) and a conditional sampler, its
    /// class is the drawn point's label unless dropped (`drops_label`).
    #[inline]
    pub fn draw_labelled(
        &self,
        data: &[Point],
        labels: Option<&[u32]>,
        step: u64,
        i: usize,
    ) -> DsmSample {
        let (k, i32_) = (step as u32, i as u32);
        let n = data.len();
        let index = ((uniform(self.seed, k, i32_, STREAM_INDEX) * n as f32) as usize).min(n - 1);
        let u = uniform(self.seed, k, i32_, STREAM_TIME);
        let t = match &self.table {
            Some(table) => table.sample(u),
            None => self.t_min + (1.0 - self.t_min) * u,
        };
        let eps = normal2(self.seed, k, i32_, STREAM_EPS);
        let (alpha, sigma) = (
            self.schedule.alpha(t as f64) as f32,
            self.schedule.sigma(t as f64) as f32,
        );
        let weight = match (&self.table, self.weighting) {
            (Some(table), _) => table.weight,
            (None, Weighting::InverseSigma2) => 1.0 / (sigma * sigma),
            (None, _) => 1.0,
        };
        let x0 = data[index];
        let x_t = [
            alpha * x0[0] + sigma * eps[0],
            alpha * x0[1] + sigma * eps[1],
        ];
        let class = match labels {
            Some(labels) if self.conditional && !self.drops_label(step, i) => Some(labels[index]),
            _ => None,
        };
        DsmSample {
            index,
            t,
            eps,
            alpha,
            sigma,
            x_t,
            weight,
            class,
        }
    }

    /// The whole batch of a step (for tests and for checking a GPU batch).
    pub fn draw_batch(&self, data: &[Point], step: u64, batch: usize) -> Vec<DsmSample> {
        (0..batch).map(|i| self.draw(data, step, i)).collect()
    }

    /// The whole batch of a step with labels.
    pub fn draw_batch_labelled(
        &self,
        data: &[Point],
        labels: Option<&[u32]>,
        step: u64,
        batch: usize,
    ) -> Vec<DsmSample> {
        (0..batch)
            .map(|i| self.draw_labelled(data, labels, step, i))
            .collect()
    }
}

/// The buffers of one chunk: network activations and the drawn samples.
#[derive(Debug, Default)]
struct ChunkWorkspace {
    net: TrainWorkspace,
    samples: Vec<DsmSample>,
    ts: Vec<f32>,
}

/// Everything a chunk needs to read.
struct ChunkJob<'a> {
    net: &'a CpuNet,
    params: &'a [f32],
    sampler: &'a DsmSampler,
    data: &'a [Point],
    labels: Option<&'a [u32]>,
    step: u64,
    batch: usize,
}

impl ChunkJob<'_> {
    /// Loss sum `Σ w‖ε̂ − ε‖²` over rows `start..start + rows` of the batch, and the gradient of
    /// `(1/B) Σ` of it into `grad` (added to it with `accumulate`).
    fn run(
        &self,
        start: usize,
        rows: usize,
        ws: &mut ChunkWorkspace,
        grad: &mut [f32],
        accumulate: bool,
    ) -> f64 {
        ws.net.ensure(self.net, rows);
        ws.samples.clear();
        ws.samples.extend((start..start + rows).map(|i| {
            self.sampler
                .draw_labelled(self.data, self.labels, self.step, i)
        }));
        ws.ts.clear();
        ws.ts.extend(ws.samples.iter().map(|s| s.t));
        let ld = self.net.input_ld();
        for (row, s) in ws.net.input.chunks_exact_mut(ld).zip(&ws.samples) {
            row[..2].copy_from_slice(&s.x_t);
        }
        self.net
            .embedding()
            .write_rows(&ws.ts, &mut ws.net.input, ld, 2);
        let config = self.net.config();
        if config.is_conditional() {
            for (r, s) in ws.net.class_rows.iter_mut().zip(&ws.samples) {
                *r = config.class_row(s.class).unwrap_or(0) as u32;
            }
        }
        self.net.forward(self.params, &mut ws.net, rows);
        let param = self.net.config().param;
        let scale = 2.0 / self.batch as f32;
        let loss = loss_and_output_grad(param, &ws.samples, &ws.net.out, &mut ws.net.d_out, scale);
        self.net.backward(&mut ws.net, rows, grad, accumulate);
        loss
    }
}

/// `Σ w‖ε̂ − ε‖²` over the samples, and `dO = scale · w · (∂ε̂/∂o) (ε̂ − ε)` for each.
fn loss_and_output_grad(
    param: Parameterization,
    samples: &[DsmSample],
    out: &[f32],
    d_out: &mut [f32],
    scale: f32,
) -> f64 {
    let mut loss = 0.0f64;
    for ((s, o), d) in samples
        .iter()
        .zip(out.chunks_exact(2))
        .zip(d_out.chunks_exact_mut(2))
    {
        let e = param.eps_from_output([o[0], o[1]], s.x_t, s.alpha, s.sigma);
        let r = [e[0] - s.eps[0], e[1] - s.eps[1]];
        loss += (s.weight * (r[0] * r[0] + r[1] * r[1])) as f64;
        let g = scale * s.weight * param.output_gain(s.alpha, s.sigma);
        d[0] = g * r[0];
        d[1] = g * r[1];
    }
    loss
}

/// DSM training on the CPU: Adam on the current weights, an EMA copy for sampling.
pub struct Trainer {
    cfg: TrainConfig,
    data: Arc<[Point]>,
    /// One label per point, if the data is labelled.
    labels: Option<Arc<[u32]>>,
    params: Vec<f32>,
    adam: Adam,
    ema: Ema,
    steps: u64,
    sampler: DsmSampler,
    net: CpuNet,
    pool: WorkspacePool<ChunkWorkspace>,
    /// One gradient per group of chunks, summed in group order.
    chunk_grads: Vec<f32>,
    chunk_losses: Vec<f64>,
    grad: Vec<f32>,
}

impl Trainer {
    /// A fresh run: weights from `cfg.seed`, step 0. Without labels, a conditional network
    /// trains every sample as the null class ∅.
    pub fn new(cfg: TrainConfig, data: impl Into<Arc<[Point]>>) -> Result<Self, NnError> {
        Self::new_labelled(cfg, data.into(), None)
    }

    /// A fresh run on labelled data: `labels[i]` is the class of `data[i]`, each below
    /// `cfg.net.num_classes` (`NnError::InvalidLabels` otherwise). An unconditional network
    /// ignores the labels.
    pub fn with_labels(
        cfg: TrainConfig,
        data: impl Into<Arc<[Point]>>,
        labels: impl Into<Arc<[u32]>>,
    ) -> Result<Self, NnError> {
        Self::new_labelled(cfg, data.into(), Some(labels.into()))
    }

    fn new_labelled(
        cfg: TrainConfig,
        data: Arc<[Point]>,
        labels: Option<Arc<[u32]>>,
    ) -> Result<Self, NnError> {
        cfg.validate()?;
        check_data(&data)?;
        check_labels(labels.as_deref(), data.len(), cfg.net.num_classes)?;
        let params = cfg.net.init_params(cfg.seed);
        let mut net = CpuNet::new(&cfg.net);
        net.load(&params, true);
        Ok(Self {
            adam: Adam::new(params.len()),
            ema: Ema::new(&params, cfg.ema_decay),
            sampler: DsmSampler::for_config(&cfg),
            grad: vec![0.0; params.len()],
            params,
            steps: 0,
            net,
            pool: WorkspacePool::new(),
            chunk_grads: Vec::new(),
            chunk_losses: Vec::new(),
            data,
            labels,
            cfg,
        })
    }

    /// One Adam step on a fresh batch; returns the batch loss `(1/B) Σ w‖ε̂ − ε‖²`.
    ///
    /// A non-finite loss or gradient is reported as `NnError::NonFinite` and not applied: the
    /// weights, Adam's moments and the EMA stay as they were. The step counter still advances,
    /// so the next call draws a different batch.
    pub fn step(&mut self) -> Result<f32, NnError> {
        let loss = self.loss_and_grad();
        let step = self.steps;
        self.steps += 1;
        if !loss.is_finite() || !all_finite(&self.grad) {
            return Err(NnError::NonFinite { step });
        }
        self.adam.step(&mut self.params, &self.grad, self.cfg.lr);
        self.ema.update(&self.params);
        self.net.load(&self.params, true);
        Ok(loss as f32)
    }

    /// The loss and gradient of the current weights on the batch of step `steps_done()`, into
    /// `self.grad`.
    fn loss_and_grad(&mut self) -> f64 {
        let batch = self.cfg.batch;
        let chunks = batch.div_ceil(CHUNK_ROWS);
        // Consecutive chunks form at most MAX_GROUPS groups; a group's chunks run one after
        // the other on one thread, adding into the group's gradient.
        let per_group = chunks.div_ceil(MAX_GROUPS);
        let groups = chunks.div_ceil(per_group);
        let n = self.params.len();
        self.chunk_grads.resize(groups * n, 0.0);
        self.chunk_losses.resize(groups, 0.0);
        let job = ChunkJob {
            net: &self.net,
            params: &self.params,
            sampler: &self.sampler,
            data: &self.data,
            labels: self.labels.as_deref(),
            step: self.steps,
            batch,
        };
        let pool = &self.pool;
        let work = |(g, (grad, loss)): (usize, (&mut [f32], &mut f64))| {
            *loss = pool.with(|ws| {
                let mut sum = 0.0;
                for c in g * per_group..((g + 1) * per_group).min(chunks) {
                    let start = c * CHUNK_ROWS;
                    let rows = CHUNK_ROWS.min(batch - start);
                    sum += job.run(start, rows, ws, grad, c > g * per_group);
                }
                sum
            });
        };
        if groups == 1 {
            let slot = (self.chunk_grads.as_mut_slice(), &mut self.chunk_losses[0]);
            work((0, slot));
            std::mem::swap(&mut self.grad, &mut self.chunk_grads);
            self.chunk_grads.resize(n, 0.0);
        } else {
            let slots = self
                .chunk_grads
                .par_chunks_mut(n)
                .zip(self.chunk_losses.par_iter_mut());
            slots.enumerate().for_each(work);
            // Sum the group gradients in group order, in parallel over parameter ranges.
            let chunk_grads = &self.chunk_grads;
            self.grad
                .par_chunks_mut(4096)
                .enumerate()
                .for_each(|(r, out)| {
                    sum_chunks(out, chunk_grads, n, r * 4096, groups);
                });
        }
        self.chunk_losses.iter().sum::<f64>() / batch as f64
    }

    /// The loss of the current weights on the batch of `step`, without training (for tests
    /// and for comparing backends).
    pub fn loss_at(&mut self, step: u64) -> f32 {
        let saved = self.steps;
        self.steps = step;
        let loss = self.loss_and_grad();
        self.steps = saved;
        loss as f32
    }

    /// The gradient of the last `loss_at`/`step` call.
    pub fn last_grad(&self) -> &[f32] {
        &self.grad
    }

    pub fn steps_done(&self) -> u64 {
        self.steps
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    pub fn data(&self) -> &Arc<[Point]> {
        &self.data
    }

    /// The labels of the data, if it has them.
    pub fn labels(&self) -> Option<&Arc<[u32]>> {
        self.labels.as_ref()
    }

    /// The weights being trained.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Their moving average: the weights to sample with.
    pub fn ema_params(&self) -> &[f32] {
        self.ema.params()
    }

    /// The batch sampler of this run.
    pub fn sampler(&self) -> &DsmSampler {
        &self.sampler
    }

    /// A score model of the EMA (or current) weights, for the samplers.
    pub fn model(&self, ema: bool) -> Result<NetModel, NnError> {
        let params = if ema { self.ema.params() } else { &self.params };
        NetModel::new(self.cfg.net.clone(), self.cfg.schedule, params.to_vec())
    }

    /// Changes the learning rate from the next step on.
    pub fn set_lr(&mut self, lr: f32) -> Result<(), NnError> {
        check_lr(lr)?;
        self.cfg.lr = lr;
        Ok(())
    }

    pub fn set_batch(&mut self, batch: usize) -> Result<(), NnError> {
        check_batch(batch)?;
        self.cfg.batch = batch;
        Ok(())
    }

    pub fn set_ema_decay(&mut self, decay: f32) -> Result<(), NnError> {
        check_ema_decay(decay)?;
        self.cfg.ema_decay = decay;
        self.ema.set_decay(decay);
        Ok(())
    }

    /// Changes the loss weighting, keeping the weights.
    pub fn set_weighting(&mut self, weighting: Weighting) {
        self.cfg.weighting = weighting;
        self.rebuild_sampler();
    }

    /// Changes the noise schedule, keeping the weights (they then learn the new one).
    pub fn set_schedule(&mut self, schedule: Schedule) -> Result<(), NnError> {
        schedule
            .validate()
            .map_err(|e| NnError::InvalidTraining(e.to_string()))?;
        self.cfg.schedule = schedule;
        self.rebuild_sampler();
        Ok(())
    }

    pub fn set_t_min(&mut self, t_min: f32) -> Result<(), NnError> {
        check_t_min(t_min)?;
        self.cfg.t_min = t_min;
        self.rebuild_sampler();
        Ok(())
    }

    /// Trains on new data from the next step on, keeping the weights. The data has no
    /// labels (any earlier labels are dropped; see `set_data_with_labels`).
    pub fn set_data(&mut self, data: impl Into<Arc<[Point]>>) -> Result<(), NnError> {
        self.set_data_with_labels(data, None::<Arc<[u32]>>)
    }

    /// Trains on new data, labelled or not, from the next step on, keeping the weights. On an
    /// error nothing changes.
    pub fn set_data_with_labels<L: Into<Arc<[u32]>>>(
        &mut self,
        data: impl Into<Arc<[Point]>>,
        labels: Option<L>,
    ) -> Result<(), NnError> {
        let data = data.into();
        let labels = labels.map(Into::into);
        check_data(&data)?;
        check_labels(labels.as_deref(), data.len(), self.cfg.net.num_classes)?;
        self.data = data;
        self.labels = labels;
        Ok(())
    }

    /// Changes the label dropout p ∈ [0, 1] from the next step on.
    pub fn set_class_dropout(&mut self, p: f32) -> Result<(), NnError> {
        check_class_dropout(p)?;
        self.cfg.class_dropout = p;
        self.rebuild_sampler();
        Ok(())
    }

    /// Continues from given weights (e.g. loaded from a file): Adam's moments restart and the
    /// EMA restarts at `params`; the step counter is kept.
    pub fn set_params(&mut self, params: Vec<f32>) -> Result<(), NnError> {
        self.cfg.net.check_params(&params)?;
        if !all_finite(&params) {
            return Err(NnError::NonFiniteParams);
        }
        self.params = params;
        self.adam = Adam::new(self.params.len());
        self.ema = Ema::new(&self.params, self.cfg.ema_decay);
        self.net.load(&self.params, true);
        Ok(())
    }

    /// Starts over from fresh weights drawn with `seed` (which also seeds the batches).
    pub fn reset(&mut self, seed: u32) {
        self.cfg.seed = seed;
        self.params = self.cfg.net.init_params(seed);
        self.adam = Adam::new(self.params.len());
        self.ema = Ema::new(&self.params, self.cfg.ema_decay);
        self.steps = 0;
        self.net.load(&self.params, true);
        self.rebuild_sampler();
    }

    fn rebuild_sampler(&mut self) {
        self.sampler = DsmSampler::for_config(&self.cfg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::mlp::{Activation, Embedding};
    use crate::nn::simd::FORCE_PORTABLE;

    /// The portable code paths (what a CPU without AVX2/FMA runs) give the same loss,
    /// gradient and Adam step as the AVX2 kernels, for every activation. Run in a one-thread
    /// pool whose thread sets the (thread-local) override, with a batch of 10 chunks (so
    /// gradients are also accumulated over chunks) and more points than one `eps` chunk;
    /// unconditional and class-conditional (labelled, class 1 evaluated).
    #[test]
    fn portable_paths_match_the_avx2_kernels() {
        let data: Vec<Point> = (0..300u32)
            .map(|i| crate::math::rng::normal2(3, 0, i, 7))
            .collect();
        let labels: Vec<u32> = (0..300u32).map(|i| i % 3).collect();
        for (activation, num_classes) in Activation::ALL.into_iter().flat_map(|a| [(a, 0), (a, 3)])
        {
            // Width 40: two full panels and a tail of 8 columns.
            let net = MlpConfig {
                width: 40,
                depth: 3,
                activation,
                embedding: Embedding::Sinusoidal { dim: 12 },
                num_classes,
                ..MlpConfig::default()
            };
            let cfg = TrainConfig {
                net,
                batch: 1200,
                ..TrainConfig::default()
            };
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let run = |portable: bool| {
                pool.install(|| {
                    FORCE_PORTABLE.with(|f| f.set(portable));
                    let mut t =
                        Trainer::with_labels(cfg.clone(), data.clone(), labels.clone()).unwrap();
                    let loss = t.step().unwrap();
                    let grad = t.last_grad().to_vec();
                    let loss2 = t.loss_at(1);
                    let model = t.model(false).unwrap();
                    let (mut eps, mut div) =
                        (vec![[0.0f32; 2]; data.len()], vec![0.0f32; data.len()]);
                    let class = (num_classes > 0).then_some(1);
                    model.eps_div_class(&data, 0.3, class, &mut eps, &mut div);
                    let mut eps2 = vec![[0.0f32; 2]; data.len()];
                    model.eps_class(&data, 0.3, class, &mut eps2);
                    FORCE_PORTABLE.with(|f| f.set(false));
                    let mut outputs: Vec<f32> = eps.into_iter().chain(eps2).flatten().collect();
                    outputs.extend(div);
                    (loss, grad, loss2, t.params().to_vec(), outputs)
                })
            };
            let (fast, slow) = (run(false), run(true));
            assert!(
                (fast.0 - slow.0).abs() < 1e-5 * fast.0,
                "{activation:?}: loss {} vs {}",
                fast.0,
                slow.0
            );
            assert!(
                (fast.2 - slow.2).abs() < 1e-4 * fast.2,
                "{activation:?}: second loss"
            );
            let scale = fast.1.iter().fold(0.0f32, |m, g| m.max(g.abs()));
            for (a, b) in fast.1.iter().zip(&slow.1) {
                assert!(
                    (a - b).abs() < 1e-4 * scale,
                    "{activation:?}: gradient {a} vs {b}"
                );
            }
            for (a, b) in fast.3.iter().zip(&slow.3) {
                assert!((a - b).abs() < 1e-5, "{activation:?}: params {a} vs {b}");
            }
            for (a, b) in fast.4.iter().zip(&slow.4) {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                    "{activation:?}: eps/div {a} vs {b}"
                );
            }
        }
    }
}
