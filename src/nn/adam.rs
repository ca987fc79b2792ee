//! Adam (Kingma & Ba, Algorithm 1) and the exponential moving average of the weights that the
//! samplers use.

use super::simd::multiversion;

/// Adam's moment decay rates and stabiliser (docs/architecture.md §4).
pub const BETA1: f32 = 0.9;
pub const BETA2: f32 = 0.999;
pub const EPSILON: f32 = 1e-8;

/// Adam's state: first and second moments and the step count.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    steps: u64,
}

impl Adam {
    pub fn new(num_params: usize) -> Self {
        Self {
            m: vec![0.0; num_params],
            v: vec![0.0; num_params],
            steps: 0,
        }
    }

    /// Updates done so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update with gradient `g`:
    /// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
    /// `θ ← θ − lr · m̂ / (√v̂ + ε)` with `m̂ = m/(1−β₁ᵏ)`, `v̂ = v/(1−β₂ᵏ)` (k = this step, from 1).
    pub fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32) {
        self.steps += 1;
        let k = self.steps.min(i32::MAX as u64) as i32;
        // Bias corrections in f64: 1 − β₂ᵏ is tiny for small k.
        let c1 = (1.0 - (BETA1 as f64).powi(k)) as f32;
        let c2 = (1.0 - (BETA2 as f64).powi(k)) as f32;
        let (step_size, inv_sqrt_c2) = (lr / c1, 1.0 / c2.sqrt());
        adam_update(
            params,
            grad,
            &mut self.m,
            &mut self.v,
            step_size,
            inv_sqrt_c2,
        );
    }
}

/// The moving average `θ̄ ← d θ̄ + (1 − d) θ` with the warm-up `d = min(decay, (1+k)/(10+k))`
/// (k = updates so far), so early averages are not dominated by the random initialisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Ema {
    decay: f32,
    params: Vec<f32>,
    updates: u64,
}

impl Ema {
    /// Starts at `params`.
    pub fn new(params: &[f32], decay: f32) -> Self {
        Self {
            decay,
            params: params.to_vec(),
            updates: 0,
        }
    }

    /// Continues an average kept elsewhere (by the GPU) after `updates` updates, so the
    /// warm-up goes on where it was.
    pub fn resume(params: &[f32], decay: f32, updates: u64) -> Self {
        Self {
            decay,
            params: params.to_vec(),
            updates,
        }
    }

    pub fn params(&self) -> &[f32] {
        &self.params
    }

    pub fn set_decay(&mut self, decay: f32) {
        self.decay = decay;
    }

    /// The decay the next update will use.
    pub fn current_decay(&self) -> f32 {
        let k = self.updates as f32;
        self.decay.min((1.0 + k) / (10.0 + k))
    }

    pub fn update(&mut self, params: &[f32]) {
        let d = self.current_decay();
        ema_update(&mut self.params, params, d);
        self.updates += 1;
    }
}

multiversion! {
    /// The element-wise part of `Adam::step`; m̂/(√v̂ + ε) = (m/c1) / (√v/√c2 + ε).
    fn adam_update(params: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], step_size: f32, inv_sqrt_c2: f32) {
        for (((p, &g), m), v) in params.iter_mut().zip(grad).zip(m).zip(v) {
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
            *p -= step_size * *m / (v.sqrt() * inv_sqrt_c2 + EPSILON);
        }
    }
}

multiversion! {
    fn ema_update(ema: &mut [f32], params: &[f32], d: f32) {
        for (e, &p) in ema.iter_mut().zip(params) {
            *e = d * *e + (1.0 - d) * p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Adam steps by hand in f64, for a few parameters with different gradients.
    #[test]
    fn adam_matches_hand_computation() {
        let mut params = vec![1.0f32, -2.0, 0.5, 0.0];
        let grads = [[0.1f32, -3.0, 0.0, 1e-6], [0.2, 1.0, -0.5, 1e-6]];
        let lr = 0.01f32;
        let mut adam = Adam::new(4);
        let mut expect: Vec<f64> = params.iter().map(|&p| p as f64).collect();
        let (mut m, mut v) = (vec![0.0f64; 4], vec![0.0f64; 4]);
        for (k, g) in grads.iter().enumerate() {
            adam.step(&mut params, g, lr);
            let k = k as i32 + 1;
            for i in 0..4 {
                let g = g[i] as f64;
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let m_hat = m[i] / (1.0 - 0.9f64.powi(k));
                let v_hat = v[i] / (1.0 - 0.999f64.powi(k));
                expect[i] -= lr as f64 * m_hat / (v_hat.sqrt() + 1e-8);
            }
            for i in 0..4 {
                assert!(
                    (params[i] as f64 - expect[i]).abs() < 1e-6,
                    "step {k} param {i}: {} vs {}",
                    params[i],
                    expect[i]
                );
            }
        }
        // The first step moves every parameter with a nonzero gradient by ≈ lr.
        assert!((params[0] - 1.0 + 2.0 * 0.01).abs() < 1e-3);
        assert_eq!(adam.steps(), 2);
    }

    #[test]
    fn ema_warms_up_then_tracks() {
        let mut ema = Ema::new(&[0.0], 0.999);
        assert!((ema.current_decay() - 0.1).abs() < 1e-7);
        ema.update(&[1.0]);
        assert!((ema.params()[0] - 0.9).abs() < 1e-6);
        for _ in 0..100_000 {
            ema.update(&[1.0]);
        }
        assert_eq!(ema.current_decay(), 0.999);
        assert!((ema.params()[0] - 1.0).abs() < 1e-4);
    }
}
