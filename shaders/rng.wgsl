// Counter-based random numbers: the line-for-line twin of `src/math/rng.rs`.
//
// Every draw is a pure function of (seed, step, index, stream), so a kernel can redraw exactly
// the numbers the CPU drew for the same key (a DSM batch, a sampler's noise) in any order.
// Only u32 arithmetic: WGSL has no 64-bit integers, and u32 `*`/`+` wrap like Rust's
// `wrapping_mul`/`wrapping_add`.
//
// Streams (keep them equal to the constants of `math::rng`).
const STREAM_INDEX: u32 = 0u;
const STREAM_TIME: u32 = 1u;
const STREAM_EPS: u32 = 2u;
const STREAM_PRIOR: u32 = 3u;
const STREAM_STEP: u32 = 4u;
const STREAM_PROBE: u32 = 5u;
const STREAM_CORRECTOR: u32 = 6u;

// PCG-RXS-M-XS hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020).
fn pcg_hash(x: u32) -> u32 {
    let state = x * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// The 32 random bits for one (seed, step, index, stream) key.
fn rng_bits(seed: u32, step: u32, index: u32, stream: u32) -> u32 {
    return pcg_hash(seed ^ pcg_hash(step ^ pcg_hash(index ^ pcg_hash(stream))));
}

// A uniform in the open interval (0, 1): 24 random bits plus half an ulp, so `log` is finite.
fn rng_uniform(seed: u32, step: u32, index: u32, stream: u32) -> f32 {
    return (f32(rng_bits(seed, step, index, stream) >> 8u) + 0.5) * (1.0 / 16777216.0);
}

// Two independent standard normals by Box–Muller from two uniforms of the key.
fn rng_normal2(seed: u32, step: u32, index: u32, stream: u32) -> vec2<f32> {
    let u1 = rng_uniform(seed, step, index, stream);
    let u2 = rng_uniform(seed, step, index, stream + 0x9E3779B9u);
    let r = sqrt(-2.0 * log(u1));
    let a = 6.283185307179586 * u2;
    return vec2<f32>(r * cos(a), r * sin(a));
}
