//! The one interface every sampler drives: a batch of points at one time t → ε̂.

use crate::Point;

/// A noise predictor ε̂(x, t) ≈ −σ(t) ∇ log p_t(x). The exact oracle, the CPU network and the
/// GPU network all implement it, so every sampler runs unchanged on each.
pub trait ScoreModel: Sync {
    /// Writes ε̂(x, t) for every point of `xs` into `out` (same length).
    fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]);

    /// ε̂ and its divergence ∇·ε̂ = ∂ε̂₀/∂x₀ + ∂ε̂₁/∂x₁, for the exact 2D likelihood. The default
    /// takes central differences along both axes (four extra evaluations); models that can
    /// differentiate themselves override it.
    fn eps_div(&self, xs: &[Point], t: f32, out: &mut [Point], div: &mut [f32]) {
        self.eps(xs, t, out);
        let h = 1e-3f32;
        div.iter_mut().for_each(|d| *d = 0.0);
        let mut shifted = xs.to_vec();
        let (mut plus, mut minus) = (vec![[0.0; 2]; xs.len()], vec![[0.0; 2]; xs.len()]);
        for axis in 0..2 {
            shifted
                .iter_mut()
                .zip(xs)
                .for_each(|(s, x)| s[axis] = x[axis] + h);
            self.eps(&shifted, t, &mut plus);
            shifted
                .iter_mut()
                .zip(xs)
                .for_each(|(s, x)| s[axis] = x[axis] - h);
            self.eps(&shifted, t, &mut minus);
            shifted
                .iter_mut()
                .zip(xs)
                .for_each(|(s, x)| s[axis] = x[axis]);
            for (d, (p, m)) in div.iter_mut().zip(plus.iter().zip(&minus)) {
                *d += (p[axis] - m[axis]) / (2.0 * h);
            }
        }
    }
}
