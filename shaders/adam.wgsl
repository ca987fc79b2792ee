// Adam and the EMA of the weights: the twins of `nn::adam::{Adam::step, Ema::update}`.
//
// The gradient arrives as S partial copies (one per split-K slice of the batch, written by
// matmul.wgsl `backward_dw` and mlp.wgsl `head_dw`); they are summed here in slice order, so
// the reduction is deterministic, then
//   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  θ ← θ − (lr/c₁)·m / (√v/√c₂ + ε),
//   θ̄ ← d θ̄ + (1 − d) θ,
// with the bias corrections c₁ = 1 − β₁ᵏ, c₂ = 1 − β₂ᵏ and the EMA decay d computed on the CPU
// in f64 (one slot per step). While `status` is nonzero (a non-finite loss was seen) nothing
// changes. Before an update, the weights and their EMA are kept in `backup`: the last
// weights whose loss was finite, restored when training pauses on a NaN.

struct Adam {
    n: u32,
    // Slices of the gradient and the distance between them.
    splits: u32,
    split_stride: u32,
    _pad0: u32,
}

struct TrainStep {
    step: u32,
    slot: u32,
    step_size: f32,
    inv_sqrt_c2: f32,
    ema_decay: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

@group(0) @binding(0) var<uniform> a: Adam;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
// m in [0, n), v in [n, 2n).
@group(0) @binding(2) var<storage, read_write> moments: array<f32>;
@group(0) @binding(3) var<storage, read_write> ema: array<f32>;
@group(0) @binding(4) var<storage, read> partials: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;
// The last good weights in [0, n), their EMA in [n, 2n).
@group(0) @binding(6) var<storage, read_write> backup: array<f32>;
@group(0) @binding(7) var<storage, read> status: array<u32>;
@group(1) @binding(0) var<uniform> k: TrainStep;

@compute @workgroup_size(256, 1, 1)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.y * nwg.x * 256u + gid.x;
    if (i >= a.n) {
        return;
    }
    var g = 0.0;
    for (var s = 0u; s < a.splits; s++) {
        g += partials[s * a.split_stride + i];
    }
    grad[i] = g;
    if (status[0] != 0u) {
        return;
    }
    let p = params[i];
    let e = ema[i];
    backup[i] = p;
    backup[a.n + i] = e;
    let mi = BETA1 * moments[i] + (1.0 - BETA1) * g;
    let vi = BETA2 * moments[a.n + i] + (1.0 - BETA2) * g * g;
    moments[i] = mi;
    moments[a.n + i] = vi;
    let np = p - k.step_size * mi / (sqrt(vi) * k.inv_sqrt_c2 + EPSILON);
    params[i] = np;
    let dcy = k.ema_decay;
    ema[i] = dcy * e + (1.0 - dcy) * np;
}
