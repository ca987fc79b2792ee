//! [`ResilientTrainer`]: a trainer that starts on the GPU and moves to the CPU when the GPU
//! fails (device lost, out of memory, a config it cannot run), continuing from the last good
//! weights it could read back.
//!
//! In a browser the GPU's pipelines compile when first used, seconds on a software adapter,
//! and nothing may wait for them: there the CPU trains from the first frame, then the GPU
//! trainer takes one probe step, and the GPU continues from the CPU's weights once that
//! step's loss is back ([`ResilientTrainer::warming`]).

use std::cell::RefCell;
use std::sync::Arc;

use crate::Point;
use crate::gpu::{GpuContext, GpuError, GpuTrainer, LossPoint};
use crate::nn::{ConfigChange, TrainConfig};

use super::{BackendError, BackendKind, CpuTrainer, GpuSnapshot, Selection, TrainBackend};

/// Whether a GPU error means the device cannot go on, or cannot do what was asked (so the
/// CPU should take over), as opposed to a bad setting or a NaN pause.
fn is_device_failure(e: &BackendError) -> bool {
    matches!(
        e,
        BackendError::Gpu(
            GpuError::Unsupported(_)
                | GpuError::DeviceLost(_)
                | GpuError::OutOfMemory(_)
                | GpuError::TooLarge { .. }
                | GpuError::Device { .. }
                | GpuError::Readback(_)
                | GpuError::NoAdapter(_)
                | GpuError::RequestDevice { .. }
        )
    )
}

/// Weights read back from the GPU: the trained ones, their EMA, and the step they are at.
#[derive(Clone)]
struct GoodWeights {
    params: Vec<f32>,
    ema: Vec<f32>,
    steps: u64,
}

/// A trainer that starts on the GPU and moves to the CPU if the GPU fails.
pub struct ResilientTrainer {
    inner: Box<dyn TrainBackend>,
    /// The device to train on while it works (`None` once the CPU has taken over).
    gpu: Option<GpuContext>,
    data: Arc<[Point]>,
    labels: Option<Arc<[u32]>>,
    notice: Option<String>,
    /// The newest EMA weights read back from the GPU (the app reads them for every
    /// snapshot): what the CPU continues from when nothing can be read after a failure.
    last_ema: RefCell<Option<(u64, Vec<f32>)>>,
    /// Whether a new GPU trainer warms up while the CPU trains.
    warm_up: bool,
    /// The GPU warming up, the CPU training meanwhile.
    warming: Option<Warming>,
}

/// CPU steps before a warm-up makes its GPU trainer: a browser compiles the kernels on the
/// thread that presents the page's frames (about 4 s on SwiftShader, when the page stalls),
/// so the page first shows training under way.
const WARM_UP_CPU_STEPS: u64 = 30;

/// Where a warm-up is.
enum Warming {
    /// Waiting for `WARM_UP_CPU_STEPS` of the CPU.
    Waiting,
    /// The GPU trainer's probe step on its way.
    Probing(Box<GpuTrainer>),
}

/// The GPU continues from the CPU's run: its weights, their average and step count, in its
/// settings, on `data`.
fn hand_over_to(
    gpu: &mut GpuTrainer,
    cpu: &dyn TrainBackend,
    data: &[Point],
) -> Result<(), BackendError> {
    let (params, ema) = (cpu.params()?, cpu.ema_params()?);
    gpu.apply(cpu.config())?;
    gpu.set_data(data)?;
    gpu.resume_from(&params, &ema, cpu.steps_done())?;
    Ok(())
}

impl ResilientTrainer {
    /// Trains on `selection`'s backend; if the GPU trainer cannot even be built (no device,
    /// a batch too large for it), the CPU trains and `notice` says why.
    pub fn new(
        selection: &Selection,
        cfg: TrainConfig,
        data: &[Point],
    ) -> Result<Self, BackendError> {
        Self::with_labels(selection, cfg, data, None)
    }

    /// As `new`, with one class label per point if given. A class-conditional config is
    /// refused by the GPU and trains on the CPU (with a notice).
    pub fn with_labels(
        selection: &Selection,
        cfg: TrainConfig,
        data: &[Point],
        labels: Option<&[u32]>,
    ) -> Result<Self, BackendError> {
        Self::start(selection, cfg, data, labels, cfg!(target_arch = "wasm32"))
    }

    /// As `new`, but a GPU trainer (now and after each restart) warms up first: the CPU trains
    /// until the GPU's probe step comes back, then the GPU continues from the CPU's weights.
    /// How a browser trains (natively a pipeline is compiled when it is made).
    pub fn warming(
        selection: &Selection,
        cfg: TrainConfig,
        data: &[Point],
    ) -> Result<Self, BackendError> {
        Self::start(selection, cfg, data, None, true)
    }

    fn start(
        selection: &Selection,
        cfg: TrainConfig,
        data: &[Point],
        labels: Option<&[u32]>,
        warm_up: bool,
    ) -> Result<Self, BackendError> {
        let gpu = match &selection.gpu {
            Some(ctx) if selection.kind == BackendKind::Wgpu => Some(ctx.clone()),
            _ => None,
        };
        let mut this = Self {
            inner: Box::new(CpuTrainer::with_labels(cfg.clone(), data, labels)?),
            gpu,
            data: data.into(),
            labels: labels.map(Into::into),
            notice: None,
            last_ema: RefCell::default(),
            warm_up,
            warming: None,
        };
        if this.gpu.is_some() {
            this.build(cfg)?;
        }
        Ok(this)
    }

    /// Wraps a trainer of any kind (a GPU stand-in in tests): if it is a GPU one and fails
    /// as a device does, the CPU takes over as it would from `GpuTrainer`.
    pub fn wrap(inner: Box<dyn TrainBackend>, data: &[Point], labels: Option<&[u32]>) -> Self {
        Self {
            inner,
            gpu: None,
            data: data.into(),
            labels: labels.map(Into::into),
            notice: None,
            last_ema: RefCell::default(),
            warm_up: false,
            warming: None,
        }
    }

    /// A fresh trainer for `cfg`: on the GPU while there is one, else (or if it refuses) on
    /// the CPU with a notice saying why. Warming up, the CPU trains while the GPU trainer
    /// takes a probe step.
    fn build(&mut self, cfg: TrainConfig) -> Result<(), BackendError> {
        cfg.validate()?;
        self.warming = None;
        self.last_ema.replace(None);
        match &self.gpu {
            Some(_) if self.warm_up => self.warming = Some(Warming::Waiting),
            Some(ctx) => match GpuTrainer::new(ctx, cfg.clone(), &self.data) {
                Ok(t) => {
                    self.inner = Box::new(t);
                    return Ok(());
                }
                Err(e) => {
                    let e = BackendError::from(e);
                    if !is_device_failure(&e) {
                        return Err(e);
                    }
                    self.gpu_refused(&e);
                }
            },
            None => {}
        }
        self.inner = Box::new(CpuTrainer::with_labels(
            cfg,
            &self.data,
            self.labels.as_deref(),
        )?);
        Ok(())
    }

    /// The GPU cannot train this run: the CPU does, and the notice says why.
    fn gpu_refused(&mut self, e: &BackendError) {
        self.notice = Some(format!(
            "the GPU could not train ({e}); training on the CPU instead"
        ));
        self.warming = None;
    }

    /// Moves a warm-up on: after `WARM_UP_CPU_STEPS` the GPU trainer (in the CPU's settings, on
    /// its data) takes a probe step; once that step's loss is back, the GPU continues from the
    /// CPU's weights, EMA and step count. A GPU that fails meanwhile leaves the CPU training,
    /// with a notice.
    fn hand_over_when_warm(&mut self) {
        let (Some(warming), Some(ctx)) = (self.warming.as_mut(), self.gpu.as_ref()) else {
            return;
        };
        let handed = match warming {
            Warming::Waiting if self.inner.steps_done() < WARM_UP_CPU_STEPS => return,
            Warming::Waiting => {
                let probe = GpuTrainer::new(ctx, self.inner.config().clone(), &self.data)
                    .and_then(|mut t| t.step_now().map(|()| t));
                match probe {
                    Ok(t) => {
                        *warming = Warming::Probing(Box::new(t));
                        return;
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Warming::Probing(gpu) => match gpu.flush() {
                Err(e) => Err(e.into()),
                Ok(_) if !(gpu.steps_done() > 0 && gpu.losses_settled()) => return,
                Ok(_) if self.inner.paused().is_some() => return,
                Ok(_) => hand_over_to(gpu, self.inner.as_ref(), &self.data),
            },
        };
        match handed {
            Ok(()) => {
                if let Some(Warming::Probing(gpu)) = self.warming.take() {
                    self.inner = gpu;
                }
            }
            Err(e) if e.is_pending() => {}
            Err(e) => self.gpu_refused(&e),
        }
    }

    /// Runs `op` on the inner trainer; on a GPU device failure, moves to the CPU and runs
    /// `op` there.
    fn guarded<T>(
        &mut self,
        mut op: impl FnMut(&mut dyn TrainBackend) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        match op(self.inner.as_mut()) {
            Err(e) if self.inner.kind() == BackendKind::Wgpu && is_device_failure(&e) => {
                self.fall_back(&e)?;
                op(self.inner.as_mut())
            }
            other => other,
        }
    }

    /// The CPU takes over from the weights the GPU still gives back; when it gives none (a
    /// lost device), from the last EMA weights read from it; with fresh weights only when
    /// there were none.
    fn fall_back(&mut self, why: &BackendError) -> Result<(), BackendError> {
        let cfg = self.inner.config().clone();
        let steps = self.inner.steps_done();
        let read_now = match (self.inner.params(), self.inner.ema_params()) {
            (Ok(params), Ok(ema)) => Some(GoodWeights { params, ema, steps }),
            _ => None,
        };
        let last_read = self
            .last_ema
            .borrow()
            .clone()
            .map(|(steps, ema)| GoodWeights {
                params: ema.clone(),
                ema,
                steps,
            });
        let mut cpu = CpuTrainer::with_labels(cfg, &self.data, self.labels.as_deref())?;
        let mut from = "fresh weights: none could be read from the GPU".to_owned();
        for (good, what) in [
            (read_now, "its weights"),
            (last_read, "the last weights read"),
        ] {
            let Some(good) = good else { continue };
            if cpu.resume_from(good.params, &good.ema, good.steps).is_ok() {
                from = format!("from {what}, at step {}", good.steps);
                break;
            }
        }
        self.notice = Some(format!(
            "the GPU failed at step {steps} ({why}); the CPU backend takes over ({from})"
        ));
        self.inner = Box::new(cpu);
        self.gpu = None;
        Ok(())
    }
}

impl TrainBackend for ResilientTrainer {
    fn name(&self) -> String {
        match (&self.warming, &self.gpu) {
            (Some(_), Some(ctx)) => format!(
                "{} until {} is ready (its kernels compile)",
                self.inner.name(),
                ctx.adapter_name()
            ),
            _ => self.inner.name(),
        }
    }

    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    fn train(&mut self, steps: u64) -> Result<Vec<LossPoint>, BackendError> {
        let losses = self.guarded(|t| t.train(steps));
        self.hand_over_when_warm();
        losses
    }

    fn flush(&mut self) -> Result<Vec<LossPoint>, BackendError> {
        self.guarded(|t| t.flush())
    }

    fn steps_done(&self) -> u64 {
        self.inner.steps_done()
    }

    fn config(&self) -> &TrainConfig {
        self.inner.config()
    }

    fn paused(&self) -> Option<String> {
        self.inner.paused()
    }

    fn resume(&mut self) {
        self.inner.resume()
    }

    fn params(&self) -> Result<Vec<f32>, BackendError> {
        self.inner.params()
    }

    fn ema_params(&self) -> Result<Vec<f32>, BackendError> {
        let ema = self.inner.ema_params()?;
        if self.inner.kind() == BackendKind::Wgpu {
            self.last_ema
                .replace(Some((self.inner.steps_done(), ema.clone())));
        }
        Ok(ema)
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), BackendError> {
        self.guarded(|t| t.set_params(params))
    }

    fn gpu_weights(&self) -> Option<GpuSnapshot> {
        self.inner.gpu_weights()
    }

    fn apply(&mut self, cfg: &TrainConfig) -> Result<ConfigChange, BackendError> {
        let change = ConfigChange::between(self.config(), cfg);
        if change.restarts {
            self.build(cfg.clone())?;
            return Ok(change);
        }
        self.guarded(|t| t.apply(cfg))
    }

    fn set_data(&mut self, data: &[Point]) -> Result<(), BackendError> {
        let r = self.guarded(|t| t.set_data(data));
        if r.is_ok() {
            self.data = data.into();
            self.labels = None;
        }
        r
    }

    fn set_data_with_labels(
        &mut self,
        data: &[Point],
        labels: Option<&[u32]>,
    ) -> Result<(), BackendError> {
        let r = self.guarded(|t| t.set_data_with_labels(data, labels));
        if r.is_ok() {
            self.data = data.into();
            self.labels = labels.map(Into::into);
        }
        r
    }

    fn reset(&mut self, seed: u32) -> Result<(), BackendError> {
        if self.warming.is_some() {
            // A new seed is a new network: the GPU warms up again for it.
            let mut cfg = self.config().clone();
            cfg.seed = seed;
            return self.build(cfg);
        }
        self.guarded(|t| t.reset(seed))
    }

    fn notice(&mut self) -> Option<String> {
        self.notice.take()
    }
}

/// A trainer on the selected backend, falling back to the CPU as `ResilientTrainer` does.
pub fn make_trainer(
    selection: &Selection,
    cfg: TrainConfig,
    data: &[Point],
) -> Result<Box<dyn TrainBackend>, BackendError> {
    Ok(Box::new(ResilientTrainer::new(selection, cfg, data)?))
}

/// As [`make_trainer`], with one class label per point if given (a class-conditional
/// network trains on the CPU).
pub fn make_trainer_with_labels(
    selection: &Selection,
    cfg: TrainConfig,
    data: &[Point],
    labels: Option<&[u32]>,
) -> Result<Box<dyn TrainBackend>, BackendError> {
    Ok(Box::new(ResilientTrainer::with_labels(
        selection, cfg, data, labels,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::MlpConfig;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn cfg() -> TrainConfig {
        TrainConfig {
            batch: 16,
            net: MlpConfig {
                width: 8,
                depth: 1,
                ..MlpConfig::default()
            },
            ..TrainConfig::default()
        }
    }

    fn data() -> Vec<Point> {
        (0..40)
            .map(|i| [i as f32 * 0.05, (i % 7) as f32 * 0.1])
            .collect()
    }

    /// A GPU stand-in: a CPU trainer that calls itself a GPU one and, once `lost` is set,
    /// fails as a lost device does; `readable` says whether its weights can still be read.
    struct Flaky {
        cpu: CpuTrainer,
        lost: Arc<AtomicBool>,
        readable: bool,
    }

    impl Flaky {
        fn check(&self, reading: bool) -> Result<(), BackendError> {
            if self.lost.load(Ordering::Relaxed) && !(reading && self.readable) {
                Err(GpuError::DeviceLost("test".into()).into())
            } else {
                Ok(())
            }
        }
    }

    impl TrainBackend for Flaky {
        fn name(&self) -> String {
            "flaky gpu".into()
        }
        fn kind(&self) -> BackendKind {
            BackendKind::Wgpu
        }
        fn train(&mut self, steps: u64) -> Result<Vec<LossPoint>, BackendError> {
            self.check(false)?;
            self.cpu.train(steps)
        }
        fn flush(&mut self) -> Result<Vec<LossPoint>, BackendError> {
            self.check(false)?;
            Ok(Vec::new())
        }
        fn steps_done(&self) -> u64 {
            self.cpu.steps_done()
        }
        fn config(&self) -> &TrainConfig {
            self.cpu.config()
        }
        fn paused(&self) -> Option<String> {
            None
        }
        fn resume(&mut self) {}
        fn params(&self) -> Result<Vec<f32>, BackendError> {
            self.check(true)?;
            self.cpu.params()
        }
        fn ema_params(&self) -> Result<Vec<f32>, BackendError> {
            self.check(true)?;
            self.cpu.ema_params()
        }
        fn apply(&mut self, cfg: &TrainConfig) -> Result<ConfigChange, BackendError> {
            self.cpu.apply(cfg)
        }
        fn set_data(&mut self, data: &[Point]) -> Result<(), BackendError> {
            self.cpu.set_data(data)
        }
        fn reset(&mut self, seed: u32) -> Result<(), BackendError> {
            self.cpu.reset(seed)
        }
    }

    /// Trains a flaky GPU for 20 steps, reads its EMA (as the app's snapshots do), trains 10
    /// more, loses the device, and lets the CPU take over. Returns the trainer, the EMA read
    /// at step 20, and the weights and EMA at step 30.
    fn hand_over(readable: bool) -> (ResilientTrainer, Vec<f32>, Vec<f32>, Vec<f32>) {
        let data = data();
        let lost = Arc::new(AtomicBool::new(false));
        let flaky = Flaky {
            cpu: CpuTrainer::new(cfg(), &data).expect("trainer"),
            lost: Arc::clone(&lost),
            readable,
        };
        let mut t = ResilientTrainer::wrap(Box::new(flaky), &data, None);
        t.train(20).expect("trains");
        let ema_read = t.ema_params().expect("ema");
        t.train(10).expect("trains");
        let params = t.inner.params().expect("params");
        let ema = t.inner.ema_params().expect("ema");
        lost.store(true, Ordering::Relaxed);
        t.flush().expect("the CPU takes over");
        (t, ema_read, params, ema)
    }

    #[test]
    fn the_cpu_continues_from_the_weights_the_gpu_still_gives_back() {
        let (mut t, _, params, ema) = hand_over(true);
        assert_eq!(t.kind(), BackendKind::Cpu);
        assert_eq!(t.steps_done(), 30);
        assert_eq!(t.params().expect("params"), params);
        assert_eq!(t.ema_params().expect("ema"), ema);
        let notice = t.notice().expect("a notice");
        assert!(notice.contains("from its weights, at step 30"), "{notice}");
        t.train(5).expect("the CPU trains on");
        assert_eq!(t.steps_done(), 35);
    }

    #[test]
    fn a_lost_device_hands_over_the_last_weights_read() {
        let (mut t, ema_read, params, _) = hand_over(false);
        assert_eq!(t.kind(), BackendKind::Cpu);
        assert_eq!(t.steps_done(), 20);
        assert_eq!(t.params().expect("params"), ema_read);
        assert_eq!(t.ema_params().expect("ema"), ema_read);
        assert_ne!(ema_read, params, "the test needs the two to differ");
        let notice = t.notice().expect("a notice");
        assert!(
            notice.contains("the last weights read, at step 20"),
            "{notice}"
        );
    }
}
