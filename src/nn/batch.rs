//! The batches of denoising score matching and of flow matching: sample i of step k is a pure
//! function of `(seed, k, i)`, so this CPU sampler and the GPU kernel `shaders/dsm.wgsl` draw
//! the same batch (see `dsm` for the streams). Both processes draw the same (x₀, t, ε) and set
//! `x_t = α x₀ + σ ε` on their own path; the target is ε for VP and the velocity ε − x₀ for FM.

use super::train_config::{TrainConfig, Weighting};
use crate::Point;
use crate::math::rng::{
    STREAM_CLASS_DROP, STREAM_EPS, STREAM_INDEX, STREAM_TIME, normal2, uniform,
};
use crate::math::{Process, Schedule};

/// Entries of the importance sampler's inverse-CDF table (a GPU kernel uses the same table).
pub const IMPORTANCE_TABLE_SIZE: usize = 1024;

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
    /// What the network's ε̂ (VP) or raw output (FM) is fitted to: ε for VP, ε − x₀ for FM.
    pub target: Point,
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
    process: Process,
    schedule: Schedule,
    t_min: f32,
    weighting: Weighting,
    table: Option<ImportanceTable>,
    /// Whether samples carry classes (a conditional network), and the label dropout.
    conditional: bool,
    class_dropout: f32,
}

impl DsmSampler {
    /// A VP sampler for an unconditional network (every sample's class is `None`).
    pub fn new(seed: u32, schedule: Schedule, t_min: f32, weighting: Weighting) -> Self {
        let table =
            (weighting == Weighting::Importance).then(|| ImportanceTable::new(&schedule, t_min));
        Self {
            seed,
            process: Process::Vp,
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
        Self::new(cfg.seed, cfg.schedule, cfg.t_min, cfg.weighting_used())
            .with_classes(cfg.net.is_conditional(), cfg.class_dropout)
            .on(cfg.net.process)
    }

    /// Draws on the path of `process`.
    pub fn on(mut self, process: Process) -> Self {
        self.process = process;
        self
    }

    pub fn process(&self) -> Process {
        self.process
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
        let (alpha, sigma) = self.process.alpha_sigma(&self.schedule, t as f64);
        let (alpha, sigma) = (alpha as f32, sigma as f32);
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
        let target = match self.process {
            Process::Vp => eps,
            Process::Fm => [eps[0] - x0[0], eps[1] - x0[1]],
        };
        let class = match labels {
            Some(labels) if self.conditional && !self.drops_label(step, i) => Some(labels[index]),
            _ => None,
        };
        DsmSample {
            index,
            t,
            eps,
            target,
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
