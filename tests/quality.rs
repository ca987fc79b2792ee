//! End to end on the CPU backend: a fixed-seed run on the swiss roll must sample close to the
//! data, measured against the data-vs-data floor (the quality bar: within twice the floor).

use diffusion_playground::data::BuiltIn;
use diffusion_playground::math::metrics::sliced_w2;
use diffusion_playground::math::solvers::{SamplerConfig, SamplerKind, sample};
use diffusion_playground::nn::{TrainConfig, Trainer};

#[test]
fn swiss_roll_training_reaches_twice_the_floor_with_heun() {
    let data = BuiltIn::SwissRoll.sample(10_000, 0).points;
    let cfg = TrainConfig::default();
    let schedule = cfg.schedule;
    let mut trainer = Trainer::new(cfg, data).expect("valid config");
    for _ in 0..3000 {
        trainer.step().expect("finite loss");
    }
    let model = trainer.model(true).expect("EMA model");
    let n = 5000;
    let sampler = SamplerConfig {
        kind: SamplerKind::Heun,
        steps: 50,
        seed: 1,
        ..Default::default()
    };
    let (x, _) = sample(&model, schedule, sampler, n);
    let held_out = BuiltIn::SwissRoll.sample(n, 101).points;
    let other = BuiltIn::SwissRoll.sample(n, 102).points;
    let sw2 = sliced_w2(&x, &held_out);
    let floor = sliced_w2(&other, &held_out);
    eprintln!("sw2 {sw2:.4}, floor {floor:.4}, ratio {:.2}", sw2 / floor);
    // An untrained network samples a blob: sw2 ≈ 0.3, many floors away.
    assert!(
        sw2 < 2.0 * floor,
        "sw2 {sw2:.4} vs floor {floor:.4} ({:.2}×)",
        sw2 / floor
    );
}
