//! A counter-based random number generator: every draw is a pure function of
//! (seed, step, index, stream), so a run is reproducible in any order and a WGSL kernel
//! (`shaders/rng.wgsl`) can redraw exactly the same numbers. Only u32 arithmetic is used,
//! since WGSL has no 64-bit integers.
//!
//! Streams in use (keep them distinct):
//! - DSM batch: `STREAM_INDEX` (which data point), `STREAM_TIME` (t), `STREAM_EPS` (ε pair);
//! - DSM class labels: `STREAM_CLASS_DROP` (whether a sample's label is replaced by the null
//!   class ∅ of classifier-free guidance);
//! - samplers: `STREAM_PRIOR` (starting noise), `STREAM_STEP` (noise of a step),
//!   `STREAM_CORRECTOR` (noise of a corrector step); likelihood: `STREAM_PROBE`;
//! - weight initialisation: `STREAM_INIT`; annealed Langevin (`teach::naive`):
//!   `STREAM_ANNEALED`.
//!
//! `normal2` also reads stream `s + 0x9E37_79B9` for its second uniform, so those must not
//! collide with another stream either (a test checks).

use crate::Point;

pub const STREAM_INDEX: u32 = 0;
pub const STREAM_TIME: u32 = 1;
pub const STREAM_EPS: u32 = 2;
pub const STREAM_PRIOR: u32 = 3;
pub const STREAM_STEP: u32 = 4;
/// Rademacher probes of the Hutchinson estimator.
pub const STREAM_PROBE: u32 = 5;
/// Noise of the Langevin corrector in the predictor–corrector sampler.
pub const STREAM_CORRECTOR: u32 = 6;
/// Classifier-free guidance's label dropout: sample i of step k trains on the null class ∅
/// when `uniform(seed, k, i, STREAM_CLASS_DROP) < p` (`nn::TrainConfig::class_dropout`).
pub const STREAM_CLASS_DROP: u32 = 7;
/// Weight initialisation (`nn::MlpConfig::init_params`), keyed by (seed, layer, index).
pub const STREAM_INIT: u32 = 0x494E_4954;
/// Noise of annealed Langevin dynamics in `teach::naive` (`teach::naive::STREAM_ANNEALED`
/// has the same value).
pub const STREAM_ANNEALED: u32 = 0x414E_4E4C;

/// Every stream above, for the distinctness test.
pub const ALL_STREAMS: [u32; 10] = [
    STREAM_INDEX,
    STREAM_TIME,
    STREAM_EPS,
    STREAM_PRIOR,
    STREAM_STEP,
    STREAM_PROBE,
    STREAM_CORRECTOR,
    STREAM_CLASS_DROP,
    STREAM_INIT,
    STREAM_ANNEALED,
];

/// PCG-RXS-M-XS hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020).
#[inline]
pub fn pcg_hash(x: u32) -> u32 {
    let state = x.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// The 32 random bits for one (seed, step, index, stream) key.
#[inline]
pub fn bits(seed: u32, step: u32, index: u32, stream: u32) -> u32 {
    pcg_hash(seed ^ pcg_hash(step ^ pcg_hash(index ^ pcg_hash(stream))))
}

/// A uniform in the open interval (0, 1): 24 random bits plus half an ulp, so `ln` is finite.
#[inline]
pub fn uniform(seed: u32, step: u32, index: u32, stream: u32) -> f32 {
    ((bits(seed, step, index, stream) >> 8) as f32 + 0.5) * (1.0 / 16_777_216.0)
}

/// Two independent standard normals by Box–Muller from two uniforms of the key.
#[inline]
pub fn normal2(seed: u32, step: u32, index: u32, stream: u32) -> Point {
    let u1 = uniform(seed, step, index, stream);
    let u2 = uniform(seed, step, index, stream.wrapping_add(0x9E37_79B9));
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (std::f32::consts::TAU * u2).sin_cos();
    [r * c, r * s]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normals_have_unit_moments() {
        let n = 200_000u32;
        let (mut m, mut v, mut c) = ([0.0f64; 2], [0.0f64; 2], 0.0f64);
        for i in 0..n {
            let z = normal2(7, 3, i, STREAM_EPS);
            for d in 0..2 {
                m[d] += z[d] as f64;
                v[d] += (z[d] as f64).powi(2);
            }
            c += (z[0] * z[1]) as f64;
        }
        for d in 0..2 {
            assert!((m[d] / n as f64).abs() < 0.01);
            assert!((v[d] / n as f64 - 1.0).abs() < 0.01);
        }
        assert!((c / n as f64).abs() < 0.01);
    }

    /// No two streams, nor the second uniform of `normal2` on one of them, share keys.
    #[test]
    fn streams_are_distinct() {
        let mut all: Vec<u32> = ALL_STREAMS
            .iter()
            .flat_map(|&s| [s, s.wrapping_add(0x9E37_79B9)])
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 2 * ALL_STREAMS.len());
        assert_eq!(STREAM_ANNEALED, crate::teach::naive::STREAM_ANNEALED);
    }

    #[test]
    fn keys_give_different_streams() {
        assert_ne!(bits(1, 2, 3, 0), bits(1, 2, 3, 1));
        assert_ne!(bits(1, 2, 3, 0), bits(1, 3, 3, 0));
        assert_ne!(bits(1, 2, 3, 0), bits(2, 2, 3, 0));
        let u = uniform(0, 0, 0, 0);
        assert!(u > 0.0 && u < 1.0);
    }
}
