//! The losses on their way back: the ring is copied to a staging buffer and mapped
//! asynchronously, never waited for by training; a non-finite loss found there pauses it.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError, channel};
use std::time::Duration;

use super::{GpuTrainer, LOSS_RING};
use crate::gpu::error::GpuError;

/// How long a finished mapping may take to reach its callback (run by whichever thread polls).
const MAP_CALLBACK_WAIT: Duration = Duration::from_secs(10);

/// The loss of one training step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossPoint {
    pub step: u64,
    pub loss: f32,
}

/// A readback in flight: the steps `[from, to)` it covers and its map result.
type InFlight = (u64, u64, Receiver<Result<(), wgpu::BufferAsyncError>>);

/// The staging copy of the loss ring and status word, mapped asynchronously.
#[derive(Debug)]
pub(super) struct Readback {
    pub(super) staging: wgpu::Buffer,
    pub(super) in_flight: Option<InFlight>,
    /// Losses of steps before this one have been read.
    pub(super) read_to: u64,
}

impl GpuTrainer {
    /// Copies the status word and the loss ring to the staging buffer and asks to map it.
    pub(super) fn start_readback(&mut self) -> Result<(), GpuError> {
        if self.readback.in_flight.is_some() || self.readback.read_to >= self.steps {
            return Ok(());
        }
        let staging = self.readback.staging.clone();
        self.ctx.scoped("reading back the losses", || {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("loss readback"),
                });
            enc.copy_buffer_to_buffer(&self.status, 0, &staging, 0, 4);
            enc.copy_buffer_to_buffer(&self.ring, 0, &staging, 4, u64::from(LOSS_RING) * 4);
            self.ctx.queue.submit([enc.finish()]);
        })?;
        let (tx, rx) = channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.readback.in_flight = Some((self.readback.read_to, self.steps, rx));
        Ok(())
    }

    /// Polls the device (firing map and device-lost callbacks), then collects the readback
    /// in flight if it is mapped (`wait`: block until it is).
    pub(super) fn poll_losses(&mut self, wait: bool) -> Result<(), GpuError> {
        let poll = if wait && self.readback.in_flight.is_some() {
            wgpu::PollType::wait_indefinitely()
        } else {
            wgpu::PollType::Poll
        };
        self.ctx.device.poll(poll).map_err(|e| GpuError::Device {
            what: "polling the GPU".into(),
            message: e.to_string(),
        })?;
        self.ctx.check_alive()?;
        let Some((from, to, rx)) = self.readback.in_flight.take() else {
            return Ok(());
        };
        // After a blocking poll the mapping is done, but when the device is shared another
        // thread's poll may be the one running our callback: wait for it rather than miss it.
        let received = if wait {
            rx.recv_timeout(MAP_CALLBACK_WAIT).map_err(|e| {
                // A mapping still pending would block the next readback: drop it.
                self.readback.staging.unmap();
                GpuError::Readback(match e {
                    RecvTimeoutError::Timeout => "the loss readback never completed".into(),
                    RecvTimeoutError::Disconnected => "map callback dropped".into(),
                })
            })
        } else {
            match rx.try_recv() {
                Err(TryRecvError::Empty) => {
                    self.readback.in_flight = Some((from, to, rx));
                    return Ok(());
                }
                Err(TryRecvError::Disconnected) => {
                    Err(GpuError::Readback("map callback dropped".into()))
                }
                Ok(r) => Ok(r),
            }
        }?;
        received.map_err(|e| GpuError::Readback(e.to_string()))?;
        let (status, ring) = {
            let view = self
                .readback
                .staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            let words: &[u32] = bytemuck::cast_slice(&view);
            let ring: Vec<f32> = bytemuck::cast_slice(&words[1..]).to_vec();
            (words[0], ring)
        };
        self.readback.staging.unmap();
        for step in from..to {
            let loss = ring[(step % u64::from(LOSS_RING)) as usize];
            self.losses.push_back(LossPoint { step, loss });
        }
        self.readback.read_to = to;
        if status != 0 && self.paused.is_none() {
            self.pause_on_non_finite(u64::from(status - 1))?;
        }
        Ok(())
    }

    /// Restores the weights of the last finite step, zeroes Adam's moments, and pauses.
    fn pause_on_non_finite(&mut self, step: u64) -> Result<(), GpuError> {
        let p_bytes = self.num_params as u64 * 4;
        self.ctx.scoped("restoring the last good weights", || {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("restore last good weights"),
                });
            enc.copy_buffer_to_buffer(&self.backup, 0, &self.params, 0, p_bytes);
            enc.copy_buffer_to_buffer(&self.backup, p_bytes, &self.ema, 0, p_bytes);
            enc.clear_buffer(&self.moments, 0, None);
            self.ctx.queue.submit([enc.finish()]);
        })?;
        self.adam_steps = 0;
        // The steps after the bad one did nothing (the status word gates Adam).
        self.steps = step + 1;
        self.readback.read_to = self.readback.read_to.min(self.steps);
        self.losses.retain(|l| l.step <= step);
        self.paused = Some(GpuError::NonFinite { step });
        Ok(())
    }
}
