//! Buffers: storage and uniform buffers (queued writes, never mapped at creation), the
//! per-step uniform slots, and reading a buffer back to the CPU.

use bytemuck::Pod;

use crate::gpu::context::GpuContext;
use crate::gpu::error::GpuError;

/// Bytes between per-step uniform slots (`min_uniform_buffer_offset_alignment` ≤ 256).
pub const SLOT_BYTES: u64 = 256;

/// A uniform buffer of fixed-stride slots, one per step or stage, bound with a dynamic offset.
#[derive(Debug)]
pub struct Slots {
    pub buffer: wgpu::Buffer,
    /// Bytes of the struct in each slot.
    pub slot_size: u64,
    pub capacity: u32,
}

impl Slots {
    pub fn new(device: &wgpu::Device, label: &str, slot_size: u64, capacity: u32) -> Self {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: SLOT_BYTES * u64::from(capacity.max(1)),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self {
            buffer,
            slot_size,
            capacity: capacity.max(1),
        }
    }

    /// Writes consecutive slots starting at `first` (staged by the queue: they land before
    /// the next submission runs).
    pub fn write<T: Pod>(&self, queue: &wgpu::Queue, first: u32, values: &[T]) {
        debug_assert!(first as usize + values.len() <= self.capacity as usize);
        let mut bytes = vec![0u8; values.len() * SLOT_BYTES as usize];
        for (i, v) in values.iter().enumerate() {
            let src = bytemuck::bytes_of(v);
            bytes[i * SLOT_BYTES as usize..i * SLOT_BYTES as usize + src.len()]
                .copy_from_slice(src);
        }
        queue.write_buffer(&self.buffer, u64::from(first) * SLOT_BYTES, &bytes);
    }

    /// The dynamic offset of slot `i`.
    pub fn offset(i: u32) -> u32 {
        i * SLOT_BYTES as u32
    }
}

/// A storage buffer of `bytes` (at least 4), checked against the device's limits first.
pub fn storage_buffer(ctx: &GpuContext, label: &str, bytes: u64) -> Result<wgpu::Buffer, GpuError> {
    let bytes = bytes.max(4).next_multiple_of(4);
    ctx.check_buffer_size(label, bytes)?;
    Ok(ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    }))
}

/// A storage buffer holding `data`.
pub fn storage_init<T: Pod>(
    ctx: &GpuContext,
    label: &str,
    data: &[T],
) -> Result<wgpu::Buffer, GpuError> {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    if bytes.len() < 4 {
        // New buffers are zeroed.
        return storage_buffer(ctx, label, 4);
    }
    // Not `create_buffer_init`: on a lost device its mapping panics; a queued write is
    // merely dropped, and the loss is reported by the next wait.
    let buffer = storage_buffer(ctx, label, bytes.len() as u64)?;
    if bytes.len().is_multiple_of(4) {
        ctx.queue.write_buffer(&buffer, 0, bytes);
    } else {
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().next_multiple_of(4), 0);
        ctx.queue.write_buffer(&buffer, 0, &padded);
    }
    Ok(buffer)
}

/// A uniform buffer holding `bytes` (a multiple of 4). Written by the queue, not mapped at
/// creation: on a lost device a mapping panics, a queued write is merely dropped.
pub fn uniform_bytes(ctx: &GpuContext, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    debug_assert!(
        bytes.len().is_multiple_of(4),
        "{label}: {} bytes",
        bytes.len()
    );
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (bytes.len() as u64).max(4),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buffer, 0, bytes);
    buffer
}

/// A uniform buffer holding `value`.
pub fn uniform_init<T: Pod>(ctx: &GpuContext, label: &str, value: &T) -> wgpu::Buffer {
    uniform_bytes(ctx, label, bytemuck::bytes_of(value))
}

/// A copy of part of a buffer on its way back to the CPU: the copy is submitted and the
/// mapping asked for; `try_take` collects it once mapped. Natively `read_f32` waits for it; in
/// a browser, where nothing may block, callers look again on a later frame.
#[derive(Debug)]
pub struct AsyncRead {
    staging: wgpu::Buffer,
    len: usize,
    mapped: std::sync::mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

impl AsyncRead {
    /// Copies `len` f32s at element offset `offset` of `src` and asks to map them.
    pub fn start(
        ctx: &GpuContext,
        src: &wgpu::Buffer,
        offset: u64,
        len: usize,
    ) -> Result<Self, GpuError> {
        let bytes = (len as u64 * 4).max(4);
        let staging = ctx.scoped("reading back a buffer", || {
            let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback staging"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("readback"),
                });
            if len > 0 {
                enc.copy_buffer_to_buffer(src, offset * 4, &staging, 0, len as u64 * 4);
            }
            ctx.queue.submit([enc.finish()]);
            staging
        })?;
        let (tx, mapped) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        Ok(Self {
            staging,
            len,
            mapped,
        })
    }

    /// The values once the mapping is done (`None` while it is not).
    pub fn try_take(&self) -> Option<Result<Vec<f32>, GpuError>> {
        let mapped = match self.mapped.try_recv() {
            Err(std::sync::mpsc::TryRecvError::Empty) => return None,
            Err(e) => Err(GpuError::Readback(e.to_string())),
            Ok(r) => r.map_err(|e| GpuError::Readback(e.to_string())),
        };
        Some(mapped.and_then(|()| self.values()))
    }

    /// The values once ready: natively this waits for the GPU (only worker threads call it);
    /// in a browser, where nothing may block, `None` until the mapping is done — look again on
    /// a later frame.
    pub fn poll(&self, ctx: &GpuContext) -> Option<Result<Vec<f32>, GpuError>> {
        if cfg!(target_arch = "wasm32") {
            self.try_take()
        } else {
            Some(self.wait(ctx))
        }
    }

    /// Blocks until mapped (not in a browser).
    fn wait(&self, ctx: &GpuContext) -> Result<Vec<f32>, GpuError> {
        ctx.wait()?;
        match self.mapped.recv() {
            Ok(r) => r.map_err(|e| GpuError::Readback(e.to_string()))?,
            Err(e) => return Err(GpuError::Readback(e.to_string())),
        }
        self.values()
    }

    fn values(&self) -> Result<Vec<f32>, GpuError> {
        let out = {
            let view = self
                .staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, f32>(&view)[..self.len].to_vec()
        };
        self.staging.unmap();
        Ok(out)
    }
}

/// Reads `len` f32s at element offset `offset` of `src` back to the CPU, waiting for them
/// (tests, plots, saving weights; never inside a training step, nor in a browser).
pub fn read_f32(
    ctx: &GpuContext,
    src: &wgpu::Buffer,
    offset: u64,
    len: usize,
) -> Result<Vec<f32>, GpuError> {
    AsyncRead::start(ctx, src, offset, len)?.wait(ctx)
}
