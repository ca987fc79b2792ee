// The sinusoidal time embedding, the twin of `nn::embedding` (frequencies ω_i come from the
// CPU as a table, so both sides multiply the same f32 values), and of `nn::fastmath::sin_cos`:
// the same Cephes polynomials, so the features agree to ~1e-7 even at ω t ≈ 1000 rad, where
// a GPU's native `sin` may be coarse.

// (sin x, cos x): x = n·π/2 + r with |r| ≤ π/4, both polynomials on r, then the quadrant
// n mod 4 swaps and negates them.
fn emb_sin_cos(x: f32) -> vec2<f32> {
    let n = round(x * 0.63661975);
    let q = u32(i32(n));
    // π/2 in three parts (Cody–Waite), as in fastmath.
    var r = x - n * 1.5703125;
    r = r - n * 4.837513e-4;
    r = r - n * 7.54979e-8;
    let z = r * r;
    let s = ((-1.9515296e-4 * z + 8.332161e-3) * z - 0.16666655) * z * r + r;
    let c = ((2.4433157e-5 * z - 1.3887316e-3) * z + 4.1666646e-2) * (z * z) - 0.5 * z + 1.0;
    let swap = (q & 1u) == 1u;
    let sa = select(s, c, swap);
    let cb = select(c, s, swap);
    // sin is negated in quadrants 2 and 3, cos in quadrants 1 and 2.
    let sin_v = bitcast<f32>(bitcast<u32>(sa) ^ ((q & 2u) << 30u));
    let cos_v = bitcast<f32>(bitcast<u32>(cb) ^ (((q + 1u) & 2u) << 30u));
    return vec2<f32>(sin_v, cos_v);
}
