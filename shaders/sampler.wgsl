// One sampler step over every particle (needs rng.wgsl): the twins of `math::solvers`.
//
// The network has already written its raw output o for every particle (mlp.wgsl `head`);
// each kernel turns o into ε̂ (the parameterisation), then applies the step. Every
// coefficient that is the same for all particles (β, α, σ, h, …) comes from the CPU, computed
// in f64 exactly as the CPU sampler computes it, in a per-stage uniform slot.
//
// - `prior`        x ~ N(0, I) (key: seed, 0, i, STREAM_PRIOR)
// - `affine`       x ← c_x x + c_e ε̂ + c_z z: Euler–Maruyama, DDPM, DDIM, Langevin
// - `ode_stage`    one stage of a Runge–Kutta method on the PF-ODE drift (Euler, Heun, RK4)
// - `dpm2m`        DPM-Solver++(2M) on data predictions
// - `pc_norms`, `pc_reduce`, `pc_correct`: the Langevin corrector with batch-mean norms
// - `eps_out`      ε̂ itself (the GPU ScoreModel reads it back)

struct Stage {
    // ε̂ = eps_from_output(o, x_eval, alpha, sigma): 0 = ε, 1 = score, 2 = x₀.
    param: u32,
    // Particles.
    n: u32,
    seed: u32,
    // The key's step (the sampler's step index k) and stream of this stage's noise.
    step: u32,
    stream: u32,
    // ode_stage: 1 = the stage point is x itself (first stage), else xs.
    first: u32,
    // ode_stage: 1 = the last stage, which updates x.
    last: u32,
    // dpm2m: 1 = a previous data prediction exists.
    has_prev: u32,
    // α, σ at the time the network was evaluated.
    alpha: f32,
    sigma: f32,
    // affine: c_x, c_e, c_z. ode_stage: drift coefficients c_x = −½β, c_e = ½β/σ, the stage
    // weight w, the next stage's offset c_next·h, and the final factor (h/2, h/6, h).
    // dpm2m: α_t, σ_t, c_x = σ_s/σ_t, c_d = −α_s expm1(−h), w_now, w_prev.
    // pc_correct: snr r.
    c0: f32,
    c1: f32,
    c2: f32,
    c3: f32,
    c4: f32,
    c5: f32,
}

@group(0) @binding(0) var<storage, read_write> x: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> o: array<vec2<f32>>;
// Stage points (RK), previous data predictions (DPM), reductions (PC), or ε̂ (eps_out).
@group(0) @binding(2) var<storage, read_write> xs: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> acc: array<vec2<f32>>;
@group(1) @binding(0) var<uniform> s: Stage;

const WG: u32 = 256u;

// Particle index of a thread; the grid is 2D when one dimension would exceed 65535 groups.
fn particle(lid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// ε̂ from the raw output at the point where the network was evaluated
// (`Parameterization::eps_from_output`).
fn eps_hat(out: vec2<f32>, at: vec2<f32>) -> vec2<f32> {
    switch s.param {
        case 1u: {
            return -s.sigma * out;
        }
        case 2u: {
            return (at - s.alpha * out) / s.sigma;
        }
        default: {
            return out;
        }
    }
}

@compute @workgroup_size(256, 1, 1)
fn prior(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = particle(lid, wid, nwg);
    if (i >= s.n) {
        return;
    }
    x[i] = rng_normal2(s.seed, 0u, i, STREAM_PRIOR);
}

// x ← c_x x + c_e ε̂ + c_z z (no draw when c_z = 0, as on the CPU).
@compute @workgroup_size(256, 1, 1)
fn affine(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = particle(lid, wid, nwg);
    if (i >= s.n) {
        return;
    }
    let xi = x[i];
    let e = eps_hat(o[i], xi);
    var z = vec2<f32>(0.0, 0.0);
    if (s.c2 != 0.0) {
        z = rng_normal2(s.seed, s.step, i, s.stream);
    }
    x[i] = s.c0 * xi + s.c1 * e + s.c2 * z;
}

// A stage of an explicit Runge–Kutta method on dx/dt = −½β(x − ε̂/σ):
// d = c_x x_stage + c_e ε̂;  acc ← (first ? 0 : acc) + w d;
// then either the next stage point xs = x + c_next d, or (last) x ← x + final·acc.
@compute @workgroup_size(256, 1, 1)
fn ode_stage(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = particle(lid, wid, nwg);
    if (i >= s.n) {
        return;
    }
    let xi = x[i];
    let at = select(xs[i], xi, s.first == 1u);
    let e = eps_hat(o[i], at);
    let d = s.c0 * at + s.c1 * e;
    var sum = s.c2 * d;
    if (s.first == 0u) {
        sum = acc[i] + sum;
    }
    if (s.last == 1u) {
        x[i] = xi + s.c4 * sum;
    } else {
        acc[i] = sum;
        xs[i] = xi + s.c3 * d;
    }
}

// DPM-Solver++(2M): x̂₀ = (x − σ_t ε̂)/α_t; D = w_now x̂₀ + w_prev x̂₀_prev;
// x ← (σ_s/σ_t) x + c_d D; x̂₀_prev (in xs) ← x̂₀.
@compute @workgroup_size(256, 1, 1)
fn dpm2m(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = particle(lid, wid, nwg);
    if (i >= s.n) {
        return;
    }
    let xi = x[i];
    let e = eps_hat(o[i], xi);
    let x0 = (xi - s.c1 * e) / s.c0;
    var d = s.c4 * x0;
    if (s.has_prev == 1u) {
        d += s.c5 * xs[i];
    }
    x[i] = s.c2 * xi + s.c3 * d;
    xs[i] = x0;
}

// Langevin corrector, part 1: per-workgroup sums of ‖ε̂‖ and ‖z‖ into acc[workgroup].
var<workgroup> red: array<vec2<f32>, 256>;

@compute @workgroup_size(256, 1, 1)
fn pc_norms(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = particle(lid, wid, nwg);
    var v = vec2<f32>(0.0, 0.0);
    if (i < s.n) {
        let e = eps_hat(o[i], x[i]);
        let z = rng_normal2(s.seed, s.step, i, s.stream);
        v = vec2<f32>(length(e), length(z));
    }
    red[lid.x] = v;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (lid.x < half) {
            red[lid.x] += red[lid.x + half];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        acc[wid.y * nwg.x + wid.x] = red[0];
    }
}

// Part 2: one workgroup sums the ⌈n/256⌉ partial sums into xs[0] (groups past the last
// particle wrote zeros).
@compute @workgroup_size(256, 1, 1)
fn pc_reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
    let parts = (s.n + WG - 1u) / WG;
    var v = vec2<f32>(0.0, 0.0);
    for (var j = lid.x; j < parts; j += 256u) {
        v += acc[j];
    }
    red[lid.x] = v;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (lid.x < half) {
            red[lid.x] += red[lid.x + half];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        xs[0] = red[0];
    }
}

// Part 3 (Song et al. 2021, Alg. 5): δ = 2 (r mean‖z‖ / mean‖s‖)², s = −ε̂/σ;
// x ← x − (δ/σ) ε̂ + √(2δ) z.
@compute @workgroup_size(256, 1, 1)
fn pc_correct(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = particle(lid, wid, nwg);
    if (i >= s.n) {
        return;
    }
    let sums = xs[0];
    let n = f32(max(s.n, 1u));
    let s_norm = sums.x / s.sigma / n;
    let ratio = (s.c1 * sums.y / n) / max(s_norm, 1e-12);
    let delta = 2.0 * ratio * ratio;
    let xi = x[i];
    let e = eps_hat(o[i], xi);
    let z = rng_normal2(s.seed, s.step, i, s.stream);
    x[i] = xi + (-delta / s.sigma) * e + sqrt(2.0 * delta) * z;
}

// ε̂ for every particle into xs.
@compute @workgroup_size(256, 1, 1)
fn eps_out(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = particle(lid, wid, nwg);
    if (i >= s.n) {
        return;
    }
    xs[i] = eps_hat(o[i], x[i]);
}
