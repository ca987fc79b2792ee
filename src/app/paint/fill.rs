//! Large solid areas (the canvas background) drawn by a paint callback with a one-line
//! fragment shader. egui's shader samples its font texture for every pixel; on a software
//! rasteriser (lavapipe) a full-window egui rectangle costs ~36 ms a frame, this ~1 ms.

use std::collections::HashMap;

use egui::{Color32, Rect};
use egui_wgpu::wgpu;

use crate::app::callback;

/// The shader's uniform block (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniforms {
    color: [f32; 4],
    half_size: [f32; 2],
    radius: f32,
    _pad: f32,
}

const _: () = assert!(std::mem::size_of::<Uniforms>() == 32);

/// The WGSL source (validated by naga with every other shader in `tests/shaders.rs`).
pub const SHADER: &str = include_str!("../../../shaders/fill.wgsl");

/// GPU objects of the fills, kept in egui-wgpu's `CallbackResources`.
pub struct FillRenderer {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    /// One uniform buffer per fill (by its egui id), so several fills can share a frame.
    slots: HashMap<egui::Id, (wgpu::Buffer, wgpu::BindGroup)>,
    srgb_target: bool,
}

impl FillRenderer {
    /// Builds the pipeline for egui's target format and registers it with the renderer.
    pub fn install(render_state: &egui_wgpu::RenderState) {
        let renderer = Self::new(&render_state.device, render_state.target_format);
        callback::register(render_state, renderer);
    }

    fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        let module = callback::shader(device, "fill.wgsl", SHADER);
        let layout = callback::uniform_layout(device, "fill bind group layout");
        let pipeline = callback::Pipeline {
            label: "fill pipeline",
            module: &module,
            group0: Some(&layout),
            vertex_entry: "vs_main",
            buffer: None,
            topology: wgpu::PrimitiveTopology::TriangleStrip,
        }
        .build(device, target_format);
        Self {
            pipeline,
            layout,
            slots: HashMap::new(),
            srgb_target: target_format.is_srgb(),
        }
    }
}

/// One filled rounded rectangle: the callback's rect, in the callback's colour.
pub struct FillCallback {
    pub id: egui::Id,
    pub color: Color32,
    /// Corner radius in physical pixels.
    pub radius_px: f32,
    /// The rect's size in physical pixels.
    pub size_px: [f32; 2],
}

/// Fills `rect` with `color`: through the fill pipeline when the app renders with wgpu
/// (`gpu`), else as an ordinary egui shape (tests, other renderers).
pub fn fill_rect(
    painter: &egui::Painter,
    id: egui::Id,
    rect: Rect,
    radius: f32,
    color: Color32,
    gpu: bool,
) {
    if !gpu {
        painter.rect_filled(rect, radius, color);
        return;
    }
    let ppp = painter.ctx().pixels_per_point();
    let callback = FillCallback {
        id,
        color,
        radius_px: radius * ppp,
        size_px: [rect.width() * ppp, rect.height() * ppp],
    };
    painter.add(egui_wgpu::Callback::new_paint_callback(rect, callback));
}

impl egui_wgpu::CallbackTrait for FillCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(r) = resources.get_mut::<FillRenderer>() else {
            return Vec::new();
        };
        let color = if r.srgb_target {
            egui::Rgba::from(self.color).to_array()
        } else {
            self.color.to_normalized_gamma_f32()
        };
        let uniforms = Uniforms {
            color,
            half_size: [0.5 * self.size_px[0], 0.5 * self.size_px[1]],
            radius: self.radius_px,
            _pad: 0.0,
        };
        let layout = &r.layout;
        let (buffer, _) = r.slots.entry(self.id).or_insert_with(|| {
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("fill uniforms"),
                size: std::mem::size_of::<Uniforms>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("fill bind group"),
                layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: buffer.as_entire_binding(),
                }],
            });
            (buffer, bind_group)
        });
        queue.write_buffer(buffer, 0, bytemuck::bytes_of(&uniforms));
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(r) = resources.get::<FillRenderer>() else {
            return;
        };
        let Some((_, bind_group)) = r.slots.get(&self.id) else {
            return;
        };
        render_pass.set_pipeline(&r.pipeline);
        render_pass.set_bind_group(0, bind_group, &[]);
        render_pass.draw(0..4, 0..1);
    }
}
