//! The app's reverse runs on the GPU (the trajectory worker with a GPU weights snapshot): the
//! frames stay in a GPU buffer, and they, the trail particles and the times match the same
//! run on the CPU; a GPU that fails mid-run hands the run to the CPU from the same noise.

mod gpu_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use diffusion_playground::app::trajectory::{Job, Runner, Stored, Trajectory};
use diffusion_playground::backend::GpuSnapshot;
use diffusion_playground::gpu::{GpuContext, GpuTrainer};
use diffusion_playground::math::Schedule;
use diffusion_playground::math::solvers::{SamplerConfig, SamplerKind};
use diffusion_playground::nn::NetModel;
use gpu_common::{assert_close, gpu, points, small};

const PARTICLES: usize = 257;

fn sampler(kind: SamplerKind) -> SamplerConfig {
    SamplerConfig {
        kind,
        steps: 12,
        seed: 4,
        ..SamplerConfig::default()
    }
}

/// Weights trained a little on `ctx`, as the training thread publishes them: a GPU copy, and
/// the same numbers as a CPU model.
fn trained(ctx: &GpuContext) -> (GpuSnapshot, NetModel) {
    let cfg = small();
    let mut trainer = GpuTrainer::new(ctx, cfg.clone(), &points(300, 1)).expect("trainer");
    trainer.train(20).expect("training");
    let weights = trainer.snapshot_weights().expect("snapshot");
    let params = weights.read(ctx).expect("read back");
    let model = NetModel::new(cfg.net, cfg.schedule, params).expect("model");
    let snapshot = GpuSnapshot {
        ctx: ctx.clone(),
        weights,
    };
    (snapshot, model)
}

fn run(job: Job) -> Runner {
    let runner = Runner::start(job);
    let start = Instant::now();
    while !runner
        .with(|t| t.done || t.failed.is_some())
        .unwrap_or(true)
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    runner
}

fn job(kind: SamplerKind, model: &NetModel, gpu: Option<GpuSnapshot>) -> Job {
    Job::Reverse {
        schedule: Schedule::default(),
        model: Arc::new(model.clone()),
        cfg: sampler(kind),
        particles: PARTICLES,
        gpu: gpu.map(Box::new),
    }
}

fn flat(p: &[[f32; 2]]) -> Vec<f32> {
    p.iter().flat_map(|x| *x).collect()
}

/// Every stored frame of `t`, read back to the CPU if it lives on the GPU.
fn frames(t: &Trajectory) -> Vec<(usize, Vec<[f32; 2]>)> {
    let mut out: Vec<(usize, Vec<[f32; 2]>)> = Vec::new();
    for step in 0..t.times.len() {
        let (at, stored) = t.frame_at(step).expect("a frame");
        if out.last().is_some_and(|(s, _)| *s == at) {
            continue;
        }
        let points = match stored {
            Stored::Cpu(p) => p.as_ref().clone(),
            Stored::Gpu(g) => {
                assert_eq!(g.len, PARTICLES);
                g.read().expect("frame read back")
            }
        };
        out.push((at, points));
    }
    out
}

fn compare(what: &str, gpu_run: &Trajectory, cpu_run: &Trajectory) {
    assert!(
        gpu_run.on_gpu && !cpu_run.on_gpu,
        "{what}: where each run sampled"
    );
    assert_eq!(gpu_run.times, cpu_run.times, "{what}: times");
    assert_eq!(gpu_run.nfe, cpu_run.nfe, "{what}: NFE");
    assert_eq!(
        gpu_run.trails.len(),
        cpu_run.trails.len(),
        "{what}: trail rows"
    );
    for (k, (g, c)) in gpu_run.trails.iter().zip(&cpu_run.trails).enumerate() {
        assert_close(
            &format!("{what}: trails at step {k}"),
            &flat(g),
            &flat(c),
            1e-3,
            1e-3,
        );
    }
    let (gf, cf) = (frames(gpu_run), frames(cpu_run));
    assert_eq!(gf.len(), cf.len(), "{what}: stored frames");
    for ((gs, g), (cs, c)) in gf.iter().zip(&cf) {
        assert_eq!(gs, cs, "{what}: frame steps");
        assert_close(
            &format!("{what}: frame {gs}"),
            &flat(g),
            &flat(c),
            1e-3,
            1e-3,
        );
    }
}

/// A stochastic and a deterministic sampler: the GPU run keeps its frames on the GPU and
/// shows what the CPU run shows.
#[test]
fn gpu_reverse_runs_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let (snapshot, model) = trained(ctx);
    for kind in [SamplerKind::Em, SamplerKind::Heun] {
        let on_gpu = run(job(kind, &model, Some(snapshot.clone())));
        let on_cpu = run(job(kind, &model, None));
        let what = format!("{kind:?}");
        on_gpu
            .with(|g| {
                assert_eq!(g.failed, None, "{what}");
                assert_eq!(g.gpu_failure, None, "{what}");
                assert!(
                    (0..g.times.len()).all(|s| matches!(g.frame_at(s), Some((_, Stored::Gpu(_))))),
                    "{what}: every frame stays on the GPU"
                );
                on_cpu.with(|c| compare(&what, g, c)).expect("cpu run");
            })
            .expect("gpu run");
    }
}

/// The device is gone before the run starts: the run says so and samples on the CPU, from the
/// same noise, to the same result.
#[test]
fn lost_device_samples_on_the_cpu() {
    if gpu().is_none() {
        return;
    }
    let own = GpuContext::new().expect("a device of our own");
    let (snapshot, model) = trained(&own);
    own.device.destroy();
    let fallen = run(job(SamplerKind::Em, &model, Some(snapshot)));
    let reference = run(job(SamplerKind::Em, &model, None));
    fallen
        .with(|f| {
            assert!(!f.on_gpu && f.done, "finished on the CPU");
            assert!(f.gpu_failure.is_some(), "the GPU failure is reported");
            let last = |t: &Trajectory| frames(t).pop().expect("a last frame").1;
            let expected = reference.with(last).expect("reference");
            assert_eq!(last(f), expected);
        })
        .expect("run");
}
