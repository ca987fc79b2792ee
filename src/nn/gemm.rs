//! The one matrix product of the network, `C = epilogue(A·B)`, with the bias, activation or
//! activation-derivative of the layer fused into its epilogue.
//!
//! Why our own and not `matrixmultiply::sgemm`: our matrices are small (k, n ≤ a few hundred)
//! and the same `B` (a weight matrix) is reused for thousands of rows, so `B` is packed once
//! per weight update instead of once per call, `A` is never packed (its elements are
//! broadcast straight from memory, so any strides are free: `Hᵀ` for `dW = Hᵀ·dZ` costs
//! nothing), and the epilogue touches each output while it is still in registers. On this
//! machine's AVX2 cores (FMA peak 98.7 GFLOP/s per core, measured) the 6×16 register-blocked
//! kernel runs a 252×128·128×128 product at ~95 GFLOP/s (~84 with the GELU epilogue), against
//! ~72 for `matrixmultiply::sgemm` (`cargo test --release --lib gemm_timing -- --ignored
//! --nocapture`, best of many short runs on the shared machine).
//!
//! The kernel computes an `MR × NR` block of `A·B` in registers: per step of k, two 8-wide
//! loads of a `B` row, `MR` broadcasts of `A` and `2·MR` FMAs. A portable copy of the same
//! loop (auto-vectorised) serves CPUs without AVX2/FMA and is the reference in the tests.

#![allow(unsafe_code)] // raw-pointer register blocks and the calls into the AVX2 kernels

use super::fastmath::{ActFn, dispatch_act};
use super::mlp::Activation;
use super::simd::{self, multiversion};

/// Rows of a register block.
pub(crate) const MR: usize = 6;
/// Columns of a register block and width of a packed panel.
pub(crate) const NR: usize = 16;

/// Rounds `n` up to a whole number of panels.
pub(crate) fn round_up_panel(n: usize) -> usize {
    n.div_ceil(NR) * NR
}

/// A `k × n` matrix stored as `⌈n/NR⌉` panels of `NR` columns, each `[k][NR]` row-major and
/// zero-padded past column `n`: the kernel then reads `B` strictly sequentially.
#[derive(Clone, Debug, Default)]
pub(crate) struct PackedMatrix {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedMatrix {
    /// Packs element `(kk, j) = src[kk·rs + j·cs]` for `kk < k`, `j < n`. Reuses the buffer.
    pub(crate) fn pack(&mut self, src: &[f32], k: usize, n: usize, rs: usize, cs: usize) {
        self.k = k;
        self.n = n;
        let panels = n.div_ceil(NR);
        self.data.clear();
        self.data.resize(panels * k * NR, 0.0);
        for p in 0..panels {
            let cols = NR.min(n - p * NR);
            let panel = &mut self.data[p * k * NR..(p + 1) * k * NR];
            if cs == 1 {
                for (kk, row) in panel.chunks_exact_mut(NR).enumerate() {
                    let from = kk * rs + p * NR;
                    row[..cols].copy_from_slice(&src[from..from + cols]);
                }
            } else {
                // A transposed source: read it along its contiguous direction (kk), write
                // the panel column by column (the panel stays in L1).
                for jj in 0..cols {
                    let col = (p * NR + jj) * cs;
                    for (kk, row) in panel.chunks_exact_mut(NR).enumerate() {
                        row[jj] = src[col + kk * rs];
                    }
                }
            }
        }
    }
}

/// The left operand: element `(i, kk)` is `data[i·rs + kk·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Lhs<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// The right operand, `k × n`.
#[derive(Clone, Copy)]
pub(crate) enum Rhs<'a> {
    Packed(&'a PackedMatrix),
    /// Row-major with row stride `ld`; every row must be readable up to
    /// `round_up_panel(n)` columns (what lies past `n` only reaches discarded outputs).
    Rows {
        data: &'a [f32],
        ld: usize,
        k: usize,
        n: usize,
    },
}

impl Rhs<'_> {
    fn dims(&self) -> (usize, usize) {
        match *self {
            Rhs::Packed(p) => (p.k, p.n),
            Rhs::Rows { k, n, .. } => (k, n),
        }
    }

    /// Start and row stride of panel `p`.
    fn panel(&self, p: usize) -> (*const f32, usize) {
        match *self {
            // In bounds: checked against the lengths in `gemm`.
            Rhs::Packed(m) => (m.data[p * m.k * NR..].as_ptr(), NR),
            Rhs::Rows { data, ld, .. } => (data[p * NR..].as_ptr(), ld),
        }
    }
}

/// What happens to each element `y` of `A·B` before it lands in `C`.
pub(crate) enum Epilogue<'a> {
    /// `C = y`.
    Store,
    /// `C += y` (gradients summed over the chunks of a batch).
    Accumulate,
    /// `z = y + bias`, `C = act(z)`, and `pre = z` if given (the pre-activation kept for the
    /// backward pass; same row stride as `C`).
    BiasAct {
        bias: &'a [f32],
        act: Activation,
        pre: Option<&'a mut [f32]>,
    },
    /// `C = y ⊙ act′(z)`: the backward pass through the activation, with `z` read from `pre`
    /// (same row stride as `C`), or from `C` itself when `pre` is `None`.
    ActGrad {
        act: Activation,
        pre: Option<&'a [f32]>,
    },
}

/// `C = epilogue(A·B)` for an `m × k` `A` and `k × n` `B`, `C` row-major with stride `ldc`.
///
/// Panics if a slice is too short for the shapes (a bug in the caller, never bad input).
pub(crate) fn gemm(m: usize, a: Lhs, b: Rhs, c: &mut [f32], ldc: usize, mut epi: Epilogue) {
    let (k, n) = b.dims();
    if m == 0 || n == 0 {
        return;
    }
    // The bounds every raw read and write below relies on.
    if k > 0 {
        assert!(
            (m - 1) * a.rs + (k - 1) * a.cs < a.data.len(),
            "gemm: A too short"
        );
    }
    match b {
        Rhs::Packed(p) => assert!(p.data.len() >= round_up_panel(n) * k),
        Rhs::Rows { data, ld, .. } => {
            assert!(
                k == 0 || (k - 1) * ld + round_up_panel(n) <= data.len(),
                "gemm: B too short"
            )
        }
    }
    let c_len = (m - 1) * ldc + n;
    assert!(c.len() >= c_len, "gemm: C too short");
    match &epi {
        Epilogue::Store | Epilogue::Accumulate => {}
        Epilogue::BiasAct { bias, pre, .. } => {
            assert!(bias.len() >= n);
            assert!(pre.as_ref().is_none_or(|p| p.len() >= c_len));
        }
        Epilogue::ActGrad { pre, .. } => assert!(pre.is_none_or(|p| p.len() >= c_len)),
    }
    let act = match &epi {
        Epilogue::Store | Epilogue::Accumulate => Activation::Relu,
        Epilogue::BiasAct { act, .. } | Epilogue::ActGrad { act, .. } => *act,
    };
    dispatch_act!(act, A => gemm_loop::<A>(m, k, n, a, b, c, ldc, &mut epi))
}

/// `C[i] = act(x_i0·w[0] + x_i1·w[1] + c)` for each point (a rank-2 product plus a bias: layer
/// 0 at one time, see `CpuNet::output_at_time`), on AVX2 CPUs when `c.len()` is a multiple of
/// 8. Returns false (and does nothing) otherwise, and the caller takes the general `gemm`.
/// Cheaper than `gemm` with k = 2: no per-block set-up, and rows of independent activations.
/// With `pre`, the pre-activations are also stored there (same stride).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))] // only the AVX2 path reads all
pub(crate) fn affine2_act(
    xs: &[[f32; 2]],
    w: &[f32],
    c: &[f32],
    act: Activation,
    out: &mut [f32],
    ldc: usize,
    pre: Option<&mut [f32]>,
) -> bool {
    let width = c.len();
    let supported = cfg!(target_arch = "x86_64") && simd::has_avx2_fma() && width.is_multiple_of(8);
    if !supported || xs.is_empty() {
        return false;
    }
    let len = (xs.len() - 1) * ldc + width;
    assert!(w.len() >= 2 * width && out.len() >= len);
    assert!(pre.as_ref().is_none_or(|p| p.len() >= len));
    #[cfg(target_arch = "x86_64")]
    {
        let pre = pre.map_or(std::ptr::null_mut(), |p| p.as_mut_ptr());
        // SAFETY: the CPU has AVX2 and FMA; the lengths are asserted above.
        dispatch_act!(act, A => unsafe { avx2::affine2_act::<A>(xs, w, c, out.as_mut_ptr(), ldc, pre) });
    }
    true
}

/// The output layer `O = H·W_out + b` for `rows` rows of `H` (row stride `ld`, `width`
/// columns; `w_t` is `W_out` transposed, `[2][width]`) with the AVX2 kernel, if the CPU has
/// it. Returns false (and touches nothing) otherwise; the caller then runs its portable loop.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))] // only the AVX2 path reads all
#[inline]
pub(crate) fn output_layer(
    h: &[f32],
    ld: usize,
    rows: usize,
    width: usize,
    w_t: &[f32],
    b: [f32; 2],
    out: &mut [f32],
) -> bool {
    if !(cfg!(target_arch = "x86_64") && simd::has_avx2_fma()) {
        return false;
    }
    assert!(
        h.len() >= rows.saturating_sub(1) * ld + width
            && w_t.len() >= 2 * width
            && out.len() >= 2 * rows
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX2 and FMA; the lengths are asserted above.
    unsafe {
        avx2::output_layer(h, ld, rows, width, w_t, b, out)
    };
    true
}

multiversion! {
    /// The block loop of `gemm`. Full panels on AVX2 CPUs go through the fused kernel (the
    /// epilogue applied to the accumulators in registers); the others (and every block on
    /// other CPUs) are computed into `block` and finished by the auto-vectorised `epilogue`.
    fn gemm_loop<A: ActFn>(m: usize, k: usize, n: usize, a: Lhs, b: Rhs, c: &mut [f32], ldc: usize, epi: &mut Epilogue) {
        let fused = cfg!(target_arch = "x86_64") && simd::has_avx2_fma();
        let panels = n.div_ceil(NR);
        let mut block = [[0.0f32; NR]; MR];
        // Row blocks outside: the block's rows of A stay in L1 while B streams from L2 (faster
        // here than the other order also for dW = Hᵀ·dZ, measured).
        for i0 in (0..m).step_by(MR) {
            let rows = MR.min(m - i0);
            let a_ptr = a.data[i0 * a.rs..].as_ptr();
            for p in 0..panels {
                let (bp, ldb) = b.panel(p);
                let j0 = p * NR;
                let cols = NR.min(n - j0);
                let at = i0 * ldc + j0;
                if fused && cols == NR {
                    #[cfg(target_arch = "x86_64")]
                    {
                        let c_ptr = c[at..].as_mut_ptr();
                        let mode = match epi {
                            Epilogue::Store => avx2::Fused::Store,
                            Epilogue::Accumulate => avx2::Fused::Accumulate,
                            Epilogue::BiasAct { bias, pre, .. } => avx2::Fused::BiasAct {
                                bias: bias[j0..].as_ptr(),
                                pre: pre.as_deref_mut().map_or(std::ptr::null_mut(), |p| p[at..].as_mut_ptr()),
                            },
                            Epilogue::ActGrad { pre, .. } => avx2::Fused::ActGrad {
                                z: pre.map_or(c_ptr as *const f32, |p| p[at..].as_ptr()),
                            },
                        };
                        // SAFETY: the CPU has AVX2 and FMA; A, B, C, bias and pre hold the
                        // block's rows and 16 columns (asserted in `gemm`, cols == NR here).
                        unsafe { avx2::fused_block::<A>(rows, k, a_ptr, a.rs, a.cs, bp, ldb, c_ptr, ldc, mode) };
                    }
                } else {
                    // SAFETY: A rows i0..i0+rows and columns 0..k, and B rows 0..k of panel p
                    // lie within the slices (asserted in `gemm`).
                    unsafe { product_block(rows, k, a_ptr, a.rs, a.cs, bp, ldb, &mut block) };
                    epilogue::<A>(&block, rows, cols, c, at, ldc, j0, epi);
                }
            }
        }
    }
}

/// One register block, with the AVX2 kernel when the CPU has it.
///
/// # Safety
/// `a` must be readable at `r·rs + kk·cs` and `b` at `kk·ldb + 0..NR` for `r < rows`, `kk < k`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn product_block(
    rows: usize,
    k: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    ldb: usize,
    out: &mut [[f32; NR]; MR],
) {
    // SAFETY: the pointer contract is the caller's (all arms); the AVX2 arm runs only on
    // AVX2+FMA CPUs.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        if simd::has_avx2_fma() {
            match rows {
                6 => avx2::block::<6>(k, a, rs, cs, b, ldb, out),
                5 => avx2::block::<5>(k, a, rs, cs, b, ldb, out),
                4 => avx2::block::<4>(k, a, rs, cs, b, ldb, out),
                3 => avx2::block::<3>(k, a, rs, cs, b, ldb, out),
                2 => avx2::block::<2>(k, a, rs, cs, b, ldb, out),
                _ => avx2::block::<1>(k, a, rs, cs, b, ldb, out),
            }
            return;
        }
        portable_block(rows, k, a, rs, cs, b, ldb, out);
    }
}

/// The same block product in plain Rust.
///
/// # Safety
/// As `product_block`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn portable_block(
    rows: usize,
    k: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    ldb: usize,
    out: &mut [[f32; NR]; MR],
) {
    // SAFETY: the caller's contract, for every arm.
    unsafe {
        match rows {
            6 => portable_rows::<6>(k, a, rs, cs, b, ldb, out),
            5 => portable_rows::<5>(k, a, rs, cs, b, ldb, out),
            4 => portable_rows::<4>(k, a, rs, cs, b, ldb, out),
            3 => portable_rows::<3>(k, a, rs, cs, b, ldb, out),
            2 => portable_rows::<2>(k, a, rs, cs, b, ldb, out),
            _ => portable_rows::<1>(k, a, rs, cs, b, ldb, out),
        }
    }
}

/// `R` rows of the block, summed in local accumulators, one half of the columns at a time:
/// with the row count fixed, 6 × 8 sums fit the 16 vector registers of 128-bit SIMD (SSE2, or
/// SIMD128 in a browser) instead of spilling to memory every step.
///
/// # Safety
/// As `product_block`, with `R` rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn portable_rows<const R: usize>(
    k: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    ldb: usize,
    out: &mut [[f32; NR]; MR],
) {
    const HALF: usize = NR / 2;
    *out = [[0.0; NR]; MR];
    for half in 0..2 {
        let mut acc = [[0.0f32; HALF]; R];
        for kk in 0..k {
            // SAFETY: kk < k, so `b` is readable at `kk·ldb + 0..NR` by the caller's contract.
            let brow = unsafe { &*(b.add(kk * ldb + half * HALF) as *const [f32; HALF]) };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: r < R = rows and kk < k: readable by the caller's contract.
                let av = unsafe { *a.add(r * rs + kk * cs) };
                for (o, &bv) in acc.iter_mut().zip(brow) {
                    *o += av * bv;
                }
            }
        }
        for (row, acc) in out.iter_mut().zip(acc) {
            row[half * HALF..][..HALF].copy_from_slice(&acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "gemm_avx2.rs"]
mod avx2;

/// Writes one computed block into `C` through the epilogue. `at` is the index of the block's
/// top-left element in `C` (and `pre`), `j0` its first column (for the bias).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn epilogue<A: ActFn>(
    block: &[[f32; NR]; MR],
    rows: usize,
    cols: usize,
    c: &mut [f32],
    at: usize,
    ldc: usize,
    j0: usize,
    epi: &mut Epilogue,
) {
    match epi {
        Epilogue::Store => {
            for (r, y) in block.iter().enumerate().take(rows) {
                let o = at + r * ldc;
                c[o..o + cols].copy_from_slice(&y[..cols]);
            }
        }
        Epilogue::Accumulate => {
            for (r, y) in block.iter().enumerate().take(rows) {
                let o = at + r * ldc;
                for (c, &y) in c[o..o + cols].iter_mut().zip(y) {
                    *c += y;
                }
            }
        }
        Epilogue::BiasAct { bias, pre, .. } => {
            let bias = &bias[j0..j0 + cols];
            for (r, y) in block.iter().enumerate().take(rows) {
                let o = at + r * ldc;
                let pre = pre.as_deref_mut().map(|p| &mut p[o..o + cols]);
                bias_act_row::<A>(&y[..cols], bias, &mut c[o..o + cols], pre);
            }
        }
        Epilogue::ActGrad { pre, .. } => {
            for (r, y) in block.iter().enumerate().take(rows) {
                let o = at + r * ldc;
                match pre {
                    Some(z) => act_grad_row::<A>(&y[..cols], &z[o..o + cols], &mut c[o..o + cols]),
                    None => act_grad_in_place::<A>(&y[..cols], &mut c[o..o + cols]),
                }
            }
        }
    }
}

/// `z = y + b`, `pre = z`, `c = act(z)` (Eq. of a hidden layer, h = act(x·W + b)).
#[inline(always)]
fn bias_act_row<A: ActFn>(y: &[f32], bias: &[f32], c: &mut [f32], pre: Option<&mut [f32]>) {
    match pre {
        Some(pre) => {
            for (((c, p), &y), &b) in c.iter_mut().zip(pre.iter_mut()).zip(y).zip(bias) {
                let z = y + b;
                *p = z;
                *c = A::f(z);
            }
        }
        None => {
            for ((c, &y), &b) in c.iter_mut().zip(y).zip(bias) {
                *c = A::f(y + b);
            }
        }
    }
}

/// `c = y ⊙ act′(z)` (chain rule through h = act(z)).
#[inline(always)]
fn act_grad_row<A: ActFn>(y: &[f32], z: &[f32], c: &mut [f32]) {
    for ((c, &y), &z) in c.iter_mut().zip(y).zip(z) {
        *c = y * A::df(z);
    }
}

/// As `act_grad_row` with `z` read from `c` before it is overwritten.
#[inline(always)]
fn act_grad_in_place<A: ActFn>(y: &[f32], c: &mut [f32]) {
    for (c, &y) in c.iter_mut().zip(y) {
        *c = y * A::df(*c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::fastmath::{activate, activate_grad};

    fn fill(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| crate::math::rng::uniform(seed, 0, i as u32, 9) * 2.0 - 1.0)
            .collect()
    }

    /// Reference product in f64: element (i, j) of A·B.
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: &dyn Fn(usize, usize) -> f32,
        b: &dyn Fn(usize, usize) -> f32,
    ) -> Vec<f64> {
        let mut out = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|kk| a(i, kk) as f64 * b(kk, j) as f64).sum();
            }
        }
        out
    }

    /// Odd shapes (not multiples of MR or NR, k = 0 and 1) with strided A and both B forms.
    #[test]
    fn gemm_matches_naive_on_odd_shapes() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 5, 17),
            (13, 66, 128),
            (6, 0, 16),
            (20, 33, 2),
            (128, 128, 40),
        ] {
            let a_data = fill(m * k + k * m + 8, 1);
            let b_data = fill(k * n, 2);
            let ldb_rows = round_up_panel(n) + 3;
            let mut b_rows = vec![0.0f32; k.max(1) * ldb_rows];
            for kk in 0..k {
                b_rows[kk * ldb_rows..kk * ldb_rows + n]
                    .copy_from_slice(&b_data[kk * n..(kk + 1) * n]);
            }
            let mut packed = PackedMatrix::default();
            packed.pack(&b_data, k, n, n, 1);
            // A transposed in memory: element (i, kk) at kk·m + i.
            let lhs = Lhs {
                data: &a_data,
                rs: 1,
                cs: m,
            };
            let expect = naive(m, k, n, &|i, kk| a_data[kk * m + i], &|kk, j| {
                b_data[kk * n + j]
            });
            for rhs in [
                Rhs::Packed(&packed),
                Rhs::Rows {
                    data: &b_rows,
                    ld: ldb_rows,
                    k,
                    n,
                },
            ] {
                let ldc = n + 5;
                let mut c = vec![f32::NAN; (m - 1) * ldc + n];
                gemm(m, lhs, rhs, &mut c, ldc, Epilogue::Store);
                for i in 0..m {
                    for j in 0..n {
                        let got = c[i * ldc + j] as f64;
                        assert!(
                            (got - expect[i * n + j]).abs() < 1e-4,
                            "({m},{k},{n}) at ({i},{j})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn epilogues_apply_bias_activation_and_derivative() {
        let (m, k, n) = (9, 7, 21);
        let a = fill(m * k, 3);
        let bm = fill(k * n, 4);
        let bias = fill(n, 5);
        let mut packed = PackedMatrix::default();
        packed.pack(&bm, k, n, n, 1);
        let y = naive(m, k, n, &|i, kk| a[i * k + kk], &|kk, j| bm[kk * n + j]);
        let lhs = Lhs {
            data: &a,
            rs: k,
            cs: 1,
        };
        for act in Activation::ALL {
            let (mut h, mut z) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
            gemm(
                m,
                lhs,
                Rhs::Packed(&packed),
                &mut h,
                n,
                Epilogue::BiasAct {
                    bias: &bias,
                    act,
                    pre: Some(&mut z),
                },
            );
            let mut g = vec![0.0f32; m * n];
            gemm(
                m,
                lhs,
                Rhs::Packed(&packed),
                &mut g,
                n,
                Epilogue::ActGrad { act, pre: Some(&z) },
            );
            let mut g_in_place = z.clone();
            gemm(
                m,
                lhs,
                Rhs::Packed(&packed),
                &mut g_in_place,
                n,
                Epilogue::ActGrad { act, pre: None },
            );
            for i in 0..m * n {
                let zi = (y[i] + bias[i % n] as f64) as f32;
                assert!((z[i] - zi).abs() < 1e-5);
                assert!((h[i] - activate(act, z[i])).abs() < 1e-6);
                let gi = y[i] as f32 * activate_grad(act, z[i]);
                assert!((g[i] - gi).abs() < 1e-5, "{act:?}");
                assert_eq!(g[i], g_in_place[i]);
            }
        }
    }

    /// A NaN input stays NaN through every fused epilogue (so a diverged step is seen), and
    /// huge values neither turn into NaN nor lose their sign.
    #[test]
    fn epilogues_propagate_nan_and_saturate() {
        let (m, k, n) = (7, 3, 32);
        let mut a = vec![0.5f32; m * k];
        a[0] = f32::NAN; // row 0
        a[3] = 1e30; // row 1: huge positive pre-activations
        a[6] = -1e30; // row 2: huge negative
        let w = vec![1.0f32; k * n];
        let bias = vec![0.0f32; n];
        let mut packed = PackedMatrix::default();
        packed.pack(&w, k, n, n, 1);
        let lhs = Lhs {
            data: &a,
            rs: k,
            cs: 1,
        };
        for act in Activation::ALL {
            let mut h = vec![0.0f32; m * n];
            let epi = Epilogue::BiasAct {
                bias: &bias,
                act,
                pre: None,
            };
            gemm(m, lhs, Rhs::Packed(&packed), &mut h, n, epi);
            assert!(h[..n].iter().all(|v| v.is_nan()), "{act:?}: NaN lost");
            assert!(
                h[n..2 * n].iter().all(|&v| v > 1e29),
                "{act:?}: {:?}",
                &h[n..n + 2]
            );
            // act(−3e30) ≈ 0: z·σ with σ clamped at 2⁻¹²⁶ leaves ~1e-8, as the scalar path.
            assert!(
                h[2 * n..3 * n].iter().all(|&v| v.abs() < 1e-6),
                "{act:?}: {:?}",
                &h[2 * n..2 * n + 2]
            );
            let mut g = vec![0.0f32; m * n];
            let epi = Epilogue::ActGrad { act, pre: Some(&h) };
            gemm(m, lhs, Rhs::Packed(&packed), &mut g, n, epi);
            assert!(
                g[..n].iter().all(|v| v.is_nan()),
                "{act:?}: NaN lost in the derivative"
            );
        }
    }

    /// The AVX2 kernel (when present) and the portable one agree.
    #[test]
    fn kernels_agree() {
        let (k, rs) = (37, 40);
        let a = fill(MR * rs, 6);
        let b = fill(k * NR, 7);
        for rows in 1..=MR {
            let mut fast = [[0.0f32; NR]; MR];
            let mut slow = [[0.0f32; NR]; MR];
            // SAFETY: `a` holds MR rows of stride rs ≥ k, `b` holds k rows of NR.
            unsafe {
                product_block(rows, k, a.as_ptr(), rs, 1, b.as_ptr(), NR, &mut fast);
                portable_block(rows, k, a.as_ptr(), rs, 1, b.as_ptr(), NR, &mut slow);
            }
            for r in 0..rows {
                for j in 0..NR {
                    assert!((fast[r][j] - slow[r][j]).abs() < 1e-5);
                }
            }
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use web_time::Instant;

    /// Single-thread GFLOP/s of the GEMM alone and with each epilogue, against
    /// `matrixmultiply::sgemm`. `cargo test --release --lib gemm_timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn gemm_timing() {
        let (m, k, n) = (252, 128, 128);
        let a = vec![0.01f32; m * k];
        let w = vec![0.02f32; k * n];
        let bias = vec![0.1f32; n];
        let mut packed = PackedMatrix::default();
        packed.pack(&w, k, n, n, 1);
        let mut c = vec![0.0f32; m * n];
        let mut pre = vec![0.0f32; m * n];
        // Best of many short batches: the machine is shared, the minimum is the signal.
        let (batches, reps) = (60, 50);
        let flops = 2.0 * (m * k * n) as f64 * reps as f64;
        let time = |name: &str, f: &mut dyn FnMut()| {
            let mut best = f64::INFINITY;
            for _ in 0..batches {
                let t = Instant::now();
                for _ in 0..reps {
                    f();
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!("{name:28} {:6.1} GFLOP/s", flops / best / 1e9);
        };
        let lhs = Lhs {
            data: &a,
            rs: k,
            cs: 1,
        };
        time("store", &mut || {
            gemm(m, lhs, Rhs::Packed(&packed), &mut c, n, Epilogue::Store)
        });
        for act in Activation::ALL {
            time(&format!("bias+{act:?}"), &mut || {
                gemm(
                    m,
                    lhs,
                    Rhs::Packed(&packed),
                    &mut c,
                    n,
                    Epilogue::BiasAct {
                        bias: &bias,
                        act,
                        pre: None,
                    },
                )
            });
            time(&format!("bias+{act:?}+pre"), &mut || {
                gemm(
                    m,
                    lhs,
                    Rhs::Packed(&packed),
                    &mut c,
                    n,
                    Epilogue::BiasAct {
                        bias: &bias,
                        act,
                        pre: Some(&mut pre),
                    },
                )
            });
            time(&format!("grad {act:?} in place"), &mut || {
                gemm(
                    m,
                    lhs,
                    Rhs::Packed(&packed),
                    &mut c,
                    n,
                    Epilogue::ActGrad { act, pre: None },
                )
            });
        }
        let at = Lhs {
            data: &a,
            rs: 1,
            cs: k,
        };
        let b_rows = vec![0.03f32; m * n];
        // dW = Hᵀ·dZ for chunks of 126 rows (flops as for the 252 rows above).
        time("dW = Hᵀ·dZ, 2 chunks of 126", &mut || {
            for _ in 0..2 {
                let rows = Rhs::Rows {
                    data: &b_rows,
                    ld: n,
                    k: 126,
                    n,
                };
                gemm(k, at, rows, &mut c, n, Epilogue::Store)
            }
        });
        // k = 2 (layer 0 at one time): nearly all epilogue; reported as cycles per 8 outputs
        // at 3.08 GHz (this machine's FMA clock).
        let mut packed2 = PackedMatrix::default();
        packed2.pack(&w, 2, n, n, 1);
        let lhs2 = Lhs {
            data: &a,
            rs: 2,
            cs: 1,
        };
        for act in Activation::ALL {
            let mut best = f64::INFINITY;
            for _ in 0..batches {
                let t = Instant::now();
                for _ in 0..reps {
                    let epi = Epilogue::BiasAct {
                        bias: &bias,
                        act,
                        pre: None,
                    };
                    gemm(m, lhs2, Rhs::Packed(&packed2), &mut c, n, epi);
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            let per_vector = best / reps as f64 / (m * n / 8) as f64;
            println!(
                "k=2 bias+{act:?}: {:.1} cycles per 8 outputs",
                per_vector * 3.08e9
            );
        }
        // SAFETY: `a` is m×k, `w` k×n and `c` m×n, all row-major with the strides given.
        time("matrixmultiply::sgemm", &mut || unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                w.as_ptr(),
                n as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            )
        });
    }
}
