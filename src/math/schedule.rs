//! Noise schedules of the VP-SDE `dx = −½ β(t) x dt + √β(t) dW` (docs/architecture.md §3).
//!
//! Every schedule gives β, B = ∫₀ᵗ β, α = exp(−½B) and σ² = 1 − α² in closed form, in f64:
//! σ near t = 0 is the difference of two numbers close to 1, so it is taken with `expm1`.

use serde::{Deserialize, Serialize};

/// Offset `s` of the cosine schedule (Nichol & Dhariwal).
pub const COSINE_S: f64 = 0.008;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// `β(t) = β_min + t (β_max − β_min)`: the VP-SDE of Song et al. and DDPM's linear schedule.
    Linear { beta_min: f64, beta_max: f64 },
    /// `α(t)² = f(t)/f(0)`, `f(t) = cos²(((t + s)/(1 + s))·π/2)`. Its β diverges at t = 1, so it
    /// is capped at `beta_cap`; past the cap β stays constant and B grows linearly.
    Cosine { beta_cap: f64 },
    /// Constant β: the Ornstein–Uhlenbeck process of the lecture.
    Constant { beta: f64 },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Linear {
            beta_min: 0.1,
            beta_max: 20.0,
        }
    }
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("β values must be finite and positive (got {0})")]
    NonPositive(f64),
    #[error("β_min ({min}) must not exceed β_max ({max})")]
    MinAboveMax { min: f64, max: f64 },
}

impl Schedule {
    /// Name used on the CLI and in saved settings.
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Linear { .. } => "linear",
            Schedule::Cosine { .. } => "cosine",
            Schedule::Constant { .. } => "constant",
        }
    }

    /// Checks that β is positive and finite everywhere.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let positive = |b: f64| {
            if b.is_finite() && b > 0.0 {
                Ok(())
            } else {
                Err(ScheduleError::NonPositive(b))
            }
        };
        match *self {
            Schedule::Linear { beta_min, beta_max } => {
                positive(beta_min)?;
                positive(beta_max)?;
                if beta_min > beta_max {
                    return Err(ScheduleError::MinAboveMax {
                        min: beta_min,
                        max: beta_max,
                    });
                }
                Ok(())
            }
            Schedule::Cosine { beta_cap } => positive(beta_cap),
            Schedule::Constant { beta } => positive(beta),
        }
    }

    /// β(t).
    pub fn beta(&self, t: f64) -> f64 {
        match *self {
            Schedule::Linear { beta_min, beta_max } => beta_min + t * (beta_max - beta_min),
            Schedule::Cosine { beta_cap } => cosine_beta(t).min(beta_cap),
            Schedule::Constant { beta } => beta,
        }
    }

    /// B(t) = ∫₀ᵗ β(s) ds.
    pub fn big_b(&self, t: f64) -> f64 {
        match *self {
            Schedule::Linear { beta_min, beta_max } => {
                beta_min * t + 0.5 * t * t * (beta_max - beta_min)
            }
            Schedule::Cosine { beta_cap } => {
                let t_cap = cosine_cap_time(beta_cap);
                if t <= t_cap {
                    cosine_big_b(t)
                } else {
                    cosine_big_b(t_cap) + beta_cap * (t - t_cap)
                }
            }
            Schedule::Constant { beta } => beta * t,
        }
    }

    /// α(t) = exp(−½ B(t)): the mean scale (DDPM's √ᾱ).
    pub fn alpha(&self, t: f64) -> f64 {
        (-0.5 * self.big_b(t)).exp()
    }

    /// σ(t) = √(1 − α²), accurate for small t.
    pub fn sigma(&self, t: f64) -> f64 {
        (-(-self.big_b(t)).exp_m1()).max(0.0).sqrt()
    }

    /// Signal-to-noise ratio α²/σ².
    pub fn snr(&self, t: f64) -> f64 {
        let (a, s) = (self.alpha(t), self.sigma(t));
        a * a / (s * s)
    }

    /// λ(t) = log(α/σ) = ½ log SNR, the time variable of DDIM and DPM-Solver.
    pub fn lambda(&self, t: f64) -> f64 {
        self.alpha(t).ln() - self.sigma(t).ln()
    }

    /// Inverse of λ on [0, 1] by bisection (λ is strictly decreasing in t).
    pub fn t_of_lambda(&self, lambda: f64) -> f64 {
        let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
        for _ in 0..80 {
            let mid = 0.5 * (lo + hi);
            if self.lambda(mid) > lambda {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// Where the cosine schedule starts being capped, if it is one (for the UI).
    pub fn cap_time(&self) -> Option<f64> {
        match *self {
            Schedule::Cosine { beta_cap } => Some(cosine_cap_time(beta_cap)),
            _ => None,
        }
    }
}

fn cosine_phase(t: f64) -> f64 {
    (t + COSINE_S) / (1.0 + COSINE_S) * std::f64::consts::FRAC_PI_2
}

/// Uncapped cosine β(t) = −d log α²/dt = (π/(1+s)) tan(phase).
fn cosine_beta(t: f64) -> f64 {
    std::f64::consts::PI / (1.0 + COSINE_S) * cosine_phase(t).tan()
}

/// Uncapped cosine B(t) = −log(f(t)/f(0)).
fn cosine_big_b(t: f64) -> f64 {
    -2.0 * (cosine_phase(t).cos() / cosine_phase(0.0).cos()).ln()
}

/// The t at which the cosine β reaches `cap` (1 if it never does before t = 1).
fn cosine_cap_time(cap: f64) -> f64 {
    let phase = (cap * (1.0 + COSINE_S) / std::f64::consts::PI).atan();
    let t = phase / std::f64::consts::FRAC_PI_2 * (1.0 + COSINE_S) - COSINE_S;
    t.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> [Schedule; 4] {
        [
            Schedule::default(),
            Schedule::Linear {
                beta_min: 0.5,
                beta_max: 5.0,
            },
            Schedule::Cosine { beta_cap: 20.0 },
            Schedule::Constant { beta: 3.0 },
        ]
    }

    /// B(t) must be the integral of β: Simpson's rule on a fine grid.
    #[test]
    fn big_b_is_integral_of_beta() {
        for s in all() {
            for &t in &[0.0, 0.1, 0.5, 0.9, 0.95, 1.0] {
                let n = 20_000;
                let h = t / n as f64;
                let mut acc = s.beta(0.0) + s.beta(t);
                for i in 1..n {
                    acc += s.beta(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
                }
                let integral = acc * h / 3.0;
                // The capped cosine has a kink at the cap; Simpson is then only first order there.
                assert!(
                    (integral - s.big_b(t)).abs() < 1e-5,
                    "{s:?} t={t}: ∫β={integral} B={}",
                    s.big_b(t)
                );
            }
        }
    }

    #[test]
    fn alpha_sigma_are_a_unit_pair() {
        for s in all() {
            for i in 1..=100 {
                let t = i as f64 / 100.0;
                let (a, g) = (s.alpha(t), s.sigma(t));
                assert!((a * a + g * g - 1.0).abs() < 1e-12);
                assert!((s.snr(t) - a * a / (g * g)).abs() <= 1e-9 * s.snr(t).max(1.0));
            }
            assert_eq!(s.sigma(0.0), 0.0);
        }
    }

    #[test]
    fn cosine_matches_its_definition_before_the_cap() {
        let s = Schedule::Cosine { beta_cap: 1e9 };
        let f = |t: f64| cosine_phase(t).cos().powi(2);
        for &t in &[0.0, 0.3, 0.7, 0.99] {
            assert!((s.alpha(t).powi(2) - f(t) / f(0.0)).abs() < 1e-12);
        }
        let capped = Schedule::Cosine { beta_cap: 20.0 };
        let tc = capped.cap_time().unwrap();
        assert!((cosine_beta(tc) - 20.0).abs() < 1e-9);
        assert_eq!(capped.beta(0.999), 20.0);
    }

    #[test]
    fn lambda_inverts() {
        for s in all() {
            for &t in &[0.001, 0.2, 0.5, 0.99] {
                let back = s.t_of_lambda(s.lambda(t));
                assert!((back - t).abs() < 1e-9, "{s:?}: {t} -> {back}");
            }
        }
    }

    #[test]
    fn validation_rejects_bad_betas() {
        assert!(
            Schedule::Linear {
                beta_min: 5.0,
                beta_max: 1.0
            }
            .validate()
            .is_err()
        );
        assert!(Schedule::Constant { beta: f64::NAN }.validate().is_err());
        assert!(Schedule::Cosine { beta_cap: 0.0 }.validate().is_err());
        assert!(Schedule::default().validate().is_ok());
    }
}
