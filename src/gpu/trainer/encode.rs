//! Recording training steps: each step's dispatches into one compute pass, up to
//! `STEPS_PER_SUBMIT` steps per command encoder, each reading its own uniform slot.

use super::{GpuTrainer, LOSS_RING, MAX_IN_FLIGHT, STEPS_PER_SUBMIT};
use crate::gpu::error::GpuError;
use crate::gpu::kernels::{GEMM_TILE, K, Slots, TrainStepUniform, WG_1D, grid_1d, grid_rows};
use crate::nn::adam::{BETA1, BETA2};

impl GpuTrainer {
    /// The per-step uniform of the next step (`self.steps + offset`), mirroring
    /// `nn::adam::{Adam::step, Ema::current_decay}` in the same float types.
    fn step_uniform(&self, offset: u64) -> TrainStepUniform {
        let step = self.steps + offset;
        let k = (self.adam_steps + offset + 1).min(i32::MAX as u64) as i32;
        let c1 = (1.0 - (BETA1 as f64).powi(k)) as f32;
        let c2 = (1.0 - (BETA2 as f64).powi(k)) as f32;
        let updates = (self.adam_steps + offset) as f32;
        let ema_decay = self.cfg.ema_decay.min((1.0 + updates) / (10.0 + updates));
        TrainStepUniform {
            step: step as u32,
            slot: (step % u64::from(LOSS_RING)) as u32,
            step_size: self.cfg.lr / c1,
            inv_sqrt_c2: 1.0 / c2.sqrt(),
            ema_decay,
            _pad: [0; 3],
        }
    }

    /// Records one training step reading slot `slot`.
    fn encode_step(&self, pass: &mut wgpu::ComputePass<'_>, slot: u32) {
        let k = &self.kernels;
        let b = &self.bufs;
        let Some(bi) = &self.binds else {
            return;
        };
        let off = [Slots::offset(slot)];
        let net = &self.cfg.net;
        let depth = net.depth;
        let width = net.width as u32;
        let batch = b.batch;
        let rows_1d = batch.div_ceil(WG_1D);
        // (x₀, t, ε) → input rows and samples.
        pass.set_pipeline(&k.get(K::DsmBatch).pipeline);
        pass.set_bind_group(0, &bi.batch.0, &[]);
        pass.set_bind_group(1, &bi.batch.1, &off);
        pass.dispatch_workgroups(rows_1d, 1, 1);
        // Forward through the hidden layers, keeping Z and H for the backward pass.
        pass.set_pipeline(&k.get(K::GemmForward).pipeline);
        for bind in &bi.forward {
            pass.set_bind_group(0, bind, &[]);
            pass.dispatch_workgroups(width.div_ceil(GEMM_TILE), batch.div_ceil(GEMM_TILE), 1);
        }
        // o = H·W_out + b_out.
        pass.set_pipeline(&k.get(K::Head).pipeline);
        pass.set_bind_group(0, &bi.head, &[]);
        let (gx, gy) = grid_1d(batch, WG_1D);
        pass.dispatch_workgroups(gx, gy, 1);
        // Loss, dO, and the batch mean into the ring.
        pass.set_pipeline(&k.get(K::DsmLoss).pipeline);
        pass.set_bind_group(0, &bi.loss, &[]);
        pass.dispatch_workgroups(rows_1d, 1, 1);
        pass.set_pipeline(&k.get(K::DsmLossReduce).pipeline);
        pass.set_bind_group(0, &bi.loss_reduce.0, &[]);
        pass.set_bind_group(1, &bi.loss_reduce.1, &off);
        pass.dispatch_workgroups(1, 1, 1);
        // Output layer backward.
        pass.set_pipeline(&k.get(K::HeadDw).pipeline);
        pass.set_bind_group(0, &bi.head_dw, &[]);
        pass.dispatch_workgroups((width + 1).div_ceil(64), b.splits, 1);
        pass.set_pipeline(&k.get(K::HeadDx).pipeline);
        pass.set_bind_group(0, &bi.head_dx, &[]);
        let (gy, gz) = grid_rows(batch);
        pass.dispatch_workgroups(width.div_ceil(64), gy, gz);
        // Hidden layers backward, top down.
        let layers = net.layers();
        for l in (0..depth).rev() {
            let fan_in = layers[l].fan_in as u32;
            pass.set_pipeline(&k.get(K::GemmBackwardDw).pipeline);
            pass.set_bind_group(0, &bi.backward_dw[l], &[]);
            pass.dispatch_workgroups(
                width.div_ceil(GEMM_TILE),
                (fan_in + 1).div_ceil(GEMM_TILE),
                b.splits,
            );
            if let Some(dx) = &bi.backward_dx[l] {
                pass.set_pipeline(&k.get(K::GemmBackwardDx).pipeline);
                pass.set_bind_group(0, dx, &[]);
                pass.dispatch_workgroups(width.div_ceil(GEMM_TILE), batch.div_ceil(GEMM_TILE), 1);
            }
        }
        // Σ slices, Adam, EMA.
        pass.set_pipeline(&k.get(K::Adam).pipeline);
        pass.set_bind_group(0, &bi.adam.0, &[]);
        pass.set_bind_group(1, &bi.adam.1, &off);
        let (ax, ay) = grid_1d(self.num_params as u32, WG_1D);
        pass.dispatch_workgroups(ax, ay, 1);
    }

    pub(super) fn submit_steps(&mut self, n: u32) -> Result<(), GpuError> {
        // Never let the ring wrap over losses not yet read back.
        if self.steps + u64::from(n) - self.readback.read_to
            > u64::from(LOSS_RING - STEPS_PER_SUBMIT)
        {
            self.poll_losses(true)?;
            self.start_readback()?;
            self.poll_losses(true)?;
        }
        let uniforms: Vec<TrainStepUniform> =
            (0..u64::from(n)).map(|i| self.step_uniform(i)).collect();
        self.slots.write(&self.ctx.queue, 0, &uniforms);
        let index = self.ctx.scoped("recording training steps", || {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("training steps"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("dsm step"),
                    timestamp_writes: None,
                });
                for i in 0..n {
                    self.encode_step(&mut pass, i);
                }
            }
            self.ctx.queue.submit([enc.finish()])
        })?;
        self.ctx
            .throttle(&mut self.submissions, index, MAX_IN_FLIGHT)?;
        self.steps += u64::from(n);
        self.adam_steps += u64::from(n);
        if self.steps - self.readback.read_to >= self.loss_every
            && self.readback.in_flight.is_none()
        {
            self.start_readback()?;
        }
        Ok(())
    }
}
