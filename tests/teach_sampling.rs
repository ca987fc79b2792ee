//! The Explore window's sampling views against exact answers: quality vs NFE, the naive reversal
//! and Langevin, the ideal denoiser, and guidance — all driven by exact mixture scores.

use std::sync::atomic::{AtomicBool, Ordering};

use diffusion_playground::Point;
use diffusion_playground::data::BuiltIn;
use diffusion_playground::math::Schedule;
use diffusion_playground::math::ScoreModel;
use diffusion_playground::math::metrics::sliced_w2;
use diffusion_playground::math::oracle::{Component, Oracle};
use diffusion_playground::math::solvers::{SamplerConfig, SamplerKind, sample};
use diffusion_playground::teach::denoiser::{DenoiserConfig, DenoiserSweep, compare};
use diffusion_playground::teach::guidance::{
    ClassifierFree, ClassifierGuidance, ExactClassifier, ExactConditional, WithClass,
    class_accuracy, means,
};
use diffusion_playground::teach::naive::{
    LangevinConfig, NaiveConfig, langevin_comparison, langevin_sweep, mode_weights, naive_spread,
    naive_sweep, naive_vs_reverse,
};
use diffusion_playground::teach::quality_steps::{
    Floor, QualityConfig, discretisation_error, nfe_grid, observed_order, quality_vs_nfe,
};
use diffusion_playground::teach::{Progress, Sweep, TeachError, ZeroScore};
use diffusion_playground::train::SharedModel;

fn eight() -> (Vec<Component>, Oracle) {
    let c = BuiltIn::EightGaussians.mixture().expect("a mixture");
    (c.clone(), Oracle::new(c, Schedule::default()))
}

/// With the exact score only discretisation error is left: every curve falls to the data
/// floor, and the second-order ODE solvers (Heun, DPM-Solver++(2M)) get within a given factor
/// of the floor with fewer evaluations than Euler–Maruyama.
#[test]
fn oracle_quality_falls_with_nfe_and_ode_solvers_need_fewer() {
    let (_, oracle) = eight();
    let sch = Schedule::default();
    let (n, repeats) = (1000, 4);
    let held = BuiltIn::EightGaussians.sample(n, 11).points;
    let others: Vec<Vec<Point>> = (0..repeats)
        .map(|r| BuiltIn::EightGaussians.sample(n, 100 + r as u64).points)
        .collect();
    let floor = Floor::between_many(&held, &others);
    let cfg = QualityConfig {
        samplers: vec![SamplerKind::Em, SamplerKind::Heun, SamplerKind::Dpm2m],
        nfe: nfe_grid(64, 3),
        particles: n,
        repeats,
        ..QualityConfig::default()
    };
    let report = quality_vs_nfe(&oracle, sch, &held, floor, &cfg, Progress::none()).unwrap();
    for c in &report.curves {
        let (first, last) = (c.points[0], *c.points.last().unwrap());
        eprintln!("{:?}: {:?}", c.sampler, c.points);
        assert!(last.nfe >= 32, "{:?}", c.sampler);
        assert!(
            last.sw2 < 1.5 * floor.sw2,
            "{:?} ends at {}",
            c.sampler,
            last.sw2
        );
        assert!(last.energy < 2.0 * floor.energy, "{:?}", c.sampler);
        assert!(first.sw2 > last.sw2, "{:?} does not fall", c.sampler);
    }
    let reach = |k: SamplerKind, sw2: f64| report.curve(k).unwrap().nfe_to_reach(sw2).unwrap();
    let em = reach(SamplerKind::Em, 1.5 * floor.sw2);
    for k in [SamplerKind::Heun, SamplerKind::Dpm2m] {
        assert!(reach(k, 1.5 * floor.sw2) < em, "{k:?} vs EM at {em}");
    }
    let reach_energy = |k: SamplerKind| {
        let c = report.curve(k).unwrap();
        c.points
            .iter()
            .find(|p| p.energy <= 2.0 * floor.energy)
            .unwrap()
            .nfe
    };
    let em = reach_energy(SamplerKind::Em);
    assert!(reach_energy(SamplerKind::Heun) < em);
    assert!(reach_energy(SamplerKind::Dpm2m) < em);
}

/// The distance to a converged solve from the same noise falls at the solver's order, so a
/// second-order solver reaches a given accuracy with several times fewer evaluations.
#[test]
fn discretisation_error_falls_at_the_solvers_order() {
    let (_, oracle) = eight();
    let sch = Schedule::default();
    let steps = [10, 20, 40, 80, 160, 320];
    let run = |k| discretisation_error(&oracle, sch, k, &steps, 2000, 200, 1e-3, Progress::none());
    let euler = run(SamplerKind::OdeEuler).unwrap();
    let heun = run(SamplerKind::Heun).unwrap();
    let dpm = run(SamplerKind::Dpm2m).unwrap();
    let (oe, oh, od) = (
        observed_order(&euler),
        observed_order(&heun),
        observed_order(&dpm),
    );
    assert!((0.8..1.4).contains(&oe), "Euler order {oe}");
    assert!((1.6..2.4).contains(&oh), "Heun order {oh}");
    assert!((1.6..2.4).contains(&od), "DPM-Solver++(2M) order {od}");
    let nfe_to = |pts: &[diffusion_playground::teach::quality_steps::ErrorPoint]| {
        pts.iter()
            .find(|p| p.rms_error < 2e-3)
            .map_or(usize::MAX, |p| p.nfe)
    };
    assert!(nfe_to(&dpm) * 2 <= nfe_to(&euler), "{dpm:?} {euler:?}");
    assert!(nfe_to(&heun) < nfe_to(&euler));
    assert!(matches!(run(SamplerKind::Em), Err(TeachError::Invalid(_))));
}

/// A raised cancel flag stops a computation with `Cancelled`, and progress reaches 1 otherwise.
#[test]
fn quality_reports_progress_and_cancels() {
    let (_, oracle) = eight();
    let held = BuiltIn::EightGaussians.sample(100, 1).points;
    let floor = Floor {
        sw2: 0.1,
        energy: 0.01,
    };
    let cfg = QualityConfig {
        samplers: vec![SamplerKind::Em],
        nfe: vec![1, 10],
        particles: 100,
        ..QualityConfig::default()
    };
    let cancel = AtomicBool::new(false);
    let last = std::sync::Mutex::new(0.0f64);
    let report = |f: f64| *last.lock().unwrap() = f;
    quality_vs_nfe(
        &oracle,
        Schedule::default(),
        &held,
        floor,
        &cfg,
        Progress::new(&cancel, &report),
    )
    .unwrap();
    assert_eq!(*last.lock().unwrap(), 1.0);
    let stop = |f: f64| {
        if f > 0.2 {
            cancel.store(true, Ordering::Relaxed)
        }
    };
    let r = quality_vs_nfe(
        &oracle,
        Schedule::default(),
        &held,
        floor,
        &cfg,
        Progress::new(&cancel, &stop),
    );
    assert!(matches!(r, Err(TeachError::Cancelled)));
}

/// Without the score the reversal does not recover the data: the drift alone scales the
/// prior by α(t_min)/α(1), far from any data. The reverse SDE with the exact score, from the
/// same noise, lands on the floor.
#[test]
fn naive_reverse_fails_where_the_reverse_sde_recovers_the_data() {
    let (_, oracle) = eight();
    let sch = Schedule::default();
    let n = 1000;
    let cfg = NaiveConfig {
        steps: 1000,
        particles: n,
        frames: 4,
        ..NaiveConfig::default()
    };
    let cmp = naive_vs_reverse(&oracle, sch, &cfg, Progress::none()).unwrap();
    let held = BuiltIn::EightGaussians.sample(n, 11).points;
    let floor = sliced_w2(&held, &BuiltIn::EightGaussians.sample(n, 12).points);
    let naive = sliced_w2(&cmp.naive.samples, &held);
    let sde = sliced_w2(&cmp.reverse_sde.samples, &held);
    assert!(naive > 50.0 * floor, "naive {naive} floor {floor}");
    assert!(sde < 2.0 * floor, "reverse SDE {sde} floor {floor}");
    // The same start: the first frames coincide.
    assert_eq!(cmp.naive.frames[0], cmp.reverse_sde.frames[0]);
    assert!(cmp.naive.frames.len() >= 5);
    // The spread is the closed-form factor (Euler's product of 1 + ½β|h| is ~2% short of it).
    let std = (cmp
        .naive
        .samples
        .iter()
        .map(|p| (p[0] * p[0]) as f64)
        .sum::<f64>()
        / n as f64)
        .sqrt();
    let prior_std = (cmp.naive.frames[0]
        .1
        .iter()
        .map(|p| (p[0] * p[0]) as f64)
        .sum::<f64>()
        / n as f64)
        .sqrt();
    let expected = naive_spread(&sch, 1e-3);
    assert!(expected > 100.0);
    assert!(
        (std / prior_std / expected - 1.0).abs() < 0.05,
        "{} vs {expected}",
        std / prior_std
    );
    // The view's sweep, a solver step at a time, gives the same runs.
    let model: SharedModel = std::sync::Arc::new(oracle);
    let mut sweep = naive_sweep(model, sch, &cfg).unwrap();
    let mut advances = 1;
    while !sweep.advance(Progress::none()).unwrap() {
        advances += 1;
    }
    assert_eq!(advances, 2 * cfg.steps, "one step of one run per advance");
    assert_eq!(sweep.so_far(), Some(cmp));
}

/// Two well-separated modes of weight 0.2 and 0.8 (Song & Ermon's figure): plain Langevin from
/// a symmetric start splits about evenly, annealed Langevin and the reverse SDE recover 0.2/0.8.
#[test]
fn annealed_langevin_recovers_mode_weights_that_plain_langevin_misses() {
    let c = |w: f64, m: f64| Component {
        weight: w,
        mean: [m, m],
        cov: [[0.01, 0.0], [0.0, 0.01]],
    };
    let comps = vec![c(0.2, -1.0), c(0.8, 1.0)];
    let oracle = Oracle::new(comps.clone(), Schedule::default());
    let cfg = LangevinConfig {
        levels: 20,
        steps_per_level: 30,
        particles: 1000,
        reverse_steps: 300,
        ..LangevinConfig::default()
    };
    let r = langevin_comparison(&oracle, Schedule::default(), &cfg, Progress::none()).unwrap();
    let modes = means(&comps);
    let plain = mode_weights(&r.plain.samples, &modes)[1];
    let annealed = mode_weights(&r.annealed.samples, &modes)[1];
    let sde = mode_weights(&r.reverse_sde.samples, &modes)[1];
    eprintln!("major-mode weight: plain {plain} annealed {annealed} sde {sde}");
    assert!((annealed - 0.8).abs() < 0.05, "annealed {annealed}");
    assert!((sde - 0.8).abs() < 0.05, "sde {sde}");
    assert!((plain - 0.8).abs() > 0.2, "plain {plain}");
    assert_eq!(r.plain.nfe, r.annealed.nfe);
    let model: SharedModel = std::sync::Arc::new(oracle);
    let mut sweep = langevin_sweep(model, Schedule::default(), &cfg).unwrap();
    while !sweep.advance(Progress::none()).unwrap() {}
    assert_eq!(
        sweep.so_far(),
        Some(r),
        "the view's sweep gives the same runs"
    );
}

/// The exact score of the training points reproduces them (within a few σ(t_min), the noise
/// left at the last time); fresh data and samples of the true distribution lie much farther
/// from the training set.
#[test]
fn ideal_denoiser_memorises_the_training_points() {
    let (_, truth) = eight();
    let train = BuiltIn::EightGaussians.sample(64, 1).points;
    let held = BuiltIn::EightGaussians.sample(500, 2).points;
    let cfg = DenoiserConfig {
        particles: 500,
        ..DenoiserConfig::default()
    };
    let r = compare(
        &train,
        &held,
        &truth,
        Schedule::default(),
        &cfg,
        Progress::none(),
    )
    .unwrap();
    let sigma_min = Schedule::default().sigma(1e-3) as f32;
    assert!(
        r.ideal.summary.p90 < 3.0 * sigma_min,
        "{:?}",
        r.ideal.summary
    );
    assert!(r.held_out.summary.median > 5.0 * r.ideal.summary.median);
    assert!(r.ideal_memorisation_ratio() < 0.2);
    // The true distribution's score generalises like fresh data does.
    let ratio = r.learned_memorisation_ratio();
    assert!((0.6..1.6).contains(&ratio), "{ratio}");
    let counted: u32 = r.ideal.histogram.counts.iter().sum::<u32>() + r.ideal.histogram.overflow;
    assert_eq!(counted as usize, 500);
    // The view's sweep, a solver step of both runs at a time, gives the same report.
    let truth: diffusion_playground::train::SharedModel = std::sync::Arc::new(truth);
    let mut sweep =
        DenoiserSweep::new(train.clone(), held.clone(), truth, Schedule::default(), cfg).unwrap();
    let mut advances = 1;
    while !sweep.advance(Progress::none()).unwrap() {
        advances += 1;
    }
    assert_eq!(
        advances, cfg.sampler.steps,
        "one solver step of each per advance"
    );
    assert_eq!(sweep.so_far(), Some(r));
}

fn accuracy(model: &dyn ScoreModel, comps: &[Component], class: u32) -> f64 {
    let cfg = SamplerConfig {
        kind: SamplerKind::Em,
        steps: 200,
        seed: 3,
        ..SamplerConfig::default()
    };
    let (x, _) = sample(model, Schedule::default(), cfg, 800);
    let labels: Vec<u32> = (0..comps.len() as u32).collect();
    class_accuracy(&x, &means(comps), &labels, class)
}

/// Classifier guidance by Bayes' rule: scale 0 is the unconditional model bit for bit, and a
/// growing scale moves the samples into the chosen class.
#[test]
fn classifier_guidance_scale_zero_is_unconditional_and_large_scale_hits_the_class() {
    let (comps, oracle) = eight();
    let labels: Vec<u32> = (0..8).collect();
    let cls = ExactClassifier::new(comps.clone(), &labels, Schedule::default()).unwrap();
    let xs: Vec<Point> = BuiltIn::EightGaussians.sample(50, 4).points;
    for t in [0.01f32, 0.3, 0.9] {
        let (mut a, mut b) = (vec![[0.0; 2]; 50], vec![[0.0; 2]; 50]);
        ClassifierGuidance::new(&oracle, &cls, 2, 0.0)
            .unwrap()
            .eps(&xs, t, &mut a);
        oracle.eps(&xs, t, &mut b);
        assert_eq!(a, b);
    }
    let acc = |scale: f64| {
        accuracy(
            &ClassifierGuidance::new(&oracle, &cls, 2, scale).unwrap(),
            &comps,
            2,
        )
    };
    let (a0, a1, a4) = (acc(0.0), acc(1.0), acc(4.0));
    eprintln!("accuracy: scale 0 {a0}, 1 {a1}, 4 {a4}");
    assert!((a0 - 0.125).abs() < 0.05, "{a0}");
    assert!(a1 > 0.9, "{a1}");
    assert!(a4 > 0.97 && a4 >= a1 - 0.01, "{a4}");
}

/// Classifier-free guidance: w = 0 is the conditional model, w = −1 the unconditional one, and
/// with exact scores (1 + w) ε(x|y) − w ε(x) equals classifier guidance with γ = 1 + w.
#[test]
fn classifier_free_guidance_matches_bayes_with_exact_scores() {
    let (comps, oracle) = eight();
    // Two classes of four components each: guidance must pick a half of the ring.
    let labels: Vec<u32> = (0..8).map(|k| k % 2).collect();
    let cls = ExactClassifier::new(comps.clone(), &labels, Schedule::default()).unwrap();
    let cond_model = ExactConditional(&cls);
    let cond = WithClass {
        model: &cond_model,
        class: Some(1),
    };
    let uncond = WithClass {
        model: &cond_model,
        class: None,
    };
    let xs: Vec<Point> = BuiltIn::EightGaussians.sample(40, 5).points;
    let eval = |m: &dyn ScoreModel, t: f32| {
        let mut o = vec![[0.0f32; 2]; xs.len()];
        m.eps(&xs, t, &mut o);
        o
    };
    for t in [0.05f32, 0.5] {
        assert_eq!(
            eval(&ClassifierFree::new(&cond, &uncond, 0.0).unwrap(), t),
            eval(&cond, t)
        );
        let back = eval(&ClassifierFree::new(&cond, &uncond, -1.0).unwrap(), t);
        for (a, b) in back.iter().zip(eval(&oracle, t)) {
            assert!((a[0] - b[0]).abs() < 1e-5 && (a[1] - b[1]).abs() < 1e-5);
        }
        for w in [0.5, 3.0] {
            let cfg = eval(&ClassifierFree::new(&cond, &uncond, w).unwrap(), t);
            let bayes = eval(
                &ClassifierGuidance::new(&oracle, &cls, 1, 1.0 + w).unwrap(),
                t,
            );
            for (a, b) in cfg.iter().zip(&bayes) {
                for d in 0..2 {
                    assert!(
                        (a[d] - b[d]).abs() < 1e-3 * (1.0 + b[d].abs()),
                        "t={t} w={w}: {a:?} {b:?}"
                    );
                }
            }
        }
    }
    // Samples: a half of the ring at w = 0 (the conditional), and still there at w = 3.
    let labels_of = |m: &dyn ScoreModel| accuracy_two(m, &comps, &labels);
    let (a_un, a0, a3) = (
        labels_of(&uncond),
        labels_of(&ClassifierFree::new(&cond, &uncond, 0.0).unwrap()),
        labels_of(&ClassifierFree::new(&cond, &uncond, 3.0).unwrap()),
    );
    eprintln!("class-1 share: uncond {a_un}, w=0 {a0}, w=3 {a3}");
    assert!((a_un - 0.5).abs() < 0.1, "{a_un}");
    assert!(a0 > 0.95 && a3 > 0.95);
}

fn accuracy_two(model: &dyn ScoreModel, comps: &[Component], labels: &[u32]) -> f64 {
    let cfg = SamplerConfig {
        kind: SamplerKind::Heun,
        steps: 50,
        seed: 9,
        ..SamplerConfig::default()
    };
    let (x, _) = sample(model, Schedule::default(), cfg, 600);
    class_accuracy(&x, &means(comps), labels, 1)
}

/// A score of zero is a valid model: the reverse SDE with it is the naive reversal.
#[test]
fn zero_score_is_zero() {
    let mut out = vec![[1.0f32; 2]; 3];
    ZeroScore.eps(&[[1.0, 2.0]; 3], 0.5, &mut out);
    assert_eq!(out, vec![[0.0; 2]; 3]);
}
