//! FFJORD's toy distributions (rtqichen/ffjord, `lib/toy_data.py`) in FFJORD's own units,
//! one independent draw at a time: `([x, y], label)`.
//!
//! Where FFJORD lays points on a `linspace` grid (the moons of sklearn's `make_moons`, the
//! rings) or splits a batch into equal classes (moons, rings, spirals, pinwheel), we draw the
//! angle uniformly and the class with equal probability instead. Each point is then an
//! i.i.d. draw of the distribution the grid approximates, which is what held-out data and the
//! data-vs-data floor of the metrics need: two grids share their skeleton and would make the
//! floor look better than any model could be. The moments these draws have are in
//! `moments.rs`; the standardisation happens in `builtin.rs`.

use std::f64::consts::{FRAC_1_SQRT_2, PI, TAU};

use rand::Rng;
use rand_distr::StandardNormal;

use crate::math::oracle::Component;

/// A draw in FFJORD units, with its class if the dataset has classes.
pub(super) type Draw = ([f64; 2], Option<u32>);

fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    rng.sample(StandardNormal)
}

fn uniform<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    rng.random::<f64>()
}

/// sklearn's `make_swiss_roll(noise=1.0)`, coordinates 0 and 2 (the roll seen end-on),
/// divided by 5: `t ~ U[1.5π, 4.5π]`, `(t cos t, t sin t) + N(0, I)`.
pub(super) fn swiss_roll<R: Rng + ?Sized>(rng: &mut R) -> Draw {
    let t = 1.5 * PI * (1.0 + 2.0 * uniform(rng));
    let (s, c) = t.sin_cos();
    (
        [(t * c + normal(rng)) / 5.0, (t * s + normal(rng)) / 5.0],
        None,
    )
}

/// sklearn's `make_moons(noise=0.1)`, then `2x + (−1, −0.2)`. Label 0 is the outer (upper)
/// moon `(cos θ, sin θ)`, label 1 the inner one `(1 − cos θ, 0.5 − sin θ)`, θ ~ U[0, π].
pub(super) fn moons<R: Rng + ?Sized>(rng: &mut R) -> Draw {
    let label = rng.random_range(0..2u32);
    let (s, c) = (PI * uniform(rng)).sin_cos();
    let [x, y] = if label == 0 {
        [c, s]
    } else {
        [1.0 - c, 0.5 - s]
    };
    let (x, y) = (x + 0.1 * normal(rng), y + 0.1 * normal(rng));
    ([2.0 * x - 1.0, 2.0 * y - 0.2], Some(label))
}

/// FFJORD's 8 centres on the unit circle, in its order (the order of the labels).
const EIGHT_CENTRES: [[f64; 2]; 8] = [
    [1.0, 0.0],
    [-1.0, 0.0],
    [0.0, 1.0],
    [0.0, -1.0],
    [FRAC_1_SQRT_2, FRAC_1_SQRT_2],
    [FRAC_1_SQRT_2, -FRAC_1_SQRT_2],
    [-FRAC_1_SQRT_2, FRAC_1_SQRT_2],
    [-FRAC_1_SQRT_2, -FRAC_1_SQRT_2],
];

/// FFJORD divides 8 Gaussians by this ("√2", written as 1.414).
const EIGHT_DIVISOR: f64 = 1.414;

/// "8gaussians": `(4 c_k + 0.5 z) / 1.414`, k uniform, z ~ N(0, I). Label k.
pub(super) fn eight_gaussians<R: Rng + ?Sized>(rng: &mut R) -> Draw {
    let k = rng.random_range(0..8u32);
    let c = EIGHT_CENTRES[k as usize];
    let p = [
        4.0 * c[0] + 0.5 * normal(rng),
        4.0 * c[1] + 0.5 * normal(rng),
    ];
    ([p[0] / EIGHT_DIVISOR, p[1] / EIGHT_DIVISOR], Some(k))
}

/// The exact mixture behind [`eight_gaussians`], in the same units and label order.
pub(super) fn eight_gaussians_mixture() -> Vec<Component> {
    let s = 0.5 / EIGHT_DIVISOR;
    EIGHT_CENTRES
        .iter()
        .map(|c| Component {
            weight: 1.0 / 8.0,
            mean: [4.0 * c[0] / EIGHT_DIVISOR, 4.0 * c[1] / EIGHT_DIVISOR],
            cov: [[s * s, 0.0], [0.0, s * s]],
        })
        .collect()
}

/// The 25-Gaussians divisor of Improved WGAN's toy code ("stdev", 2√2 written as 2.828).
const TWENTY_FIVE_DIVISOR: f64 = 2.828;

/// The centre of 25-Gaussians component k = 5 i + j (i the column, j the row, as in the
/// nested loops of the reference code), before the divisor: `(2(i − 2), 2(j − 2))`.
fn twenty_five_centre(k: u32) -> [f64; 2] {
    [2.0 * ((k / 5) as f64 - 2.0), 2.0 * ((k % 5) as f64 - 2.0)]
}

/// "25gaussians" (FFJORD's repository does not define it; this is the definition of
/// Improved WGAN's toy code that the literature uses): a 5×5 grid with spacing 2 and
/// std 0.05, divided by 2.828. Label k = 5 i + j.
pub(super) fn twenty_five_gaussians<R: Rng + ?Sized>(rng: &mut R) -> Draw {
    let k = rng.random_range(0..25u32);
    let c = twenty_five_centre(k);
    let p = [c[0] + 0.05 * normal(rng), c[1] + 0.05 * normal(rng)];
    (
        [p[0] / TWENTY_FIVE_DIVISOR, p[1] / TWENTY_FIVE_DIVISOR],
        Some(k),
    )
}

/// The exact mixture behind [`twenty_five_gaussians`], in the same units and label order.
pub(super) fn twenty_five_gaussians_mixture() -> Vec<Component> {
    let s = 0.05 / TWENTY_FIVE_DIVISOR;
    (0..25)
        .map(|k| {
            let c = twenty_five_centre(k);
            Component {
                weight: 1.0 / 25.0,
                mean: [c[0] / TWENTY_FIVE_DIVISOR, c[1] / TWENTY_FIVE_DIVISOR],
                cov: [[s * s, 0.0], [0.0, s * s]],
            }
        })
        .collect()
}

/// "checkerboard": `x₁ ~ U[−2, 2]`, `x₂ = U − 2B + (⌊x₁⌋ mod 2)` with B a fair bit, times 2:
/// 8 filled squares of side 2 on a 4×4 board. Python's `%` is never negative, hence
/// `rem_euclid`. No labels: the squares are not separate shapes a class could steer to.
pub(super) fn checkerboard<R: Rng + ?Sized>(rng: &mut R) -> Draw {
    let x1 = 4.0 * uniform(rng) - 2.0;
    let bit = rng.random_range(0..2u32) as f64;
    let x2 = uniform(rng) - 2.0 * bit + x1.floor().rem_euclid(2.0);
    ([2.0 * x1, 2.0 * x2], None)
}

/// "rings": 4 concentric circles of radius 3·{0.25, 0.5, 0.75, 1}, a quarter of the points
/// each, plus N(0, 0.08²). Label k is the ring of radius 0.75 (k + 1), innermost first.
pub(super) fn rings<R: Rng + ?Sized>(rng: &mut R) -> Draw {
    let k = rng.random_range(0..4u32);
    let r = 0.75 * (k + 1) as f64;
    let (s, c) = (TAU * uniform(rng)).sin_cos();
    (
        [r * c + 0.08 * normal(rng), r * s + 0.08 * normal(rng)],
        Some(k),
    )
}

/// "2spirals": `n = √U · 3π` (540°), arm `(−n cos n + U/2, n sin n + U/2)`, the second arm
/// its point reflection, divided by 3, plus N(0, 0.1²). Label 0 or 1 is the arm.
pub(super) fn spirals<R: Rng + ?Sized>(rng: &mut R) -> Draw {
    let label = rng.random_range(0..2u32);
    let n = uniform(rng).sqrt() * 3.0 * PI;
    let (s, c) = n.sin_cos();
    let arm = [-n * c + 0.5 * uniform(rng), n * s + 0.5 * uniform(rng)];
    let sign = if label == 0 { 1.0 } else { -1.0 };
    (
        [
            sign * arm[0] / 3.0 + 0.1 * normal(rng),
            sign * arm[1] / 3.0 + 0.1 * normal(rng),
        ],
        Some(label),
    )
}

/// Pinwheel parameters of FFJORD (from Johnson et al.'s SVAE).
pub(super) const PINWHEEL_CLASSES: u32 = 5;
pub(super) const PINWHEEL_RADIAL_STD: f64 = 0.3;
pub(super) const PINWHEEL_TANGENTIAL_STD: f64 = 0.1;
const PINWHEEL_RATE: f64 = 0.25;

/// "pinwheel": `f = (1 + 0.3 z₁, 0.1 z₂)` rotated by `a = 2πk/5 + 0.25 e^{f₁}` and doubled.
/// FFJORD's `einsum("ti,tij->tj")` multiplies the row vector f by `[[cos, −sin], [sin, cos]]`,
/// i.e. rotates by −a; we keep that so the arms curl the same way. Label k is the arm.
pub(super) fn pinwheel<R: Rng + ?Sized>(rng: &mut R) -> Draw {
    let k = rng.random_range(0..PINWHEEL_CLASSES);
    let f0 = 1.0 + PINWHEEL_RADIAL_STD * normal(rng);
    let f1 = PINWHEEL_TANGENTIAL_STD * normal(rng);
    let a = TAU * k as f64 / PINWHEEL_CLASSES as f64 + PINWHEEL_RATE * f0.exp();
    let (s, c) = a.sin_cos();
    ([2.0 * (f0 * c + f1 * s), 2.0 * (-f0 * s + f1 * c)], Some(k))
}
