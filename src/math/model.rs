//! The one interface every sampler drives: a batch of points at one time t → ε̂ (and, for a
//! flow-matching model, the velocity v).

use super::Process;
use crate::Point;

/// A noise predictor ε̂(x, t) = E[ε | x_t = x] ≈ −σ(t) ∇ log p_t(x) on the model's path
/// (`process`). The exact oracles, the CPU network and the GPU network all implement it, so
/// every sampler runs unchanged on each.
pub trait ScoreModel: Sync {
    /// The path the model's predictions are about.
    fn process(&self) -> Process {
        Process::Vp
    }

    /// The flow-matching velocity v(x, t) = E[ε − x₀ | x_t = x] on the linear path, which
    /// flow-matching samplers integrate. The default derives it from ε̂ of an FM model,
    /// `v = (ε̂ − x)/(1 − t)`, for t < 1; models that predict v override it.
    fn velocity(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        velocity_from_eps(self, xs, t, out);
    }

    /// v and ∇·v, for the likelihood along a flow-matching flow (default: central
    /// differences of `velocity`).
    fn velocity_div(&self, xs: &[Point], t: f32, out: &mut [Point], div: &mut [f32]) {
        self.velocity(xs, t, out);
        central_divergence(
            &|x: &[Point], o: &mut [Point]| self.velocity(x, t, o),
            xs,
            div,
        );
    }

    /// Writes ε̂(x, t) for every point of `xs` into `out` (same length).
    fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]);

    /// ε̂ and its divergence ∇·ε̂ = ∂ε̂₀/∂x₀ + ∂ε̂₁/∂x₁, for the exact 2D likelihood. The default
    /// takes central differences along both axes (four extra evaluations); models that can
    /// differentiate themselves override it.
    fn eps_div(&self, xs: &[Point], t: f32, out: &mut [Point], div: &mut [f32]) {
        self.eps(xs, t, out);
        central_divergence(&|x: &[Point], o: &mut [Point]| self.eps(x, t, o), xs, div);
    }
}

/// `v = (ε̂ − x)/(1 − t)`: the velocity of the linear path from its ε̂ (t < 1).
pub fn velocity_from_eps<M: ScoreModel + ?Sized>(
    model: &M,
    xs: &[Point],
    t: f32,
    out: &mut [Point],
) {
    model.eps(xs, t, out);
    let k = 1.0 / (1.0 - t);
    for (o, x) in out.iter_mut().zip(xs) {
        *o = [(o[0] - x[0]) * k, (o[1] - x[1]) * k];
    }
}

/// v and `∇·v = (∇·ε̂ − 2)/(1 − t)` from `eps_div` (t < 1).
pub fn velocity_div_from_eps<M: ScoreModel + ?Sized>(
    model: &M,
    xs: &[Point],
    t: f32,
    out: &mut [Point],
    div: &mut [f32],
) {
    model.eps_div(xs, t, out, div);
    let k = 1.0 / (1.0 - t);
    for ((o, x), d) in out.iter_mut().zip(xs).zip(div.iter_mut()) {
        *o = [(o[0] - x[0]) * k, (o[1] - x[1]) * k];
        *d = (*d - 2.0) * k;
    }
}

/// ∇·f at each point by central differences along both axes (h = 10⁻³).
fn central_divergence(f: &dyn Fn(&[Point], &mut [Point]), xs: &[Point], div: &mut [f32]) {
    let h = 1e-3f32;
    div.iter_mut().for_each(|d| *d = 0.0);
    let mut shifted = xs.to_vec();
    let (mut plus, mut minus) = (vec![[0.0; 2]; xs.len()], vec![[0.0; 2]; xs.len()]);
    for axis in 0..2 {
        for sign in [1.0f32, -1.0] {
            shifted
                .iter_mut()
                .zip(xs)
                .for_each(|(s, x)| s[axis] = x[axis] + sign * h);
            f(&shifted, if sign > 0.0 { &mut plus } else { &mut minus });
        }
        shifted
            .iter_mut()
            .zip(xs)
            .for_each(|(s, x)| s[axis] = x[axis]);
        for (d, (p, m)) in div.iter_mut().zip(plus.iter().zip(&minus)) {
            *d += (p[axis] - m[axis]) / (2.0 * h);
        }
    }
}
