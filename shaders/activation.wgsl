// The hidden-layer nonlinearities and their derivatives, the twins of `nn::fastmath`
// (`SiluFn`, `GeluFn`, `ReluFn`). The ids match `gpu::kernels::act_id`.
//
// GELU is the tanh approximation written through the logistic function:
// ½ z (1 + tanh u) = z·sigmoid(2u), u = √(2/π)(z + 0.044715 z³).
const ACT_NONE: u32 = 0u;
const ACT_SILU: u32 = 1u;
const ACT_GELU: u32 = 2u;
const ACT_RELU: u32 = 3u;

// 2·√(2/π) and 2·√(2/π)·0.044715 (`GELU_K1`, `GELU_K2` of fastmath).
const GELU_K1: f32 = 1.5957691;
const GELU_K2: f32 = 1.5957691 * 0.044715;

fn sigmoid(y: f32) -> f32 {
    return 1.0 / (1.0 + exp(-y));
}

// act(z).
fn act_f(kind: u32, z: f32) -> f32 {
    switch kind {
        case 1u: {
            return z * sigmoid(z);
        }
        case 2u: {
            return z * sigmoid(z * (GELU_K1 + GELU_K2 * z * z));
        }
        case 3u: {
            // `z < 0 ? 0 : z`, so a NaN passes through and shows up in the loss.
            return select(z, 0.0, z < 0.0);
        }
        default: {
            return z;
        }
    }
}

// act′(z).
fn act_df(kind: u32, z: f32) -> f32 {
    switch kind {
        case 1u: {
            // d/dz z·s(z) = s + z s (1 − s).
            let s = sigmoid(z);
            return s + z * s * (1.0 - s);
        }
        case 2u: {
            // d/dz z·s(y(z)) = s + z s (1 − s) y′, y′ = K1 + 3 K2 z².
            let z2 = z * z;
            let s = sigmoid(z * (GELU_K1 + GELU_K2 * z2));
            return s + z * s * (1.0 - s) * (GELU_K1 + 3.0 * GELU_K2 * z2);
        }
        case 3u: {
            return select(0.0, 1.0, z > 0.0);
        }
        default: {
            return 1.0;
        }
    }
}
