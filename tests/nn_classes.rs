//! Class-conditional networks (classifier-free guidance, docs/architecture.md §3–4): the
//! gradient of the class rows, label dropout, the fast per-class evaluation against the
//! training forward pass, label validation, and the GPU's refusal with the CPU taking over.
#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] fns

mod gpu_common;

use diffusion_playground::Point;
use diffusion_playground::backend::{
    BackendChoice, BackendKind, ResilientTrainer, TrainBackend, select, select_with,
};
use diffusion_playground::gpu::{GpuError, GpuTrainer, GpuWeights};
use diffusion_playground::math::rng::{STREAM_PRIOR, normal2};
use diffusion_playground::math::{Schedule, ScoreModel};
use diffusion_playground::nn::{
    Activation, DsmSampler, Embedding, MlpConfig, NetModel, NnError, Parameterization, TrainConfig,
    Trainer, Weighting,
};

const CLASSES: u32 = 3;

fn data() -> (Vec<Point>, Vec<u32>) {
    let points: Vec<Point> = (0..64u32).map(|i| normal2(5, 0, i, STREAM_PRIOR)).collect();
    let labels = (0..64u32).map(|i| (i * 7) % CLASSES).collect();
    (points, labels)
}

fn net(activation: Activation, param: Parameterization, num_classes: u32) -> MlpConfig {
    MlpConfig {
        width: 19,
        depth: 2,
        activation,
        embedding: Embedding::Sinusoidal { dim: 6 },
        param,
        num_classes,
        ..MlpConfig::default()
    }
}

fn config(net: MlpConfig, batch: usize, class_dropout: f32) -> TrainConfig {
    TrainConfig {
        net,
        batch,
        t_min: 0.05,
        class_dropout,
        ..TrainConfig::default()
    }
}

/// Central differences on ~40 parameters spread over the buffer plus every class row of W₀
/// (first, middle and last column); returns the worst relative error.
fn check_gradient(cfg: TrainConfig, labels: Option<Vec<u32>>) -> f64 {
    let (points, _) = data();
    let net = cfg.net.clone();
    let mut trainer = match labels {
        Some(l) => Trainer::with_labels(cfg, points, l).unwrap(),
        None => Trainer::new(cfg, points).unwrap(),
    };
    let mut params = trainer.params().to_vec();
    for (i, p) in params.iter_mut().enumerate() {
        *p += 0.05 * (i as f32 * 0.7).sin();
    }
    trainer.set_params(params.clone()).unwrap();
    let step = 3;
    let loss = trainer.loss_at(step) as f64;
    let grad = trainer.last_grad().to_vec();
    let n = params.len();
    let mut indices: Vec<usize> = (0..40).map(|k| k * n / 40 + k % 5).collect();
    let l0 = net.layers()[0];
    for c in 0..net.class_inputs() {
        let row = l0.weight_offset + (net.feature_dim() + c) * l0.fan_out;
        indices.extend([row, row + l0.fan_out / 2, row + l0.fan_out - 1]);
    }
    let mut worst = 0.0f64;
    let mut kinks = if net.activation == Activation::Relu {
        4
    } else {
        0
    };
    for &i in indices.iter().filter(|&&i| i < n) {
        let h = 1e-2f32;
        let mut p = params.clone();
        p[i] = params[i] + h;
        trainer.set_params(p.clone()).unwrap();
        let up = trainer.loss_at(step) as f64;
        p[i] = params[i] - h;
        trainer.set_params(p).unwrap();
        let down = trainer.loss_at(step) as f64;
        let fd = (up - down) / (2.0 * h as f64);
        let g = grad[i] as f64;
        let err = (fd - g).abs() / (1e-2 * loss.abs() + g.abs().max(fd.abs()));
        if err >= 2e-2 && kinks > 0 {
            kinks -= 1;
            continue;
        }
        assert!(
            err < 2e-2,
            "{net:?}: param {i}: analytic {g} vs finite difference {fd}"
        );
        worst = worst.max(err);
    }
    worst
}

#[test]
fn class_rows_have_the_right_gradient() {
    for act in Activation::ALL {
        for param in Parameterization::ALL {
            let cfg = config(net(act, param, CLASSES), 37, 0.3);
            let worst = check_gradient(cfg, Some(data().1));
            println!("{act:?} {param:?}: worst relative error {worst:.2e}");
        }
    }
    // A large batch (gradients summed over chunks and groups), no dropout, full dropout,
    // another weighting, and a width that fills whole GEMM panels.
    let (_, labels) = data();
    let base = net(Activation::Gelu, Parameterization::Eps, CLASSES);
    check_gradient(config(base.clone(), 1200, 0.1), Some(labels.clone()));
    check_gradient(config(base.clone(), 50, 0.0), Some(labels.clone()));
    check_gradient(config(base.clone(), 50, 1.0), Some(labels.clone()));
    let importance = TrainConfig {
        weighting: Weighting::Importance,
        ..config(base.clone(), 50, 0.2)
    };
    check_gradient(importance, Some(labels.clone()));
    let wide = MlpConfig {
        width: 32,
        depth: 1,
        ..base
    };
    check_gradient(config(wide, 130, 0.2), Some(labels));
}

/// Classes that the batch never sees get a zero gradient; with p = 1 only ∅ is trained.
#[test]
fn only_the_classes_in_the_batch_get_a_gradient() {
    let (points, labels) = data();
    let cfg = config(net(Activation::Silu, Parameterization::Eps, 5), 64, 1.0);
    let mut t = Trainer::with_labels(cfg.clone(), points.clone(), labels.clone()).unwrap();
    t.loss_at(0);
    let l0 = cfg.net.layers()[0];
    let row = |c: usize| {
        let start = l0.weight_offset + (cfg.net.feature_dim() + c) * l0.fan_out;
        t.last_grad()[start..start + l0.fan_out].to_vec()
    };
    for c in 0..5 {
        assert!(row(c).iter().all(|&g| g == 0.0), "class {c} with p = 1");
    }
    // ∅ is every sample, so its row's gradient is the bias gradient.
    let bias = &t.last_grad()[l0.bias_offset..l0.bias_offset + l0.fan_out];
    for (a, b) in row(5).iter().zip(bias) {
        assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
    }
    // p = 0: labels 3 and 4 never occur (labels are 0..3), ∅ never occurs.
    let mut t = Trainer::with_labels(config(cfg.net.clone(), 64, 0.0), points, labels).unwrap();
    t.loss_at(0);
    let g = t.last_grad();
    for c in [3usize, 4, 5] {
        let start = l0.weight_offset + (cfg.net.feature_dim() + c) * l0.fan_out;
        assert!(
            g[start..start + l0.fan_out].iter().all(|&v| v == 0.0),
            "{c}"
        );
    }
    let start = l0.weight_offset + cfg.net.feature_dim() * l0.fan_out;
    assert!(g[start..start + l0.fan_out].iter().any(|&v| v != 0.0));
}

#[test]
fn label_dropout_has_rate_p_and_is_reproducible() {
    let (points, labels) = data();
    let batch = 40_000;
    for p in [0.0f32, 0.1, 0.5, 1.0] {
        let s =
            DsmSampler::new(9, Schedule::default(), 1e-3, Weighting::Uniform).with_classes(true, p);
        let drawn = s.draw_batch_labelled(&points, Some(&labels), 2, batch);
        assert_eq!(
            drawn,
            s.draw_batch_labelled(&points, Some(&labels), 2, batch)
        );
        let dropped = drawn.iter().filter(|d| d.class.is_none()).count() as f64 / batch as f64;
        let sd = (p as f64 * (1.0 - p as f64) / batch as f64).sqrt();
        assert!(
            (dropped - p as f64).abs() <= 5.0 * sd + 1e-12,
            "p = {p}: dropped {dropped}"
        );
        // A kept label is the drawn point's; dropping changes nothing else of the sample.
        let plain = s.draw_batch(&points, 2, batch);
        for (d, q) in drawn.iter().zip(&plain) {
            if let Some(c) = d.class {
                assert_eq!(c, labels[d.index]);
            }
            assert_eq!(q.class, None);
            assert_eq!((d.index, d.t, d.eps, d.x_t), (q.index, q.t, q.eps, q.x_t));
        }
    }
    // An unconditional sampler never carries classes.
    let s = DsmSampler::new(9, Schedule::default(), 1e-3, Weighting::Uniform);
    assert!(
        s.draw_batch_labelled(&points, Some(&labels), 0, 100)
            .iter()
            .all(|d| d.class.is_none())
    );
}

/// A conditional network without labels trains every sample as ∅: at initialisation (class
/// rows 0) it has the unconditional network's loss, and the ∅ row learns like a second bias.
#[test]
fn without_labels_a_conditional_network_is_unconditional() {
    let (points, _) = data();
    let uncond = config(net(Activation::Gelu, Parameterization::Eps, 0), 50, 0.1);
    let cond = config(net(Activation::Gelu, Parameterization::Eps, 4), 50, 0.1);
    let mut a = Trainer::new(uncond.clone(), points.clone()).unwrap();
    let mut b = Trainer::new(cond.clone(), points.clone()).unwrap();
    let (la, lb) = (a.loss_at(0), b.loss_at(0));
    assert!((la - lb).abs() <= 1e-6 * la, "{la} vs {lb}");
    let (ga, gb) = (a.last_grad(), b.last_grad());
    // Equal up to rounding (layer 0 adds its bias outside the GEMM's epilogue).
    let close = |x: &[f32], y: &[f32]| {
        let scale = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (u, v) in x.iter().zip(y) {
            assert!((u - v).abs() <= 1e-5 * scale, "{u} vs {v}");
        }
    };
    let (la, lb) = (uncond.net.layers(), cond.net.layers());
    let dense = cond.net.feature_dim() * la[0].fan_out;
    close(&ga[..dense], &gb[..dense]);
    for (x, y) in la.iter().zip(&lb).skip(1) {
        close(
            &ga[x.weight_offset..x.bias_offset + x.fan_out],
            &gb[y.weight_offset..y.bias_offset + y.fan_out],
        );
    }
    let null = lb[0].weight_offset + (cond.net.feature_dim() + 4) * lb[0].fan_out;
    close(
        &gb[null..null + lb[0].fan_out],
        &gb[lb[0].bias_offset..lb[0].bias_offset + lb[0].fan_out],
    );
    // Every class is trained as ∅ only: the real classes' rows get no gradient.
    assert!(
        gb[lb[0].weight_offset + dense..null]
            .iter()
            .all(|&g| g == 0.0)
    );
    for _ in 0..5 {
        b.step().unwrap();
    }
    assert!(b.model(true).is_ok());
}

/// The per-class fast path (class row folded into the per-time offset) equals the training
/// forward pass (class rows gathered per row), for every class and ∅, and the divergence
/// matches finite differences of ε̂ for a class.
#[test]
fn eps_class_matches_the_training_forward_pass() {
    let (points, _) = data();
    for param in Parameterization::ALL {
        let cfg = net(Activation::Silu, param, CLASSES);
        let mut params = cfg.init_params(2);
        for (i, p) in params.iter_mut().enumerate() {
            *p += 0.2 * (i as f32 * 0.37).sin();
        }
        let model = NetModel::new(cfg.clone(), Schedule::default(), params).unwrap();
        // More points than one evaluation chunk.
        let xs: Vec<Point> = (0..600).map(|i| points[i % points.len()]).collect();
        let xs: Vec<Point> = xs
            .iter()
            .enumerate()
            .map(|(i, p)| [p[0] + 0.01 * i as f32, p[1]])
            .collect();
        let t = 0.4f32;
        let ts = vec![t; xs.len()];
        let (alpha, sigma) = (
            Schedule::default().alpha(t as f64) as f32,
            Schedule::default().sigma(t as f64) as f32,
        );
        let mut outputs = Vec::new();
        for class in [Some(0), Some(1), Some(2), None] {
            let mut fast = vec![[0.0f32; 2]; xs.len()];
            model.eps_class(&xs, t, class, &mut fast);
            let mut raw = vec![[0.0f32; 2]; xs.len()];
            model.raw_output_with_classes(&xs, &ts, Some(&vec![class; xs.len()]), &mut raw);
            for ((f, r), x) in fast.iter().zip(&raw).zip(&xs) {
                let e = param.eps_from_output(*r, *x, alpha, sigma);
                for d in 0..2 {
                    assert!(
                        (f[d] - e[d]).abs() <= 1e-4 * (1.0 + e[d].abs()),
                        "{param:?} {class:?}: {f:?} vs {e:?}"
                    );
                }
            }
            outputs.push(fast);
        }
        // The classes differ (the rows are not zero), ∅ is `eps`, out of range is ∅.
        assert_ne!(outputs[0], outputs[1]);
        let mut plain = vec![[0.0f32; 2]; xs.len()];
        model.eps(&xs, t, &mut plain);
        assert_eq!(plain, outputs[3]);
        model.eps_class(&xs, t, Some(CLASSES), &mut plain);
        assert_eq!(plain, outputs[3]);
        // Mixed classes per row in one raw pass.
        let mixed: Vec<Option<u32>> = (0..xs.len())
            .map(|i| [Some(0), Some(2), None][i % 3])
            .collect();
        let mut raw = vec![[0.0f32; 2]; xs.len()];
        model.raw_output_with_classes(&xs, &ts, Some(&mixed), &mut raw);
        for (i, (r, x)) in raw.iter().zip(&xs).enumerate() {
            let k = [0, 2, 3][i % 3];
            let e = param.eps_from_output(*r, *x, alpha, sigma);
            assert!((e[0] - outputs[k][i][0]).abs() <= 1e-4 * (1.0 + e[0].abs()));
        }
        // Divergence for a class against central differences of its ε̂.
        let few = &xs[..20];
        let (mut e, mut div) = (vec![[0.0f32; 2]; 20], vec![0.0f32; 20]);
        model.eps_div_class(few, t, Some(1), &mut e, &mut div);
        let h = 1e-2f32;
        for (i, x) in few.iter().enumerate() {
            let mut fd = 0.0;
            for a in 0..2 {
                let (mut p, mut m) = (*x, *x);
                p[a] += h;
                m[a] -= h;
                let (mut ep, mut em) = ([[0.0f32; 2]], [[0.0f32; 2]]);
                model.eps_class(&[p], t, Some(1), &mut ep);
                model.eps_class(&[m], t, Some(1), &mut em);
                fd += (ep[0][a] - em[0][a]) / (2.0 * h);
            }
            assert!(
                (fd - div[i]).abs() <= 2e-2 * (1.0 + fd.abs()),
                "{param:?}: div {} vs {fd}",
                div[i]
            );
        }
    }
}

#[test]
fn labels_are_validated() {
    let (points, labels) = data();
    let cfg = config(
        net(Activation::Silu, Parameterization::Eps, CLASSES),
        16,
        0.1,
    );
    let bad_len = Trainer::with_labels(cfg.clone(), points.clone(), labels[1..].to_vec());
    assert!(matches!(bad_len, Err(NnError::InvalidLabels(_))));
    let mut too_big = labels.clone();
    too_big[7] = CLASSES;
    let err = Trainer::with_labels(cfg.clone(), points.clone(), too_big.clone())
        .err()
        .unwrap();
    assert!(
        matches!(err, NnError::InvalidLabels(_)) && err.to_string().contains("point 7"),
        "{err}"
    );
    for p in [-0.1f32, 1.5, f32::NAN] {
        let bad = TrainConfig {
            class_dropout: p,
            ..cfg.clone()
        };
        assert!(bad.validate().is_err(), "{p}");
    }
    // A failed set_data_with_labels changes nothing.
    let mut t = Trainer::with_labels(cfg.clone(), points.clone(), labels.clone()).unwrap();
    assert!(
        t.set_data_with_labels(points.clone(), Some(too_big.clone()))
            .is_err()
    );
    assert_eq!(t.labels().map(|l| l.to_vec()), Some(labels.clone()));
    t.set_data(points[..10].to_vec()).unwrap();
    assert!(t.labels().is_none(), "set_data drops the labels");
    t.set_data_with_labels(points.clone(), Some(labels.clone()))
        .unwrap();
    assert!(t.set_class_dropout(2.0).is_err());
    t.set_class_dropout(0.5).unwrap();
    assert_eq!(t.config().class_dropout, 0.5);
    t.step().unwrap();
    // An unconditional network ignores labels (any value), but not a wrong count.
    let uncond = config(net(Activation::Silu, Parameterization::Eps, 0), 16, 0.1);
    assert!(Trainer::with_labels(uncond.clone(), points.clone(), too_big).is_ok());
    assert!(Trainer::with_labels(uncond, points, labels[1..].to_vec()).is_err());
    // Old configs without the field get the default dropout.
    let json = r#"{"lr":0.001}"#;
    let old: TrainConfig = serde_json::from_str(json).unwrap();
    assert_eq!(old.class_dropout, 0.1);
}

/// A conditional config: the CPU trains it with its labels, whatever backend was asked for;
/// the GPU refuses it with `GpuError::Unsupported` and `ResilientTrainer` moves to the CPU,
/// saying why.
#[test]
fn conditional_configs_train_on_the_cpu() {
    let (points, labels) = data();
    let cfg = config(
        net(Activation::Silu, Parameterization::Eps, CLASSES),
        16,
        0.1,
    );
    let cpu = select(BackendChoice::Cpu);
    let mut t = ResilientTrainer::with_labels(&cpu, cfg.clone(), &points, Some(&labels)).unwrap();
    t.train(3).unwrap();
    assert_eq!(t.steps_done(), 3);
    t.set_data_with_labels(&points, Some(&labels)).unwrap();
    let mut bad = labels.clone();
    bad[0] = 9;
    assert!(t.set_data_with_labels(&points, Some(&bad)).is_err());
    assert!(t.ema_model().unwrap().config().is_conditional());
    // Same labels and seed as a plain `Trainer`: the same losses.
    let mut reference = Trainer::with_labels(cfg.clone(), points.clone(), labels.clone()).unwrap();
    let mut again =
        ResilientTrainer::with_labels(&cpu, cfg.clone(), &points, Some(&labels)).unwrap();
    let losses = again.train(2).unwrap();
    assert_eq!(losses[0].loss, reference.step().unwrap());
    assert_eq!(losses[1].loss, reference.step().unwrap());

    let Some(ctx) = gpu_common::gpu() else {
        return;
    };
    let err = GpuTrainer::new(ctx, cfg.clone(), &points).err().unwrap();
    assert!(matches!(err, GpuError::Unsupported(_)), "{err}");
    let params = cfg.net.init_params(0);
    assert!(matches!(
        GpuWeights::new(ctx, &cfg.net, &params).err().unwrap(),
        GpuError::Unsupported(_)
    ));
    let selection = select_with(BackendChoice::Wgpu, Some(ctx.clone()));
    assert_eq!(selection.kind, BackendKind::Wgpu);
    let mut t =
        ResilientTrainer::with_labels(&selection, cfg.clone(), &points, Some(&labels)).unwrap();
    assert_eq!(t.kind(), BackendKind::Cpu);
    let notice = t.notice().expect("a notice");
    assert!(notice.contains("class-conditional"), "{notice}");
    let losses = t.train(2).unwrap();
    let mut reference = Trainer::with_labels(cfg.clone(), points.clone(), labels).unwrap();
    assert_eq!(losses[0].loss, reference.step().unwrap());
    // Sampling a conditional model on the GPU falls back to the CPU sampler.
    let model = reference.model(true).unwrap();
    let sampler = diffusion_playground::math::solvers::SamplerConfig::default();
    let (x, _, notice) = diffusion_playground::backend::sample(&selection, &model, sampler, 10);
    assert_eq!(x.len(), 10);
    assert!(notice.is_some_and(|n| n.contains("class-conditional")));
    // An unconditional config still trains on the GPU.
    let plain = config(net(Activation::Silu, Parameterization::Eps, 0), 16, 0.1);
    let t = ResilientTrainer::with_labels(&selection, plain, &points, Some(&data().1)).unwrap();
    assert_eq!(t.kind(), BackendKind::Wgpu);
}
