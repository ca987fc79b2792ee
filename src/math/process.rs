//! Which path carries data (t = 0) to noise (t = 1): the VP-SDE of the schedule, or flow
//! matching's straight line (docs/architecture.md §3 and §3b).
//!
//! Both are Gaussian paths `x_t = α(t) x₀ + σ(t) ε`:
//! - **VP**: α = exp(−½∫β), σ² = 1 − α²; the network predicts ε̂ = E[ε | x_t].
//! - **FM**: α = 1 − t, σ = t; the network predicts the velocity v = E[ε − x₀ | x_t] with the
//!   plain squared loss, and ε̂ = E[ε | x_t] = x_t + (1 − t) v (so every ε̂-based view works on
//!   both).

use serde::{Deserialize, Serialize};

use super::Schedule;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Process {
    /// The VP-SDE `dx = −½ β x dt + √β dW` with denoising score matching.
    #[default]
    Vp,
    /// Conditional flow matching on the linear path `x_t = (1 − t) x₀ + t x₁`.
    Fm,
}

impl Process {
    pub const ALL: [Process; 2] = [Process::Vp, Process::Fm];

    /// The CLI and file name.
    pub fn name(self) -> &'static str {
        match self {
            Process::Vp => "vp",
            Process::Fm => "fm",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// A label for the UI.
    pub fn label(self) -> &'static str {
        match self {
            Process::Vp => "Diffusion (VP-SDE)",
            Process::Fm => "Flow matching (straight paths)",
        }
    }

    pub fn is_vp(&self) -> bool {
        *self == Process::Vp
    }

    /// α(t) and σ(t) of the path (the schedule matters only for VP).
    pub fn alpha_sigma(self, schedule: &Schedule, t: f64) -> (f64, f64) {
        match self {
            Process::Vp => (schedule.alpha(t), schedule.sigma(t)),
            Process::Fm => (1.0 - t, t),
        }
    }

    /// The exact marginal sample `α x₀ + σ ε` for a fixed ε per point (keeping ε fixed while t
    /// moves makes a scrubbed animation continuous).
    pub fn marginal(
        self,
        schedule: &Schedule,
        t: f64,
        x0: &[crate::Point],
        eps: &[crate::Point],
        out: &mut [crate::Point],
    ) {
        let (a, s) = self.alpha_sigma(schedule, t);
        let (a, s) = (a as f32, s as f32);
        for ((o, x), e) in out.iter_mut().zip(x0).zip(eps) {
            *o = [a * x[0] + s * e[0], a * x[1] + s * e[1]];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_fm_path_is_the_straight_line() {
        for p in Process::ALL {
            assert_eq!(Process::from_name(p.name()), Some(p));
        }
        let s = Schedule::default();
        let mut out = [[0.0; 2]];
        Process::Fm.marginal(&s, 0.25, &[[4.0, 0.0]], &[[0.0, 8.0]], &mut out);
        assert_eq!(out[0], [3.0, 2.0]);
        Process::Vp.marginal(&s, 0.0, &[[1.0, 2.0]], &[[5.0, 5.0]], &mut out);
        assert_eq!(out[0], [1.0, 2.0]);
        let (a, sg) = Process::Vp.alpha_sigma(&s, 0.5);
        assert!((a * a + sg * sg - 1.0).abs() < 1e-12);
    }
}
