//! Classifier-free guidance with the class-conditional network: a network
//! trained briefly on a labelled two-class mixture; guidance scale 0 is the conditional
//! model, and a positive scale moves samples toward the chosen class (the accuracy of a
//! nearest-mode classifier rises), against the unconditional model (∅) near 50 %.
#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] fns

use std::sync::Arc;
use std::time::Instant;

use diffusion_playground::Point;
use diffusion_playground::math::oracle::Component;
use diffusion_playground::math::rng::{normal2, uniform};
use diffusion_playground::math::solvers::{SamplerConfig, SamplerKind, sample};
use diffusion_playground::math::{Schedule, ScoreModel};
use diffusion_playground::nn::{
    Activation, Embedding, MlpConfig, NetModel, TrainConfig, Trainer, Weighting,
};
use diffusion_playground::teach::guidance::{
    ClassifierFree, ConditionalScoreModel, ExactClassifier, ExactConditional, Guided, WithClass,
    class_accuracy, means,
};

/// Two overlapping Gaussians at (∓0.8, 0), sd 0.45, labelled 0 and 1: even the exact
/// conditional p(x|y) puts ~4 % of its samples nearer the other mean, so guidance has
/// something to sharpen.
const MEAN: f32 = 0.8;
const SD: f32 = 0.45;

fn components() -> Vec<Component> {
    [-MEAN, MEAN]
        .map(|m| Component {
            weight: 1.0,
            mean: [m as f64, 0.0],
            cov: [[(SD * SD) as f64, 0.0], [0.0, (SD * SD) as f64]],
        })
        .to_vec()
}

fn labelled(n: u32) -> (Vec<Point>, Vec<u32>) {
    (0..n)
        .map(|i| {
            let y = u32::from(uniform(1, 0, i, 40) < 0.5);
            let z = normal2(1, 0, i, 41);
            let m = if y == 0 { -MEAN } else { MEAN };
            ([m + SD * z[0], SD * z[1]], y)
        })
        .unzip()
}

fn train() -> NetModel {
    let (points, labels) = labelled(4000);
    let cfg = TrainConfig {
        net: MlpConfig {
            width: 64,
            depth: 3,
            activation: Activation::Silu,
            embedding: Embedding::Sinusoidal { dim: 16 },
            num_classes: 2,
            ..MlpConfig::default()
        },
        lr: 4e-3,
        batch: 512,
        seed: 3,
        weighting: Weighting::Uniform,
        ema_decay: 0.99,
        class_dropout: 0.2,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::with_labels(cfg, points, labels).unwrap();
    let start = Instant::now();
    for _ in 0..1500 {
        trainer.step().unwrap();
    }
    println!("trained in {:.2} s", start.elapsed().as_secs_f64());
    trainer.model(true).unwrap()
}

fn accuracy(model: &dyn ScoreModel, class: u32) -> f64 {
    let cfg = SamplerConfig {
        kind: SamplerKind::Heun,
        steps: 40,
        seed: 11,
        ..SamplerConfig::default()
    };
    let (x, _) = sample(model, Schedule::default(), cfg, 3000);
    let comps = components();
    class_accuracy(&x, &means(&comps), &[0, 1], class)
}

#[test]
fn classifier_free_guidance_with_the_network() {
    let net = Arc::new(train());
    assert_eq!(ConditionalScoreModel::num_classes(&*net), 2);
    let start = Instant::now();

    // Scale 0 is the conditional network bit for bit, through either combinator; no class
    // is the unconditional network (∅) whatever the scale.
    let xs: Vec<Point> = (0..300).map(|i| normal2(2, 0, i, 7)).collect();
    let t = 0.3;
    let eps = |m: &dyn ScoreModel| {
        let mut out = vec![[0.0f32; 2]; xs.len()];
        m.eps(&xs, t, &mut out);
        out
    };
    let mut cond1 = vec![[0.0f32; 2]; xs.len()];
    net.eps_class(&xs, t, Some(1), &mut cond1);
    let with1 = WithClass {
        model: &*net,
        class: Some(1),
    };
    let null = WithClass {
        model: &*net,
        class: None,
    };
    assert_eq!(
        eps(&ClassifierFree::new(&with1, &null, 0.0).unwrap()),
        cond1
    );
    assert_eq!(eps(&Guided::new(net.clone(), Some(1), 0.0).unwrap()), cond1);
    assert_eq!(
        eps(&Guided::new(net.clone(), None, 5.0).unwrap()),
        eps(&*net)
    );
    assert_ne!(cond1, eps(&*net), "the class changes the network's output");
    // Guided = (1 + w) ε̂(·|y) − w ε̂(·|∅), as `ClassifierFree` computes it.
    let w = 2.5;
    let a = eps(&Guided::new(net.clone(), Some(1), w).unwrap());
    let b = eps(&ClassifierFree::new(&with1, &null, w).unwrap());
    for (u, v) in a.iter().zip(&b) {
        for d in 0..2 {
            assert!(
                (u[d] - v[d]).abs() <= 1e-5 * (1.0 + v[d].abs()),
                "{u:?} {v:?}"
            );
        }
    }
    assert!(Guided::new(net.clone(), Some(2), 1.0).is_err());
    assert!(Guided::new(net.clone(), Some(0), -1.0).is_err());
    assert!(Guided::new(net.clone(), Some(0), f64::NAN).is_err());

    // Nearest-mode accuracy: unconditional ≈ ½, conditional high, guided higher.
    let exact = ExactClassifier::new(components(), &[0, 1], Schedule::default()).unwrap();
    let exact_cond = ExactConditional(&exact);
    let uncond = accuracy(&*net, 0);
    println!("unconditional: class 0 {uncond:.3}");
    assert!((0.35..0.65).contains(&uncond), "unconditional {uncond}");
    for class in [0, 1] {
        let cond = accuracy(&Guided::new(net.clone(), Some(class), 0.0).unwrap(), class);
        let guided = accuracy(&Guided::new(net.clone(), Some(class), 3.0).unwrap(), class);
        let e_with = WithClass {
            model: &exact_cond,
            class: Some(class),
        };
        let e_null = WithClass {
            model: &exact_cond,
            class: None,
        };
        let e_cond = accuracy(&e_with, class);
        let e_guided = accuracy(&ClassifierFree::new(&e_with, &e_null, 3.0).unwrap(), class);
        println!(
            "class {class}: network w=0 {cond:.3}, w=3 {guided:.3}; exact w=0 {e_cond:.3}, \
             w=3 {e_guided:.3}"
        );
        assert!(cond > 0.85, "class {class}: conditional accuracy {cond}");
        assert!(
            guided > cond + 0.015 && guided > 0.97,
            "class {class}: guided {guided} vs conditional {cond}"
        );
    }
    println!("checks in {:.2} s", start.elapsed().as_secs_f64());
}

/// The same on the built-in two moons (labels: which moon), classified by the nearest
/// training point: the guided samples land on the chosen moon.
#[test]
fn guidance_picks_a_moon() {
    let data = diffusion_playground::data::BuiltIn::Moons.sample(3000, 5);
    let labels = data.labels.clone().expect("moons are labelled");
    let cfg = TrainConfig {
        net: MlpConfig {
            width: 64,
            depth: 3,
            activation: Activation::Silu,
            embedding: Embedding::Sinusoidal { dim: 16 },
            num_classes: data.num_classes,
            ..MlpConfig::default()
        },
        lr: 4e-3,
        batch: 512,
        seed: 1,
        ema_decay: 0.99,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::with_labels(cfg, data.points.clone(), labels.clone()).unwrap();
    for _ in 0..1500 {
        trainer.step().unwrap();
    }
    let net = Arc::new(trainer.model(true).unwrap());
    let run = |m: &dyn ScoreModel, class: u32| {
        let cfg = SamplerConfig {
            kind: SamplerKind::Heun,
            steps: 40,
            seed: 4,
            ..SamplerConfig::default()
        };
        let (x, _) = sample(m, Schedule::default(), cfg, 2000);
        class_accuracy(&x, &data.points, &labels, class)
    };
    for class in [0, 1] {
        let uncond = run(&*net, class);
        let cond = run(&Guided::new(net.clone(), Some(class), 0.0).unwrap(), class);
        let guided = run(&Guided::new(net.clone(), Some(class), 3.0).unwrap(), class);
        println!("moon {class}: unconditional {uncond:.3}, w=0 {cond:.3}, w=3 {guided:.3}");
        assert!((0.35..0.65).contains(&uncond), "{uncond}");
        assert!(cond > 0.9, "{cond}");
        assert!(
            guided >= cond - 0.005 && guided > 0.95,
            "{guided} vs {cond}"
        );
    }
}
