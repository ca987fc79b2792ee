//! Ablations: two runs that differ in one setting, both learning.

use diffusion_playground::backend::CpuTrainer;
use diffusion_playground::data::BuiltIn;
use diffusion_playground::nn::{Embedding, MlpConfig, Parameterization, TrainConfig, Weighting};
use diffusion_playground::teach::Progress;
use diffusion_playground::teach::ablation::{
    Ablation, Setting, configs, differing_fields, evaluation_loss,
};

fn base() -> TrainConfig {
    TrainConfig {
        net: MlpConfig {
            width: 32,
            depth: 2,
            ..MlpConfig::default()
        },
        batch: 128,
        lr: 3e-3,
        seed: 5,
        ..TrainConfig::default()
    }
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

/// Each ablation axis: the two runs' configs differ in exactly that field, both runs take the
/// same number of steps, and each lowers its own loss — measured on one fixed batch before and
/// after, so batch noise cancels (the importance-sampled loss is mostly irreducible noise).
#[test]
fn both_runs_differ_only_in_the_setting_and_both_learn() {
    let data = BuiltIn::SwissRoll.sample(2000, 1).points;
    let pairs = [
        (
            Setting::Embedding(Embedding::Sinusoidal { dim: 16 }),
            Setting::Embedding(Embedding::Scalar),
        ),
        (
            Setting::Weighting(Weighting::Uniform),
            Setting::Weighting(Weighting::Importance),
        ),
        (
            Setting::Parameterization(Parameterization::Eps),
            Setting::Parameterization(Parameterization::X0),
        ),
    ];
    for (a, b) in pairs {
        let mut ab = Ablation::cpu(&base(), a, b, &data).unwrap();
        let [ca, cb] = [ab.runs[0].config().clone(), ab.runs[1].config().clone()];
        assert_eq!(differing_fields(&ca, &cb), vec![a.field()]);
        // Everything else is the base config.
        let mut back = cb.clone();
        a.apply(&mut back);
        assert_eq!(back, ca);
        let before: Vec<f64> = ab
            .runs
            .iter()
            .map(|r| {
                evaluation_loss(&r.current_model().unwrap(), r.config(), &data, 4096, 77).unwrap()
            })
            .collect();
        ab.train(300, 25, Progress::none()).unwrap();
        for (run, before) in ab.runs.iter().zip(before) {
            assert_eq!(run.steps_done(), 300);
            assert_eq!(run.losses.len(), 300);
            let after =
                evaluation_loss(&run.current_model().unwrap(), run.config(), &data, 4096, 77)
                    .unwrap();
            let l: Vec<f32> = run.losses.iter().map(|p| p.loss).collect();
            eprintln!(
                "{}: fixed batch {before:.3} → {after:.3}; training batches {:.3} → {:.3}",
                run.setting.label(),
                mean(&l[..20]),
                mean(&l[l.len() - 50..])
            );
            assert!(
                after < before - 0.2,
                "{}: {before} → {after}",
                run.setting.label()
            );
            assert_eq!(run.recent_loss(50), Some(mean(&l[l.len() - 50..])));
        }
        let [ma, mb] = ab.models().unwrap();
        assert_eq!(ma.config(), &ca.net);
        assert_eq!(mb.config(), &cb.net);
    }
}

/// Backends whose configs differ in anything but the setting are refused, as are settings of
/// two different axes.
#[test]
fn mismatched_runs_are_refused() {
    let data = BuiltIn::Moons.sample(200, 1).points;
    let a = Setting::Weighting(Weighting::Uniform);
    let b = Setting::Weighting(Weighting::InverseSigma2);
    let [ca, mut cb] = configs(&base(), a, b).unwrap();
    cb.lr *= 2.0;
    let r = Ablation::with_backends(
        (a, Box::new(CpuTrainer::new(ca, &data).unwrap())),
        (b, Box::new(CpuTrainer::new(cb, &data).unwrap())),
    );
    assert!(r.is_err());
    assert!(Ablation::cpu(&base(), a, Setting::Embedding(Embedding::Scalar), &data).is_err());
}
