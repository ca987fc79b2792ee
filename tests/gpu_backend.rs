//! Backend selection and fallback (docs/architecture.md §1): `auto` on a software adapter, a batch
//! too large for the device, a lost device, settings changed between steps.

mod gpu_common;

use diffusion_playground::backend::{
    BackendChoice, BackendKind, CpuTrainer, ResilientTrainer, Selection, TrainBackend, select,
    select_with,
};
use diffusion_playground::gpu::{GpuContext, GpuError, GpuTrainer, enumerate_adapters};
use diffusion_playground::math::Schedule;
use diffusion_playground::nn::{Embedding, MlpConfig, TrainConfig, Weighting};
use gpu_common::{gpu, points, small};

/// `auto` follows the adapters this machine has: a CPU adapter (lavapipe) or none → cpu,
/// saying why; a real GPU → wgpu, naming it.
#[test]
fn auto_picks_by_adapter_type() {
    if gpu().is_none() {
        return;
    }
    let adapters = enumerate_adapters();
    let real = adapters
        .iter()
        .any(|a| a.device_type != wgpu::DeviceType::Cpu);
    let s = select(BackendChoice::Auto);
    eprintln!("{}", s.line);
    if real {
        assert_eq!(s.kind, BackendKind::Wgpu, "{}", s.line);
        assert!(s.line.starts_with("backend: wgpu on "), "{}", s.line);
    } else {
        assert_eq!(s.kind, BackendKind::Cpu, "{}", s.line);
        let name = &adapters[0].name;
        assert!(
            s.line.contains(name.as_str()) && s.line.ends_with("is a CPU)"),
            "{}",
            s.line
        );
    }
    let forced = select(BackendChoice::Wgpu);
    eprintln!("{}", forced.line);
    assert_eq!(forced.kind, BackendKind::Wgpu);
    assert!(forced.adapter().is_some());
}

/// A shared (eframe-like) device is used as it is; `auto` on a CPU adapter still says cpu.
#[test]
fn shared_device_is_used() {
    let Some(ctx) = gpu() else { return };
    let shared = GpuContext::from_shared(ctx.device.clone(), ctx.queue.clone(), ctx.info.clone());
    let s = select_with(BackendChoice::Wgpu, Some(shared));
    assert_eq!(s.kind, BackendKind::Wgpu);
    let auto = select_with(BackendChoice::Auto, Some(ctx.clone()));
    assert_eq!(
        auto.kind == BackendKind::Cpu,
        ctx.is_software(),
        "{}",
        auto.line
    );
}

/// A batch whose activations exceed the device's buffer limit is refused before anything is
/// allocated, with a message naming the limit; the resilient trainer trains on the CPU
/// instead and says so.
#[test]
fn oversized_batch_falls_back_to_cpu() {
    let Some(ctx) = gpu() else { return };
    let cfg = TrainConfig {
        net: MlpConfig {
            width: 4096,
            depth: 1,
            embedding: Embedding::Scalar,
            ..MlpConfig::default()
        },
        batch: 1 << 20,
        ..TrainConfig::default()
    };
    let data = points(100, 1);
    let err = GpuTrainer::new(ctx, cfg.clone(), &data).expect_err("16 GiB of activations");
    assert!(matches!(err, GpuError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("smaller batch"), "{err}");
    let sel = Selection {
        kind: BackendKind::Wgpu,
        gpu: Some(ctx.clone()),
        line: String::new(),
    };
    let mut t = ResilientTrainer::new(&sel, cfg, &data).expect("falls back");
    assert_eq!(t.kind(), BackendKind::Cpu);
    let notice = t.notice().expect("a notice");
    assert!(notice.contains("CPU"), "{notice}");
    // Growing the batch of a running GPU trainer past the limit fails and keeps the old one.
    let wide = TrainConfig {
        net: MlpConfig {
            width: 2048,
            depth: 1,
            embedding: Embedding::Scalar,
            ..MlpConfig::default()
        },
        batch: 32,
        ..small()
    };
    let mut g = GpuTrainer::new(ctx, wide, &data).expect("trainer");
    let e = g.set_batch(1 << 20);
    assert!(e.is_err());
    assert_eq!(g.config().batch, 32);
    g.step().expect("still trains");
}

/// The device is lost mid-run (destroyed): the resilient trainer moves to the CPU and keeps
/// training.
#[test]
fn lost_device_hands_over_to_cpu() {
    if gpu().is_none() {
        return;
    }
    let own = GpuContext::new().expect("a device of our own");
    let sel = Selection {
        kind: BackendKind::Wgpu,
        gpu: Some(own.clone()),
        line: String::new(),
    };
    let data = points(100, 2);
    let mut t = ResilientTrainer::new(&sel, small(), &data).expect("trainer");
    assert_eq!(t.kind(), BackendKind::Wgpu);
    t.train(3).expect("trains on the GPU");
    own.device.destroy();
    // wgpu reports the loss when it next waits for the device: `train` waits once more than
    // `MAX_IN_FLIGHT` submissions are queued, so within a few hundred steps.
    let losses = t.train(200).expect("the CPU takes over");
    assert_eq!(t.kind(), BackendKind::Cpu);
    assert_eq!(losses.len(), 200);
    assert!(losses.iter().all(|l| l.loss.is_finite()));
    let notice = t.notice().expect("a notice");
    assert!(notice.contains("GPU failed"), "{notice}");
}

/// A settings change applied to a trainer.
type Change<'a> = Box<dyn Fn(&mut dyn TrainBackend) + 'a>;

/// Applies the trainer's config with `edit` made to it.
fn configure(t: &mut dyn TrainBackend, edit: impl Fn(&mut TrainConfig)) {
    let mut cfg = t.config().clone();
    edit(&mut cfg);
    t.apply(&cfg).expect("a valid config");
}

/// Through the trait, settings changed between steps (batch, data, weighting, schedule, lr,
/// reset) keep the GPU and CPU trainers in step.
#[test]
fn settings_changes_keep_backends_in_step() {
    let Some(ctx) = gpu() else { return };
    let data = points(200, 3);
    let mut cpu: Box<dyn TrainBackend> = Box::new(CpuTrainer::new(small(), &data).expect("cpu"));
    let mut gpu_t: Box<dyn TrainBackend> =
        Box::new(GpuTrainer::new(ctx, small(), &data).expect("gpu"));
    let new_data = points(57, 4);
    let changes: Vec<Change> = vec![
        Box::new(|t| configure(t, |c| c.batch = 45)),
        Box::new(|t| t.set_data(&new_data).expect("data")),
        Box::new(|t| configure(t, |c| c.weighting = Weighting::Importance)),
        Box::new(|t| configure(t, |c| c.schedule = Schedule::Cosine { beta_cap: 10.0 })),
        Box::new(|t| configure(t, |c| c.lr = 5e-4)),
        Box::new(|t| configure(t, |c| c.t_min = 0.01)),
        Box::new(|t| configure(t, |c| c.ema_decay = 0.9)),
        Box::new(|t| t.reset(77).expect("reset")),
        // A new seed through `apply` starts over as `reset` does.
        Box::new(|t| configure(t, |c| c.seed = 78)),
    ];
    for (i, change) in changes.iter().enumerate() {
        change(cpu.as_mut());
        change(gpu_t.as_mut());
        let c = cpu.train(1).expect("cpu step");
        let mut g = gpu_t.train(1).expect("gpu step");
        g.extend(gpu_t.flush().expect("flush"));
        let (c, g) = (c[0], g[g.len() - 1]);
        assert_eq!(c.step, g.step, "change {i}");
        assert!(
            (c.loss - g.loss).abs() <= 1e-3 * c.loss.abs() + 1e-5,
            "change {i}: cpu {} vs gpu {}",
            c.loss,
            g.loss
        );
    }
    assert_eq!(cpu.steps_done(), gpu_t.steps_done());
}

/// A device with WebGPU's default limits (what a renderer such as eframe may hand over: 8
/// storage buffers per stage, 16 KiB of workgroup memory, 128 MiB bindings) trains and
/// samples with every kernel.
#[test]
fn default_limits_device_runs_every_kernel() {
    if gpu().is_none() {
        return;
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .expect("adapter");
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("default limits"),
        required_limits: wgpu::Limits::default(),
        ..Default::default()
    }))
    .expect("device");
    let ctx = GpuContext::from_shared(device, queue, adapter.get_info());
    let data = points(64, 8);
    let mut t = GpuTrainer::new(&ctx, small(), &data).expect("trainer");
    t.step().expect("a training step");
    let cfg = t.config().net.clone();
    let weights =
        diffusion_playground::gpu::GpuWeights::new(&ctx, &cfg, &t.ema_params().expect("ema"))
            .expect("weights");
    for kind in diffusion_playground::math::solvers::SamplerKind::ALL {
        let sc = diffusion_playground::math::solvers::SamplerConfig {
            kind,
            steps: 2,
            ..Default::default()
        };
        let mut s = diffusion_playground::gpu::GpuSampler::new(
            &ctx,
            weights.clone(),
            Schedule::default(),
            sc,
            33,
        )
        .expect("sampler");
        s.run().expect("sampling");
        assert!(
            s.read_particles()
                .expect("read")
                .iter()
                .all(|p| p[0].is_finite() && p[1].is_finite())
        );
    }
}

/// A new network shape through `apply`: the resilient trainer starts over on the GPU with
/// fresh weights of the new shape; a bare GPU trainer refuses it and keeps its run.
#[test]
fn a_new_network_shape_restarts_on_the_gpu() {
    let Some(ctx) = gpu() else { return };
    let sel = Selection {
        kind: BackendKind::Wgpu,
        gpu: Some(ctx.clone()),
        line: String::new(),
    };
    let data = points(100, 5);
    let mut t = ResilientTrainer::new(&sel, small(), &data).expect("trainer");
    t.train(4).expect("trains");
    t.flush().expect("flush");
    let mut wider = t.config().clone();
    wider.net.width *= 2;
    let change = t.apply(&wider).expect("a new shape");
    assert!(change.restarts);
    assert_eq!(t.kind(), BackendKind::Wgpu, "still on the GPU");
    assert_eq!(t.steps_done(), 0);
    assert_eq!(t.config().net, wider.net);
    assert_eq!(
        t.params().expect("params"),
        wider.net.init_params(wider.seed)
    );
    t.train(2).expect("trains the new network");

    let mut bare = GpuTrainer::new(ctx, small(), &data).expect("trainer");
    bare.step().expect("a step");
    let mut wider = bare.config().clone();
    wider.net.width *= 2;
    assert!(bare.apply(&wider).is_err());
    assert_eq!(bare.config().net, small().net);
    assert_eq!(bare.steps_done(), 1);
}

/// The browser's way (`ResilientTrainer::warming`): the CPU trains while the GPU trainer's
/// probe step is on its way, then the GPU continues from exactly the CPU's weights, step count
/// and settings (here natively, where a probe is back as soon as it is asked for).
#[test]
fn a_warming_gpu_takes_over_from_the_cpu() {
    if gpu().is_none() {
        return;
    }
    // A device of its own, with no kernel compiled yet.
    let ctx = GpuContext::new().expect("a device of our own");
    let sel = Selection {
        kind: BackendKind::Wgpu,
        gpu: Some(ctx),
        line: String::new(),
    };
    let data = points(100, 6);
    let mut t = ResilientTrainer::warming(&sel, small(), &data).expect("trainer");
    assert_eq!(t.kind(), BackendKind::Cpu, "the CPU trains first");
    assert!(t.name().contains("kernels compile"), "{}", t.name());
    // A setting changed during the warm-up reaches the GPU too.
    configure(&mut t, |c| c.lr *= 0.5);
    let mut reference = CpuTrainer::new(t.config().clone(), &data).expect("trainer");
    // The probe step, then the hand-over.
    let mut cpu_steps = 0;
    while t.kind() == BackendKind::Cpu {
        assert!(cpu_steps < 200, "the GPU never took over: {}", t.name());
        assert_eq!(t.train(1).expect("trains").len(), 1);
        cpu_steps += 1;
    }
    reference.train(cpu_steps).expect("trains");
    let n = cpu_steps;
    assert_eq!(t.steps_done(), n);
    assert_eq!(t.config().lr, small().lr * 0.5);
    assert_eq!(
        t.params().expect("params"),
        reference.params().expect("params")
    );
    assert_eq!(
        t.ema_params().expect("ema"),
        reference.ema_params().expect("ema")
    );
    t.train(5).expect("trains on the GPU");
    let losses = t.flush().expect("flush");
    let steps: Vec<u64> = losses.iter().map(|l| l.step).collect();
    assert_eq!(steps, (n..n + 5).collect::<Vec<_>>());
    assert!(losses.iter().all(|l| l.loss.is_finite()));
    // The GPU's next step moves on from the handed-over weights, not from fresh ones.
    let moved = t.params().expect("params");
    let fresh = small().net.init_params(small().seed);
    let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>();
    let from_handed = dist(&moved, &reference.params().expect("params"));
    assert!(from_handed < dist(&moved, &fresh), "{from_handed}");
}
