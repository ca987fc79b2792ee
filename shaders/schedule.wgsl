// α(t) and σ(t) of the VP-SDE schedules in f32, for kernels that draw their own t (the DSM
// batch). The CPU (`math::schedule`) works in f64; here B(t) is formed so that its relative
// error stays at f32 precision down to t ≈ 1e-4 (no difference of two numbers near 1):
// σ² = −expm1(−B), and the cosine B = −2 log1p((cos φ(t) − cos φ(0))/cos φ(0)) with the
// difference of cosines written as a product of sines.

const SCHEDULE_LINEAR: u32 = 0u;
const SCHEDULE_COSINE: u32 = 1u;
const SCHEDULE_CONSTANT: u32 = 2u;

const COSINE_S: f32 = 0.008;
const HALF_PI: f32 = 1.5707963267948966;

// One schedule as the CPU describes it (`gpu::kernels::ScheduleUniform`).
struct ScheduleParams {
    kind: u32,
    // linear: β_min, β_max; constant: β in p0; cosine: β_cap in p0.
    p0: f32,
    p1: f32,
    // cosine: the time where β reaches the cap, and B there.
    t_cap: f32,
    b_cap: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// e^x − 1 without cancellation near 0.
fn expm1_f32(x: f32) -> f32 {
    if (abs(x) < 0.35) {
        // Taylor series to x⁹ (truncation < 1e-10 relative at |x| = 0.35).
        let p = 1.0 + x * (1.0 / 2.0 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0
            + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0 + x * (1.0 / 362880.0))))))));
        return x * p;
    }
    return exp(x) - 1.0;
}

// log(1 + x) without cancellation near 0: 2 atanh(s), s = x/(2 + x).
fn log1p_f32(x: f32) -> f32 {
    if (abs(x) < 0.35) {
        let s = x / (2.0 + x);
        let s2 = s * s;
        return 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0)))));
    }
    return log(1.0 + x);
}

fn cosine_phase(t: f32) -> f32 {
    return (t + COSINE_S) / (1.0 + COSINE_S) * HALF_PI;
}

// Uncapped cosine B(t) = −2 log(cos φ(t)/cos φ(0)).
fn cosine_big_b(t: f32) -> f32 {
    let p0 = cosine_phase(0.0);
    let pt = cosine_phase(t);
    // cos a − cos b = −2 sin((a + b)/2) sin((a − b)/2); a − b = t·π/(2(1 + s)) exactly.
    let diff = -2.0 * sin(0.5 * (pt + p0)) * sin(0.5 * t / (1.0 + COSINE_S) * HALF_PI);
    return -2.0 * log1p_f32(diff / cos(p0));
}

// B(t) = ∫₀ᵗ β.
fn schedule_big_b(s: ScheduleParams, t: f32) -> f32 {
    switch s.kind {
        case 1u: {
            if (t <= s.t_cap) {
                return cosine_big_b(t);
            }
            return s.b_cap + s.p0 * (t - s.t_cap);
        }
        case 2u: {
            return s.p0 * t;
        }
        default: {
            return s.p0 * t + 0.5 * t * t * (s.p1 - s.p0);
        }
    }
}

// (α(t), σ(t)).
fn schedule_alpha_sigma(s: ScheduleParams, t: f32) -> vec2<f32> {
    let big_b = schedule_big_b(s, t);
    return vec2<f32>(exp(-0.5 * big_b), sqrt(max(-expm1_f32(-big_b), 0.0)));
}
