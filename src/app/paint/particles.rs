//! The wgpu side of the canvas: every particle is one instance of a quad drawn from a vertex
//! buffer inside egui's own render pass (an `egui_wgpu` paint callback), so 100 k points cost
//! one draw call instead of 100 k egui shapes.

use std::sync::Arc;

use egui_wgpu::wgpu;

use crate::Point;
use crate::app::callback;

/// One particle as the GPU reads it: world position and unmultiplied gamma-space RGBA.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Instance {
    pub pos: Point,
    pub color: [u8; 4],
}

const _: () = assert!(std::mem::size_of::<Instance>() == 12);

/// The shader's uniform block, padded by hand to 48 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniforms {
    center: [f32; 2],
    scale: [f32; 2],
    radius: [f32; 2],
    srgb_target: u32,
    _pad: u32,
    resident_color: [f32; 4],
}

const _: () = assert!(std::mem::size_of::<Uniforms>() == 48);

/// The WGSL source (validated by naga with every other shader in `tests/shaders.rs`).
pub const SHADER: &str = include_str!("../../../shaders/particles.wgsl");

/// GPU objects of the particle layer, kept in egui-wgpu's `CallbackResources` (never in the
/// app's saved state).
pub struct ParticleRenderer {
    pipeline: wgpu::RenderPipeline,
    /// The same discs from a buffer of bare positions (`Resident`).
    resident_pipeline: wgpu::RenderPipeline,
    uniforms: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    instances: wgpu::Buffer,
    /// Capacity of `instances`, in instances.
    capacity: usize,
    /// Instances written this frame.
    count: u32,
    srgb_target: bool,
}

impl ParticleRenderer {
    /// Builds the pipelines for egui's target format and registers them with the renderer.
    pub fn install(render_state: &egui_wgpu::RenderState) {
        let renderer = Self::new(&render_state.device, render_state.target_format);
        callback::register(render_state, renderer);
    }

    fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        let module = callback::shader(device, "particles.wgsl", SHADER);
        let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("particle uniforms"),
            size: std::mem::size_of::<Uniforms>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let layout = callback::uniform_layout(device, "particle bind group layout");
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("particle bind group"),
            layout: &layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: uniforms.as_entire_binding(),
            }],
        });
        let pipeline_for = |vertex_entry: &str, buffer: wgpu::VertexBufferLayout<'_>| {
            callback::Pipeline {
                label: "particle pipeline",
                module: &module,
                group0: Some(&layout),
                vertex_entry,
                buffer: Some(buffer),
                topology: wgpu::PrimitiveTopology::TriangleStrip,
            }
            .build(device, target_format)
        };
        // One Instance per quad; its four corners come from the vertex index.
        let pipeline = pipeline_for(
            "vs_main",
            wgpu::VertexBufferLayout {
                array_stride: std::mem::size_of::<Instance>() as u64,
                step_mode: wgpu::VertexStepMode::Instance,
                attributes: &wgpu::vertex_attr_array![0 => Float32x2, 1 => Unorm8x4],
            },
        );
        let resident_pipeline = pipeline_for(
            "vs_resident",
            wgpu::VertexBufferLayout {
                array_stride: std::mem::size_of::<Point>() as u64,
                step_mode: wgpu::VertexStepMode::Instance,
                attributes: &wgpu::vertex_attr_array![0 => Float32x2],
            },
        );
        let capacity = 1024;
        Self {
            pipeline,
            resident_pipeline,
            uniforms,
            bind_group,
            instances: instance_buffer(device, capacity),
            capacity,
            count: 0,
            srgb_target: target_format.is_srgb(),
        }
    }
}

fn instance_buffer(device: &wgpu::Device, capacity: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("particle instances"),
        size: (capacity * std::mem::size_of::<Instance>()) as u64,
        usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// What one frame of the canvas draws: the instances and the world → viewport mapping.
pub struct ParticleCallback {
    pub instances: Arc<Vec<Instance>>,
    /// Particles drawn after the instances, straight from a GPU buffer.
    pub resident: Option<Resident>,
    /// World point at the centre of the viewport.
    pub center: Point,
    /// World units from the centre to the viewport's edge, per axis.
    pub half_extent: [f32; 2],
    /// Disc radius in physical pixels.
    pub radius_px: f32,
    /// Viewport size in physical pixels.
    pub viewport_px: [f32; 2],
}

/// `len` positions at byte `offset` of `buffer` (on the renderer's device), one colour.
pub struct Resident {
    pub buffer: wgpu::Buffer,
    pub offset: u64,
    pub len: u32,
    /// Unmultiplied gamma-space RGBA.
    pub color: [u8; 4],
}

impl egui_wgpu::CallbackTrait for ParticleCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(r) = resources.get_mut::<ParticleRenderer>() else {
            return Vec::new();
        };
        if self.instances.len() > r.capacity {
            // Grow geometrically so a slider dragged to 100 k reallocates a few times only.
            r.capacity = self.instances.len().next_power_of_two();
            r.instances = instance_buffer(device, r.capacity);
        }
        queue.write_buffer(&r.instances, 0, bytemuck::cast_slice(&self.instances));
        r.count = self.instances.len() as u32;
        let uniforms = Uniforms {
            center: self.center,
            scale: [1.0 / self.half_extent[0], 1.0 / self.half_extent[1]],
            radius: [
                2.0 * self.radius_px / self.viewport_px[0].max(1.0),
                2.0 * self.radius_px / self.viewport_px[1].max(1.0),
            ],
            srgb_target: u32::from(r.srgb_target),
            _pad: 0,
            resident_color: self
                .resident
                .as_ref()
                .map_or([0.0; 4], |g| g.color.map(|c| f32::from(c) / 255.0)),
        };
        queue.write_buffer(&r.uniforms, 0, bytemuck::bytes_of(&uniforms));
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(r) = resources.get::<ParticleRenderer>() else {
            return;
        };
        render_pass.set_bind_group(0, &r.bind_group, &[]);
        if r.count > 0 {
            render_pass.set_pipeline(&r.pipeline);
            render_pass.set_vertex_buffer(0, r.instances.slice(..));
            render_pass.draw(0..4, 0..r.count);
        }
        if let Some(g) = self.resident.as_ref().filter(|g| g.len > 0) {
            let end = g.offset + u64::from(g.len) * std::mem::size_of::<Point>() as u64;
            render_pass.set_pipeline(&r.resident_pipeline);
            render_pass.set_vertex_buffer(0, g.buffer.slice(g.offset..end));
            render_pass.draw(0..4, 0..g.len);
        }
    }
}
