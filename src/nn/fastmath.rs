//! Branch-free f32 `exp`, `sigmoid` and `sin_cos`, and the activations built on them.
//!
//! Written as plain scalar Rust with no branches, table look-ups or calls, so that a loop
//! over them auto-vectorises (8 lanes when compiled inside an `avx2` function, see
//! `simd::with_avx2`). The library versions of `exp` and `sin_cos` are calls, which keeps
//! the activation loops of the GEMM epilogues scalar. NaN propagates through all of them, so
//! a diverged network still shows up as a NaN loss.
//!
//! Accuracy: `exp` ≈ 2 ulp (Cephes `expf` polynomial), `sin_cos` ≈ 1e-7 absolute for
//! |x| ≤ 10⁴ (Cephes `sinf`/`cosf` with a three-part π/2).

use super::mlp::Activation;

/// 1.5·2²³: adding it rounds an f32 of magnitude < 2²² to an integer, which then sits in the
/// low mantissa bits (read back with `to_bits`), without a float→int conversion.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// The integer that `x + ROUND_MAGIC` rounded `x` to.
#[inline(always)]
fn rounded_int(t: f32) -> i32 {
    t.to_bits() as i32 - ROUND_MAGIC.to_bits() as i32
}

/// Coefficients c₀..c₅ of the degree-5 minimax polynomial (relative error) for e^r on
/// |r| ≤ ln2/2: 7.5e-8 in exact arithmetic, ≈ 2e-7 evaluated in f32 (fitted by Remez).
const EXP_POLY: [f32; 6] = [
    1.000_000_1,
    0.999_999_7,
    0.499_988_94,
    0.166_675_75,
    0.041_915_383,
    0.008_297_655,
];
/// Coefficients of the degree-5 minimax polynomial (relative error) for 2^f on |f| ≤ ½:
/// 7.5e-8 in exact arithmetic, ≈ 2.3e-7 in f32 (Remez); the SIMD sigmoid works in base 2.
#[cfg(target_arch = "x86_64")]
const EXP2_POLY: [f32; 6] = [
    1.000_000_1,
    0.693_146_94,
    0.240_221_2,
    0.055_507_13,
    0.009_675_541,
    0.001_327_647_2,
];
/// ln 2 in two parts (Cody–Waite): n·LN2_HI is exact for |n| < 2⁸, so r keeps its low bits.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// e^x: x = n ln2 + r with |r| ≤ ln2/2, e^r by `EXP_POLY`, 2ⁿ by building the exponent
/// bits. Clamped to the normal range [e^−87.3, e^88].
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // Written as selects (not `max`/`min`) so a NaN input stays NaN.
    let x = if x < -87.3 { -87.3 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let t = x * std::f32::consts::LOG2_E + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let r = x - n * LN2_HI;
    let r = r - n * LN2_LO;
    let c = EXP_POLY;
    let p = ((((c[5] * r + c[4]) * r + c[3]) * r + c[2]) * r + c[1]) * r + c[0];
    let scale = f32::from_bits(((rounded_int(t) + 127) << 23) as u32);
    p * scale
}

/// The logistic function 1/(1 + e^−y).
#[inline(always)]
pub fn sigmoid(y: f32) -> f32 {
    1.0 / (1.0 + exp(-y))
}

/// (sin x, cos x): x = n·π/2 + r with |r| ≤ π/4, both polynomials on r, then the quadrant
/// n mod 4 swaps and negates them.
#[inline(always)]
pub fn sin_cos(x: f32) -> (f32, f32) {
    let t = x * std::f32::consts::FRAC_2_PI + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let q = rounded_int(t) as u32;
    // π/2 = P1 + P2 + P3, each product n·Pi exact or nearly so.
    let r = x - n * 1.570_312_5;
    let r = r - n * 4.837_513e-4;
    let r = r - n * 7.549_79e-8;
    let z = r * r;
    let s = ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 0.166_666_55) * z * r + r;
    let c = ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2) * (z * z) - 0.5 * z + 1.0;
    let swap = q & 1 == 1;
    let (a, b) = if swap { (c, s) } else { (s, c) };
    // sin is negated in quadrants 2 and 3, cos in quadrants 1 and 2.
    let sin = f32::from_bits(a.to_bits() ^ ((q & 2) << 30));
    let cos = f32::from_bits(b.to_bits() ^ ((q.wrapping_add(1) & 2) << 30));
    (sin, cos)
}

/// √(2/π)·2: GELU(z) = z·sigmoid(GELU_K1·z + GELU_K2·z³), since ½(1 + tanh u) = sigmoid(2u).
const GELU_K1: f32 = 1.595_769_2;
/// GELU_K1 · 0.044715.
const GELU_K2: f32 = GELU_K1 * 0.044_715;

/// An activation as a type, so that loops over it are monomorphised (no per-element match).
pub(crate) trait ActFn {
    /// Which activation this is (selects the SIMD version in `x86`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read only by `x86`
    const KIND: Activation;
    /// act(z).
    fn f(z: f32) -> f32;
    /// act′(z).
    fn df(z: f32) -> f32;
}

pub(crate) struct SiluFn;
pub(crate) struct GeluFn;
pub(crate) struct ReluFn;

impl ActFn for SiluFn {
    const KIND: Activation = Activation::Silu;
    #[inline(always)]
    fn f(z: f32) -> f32 {
        z * sigmoid(z)
    }
    /// d/dz z·s(z) = s + z s (1 − s).
    #[inline(always)]
    fn df(z: f32) -> f32 {
        let s = sigmoid(z);
        s + z * s * (1.0 - s)
    }
}

impl ActFn for GeluFn {
    const KIND: Activation = Activation::Gelu;
    #[inline(always)]
    fn f(z: f32) -> f32 {
        z * sigmoid(z * (GELU_K1 + GELU_K2 * z * z))
    }
    /// d/dz z·s(y(z)) = s + z s (1 − s) y′, y′ = K1 + 3 K2 z².
    #[inline(always)]
    fn df(z: f32) -> f32 {
        let z2 = z * z;
        let s = sigmoid(z * (GELU_K1 + GELU_K2 * z2));
        s + z * s * (1.0 - s) * (GELU_K1 + 3.0 * GELU_K2 * z2)
    }
}

impl ActFn for ReluFn {
    const KIND: Activation = Activation::Relu;
    /// `z < 0 ? 0 : z`, so NaN passes through.
    #[inline(always)]
    fn f(z: f32) -> f32 {
        if z < 0.0 { 0.0 } else { z }
    }
    /// The subgradient 0 at z = 0.
    #[inline(always)]
    fn df(z: f32) -> f32 {
        if z > 0.0 { 1.0 } else { 0.0 }
    }
}

/// The same functions on 8 lanes with AVX2 + FMA intrinsics, for the fused GEMM epilogue
/// (where the auto-vectoriser cannot reach: the values live in the kernel's registers). Same
/// algorithms as the scalar versions; FMA and the reciprocal below change results by a few ulp.
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    use std::f32::consts::LOG2_E;

    use super::{ActFn, EXP2_POLY, GELU_K1, GELU_K2};
    use crate::nn::mlp::Activation;

    /// σ(y) as the quotient `s/d`, from `y₂ = y·log₂e` (N vectors, computed stage by stage
    /// so that the N independent dependency chains interleave).
    ///
    /// With `n = round(y₂)`, `f = y₂ − n ∈ [−½, ½]`: `e^−y = 2^−n·2^−f`, so
    /// `σ = 1/(1 + 2^−n 2^−f) = s/d` with `s = 2ⁿ`, `d = s + 2^−f`. Working in base 2 takes
    /// the range reduction off the FMA ports (a rounding and a subtraction) and leaves the
    /// caller a division that absorbs its own factor (`z·σ = (z·s)/d`). y₂ is clamped to
    /// [−126, 24]: every `s` is then a normal float, and above 24 `σ` rounds to 1 anyway.
    /// `max`/`min` take y₂ as second operand, which they return when it is NaN (NaN then
    /// stays NaN through `f`, even though its `s` is garbage).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn sigmoid_parts8<const N: usize>(y2: [__m256; N]) -> ([__m256; N], [__m256; N]) {
        let set = _mm256_set1_ps;
        let c = EXP2_POLY;
        let (mut n, mut f, mut p) = (y2, y2, y2);
        for i in 0..N {
            let y = _mm256_min_ps(set(24.0), _mm256_max_ps(set(-126.0), y2[i]));
            // n = round(y), f = y − n ∈ [−½, ½]: 2^−y = 2^−n · 2^−f.
            n[i] = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(y);
            f[i] = _mm256_sub_ps(y, n[i]);
        }
        // 2^−f = Σ c_k (−f)^k: Horner with fnmadd.
        for i in 0..N {
            p[i] = _mm256_fnmadd_ps(set(c[5]), f[i], set(c[4]));
        }
        for k in (0..4).rev() {
            for i in 0..N {
                p[i] = _mm256_fnmadd_ps(p[i], f[i], set(c[k]));
            }
        }
        // σ = 1/(1 + 2^−n 2^−f) = s/d with s = 2^n (exponent bits (n + 127) << 23), d = s + 2^−f.
        let (mut s, mut d) = (y2, y2);
        for i in 0..N {
            let e = _mm256_add_epi32(_mm256_cvtps_epi32(n[i]), _mm256_set1_epi32(127));
            s[i] = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e));
            d[i] = _mm256_add_ps(s[i], p[i]);
        }
        (s, d)
    }

    /// σ(y) from y₂ = y·log₂e.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn sigmoid8<const N: usize>(y2: [__m256; N]) -> [__m256; N] {
        let (mut s, d) = sigmoid_parts8(y2);
        for i in 0..N {
            s[i] = _mm256_div_ps(s[i], d[i]);
        }
        s
    }

    /// y₂ = y·log₂e, the argument of the sigmoid inside SiLU (y = z) or GELU
    /// (y = K1·z + K2·z³).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn sigmoid_arg8<A: ActFn, const N: usize>(z: [__m256; N]) -> [__m256; N] {
        let mut y2 = z;
        for i in 0..N {
            y2[i] = match A::KIND {
                Activation::Gelu => {
                    let inner = _mm256_fmadd_ps(
                        _mm256_set1_ps(GELU_K2 * LOG2_E),
                        _mm256_mul_ps(z[i], z[i]),
                        _mm256_set1_ps(GELU_K1 * LOG2_E),
                    );
                    _mm256_mul_ps(z[i], inner)
                }
                _ => _mm256_mul_ps(z[i], _mm256_set1_ps(LOG2_E)),
            };
        }
        y2
    }

    /// act(z) on N vectors of 8 lanes: z·σ(y) = (z·s)/d (see `sigmoid_parts8`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn act8<A: ActFn, const N: usize>(z: [__m256; N]) -> [__m256; N] {
        let mut out = z;
        match A::KIND {
            Activation::Silu | Activation::Gelu => {
                let (s, d) = sigmoid_parts8(sigmoid_arg8::<A, N>(z));
                for i in 0..N {
                    out[i] = _mm256_div_ps(_mm256_mul_ps(z[i], s[i]), d[i]);
                }
            }
            // max(0, z) returns z when z is NaN.
            Activation::Relu => {
                for o in &mut out {
                    *o = _mm256_max_ps(_mm256_setzero_ps(), *o);
                }
            }
        }
        out
    }

    /// act′(z) on N vectors of 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn act_grad8<A: ActFn, const N: usize>(z: [__m256; N]) -> [__m256; N] {
        let one = _mm256_set1_ps(1.0);
        let mut out = z;
        match A::KIND {
            Activation::Silu | Activation::Gelu => {
                let s = sigmoid8(sigmoid_arg8::<A, N>(z));
                for i in 0..N {
                    // s + z s (1 − s) y′ with y′ = 1 (SiLU) or K1 + 3 K2 z² (GELU).
                    let zs = _mm256_mul_ps(z[i], s[i]);
                    let t = _mm256_mul_ps(zs, _mm256_sub_ps(one, s[i]));
                    out[i] = match A::KIND {
                        Activation::Gelu => {
                            let z2 = _mm256_mul_ps(z[i], z[i]);
                            let dy = _mm256_fmadd_ps(
                                _mm256_set1_ps(3.0 * GELU_K2),
                                z2,
                                _mm256_set1_ps(GELU_K1),
                            );
                            _mm256_fmadd_ps(t, dy, s[i])
                        }
                        _ => _mm256_add_ps(t, s[i]),
                    };
                }
            }
            Activation::Relu => {
                for o in &mut out {
                    *o = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(*o, _mm256_setzero_ps()), one);
                }
            }
        }
        out
    }
}

/// act(z) for a runtime activation (tests and cold paths).
pub fn activate(act: Activation, z: f32) -> f32 {
    match act {
        Activation::Silu => SiluFn::f(z),
        Activation::Gelu => GeluFn::f(z),
        Activation::Relu => ReluFn::f(z),
    }
}

/// act′(z) for a runtime activation.
pub fn activate_grad(act: Activation, z: f32) -> f32 {
    match act {
        Activation::Silu => SiluFn::df(z),
        Activation::Gelu => GeluFn::df(z),
        Activation::Relu => ReluFn::df(z),
    }
}

/// Calls `$body` with `$A` bound to the `ActFn` type of a runtime `Activation`.
macro_rules! dispatch_act {
    ($act:expr, $A:ident => $body:expr) => {
        match $act {
            $crate::nn::mlp::Activation::Silu => {
                type $A = $crate::nn::fastmath::SiluFn;
                $body
            }
            $crate::nn::mlp::Activation::Gelu => {
                type $A = $crate::nn::fastmath::GeluFn;
                $body
            }
            $crate::nn::mlp::Activation::Relu => {
                type $A = $crate::nn::fastmath::ReluFn;
                $body
            }
        }
    };
}
pub(crate) use dispatch_act;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_and_propagates_nan() {
        let mut worst = 0.0f64;
        for i in -8700..=8790 {
            let x = i as f32 * 0.01 + 0.003;
            let exact = (x as f64).exp();
            let rel = ((exp(x) as f64 - exact) / exact).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(-1000.0), exp(-87.3));
        assert!(exp(1000.0).is_finite());
        assert!(sigmoid(f32::NAN).is_nan());
        assert_eq!(sigmoid(100.0), 1.0);
        assert!(sigmoid(-100.0) >= 0.0 && sigmoid(-100.0) < 1e-30);
    }

    #[test]
    fn sin_cos_is_accurate() {
        let mut worst = 0.0f64;
        for i in -20_000..=200_000 {
            let x = i as f32 * 0.005 + 0.0007;
            let (s, c) = sin_cos(x);
            let xd = x as f64;
            worst = worst
                .max((s as f64 - xd.sin()).abs())
                .max((c as f64 - xd.cos()).abs());
        }
        assert!(worst < 3e-7, "worst absolute error {worst}");
    }

    #[test]
    fn activations_match_their_definitions() {
        for i in -400..=400 {
            let z = i as f32 * 0.02;
            let zd = z as f64;
            let silu = zd / (1.0 + (-zd).exp());
            let u = (2.0 / std::f64::consts::PI).sqrt() * (zd + 0.044715 * zd.powi(3));
            let gelu = 0.5 * zd * (1.0 + u.tanh());
            assert!((activate(Activation::Silu, z) as f64 - silu).abs() < 1e-6);
            assert!(
                (activate(Activation::Gelu, z) as f64 - gelu).abs() < 1e-6,
                "z={z}"
            );
            assert_eq!(activate(Activation::Relu, z), z.max(0.0));
            // Derivatives against central differences in f64 of the exact functions.
            let h = 1e-4;
            let fd = |f: &dyn Fn(f64) -> f64| (f(zd + h) - f(zd - h)) / (2.0 * h);
            let silu_d = fd(&|z| z / (1.0 + (-z).exp()));
            let gelu_d = fd(&|z| {
                let u = (2.0 / std::f64::consts::PI).sqrt() * (z + 0.044715 * z.powi(3));
                0.5 * z * (1.0 + u.tanh())
            });
            assert!((activate_grad(Activation::Silu, z) as f64 - silu_d).abs() < 1e-5);
            assert!((activate_grad(Activation::Gelu, z) as f64 - gelu_d).abs() < 1e-5);
        }
        assert!(activate(Activation::Relu, f32::NAN).is_nan());
    }
}
