//! Denoising score matching (docs/architecture.md §3): the loss and the CPU `Trainer` (settings in
//! `train_config`, its batches in `batch`).
//!
//! `L(θ) = E_t E_x₀ E_ε w(t) ‖ε̂_θ(α x₀ + σ ε, t) − ε‖²`, estimated on a batch of B triples
//! `(x₀, t, ε)` as `(1/B) Σ_i w_i ‖ε̂_i − ε_i‖²`. Flow matching (`MlpConfig::process`) trains
//! the same way with `L = E ‖v_θ((1 − t) x₀ + t ε, t) − (ε − x₀)‖²` (see `batch`).
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

use super::NnError;
use super::adam::{Adam, Ema};
use super::batch::{DsmSample, DsmSampler};
use super::cpu::{CpuNet, TrainWorkspace, WorkspacePool};
use super::mlp::Parameterization;
use super::model::NetModel;
use super::simd::{all_finite, multiversion};
use super::train_config::{
    ConfigChange, Setting, TrainConfig, Weighting, check_batch, check_class_dropout, check_data,
    check_ema_decay, check_labels, check_lr, check_t_min,
};
use crate::Point;
use crate::math::Schedule;

/// Rows per chunk of a batch: a chunk's activations (≈ 0.4 MB for width 128) stay in L2, and
/// batch 256 splits into one chunk per core. The chunking (and the grouping of chunks, see
/// `MAX_GROUPS`) depends on the batch only, so the gradient, summed in a fixed order, is
/// bitwise the same for any thread count.
pub const CHUNK_ROWS: usize = 128;
/// Most gradient buffers a step sums (groups of consecutive chunks): enough tasks to keep
/// the cores busy, few enough that the sum stays small.
pub const MAX_GROUPS: usize = 8;

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

/// `Σ w‖ε̂ − ε‖²` over the samples, and `dO = scale · w · (∂ε̂/∂o) (ε̂ − ε)` for each (flow
/// matching: `Σ ‖o − (ε − x₀)‖²`, the Eps branch with the velocity as target).
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
        let r = [e[0] - s.target[0], e[1] - s.target[1]];
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

    /// Continues a run another trainer began (the GPU, before its device was lost): its
    /// weights, their moving average and its step count (so the batches go on where they
    /// were); Adam's moments restart.
    pub fn resume_from(
        &mut self,
        params: Vec<f32>,
        ema: &[f32],
        steps: u64,
    ) -> Result<(), NnError> {
        self.cfg.net.check_params(ema)?;
        if !all_finite(ema) {
            return Err(NnError::NonFiniteParams);
        }
        self.set_params(params)?;
        self.ema = Ema::resume(ema, self.cfg.ema_decay, steps);
        self.steps = steps;
        Ok(())
    }

    /// Takes the settings of `cfg` that training continues under (see `ConfigChange`); a
    /// new network shape or seed needs a new trainer and is refused. `cfg` is validated
    /// first, so a refused config changes nothing.
    pub fn apply(&mut self, cfg: &TrainConfig) -> Result<ConfigChange, NnError> {
        cfg.validate()?;
        let change = ConfigChange::between(&self.cfg, cfg);
        if change.restarts {
            return Err(NnError::InvalidTraining(
                "a new network shape or seed needs fresh weights".into(),
            ));
        }
        for setting in &change.continued {
            match setting {
                Setting::LearningRate => self.set_lr(cfg.lr)?,
                Setting::Batch => self.set_batch(cfg.batch)?,
                Setting::Weighting => self.set_weighting(cfg.weighting),
                Setting::Schedule => self.set_schedule(cfg.schedule)?,
                Setting::TMin => self.set_t_min(cfg.t_min)?,
                Setting::EmaDecay => self.set_ema_decay(cfg.ema_decay)?,
                Setting::ClassDropout => self.set_class_dropout(cfg.class_dropout)?,
            }
        }
        Ok(change)
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
    use crate::nn::mlp::{Activation, Embedding, MlpConfig};
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
