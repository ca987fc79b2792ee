// Denoising score matching on the GPU (needs rng.wgsl, schedule.wgsl, embedding.wgsl): the
// twins of `nn::dsm` (`DsmSampler::draw`, `loss_and_output_grad`).
//
// - `batch`       sample i of step k from the keys (seed, k, i, stream): data index, t, ε;
//                 α(t), σ(t) of the process; x_t = α x₀ + σ ε; the goal (ε for VP, the
//                 velocity ε − x₀ for flow matching); the network input row [x_t, emb(t)]
// - `loss`        ε̂ from the raw output o (FM: o itself), r = ε̂ − goal, per-workgroup Σ w‖r‖², and
//                 dO = (2/B)·w·(∂ε̂/∂o)·r, the gradient of the batch mean
// - `loss_reduce` the batch loss (1/B)·Σ into the loss ring at this step's slot; a NaN or ±∞
//                 sets the sticky `status` word, which makes adam.wgsl stop updating

struct Dsm {
    batch: u32,
    n_data: u32,
    seed: u32,
    // 0 = uniform (w = 1), 1 = inverse σ² (w = 1/σ²), 2 = importance (t from the table,
    // w = table_weight).
    weighting: u32,
    t_min: f32,
    table_weight: f32,
    // Entries of the inverse-CDF table minus one (IMPORTANCE_TABLE_SIZE).
    table_n: u32,
    // ε̂ from o: 0 = ε, 1 = score, 2 = x₀.
    param: u32,
    // Sinusoidal embedding: half its features (0 = the scalar embedding [t]).
    emb_half: u32,
    // Row stride of the input rows (2 + embedding dim).
    in_ld: u32,
    // 0 = VP (α, σ of the schedule), 1 = flow matching (α = 1 − t, σ = t; uses weighting 0).
    process: u32,
    _pad0: u32,
    schedule: ScheduleParams,
}

// What changes from step to step (one 256-byte slot per step, dynamic offset).
struct TrainStep {
    // The step k (mod 2³²) that keys the batch.
    step: u32,
    // Where this step's loss goes in the ring.
    slot: u32,
    step_size: f32,
    inv_sqrt_c2: f32,
    ema_decay: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// One drawn sample, as the loss needs it.
struct Sample {
    goal: vec2<f32>,
    x_t: vec2<f32>,
    alpha: f32,
    sigma: f32,
    weight: f32,
    t: f32,
}

@group(0) @binding(0) var<uniform> d: Dsm;
@group(0) @binding(1) var<storage, read> data: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read> freqs: array<f32>;
@group(0) @binding(4) var<storage, read_write> input: array<f32>;
@group(0) @binding(5) var<storage, read_write> samples: array<Sample>;
@group(0) @binding(6) var<storage, read> out: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read_write> d_out: array<vec2<f32>>;
@group(0) @binding(8) var<storage, read_write> partial: array<f32>;
@group(0) @binding(9) var<storage, read_write> ring: array<f32>;
@group(0) @binding(10) var<storage, read_write> status: array<u32>;
@group(1) @binding(0) var<uniform> k: TrainStep;

const WG: u32 = 256u;

// Inverse CDF by linear interpolation (`ImportanceTable::sample`).
fn table_sample(u: f32) -> f32 {
    let x = u * f32(d.table_n);
    let j = min(u32(x), d.table_n - 1u);
    let f = x - f32(j);
    return table[j] + f * (table[j + 1u] - table[j]);
}

@compute @workgroup_size(256, 1, 1)
fn batch(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= d.batch) {
        return;
    }
    let index = min(u32(rng_uniform(d.seed, k.step, i, STREAM_INDEX) * f32(d.n_data)), d.n_data - 1u);
    let u = rng_uniform(d.seed, k.step, i, STREAM_TIME);
    var t: f32;
    if (d.weighting == 2u) {
        t = table_sample(u);
    } else {
        t = d.t_min + (1.0 - d.t_min) * u;
    }
    let eps = rng_normal2(d.seed, k.step, i, STREAM_EPS);
    var a_s = vec2<f32>(1.0 - t, t);
    if (d.process == 0u) {
        a_s = schedule_alpha_sigma(d.schedule, t);
    }
    var w = 1.0;
    if (d.weighting == 2u) {
        w = d.table_weight;
    } else if (d.weighting == 1u) {
        w = 1.0 / (a_s.y * a_s.y);
    }
    let x0 = data[index];
    let x_t = a_s.x * x0 + a_s.y * eps;
    var goal = eps;
    if (d.process == 1u) {
        goal = eps - x0;
    }
    samples[i] = Sample(goal, x_t, a_s.x, a_s.y, w, t);
    // The network's input row: x_t, then the embedding (sines, then cosines).
    let row = i * d.in_ld;
    input[row] = x_t.x;
    input[row + 1u] = x_t.y;
    if (d.emb_half == 0u) {
        input[row + 2u] = t;
    } else {
        for (var e = 0u; e < d.emb_half; e++) {
            let sc = emb_sin_cos(freqs[e] * t);
            input[row + 2u + e] = sc.x;
            input[row + 2u + d.emb_half + e] = sc.y;
        }
    }
}

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn loss(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = gid.x;
    var l = 0.0;
    if (i < d.batch) {
        let s = samples[i];
        let o = out[i];
        var e: vec2<f32>;
        var gain: f32;
        switch d.param {
            case 1u: {
                e = -s.sigma * o;
                gain = -s.sigma;
            }
            case 2u: {
                e = (s.x_t - s.alpha * o) / s.sigma;
                gain = -s.alpha / s.sigma;
            }
            default: {
                e = o;
                gain = 1.0;
            }
        }
        let r = e - s.goal;
        l = s.weight * (r.x * r.x + r.y * r.y);
        let g = (2.0 / f32(d.batch)) * s.weight * gain;
        d_out[i] = g * r;
    }
    // Tree sum of the workgroup's losses (fixed order: the same result every run).
    red[lid.x] = l;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (lid.x < half) {
            red[lid.x] += red[lid.x + half];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        partial[wid.x] = red[0];
    }
}

// A NaN or ±∞: all exponent bits set.
fn non_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
}

// One workgroup: (1/B)·Σ of the partial sums into ring[slot]; status[0] = 1 + step of the first
// non-finite loss (sticky until the CPU clears it).
@compute @workgroup_size(256, 1, 1)
fn loss_reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
    let parts = (d.batch + WG - 1u) / WG;
    var v = 0.0;
    for (var j = lid.x; j < parts; j += WG) {
        v += partial[j];
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
        let mean = red[0] / f32(d.batch);
        ring[k.slot] = mean;
        if (non_finite(mean) && status[0] == 0u) {
            status[0] = 1u + k.step;
        }
    }
}
