//! The time embedding emb(t), the network's view of t ∈ [0, 1].
//!
//! Sinusoidal (Vaswani et al.; DDPM): with `half = dim/2` frequencies
//! `ω_i = T_SCALE · MAX_PERIOD^(−i/half)`, `i = 0..half`,
//!
//! `emb(t) = [sin(ω_0 t), …, sin(ω_{half−1} t), cos(ω_0 t), …, cos(ω_{half−1} t)]`.
//!
//! `T_SCALE` is a free choice: DDPM feeds the integer step (t·1000) with `MAX_PERIOD` 10⁴, which
//! spans ω from 1000 rad down to ~0.1 rad per unit t: the fast features resolve the small-t
//! end, where the score changes on a scale of Δt ~ t_min, and the slow ones vary smoothly
//! over the whole range. We keep those values (a GPU kernel must use the same constants).
//! Measured on swiss roll (default net, 3000 steps of 256, 4 seeds, sw2/floor with PF-ODE
//! Heun 50 and Euler–Maruyama 100): ω ranges 1000…0.1, 100…0.1, 30…0.3 and 10…0.1 were all
//! within the seed-to-seed spread (Heun 1.4–2.2, EM 0.9–1.5), so the scale is not critical.
//!
//! Scalar: `emb(t) = [t]`.

use super::fastmath;
use super::mlp::Embedding;
use super::simd::multiversion;

/// t is multiplied by this before the geometric frequencies (DDPM's 1000 steps).
pub const T_SCALE: f32 = 1000.0;
/// Ratio of the slowest to the fastest period.
pub const MAX_PERIOD: f32 = 10_000.0;

/// An embedding with its frequencies computed once.
#[derive(Clone, Debug)]
pub struct TimeEmbedding {
    kind: Embedding,
    /// ω_i in rad per unit t (empty for the scalar embedding).
    freqs: Vec<f32>,
}

impl TimeEmbedding {
    pub fn new(kind: Embedding) -> Self {
        let freqs = match kind {
            Embedding::Sinusoidal { dim } => {
                let half = dim / 2;
                (0..half)
                    .map(|i| {
                        let e = -(i as f64) / half as f64 * (MAX_PERIOD as f64).ln();
                        (T_SCALE as f64 * e.exp()) as f32
                    })
                    .collect()
            }
            Embedding::Scalar => Vec::new(),
        };
        Self { kind, freqs }
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.kind.dim()
    }

    /// The frequencies ω_i (rad per unit t).
    pub fn freqs(&self) -> &[f32] {
        &self.freqs
    }

    /// Writes emb(t) into `dst[..dim]`.
    #[inline(always)]
    pub fn write(&self, t: f32, dst: &mut [f32]) {
        match self.kind {
            Embedding::Scalar => dst[0] = t,
            Embedding::Sinusoidal { .. } => {
                let half = self.freqs.len();
                let (sin, rest) = dst.split_at_mut(half);
                let cos = &mut rest[..half];
                for ((s, c), &w) in sin.iter_mut().zip(cos.iter_mut()).zip(&self.freqs) {
                    (*s, *c) = fastmath::sin_cos(w * t);
                }
            }
        }
    }

    /// emb(ts[i]) into row i of `dst` (row stride `ld`), starting at column `col`.
    pub fn write_rows(&self, ts: &[f32], dst: &mut [f32], ld: usize, col: usize) {
        write_rows(self, ts, dst, ld, col)
    }
}

multiversion! {
    fn write_rows(emb: &TimeEmbedding, ts: &[f32], dst: &mut [f32], ld: usize, col: usize) {
        for (i, &t) in ts.iter().enumerate() {
            emb.write(t, &mut dst[i * ld + col..i * ld + col + emb.dim()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoidal_matches_its_formula() {
        let emb = TimeEmbedding::new(Embedding::Sinusoidal { dim: 8 });
        assert_eq!(emb.dim(), 8);
        assert_eq!(emb.freqs()[0], T_SCALE);
        let ts = [0.0f32, 0.001, 0.37, 1.0];
        let mut rows = vec![0.0f32; 4 * 10];
        emb.write_rows(&ts, &mut rows, 10, 2);
        for (i, &t) in ts.iter().enumerate() {
            for k in 0..4 {
                let w = T_SCALE as f64 * (MAX_PERIOD as f64).powf(-(k as f64) / 4.0);
                let arg = (w as f32 * t) as f64;
                assert!((rows[i * 10 + 2 + k] as f64 - arg.sin()).abs() < 1e-6);
                assert!((rows[i * 10 + 6 + k] as f64 - arg.cos()).abs() < 1e-6);
            }
            assert_eq!(rows[i * 10], 0.0);
        }
    }

    #[test]
    fn scalar_is_t() {
        let emb = TimeEmbedding::new(Embedding::Scalar);
        let mut row = [0.0f32; 3];
        emb.write_rows(&[0.25], &mut row, 3, 2);
        assert_eq!(row, [0.0, 0.0, 0.25]);
    }
}
