//! The equations of the current schedule as Unicode text, symbolic and with the numbers at a
//! time t, for a panel a projector can show (docs/architecture.md §3):
//!
//! - forward SDE `dx = −½ β(t) x dt + √β(t) dW`, marginal `xₜ = α(t) x₀ + σ(t) ε`;
//! - reverse SDE (Anderson) `dx = [−½ β(t) x − β(t) ∇ₓlog pₜ(x)] dt + √β(t) dW̄`;
//! - PF-ODE `dx/dt = −½ β(t) [x + ∇ₓlog pₜ(x)]`, and the score from the network
//!   `∇ₓlog pₜ ≈ −ε̂/σ(t)`;
//! - and, for flow matching (`flow_formulas`), the straight path, its loss, the ODE on the
//!   velocity, the score it implies and the reverse SDE of `math::solvers`.

use serde::{Deserialize, Serialize};

use crate::math::schedule::{COSINE_S, Schedule};

/// β, B, α, σ, SNR and log SNR at one time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coefficients {
    pub t: f64,
    pub beta: f64,
    /// B(t) = ∫₀ᵗ β.
    pub big_b: f64,
    pub alpha: f64,
    pub sigma: f64,
    pub snr: f64,
    /// log SNR = log(α²/σ²) = 2λ.
    pub log_snr: f64,
}

impl Coefficients {
    pub fn at(schedule: &Schedule, t: f64) -> Self {
        let (alpha, sigma) = (schedule.alpha(t), schedule.sigma(t));
        Self {
            t,
            beta: schedule.beta(t),
            big_b: schedule.big_b(t),
            alpha,
            sigma,
            snr: schedule.snr(t),
            log_snr: 2.0 * (alpha.ln() - sigma.ln()),
        }
    }
}

/// Every line of the panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Formulas {
    pub coefficients: Coefficients,
    /// β(t) of this schedule.
    pub schedule: String,
    /// Symbolic and numeric versions of each equation.
    pub forward_sde: [String; 2],
    pub marginal: [String; 2],
    pub reverse_sde: [String; 2],
    pub pf_ode: [String; 2],
    pub score: [String; 2],
    /// "t = …   β = …   α = …   σ = …   SNR = …   log SNR = …".
    pub values: String,
}

/// The panel's text at time `t`.
pub fn formulas(schedule: &Schedule, t: f64) -> Formulas {
    let c = Coefficients::at(schedule, t);
    let n = |v: f64| format_number(v, 4);
    let half_beta = n(0.5 * c.beta);
    let root_beta = n(c.beta.sqrt());
    let values = format!(
        "t = {}   β = {}   α = {}   σ = {}   SNR = {}   log SNR = {}",
        n(c.t),
        n(c.beta),
        n(c.alpha),
        n(c.sigma),
        n(c.snr),
        n(c.log_snr)
    );
    let inv_sigma = if c.sigma > 0.0 {
        n(1.0 / c.sigma)
    } else {
        "∞".to_owned()
    };
    Formulas {
        coefficients: c,
        schedule: schedule_line(schedule),
        forward_sde: [
            "dx = −½ β(t) x dt + √β(t) dW".to_owned(),
            format!("dx = −{half_beta} x dt + {root_beta} dW"),
        ],
        marginal: [
            "xₜ = α(t) x₀ + σ(t) ε,   ε ~ N(0, I)".to_owned(),
            format!("xₜ = {} x₀ + {} ε", n(c.alpha), n(c.sigma)),
        ],
        reverse_sde: [
            "dx = [−½ β(t) x − β(t) ∇ₓlog pₜ(x)] dt + √β(t) dW̄".to_owned(),
            format!(
                "dx = [−{half_beta} x − {} ∇ₓlog pₜ(x)] dt + {root_beta} dW̄",
                n(c.beta)
            ),
        ],
        pf_ode: [
            "dx/dt = −½ β(t) [x + ∇ₓlog pₜ(x)]".to_owned(),
            format!("dx/dt = −{half_beta} [x + ∇ₓlog pₜ(x)]"),
        ],
        score: [
            "∇ₓlog pₜ(x) ≈ −ε̂(x, t) / σ(t)".to_owned(),
            format!("∇ₓlog pₜ(x) ≈ −{inv_sigma} ε̂(x, t)"),
        ],
        values,
    }
}

/// The equations of flow matching on the linear path, symbolic and at a time t.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowFormulas {
    pub path: [String; 2],
    pub loss: [String; 2],
    pub ode: [String; 2],
    pub score: [String; 2],
    pub reverse_sde: [String; 2],
    /// "t = …   α = 1 − t = …   σ = t = …".
    pub values: String,
}

impl FlowFormulas {
    /// (name, [symbolic, at t]) rows, in the order of the panel.
    pub fn rows(&self) -> [(&'static str, &[String; 2]); 5] {
        [
            ("path", &self.path),
            ("loss", &self.loss),
            ("ODE", &self.ode),
            ("score", &self.score),
            ("reverse SDE", &self.reverse_sde),
        ]
    }
}

/// Flow matching's panel at time `t` (0 < t ≤ 1).
pub fn flow_formulas(t: f64) -> FlowFormulas {
    let n = |v: f64| format_number(v, 4);
    let (a, s) = (1.0 - t, t);
    FlowFormulas {
        path: [
            "xₜ = (1 − t) x₀ + t ε,   ε ~ N(0, I)".to_owned(),
            format!("xₜ = {} x₀ + {} ε", n(a), n(s)),
        ],
        loss: [
            "L = E ‖v_θ(xₜ, t) − (ε − x₀)‖²,   t ~ U[0, 1]".to_owned(),
            format!("target at t = {}: ε − x₀ (the same for every t)", n(t)),
        ],
        ode: [
            "dx/dt = v_θ(x, t),   from t = 1 to 0".to_owned(),
            format!("x(t − h) = x(t) − h v_θ(x, {})", n(t)),
        ],
        score: [
            "∇ₓlog pₜ(x) = −(x + (1 − t) v(x, t)) / t".to_owned(),
            format!("∇ₓlog pₜ(x) = −{} (x + {} v)", n(1.0 / s), n(a)),
        ],
        reverse_sde: [
            "dx = [v − t ∇ₓlog pₜ] dt + √(2t) dW̄".to_owned(),
            format!("dx = [v + x + {} v] dt + {} dW̄", n(a), n((2.0 * t).sqrt())),
        ],
        values: format!("t = {}   α = 1 − t = {}   σ = t = {}", n(t), n(a), n(s)),
    }
}

/// β(t) of the schedule in words and numbers.
pub fn schedule_line(schedule: &Schedule) -> String {
    let n = |v: f64| format_number(v, 4);
    match *schedule {
        Schedule::Linear { beta_min, beta_max } => format!(
            "linear: β(t) = {} + t·({} − {})",
            n(beta_min),
            n(beta_max),
            n(beta_min)
        ),
        Schedule::Cosine { beta_cap } => {
            let cap_t = schedule.cap_time().unwrap_or(1.0);
            format!(
                "cosine: α(t)² = f(t)/f(0), f(t) = cos²(((t + {s})/(1 + {s}))·π/2); \
                 β capped at {} from t = {}",
                n(beta_cap),
                n(cap_t),
                s = COSINE_S
            )
        }
        Schedule::Constant { beta } => format!(
            "constant: β(t) = {} (the Ornstein–Uhlenbeck process)",
            n(beta)
        ),
    }
}

/// `v` with `sig` significant digits, a Unicode minus, and ×10ⁿ with a superscript exponent
/// outside [10⁻³, 10⁴): "10.05", "−2.455", "1.234×10⁻⁵".
pub fn format_number(v: f64, sig: usize) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞" } else { "−∞" }.to_owned();
    }
    let sig = sig.max(1);
    let sign = if v < 0.0 { "−" } else { "" };
    let a = v.abs();
    if a == 0.0 {
        return "0".to_owned();
    }
    // The exponent after rounding to `sig` digits (9.99996 rounds up to 10.00).
    let rounded: f64 = format!("{:.*e}", sig - 1, a).parse().unwrap_or(a);
    let exp = rounded.log10().floor() as i32;
    if (-3..4).contains(&exp) {
        let decimals = (sig as i32 - 1 - exp).max(0) as usize;
        format!("{sign}{rounded:.decimals$}")
    } else {
        let mantissa = rounded / 10f64.powi(exp);
        format!(
            "{sign}{mantissa:.prec$}×10{}",
            superscript(exp),
            prec = sig - 1
        )
    }
}

fn superscript(n: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut s = String::new();
    if n < 0 {
        s.push('⁻');
    }
    for ch in n.unsigned_abs().to_string().chars() {
        s.push(DIGITS[ch.to_digit(10).unwrap_or(0) as usize]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_for_a_projector() {
        assert_eq!(format_number(10.05, 4), "10.05");
        assert_eq!(format_number(-2.45481, 4), "−2.455");
        assert_eq!(format_number(0.5, 4), "0.5000");
        assert_eq!(format_number(1.2345e-5, 4), "1.234×10⁻⁵");
        assert_eq!(format_number(98765.0, 3), "9.88×10⁴");
        assert_eq!(format_number(9.99996, 4), "10.00");
        assert_eq!(format_number(0.0, 4), "0");
        assert_eq!(format_number(f64::INFINITY, 4), "∞");
    }
}
