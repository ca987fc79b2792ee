//! Runtime CPU-feature dispatch. The crate is built for baseline x86-64 (SSE2), but the
//! machines we run on have AVX2 and FMA. `multiversion!` compiles a function's body twice,
//! once with those features enabled, and calls that copy when the CPU has them, so the
//! auto-vectorised loops (activations, embeddings, Adam) run 8 lanes wide.
//!
//! The body must call only `#[inline(always)]` code (or code that is inlined anyway): a
//! call that is not inlined runs at the baseline feature level. Closures do not qualify,
//! since nothing forces them to be inlined.

/// Whether the CPU has AVX2 and FMA (std caches the CPUID answer).
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(test)]
    if FORCE_PORTABLE.with(|f| f.get()) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
thread_local! {
    /// Set by tests on their own thread to run the baseline code paths on an AVX2 machine.
    pub(crate) static FORCE_PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Defines `fn name(args) -> ret { body }` whose body also exists compiled with AVX2 + FMA,
/// chosen at run time. Arguments must be plain identifiers; generics take one trait bound.
macro_rules! multiversion {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident $(<$($gen:ident : $bound:path),+>)?
            ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name $(<$($gen: $bound),+>)? ( $($arg: $ty),* ) $(-> $ret)? {
            #[allow(clippy::too_many_arguments)]
            #[inline(always)]
            fn body $(<$($gen: $bound),+>)? ( $($arg: $ty),* ) $(-> $ret)? $body

            // The expansion's own unsafe (the AVX2 copy and its call) is allowed here, so that
            // modules using the macro stay under `unsafe_code = "deny"`; `$body` is not covered.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2 $(<$($gen: $bound),+>)? ( $($arg: $ty),* ) $(-> $ret)? {
                    body $(::<$($gen),+>)? ( $($arg),* )
                }
                if $crate::nn::simd::has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { avx2 $(::<$($gen),+>)? ( $($arg),* ) };
                }
            }
            body $(::<$($gen),+>)? ( $($arg),* )
        }
    };
}
pub(crate) use multiversion;

multiversion! {
    /// Whether no element is NaN or ±∞ (an exponent of all ones), as one vectorisable pass.
    pub(crate) fn all_finite(xs: &[f32]) -> bool {
        let mut bad = 0u32;
        for x in xs {
            bad |= u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000);
        }
        bad == 0
    }
}
