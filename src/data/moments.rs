//! Population mean and per-axis variance of each toy distribution in FFJORD units (the
//! draws of `toy.rs`), so every sample is standardised by the same fixed map. A map fitted
//! to each sample would differ from draw to draw: held-out data would sit in slightly other
//! coordinates than the training data, and `mixture()` could not be exact.
//!
//! Closed forms where they are short; 1D integrals by Simpson's rule otherwise (swiss roll,
//! spirals), accurate to ~1e-12, far below what any test can see.

use std::f64::consts::PI;

use super::BuiltIn;
use super::toy;
use crate::math::oracle::Component;

/// Mean and per-axis variance (not the covariance: standardisation uses one scale).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Moments {
    pub mean: [f64; 2],
    pub var: [f64; 2],
}

impl Moments {
    /// The common scale: root-mean-square per-axis standard deviation.
    pub fn scale(&self) -> f64 {
        (0.5 * (self.var[0] + self.var[1])).sqrt()
    }
}

pub(super) fn population(builtin: BuiltIn) -> Moments {
    match builtin {
        BuiltIn::SwissRoll => swiss_roll(),
        BuiltIn::Moons => moons(),
        BuiltIn::EightGaussians => of_mixture(&toy::eight_gaussians_mixture()),
        BuiltIn::TwentyFiveGaussians => of_mixture(&toy::twenty_five_gaussians_mixture()),
        BuiltIn::Checkerboard => checkerboard(),
        BuiltIn::Rings => rings(),
        BuiltIn::Spirals => spirals(),
        BuiltIn::Pinwheel => pinwheel(),
    }
}

/// Law of total variance: `E x = Σ w μ`, `E x² = Σ w (Σ_ii + μ_i²)`.
pub(super) fn of_mixture(components: &[Component]) -> Moments {
    let total: f64 = components.iter().map(|c| c.weight).sum();
    let (mut mean, mut second) = ([0.0; 2], [0.0; 2]);
    for c in components {
        let w = c.weight / total;
        for i in 0..2 {
            mean[i] += w * c.mean[i];
            second[i] += w * (c.cov[i][i] + c.mean[i] * c.mean[i]);
        }
    }
    Moments {
        mean,
        var: [second[0] - mean[0] * mean[0], second[1] - mean[1] * mean[1]],
    }
}

/// `t ~ U[1.5π, 4.5π]`, `x = (t cos t + ε₁)/5`, `y = (t sin t + ε₂)/5`, ε ~ N(0, 1).
fn swiss_roll() -> Moments {
    let (a, b) = (1.5 * PI, 4.5 * PI);
    let e = |f: &dyn Fn(f64) -> f64| simpson(a, b, f) / (b - a);
    let (mc, ms) = (e(&|t| t * t.cos()), e(&|t| t * t.sin()));
    let (sc, ss) = (e(&|t| (t * t.cos()).powi(2)), e(&|t| (t * t.sin()).powi(2)));
    Moments {
        mean: [mc / 5.0, ms / 5.0],
        var: [(sc - mc * mc + 1.0) / 25.0, (ss - ms * ms + 1.0) / 25.0],
    }
}

/// Before `2x + (−1, −0.2)`, each moon with probability ½, θ ~ U[0, π] (E cos θ = 0,
/// E sin θ = 2/π, E cos² θ = E sin² θ = ½), noise variance 0.01:
/// x: outer cos θ, inner 1 − cos θ → mean ½, E x² = (½ + 3/2)/2 = 1, var ¾;
/// y: outer sin θ, inner ½ − sin θ → mean ¼, E y² = (½ + ¾ − 2/π)/2, var 9/16 − 1/π.
fn moons() -> Moments {
    let (mean, var) = ([0.5, 0.25], [0.75 + 0.01, 0.5625 - 1.0 / PI + 0.01]);
    let shift = [-1.0, -0.2];
    Moments {
        mean: [2.0 * mean[0] + shift[0], 2.0 * mean[1] + shift[1]],
        var: [4.0 * var[0], 4.0 * var[1]],
    }
}

/// Before the factor 2: x₁ ~ U[−2, 2] has variance 4/3; x₂ = U − 2B + C with U, B and
/// C = ⌊x₁⌋ mod 2 independent, mean ½ − 1 + ½ = 0, variance 1/12 + 1 + ¼ = 4/3.
/// (x₁ and x₂ are correlated, 0.1875, which one common scale does not care about.)
fn checkerboard() -> Moments {
    Moments {
        mean: [0.0, 0.0],
        var: [4.0 * 4.0 / 3.0; 2],
    }
}

/// Uniform angle: per-axis variance E r²/2 plus the noise 0.08²; E r² over the 4 radii.
fn rings() -> Moments {
    let mean_r2 = (1..=4).map(|k| (0.75 * k as f64).powi(2)).sum::<f64>() / 4.0;
    Moments {
        mean: [0.0, 0.0],
        var: [mean_r2 / 2.0 + 0.08 * 0.08; 2],
    }
}

/// n has density 2s/L² on [0, L], L = 3π. The two arms are reflections, so the mean is 0;
/// with A = −n cos n, the x-variance is E(A + U/2)²/9 + 0.01 = (E A² + ½ E A + 1/12)/9 + 0.01,
/// and the same for y with A = n sin n.
fn spirals() -> Moments {
    let l = 3.0 * PI;
    let e = |f: &dyn Fn(f64) -> f64| simpson(0.0, l, &|s| 2.0 * s / (l * l) * f(s));
    let var_of =
        |a: &dyn Fn(f64) -> f64| (e(&|s| a(s).powi(2)) + 0.5 * e(a) + 1.0 / 12.0) / 9.0 + 0.01;
    Moments {
        mean: [0.0, 0.0],
        var: [var_of(&|s| -s * s.cos()), var_of(&|s| s * s.sin())],
    }
}

/// The 5 arms are rotations by multiples of 2π/5 of one random vector v = 2 R f, so the mean
/// is 0 and the covariance isotropic: per-axis variance E|v|²/2 = 2 E(f₁² + f₂²) with
/// f₁ ~ N(1, 0.3²), f₂ ~ N(0, 0.1²).
fn pinwheel() -> Moments {
    let e_f2 = 1.0 + toy::PINWHEEL_RADIAL_STD.powi(2) + toy::PINWHEEL_TANGENTIAL_STD.powi(2);
    Moments {
        mean: [0.0, 0.0],
        var: [2.0 * e_f2; 2],
    }
}

/// Composite Simpson's rule with 4096 panels; the integrands here are smooth.
fn simpson(a: f64, b: f64, f: &dyn Fn(f64) -> f64) -> f64 {
    const PANELS: usize = 4096;
    let h = (b - a) / PANELS as f64;
    let inner: f64 = (1..PANELS)
        .map(|i| f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 })
        .sum();
    (f(a) + inner + f(b)) * h / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed forms: E[t cos t] = [t sin t + cos t]/(b − a) = 6π/3π = 2 and
    /// E[t sin t] = [−t cos t + sin t]/(b − a) = 2/(3π).
    #[test]
    fn simpson_matches_closed_form_swiss_roll_mean() {
        let m = swiss_roll();
        assert!((m.mean[0] - 2.0 / 5.0).abs() < 1e-12, "{:?}", m.mean);
        assert!(
            (m.mean[1] - 2.0 / (3.0 * PI) / 5.0).abs() < 1e-12,
            "{:?}",
            m.mean
        );
    }

    #[test]
    fn eight_gaussians_variance_is_closed_form() {
        // Centres at radius 4: mean of c_x² over the 8 is 16·4/8 = 8, plus 0.5².
        let m = population(BuiltIn::EightGaussians);
        let v = 8.25 / (1.414 * 1.414);
        assert!(
            (m.var[0] - v).abs() < 1e-12 && (m.var[1] - v).abs() < 1e-12,
            "{m:?}"
        );
        assert!(m.mean[0].abs() < 1e-12 && m.mean[1].abs() < 1e-12, "{m:?}");
    }
}
