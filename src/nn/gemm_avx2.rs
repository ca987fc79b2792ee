//! The AVX2 + FMA kernels of `gemm` (x86-64 only; used when the CPU has both): the 6×16
//! register block, its fused epilogues, layer 0 at one time, and the output layer.

#![allow(unsafe_code)] // AVX2/FMA intrinsics on raw pointers

use super::{MR, NR};
use crate::nn::fastmath::ActFn;
use crate::nn::fastmath::x86::{act_grad8, act8};
use std::arch::x86_64::*;

/// `R × 16` block of `A·B` in 2R ymm accumulators: per step of k, two loads of a `B` row,
/// R broadcasts of `A`, 2R FMAs.
///
/// # Safety
/// Reads as in `product_block`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate<const R: usize>(
    k: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    ldb: usize,
) -> [[__m256; 2]; R] {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let (mut ap, mut bp) = (a, b);
    // SAFETY: every pointer stays within the ranges of the caller's contract.
    unsafe {
        for _ in 0..k {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.add(r * rs));
                acc_r[0] = _mm256_fmadd_ps(av, b0, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(av, b1, acc_r[1]);
            }
            ap = ap.add(cs);
            bp = bp.add(ldb);
        }
    }
    acc
}

/// The block into `out` (for the generic epilogue).
///
/// # Safety
/// AVX2 and FMA available; reads as in `product_block`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn block<const R: usize>(
    k: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    ldb: usize,
    out: &mut [[f32; NR]; MR],
) {
    // SAFETY: forwarded.
    let acc = unsafe { accumulate::<R>(k, a, rs, cs, b, ldb) };
    for (acc_r, out_r) in acc.iter().zip(out.iter_mut()) {
        // SAFETY: each row of `out` holds 16 floats.
        unsafe {
            _mm256_storeu_ps(out_r.as_mut_ptr(), acc_r[0]);
            _mm256_storeu_ps(out_r.as_mut_ptr().add(8), acc_r[1]);
        }
    }
}

/// The epilogue of a full-width block, as raw pointers to the block's first element.
#[derive(Clone, Copy)]
pub(super) enum Fused {
    Store,
    Accumulate,
    /// `pre` may be null (no pre-activation kept).
    BiasAct {
        bias: *const f32,
        pre: *mut f32,
    },
    /// `z` may equal `c` (in place).
    ActGrad {
        z: *const f32,
    },
}

/// See `super::affine2_act`; 32 columns (four vectors) at a time, then 8.
///
/// # Safety
/// AVX2 and FMA available; `w` holds `2·c.len()` values, `out` rows `0..xs.len()` of
/// stride `ldc` hold `c.len()` (a multiple of 8).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn affine2_act<A: ActFn>(
    xs: &[[f32; 2]],
    w: &[f32],
    c: &[f32],
    out: *mut f32,
    ldc: usize,
    pre: *mut f32,
) {
    let width = c.len();
    let (w0, w1) = (w.as_ptr(), w[width..].as_ptr());
    for (i, x) in xs.iter().enumerate() {
        let (x0, x1) = (_mm256_set1_ps(x[0]), _mm256_set1_ps(x[1]));
        // SAFETY: every j + 8 ≤ width, within w, c and row i of out.
        unsafe {
            let z = |j: usize| {
                let t = _mm256_fmadd_ps(
                    x1,
                    _mm256_loadu_ps(w1.add(j)),
                    _mm256_loadu_ps(c.as_ptr().add(j)),
                );
                _mm256_fmadd_ps(x0, _mm256_loadu_ps(w0.add(j)), t)
            };
            let row = out.add(i * ldc);
            let keep = |j: usize, zv: __m256| {
                if !pre.is_null() {
                    _mm256_storeu_ps(pre.add(i * ldc + j), zv);
                }
            };
            let mut j = 0;
            while j + 32 <= width {
                let zs = [z(j), z(j + 8), z(j + 16), z(j + 24)];
                for (v, zv) in zs.iter().enumerate() {
                    keep(j + 8 * v, *zv);
                }
                let h = act8::<A, 4>(zs);
                for (v, hv) in h.iter().enumerate() {
                    _mm256_storeu_ps(row.add(j + 8 * v), *hv);
                }
                j += 32;
            }
            while j < width {
                let zv = z(j);
                keep(j, zv);
                _mm256_storeu_ps(row.add(j), act8::<A, 1>([zv])[0]);
                j += 8;
            }
        }
    }
}

/// See `super::output_layer` (`O = H·W_out + b`); two rows at a time share the loads of
/// `W_out`.
///
/// # Safety
/// AVX2 and FMA available; lengths as asserted in `super::output_layer`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn output_layer(
    h: &[f32],
    ld: usize,
    rows: usize,
    width: usize,
    w_t: &[f32],
    b: [f32; 2],
    out: &mut [f32],
) {
    let hsum = |v: __m256| {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    };
    let (w0, w1) = w_t.split_at(width);
    let full = width / 8 * 8;
    let mut i = 0;
    while i < rows {
        let pair = i + 1 < rows;
        let (r0, r1) = (
            &h[i * ld..i * ld + width],
            &h[if pair { (i + 1) * ld } else { i * ld }..][..width],
        );
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut j = 0;
        while j < full {
            // SAFETY: j + 8 ≤ width, within every row and weight vector.
            unsafe {
                let (a, c) = (
                    _mm256_loadu_ps(r0.as_ptr().add(j)),
                    _mm256_loadu_ps(r1.as_ptr().add(j)),
                );
                let (u, v) = (
                    _mm256_loadu_ps(w0.as_ptr().add(j)),
                    _mm256_loadu_ps(w1.as_ptr().add(j)),
                );
                acc[0] = _mm256_fmadd_ps(a, u, acc[0]);
                acc[1] = _mm256_fmadd_ps(a, v, acc[1]);
                acc[2] = _mm256_fmadd_ps(c, u, acc[2]);
                acc[3] = _mm256_fmadd_ps(c, v, acc[3]);
            }
            j += 8;
        }
        let mut o = [hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3])];
        for j in full..width {
            o[0] += r0[j] * w0[j];
            o[1] += r0[j] * w1[j];
            o[2] += r1[j] * w0[j];
            o[3] += r1[j] * w1[j];
        }
        out[2 * i] = o[0] + b[0];
        out[2 * i + 1] = o[1] + b[1];
        if pair {
            out[2 * i + 2] = o[2] + b[0];
            out[2 * i + 3] = o[3] + b[1];
        }
        i += 2;
    }
}

/// A full-width block with its epilogue applied in registers.
///
/// # Safety
/// AVX2 and FMA available; reads as in `product_block`; `c`, `pre` and `z` writable or
/// readable at `r·ldc + 0..16` and `bias` at `0..16`, for `r < rows`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn fused_block<A: ActFn>(
    rows: usize,
    k: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    mode: Fused,
) {
    // SAFETY: forwarded.
    unsafe {
        match rows {
            6 => fused::<6, A>(k, a, rs, cs, b, ldb, c, ldc, mode),
            5 => fused::<5, A>(k, a, rs, cs, b, ldb, c, ldc, mode),
            4 => fused::<4, A>(k, a, rs, cs, b, ldb, c, ldc, mode),
            3 => fused::<3, A>(k, a, rs, cs, b, ldb, c, ldc, mode),
            2 => fused::<2, A>(k, a, rs, cs, b, ldb, c, ldc, mode),
            _ => fused::<1, A>(k, a, rs, cs, b, ldb, c, ldc, mode),
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn fused<const R: usize, A: ActFn>(
    k: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    mode: Fused,
) {
    // SAFETY: all pointers in range by the caller's contract.
    unsafe {
        let acc = accumulate::<R>(k, a, rs, cs, b, ldb);
        finish::<R, A>(&acc, c, ldc, mode);
    }
}

/// The epilogue of `fused`, kept out of line: inlined, its constants would be hoisted
/// above the k-loop and push the 2R accumulators out of the 16 ymm registers.
///
/// # Safety
/// As `fused_block`.
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
unsafe fn finish<const R: usize, A: ActFn>(
    acc: &[[__m256; 2]; R],
    c: *mut f32,
    ldc: usize,
    mode: Fused,
) {
    // SAFETY: all pointers in range by the caller's contract.
    unsafe {
        match mode {
            Fused::Store => {
                for (r, y) in acc.iter().enumerate() {
                    _mm256_storeu_ps(c.add(r * ldc), y[0]);
                    _mm256_storeu_ps(c.add(r * ldc + 8), y[1]);
                }
            }
            Fused::Accumulate => {
                for (r, y) in acc.iter().enumerate() {
                    for (v, yv) in y.iter().enumerate() {
                        let at = c.add(r * ldc + 8 * v);
                        _mm256_storeu_ps(at, _mm256_add_ps(_mm256_loadu_ps(at), *yv));
                    }
                }
            }
            Fused::BiasAct { bias, pre } => {
                let bias = [_mm256_loadu_ps(bias), _mm256_loadu_ps(bias.add(8))];
                // Two rows (four vectors) at a time: independent chains side by side, few
                // enough to stay in registers.
                let mut r = 0;
                while r < R {
                    let rows = if r + 1 < R { 2 } else { 1 };
                    let mut z = [_mm256_setzero_ps(); 4];
                    for (v, zv) in z.iter_mut().enumerate().take(2 * rows) {
                        *zv = _mm256_add_ps(acc[r + v / 2][v % 2], bias[v % 2]);
                        if !pre.is_null() {
                            _mm256_storeu_ps(pre.add((r + v / 2) * ldc + 8 * (v % 2)), *zv);
                        }
                    }
                    if rows == 2 {
                        let h = act8::<A, 4>(z);
                        for (v, hv) in h.iter().enumerate() {
                            _mm256_storeu_ps(c.add((r + v / 2) * ldc + 8 * (v % 2)), *hv);
                        }
                    } else {
                        let h = act8::<A, 2>([z[0], z[1]]);
                        _mm256_storeu_ps(c.add(r * ldc), h[0]);
                        _mm256_storeu_ps(c.add(r * ldc + 8), h[1]);
                    }
                    r += rows;
                }
            }
            Fused::ActGrad { z } => {
                let mut r = 0;
                while r < R {
                    let rows = if r + 1 < R { 2 } else { 1 };
                    let load = |rr: usize, v: usize| _mm256_loadu_ps(z.add(rr * ldc + 8 * v));
                    if rows == 2 {
                        let g = act_grad8::<A, 4>([
                            load(r, 0),
                            load(r, 1),
                            load(r + 1, 0),
                            load(r + 1, 1),
                        ]);
                        for (v, gv) in g.iter().enumerate() {
                            let (rr, vv) = (r + v / 2, v % 2);
                            _mm256_storeu_ps(
                                c.add(rr * ldc + 8 * vv),
                                _mm256_mul_ps(acc[rr][vv], *gv),
                            );
                        }
                    } else {
                        let g = act_grad8::<A, 2>([load(r, 0), load(r, 1)]);
                        for (v, gv) in g.iter().enumerate() {
                            _mm256_storeu_ps(c.add(r * ldc + 8 * v), _mm256_mul_ps(acc[r][v], *gv));
                        }
                    }
                    r += rows;
                }
            }
        }
    }
}
