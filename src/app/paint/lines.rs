//! Line segments of the canvas (grid, trails, arrows), collected in screen points and drawn
//! either by a paint callback with a texture-free shader (when the app renders with wgpu) or
//! as ordinary egui shapes. Thousands of thin segments through egui's textured shader cost
//! tens of milliseconds a frame on a software rasteriser (lavapipe); through this, a few.

use std::collections::HashMap;

use egui::{Pos2, Rect, Shape, Stroke, Vec2};
use egui_wgpu::wgpu;

use crate::app::callback;

/// Segments of one layer, in egui points.
#[derive(Default)]
pub struct Lines {
    segments: Vec<(Pos2, Pos2, Stroke)>,
}

impl Lines {
    pub fn segment(&mut self, a: Pos2, b: Pos2, stroke: Stroke) {
        self.segments.push((a, b, stroke));
    }

    /// A circle outline as a 16-gon.
    pub fn circle(&mut self, center: Pos2, radius: f32, stroke: Stroke) {
        const SIDES: usize = 16;
        let at = |k: usize| {
            let angle = std::f32::consts::TAU * k as f32 / SIDES as f32;
            center + radius * Vec2::angled(angle)
        };
        for k in 0..SIDES {
            self.segment(at(k), at(k + 1), stroke);
        }
    }

    /// An arrow from `origin` along `vec`, with egui's proportions (`Painter::arrow`).
    pub fn arrow(&mut self, origin: Pos2, vec: Vec2, stroke: Stroke) {
        let rot = egui::emath::Rot2::from_angle(std::f32::consts::TAU / 10.0);
        let tip_length = vec.length() / 4.0;
        let tip = origin + vec;
        let dir = vec.normalized();
        self.segment(origin, tip, stroke);
        self.segment(tip, tip - tip_length * (rot * dir), stroke);
        self.segment(tip, tip - tip_length * (rot.inverse() * dir), stroke);
    }

    /// Draws the segments inside `rect`: by the line pipeline when the app renders with wgpu
    /// (`gpu`), else as egui shapes (tests, other renderers). `id` names the layer's buffers.
    pub fn paint(self, painter: &egui::Painter, id: egui::Id, rect: Rect, gpu: bool) {
        if self.segments.is_empty() {
            return;
        }
        if !gpu {
            painter.extend(
                self.segments
                    .into_iter()
                    .map(|(a, b, stroke)| Shape::line_segment([a, b], stroke)),
            );
            return;
        }
        let ppp = painter.ctx().pixels_per_point();
        let callback = LineCallback {
            id,
            segments: self.segments,
            rect,
            ppp,
        };
        painter.add(egui_wgpu::Callback::new_paint_callback(rect, callback));
    }
}

/// One vertex of a segment's quad (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Vertex {
    ndc: [f32; 2],
    color: [f32; 4],
    edge: [f32; 2],
}

const _: () = assert!(std::mem::size_of::<Vertex>() == 32);

/// The WGSL source (validated by naga with every other shader in `tests/shaders.rs`).
pub const SHADER: &str = include_str!("../../../shaders/lines.wgsl");

/// Two triangles per segment, one pixel of antialiasing margin on each side.
fn quads(
    segments: &[(Pos2, Pos2, Stroke)],
    rect: Rect,
    ppp: f32,
    srgb_target: bool,
) -> Vec<Vertex> {
    let to_ndc = |p: Pos2| {
        let u = (p - rect.min) / rect.size();
        [2.0 * u.x - 1.0, 1.0 - 2.0 * u.y]
    };
    let mut out = Vec::with_capacity(6 * segments.len());
    for &(a, b, stroke) in segments {
        let along = b - a;
        if along.length_sq() == 0.0 || stroke.width <= 0.0 {
            continue;
        }
        let color = if srgb_target {
            egui::Rgba::from(stroke.color).to_array()
        } else {
            stroke.color.to_normalized_gamma_f32()
        };
        let half_px = 0.5 * stroke.width * ppp;
        let reach_px = half_px.max(0.5) + 1.0;
        let normal = along.normalized().rot90() * (reach_px / ppp);
        let vertex = |p: Pos2, side: f32| Vertex {
            ndc: to_ndc(p),
            color,
            edge: [side * reach_px, half_px],
        };
        let (a0, a1) = (vertex(a - normal, -1.0), vertex(a + normal, 1.0));
        let (b0, b1) = (vertex(b - normal, -1.0), vertex(b + normal, 1.0));
        out.extend_from_slice(&[a0, b0, a1, a1, b0, b1]);
    }
    out
}

/// GPU objects of the line layers, kept in egui-wgpu's `CallbackResources`.
pub struct LineRenderer {
    pipeline: wgpu::RenderPipeline,
    /// Per layer (egui id): its vertex buffer, its capacity and the vertices written this frame.
    layers: HashMap<egui::Id, (wgpu::Buffer, usize, u32)>,
    srgb_target: bool,
}

impl LineRenderer {
    /// Builds the pipeline for egui's target format and registers it with the renderer.
    pub fn install(render_state: &egui_wgpu::RenderState) {
        let renderer = Self::new(&render_state.device, render_state.target_format);
        callback::register(render_state, renderer);
    }

    fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        let module = callback::shader(device, "lines.wgsl", SHADER);
        let pipeline = callback::Pipeline {
            label: "line pipeline",
            module: &module,
            group0: None,
            vertex_entry: "vs_main",
            buffer: Some(wgpu::VertexBufferLayout {
                array_stride: std::mem::size_of::<Vertex>() as u64,
                step_mode: wgpu::VertexStepMode::Vertex,
                attributes: &wgpu::vertex_attr_array![
                    0 => Float32x2, 1 => Float32x4, 2 => Float32x2
                ],
            }),
            topology: wgpu::PrimitiveTopology::TriangleList,
        }
        .build(device, target_format);
        Self {
            pipeline,
            layers: HashMap::new(),
            srgb_target: target_format.is_srgb(),
        }
    }
}

/// One layer of segments inside `rect` (the callback's viewport).
struct LineCallback {
    id: egui::Id,
    segments: Vec<(Pos2, Pos2, Stroke)>,
    rect: Rect,
    ppp: f32,
}

impl egui_wgpu::CallbackTrait for LineCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(r) = resources.get_mut::<LineRenderer>() else {
            return Vec::new();
        };
        let vertices = quads(&self.segments, self.rect, self.ppp, r.srgb_target);
        let create = |capacity: usize| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("line vertices"),
                size: (capacity * std::mem::size_of::<Vertex>()) as u64,
                usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let (buffer, capacity, count) = r
            .layers
            .entry(self.id)
            .or_insert_with(|| (create(1024), 1024, 0));
        if vertices.len() > *capacity {
            // Grow geometrically: trails lengthen every frame of an animation.
            *capacity = vertices.len().next_power_of_two();
            *buffer = create(*capacity);
        }
        queue.write_buffer(buffer, 0, bytemuck::cast_slice(&vertices));
        *count = vertices.len() as u32;
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(r) = resources.get::<LineRenderer>() else {
            return;
        };
        let Some((buffer, _, count)) = r.layers.get(&self.id) else {
            return;
        };
        if *count == 0 {
            return;
        }
        render_pass.set_pipeline(&r.pipeline);
        render_pass.set_vertex_buffer(0, buffer.slice(..));
        render_pass.draw(0..*count, 0..1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::Color32;

    /// A horizontal segment across the rect maps to NDC −1…1 with the y axis flipped, and
    /// its quad reaches one pixel beyond half the width on either side.
    #[test]
    fn quads_map_points_to_ndc() {
        let rect = Rect::from_min_size(Pos2::new(10.0, 20.0), Vec2::new(100.0, 50.0));
        let stroke = Stroke::new(2.0, Color32::WHITE);
        let v = quads(
            &[(Pos2::new(10.0, 45.0), Pos2::new(110.0, 45.0), stroke)],
            rect,
            1.0,
            false,
        );
        assert_eq!(v.len(), 6);
        let xs: Vec<f32> = v.iter().map(|v| v.ndc[0]).collect();
        assert!(xs.iter().all(|x| (x.abs() - 1.0).abs() < 1e-6), "{xs:?}");
        // Half-width 1 px plus 1 px of margin = 2 px = 0.08 NDC of a 50 px tall rect.
        let ys: Vec<f32> = v.iter().map(|v| v.ndc[1]).collect();
        assert!(ys.iter().all(|y| (y.abs() - 0.08).abs() < 1e-6), "{ys:?}");
        assert!(v.iter().all(|v| v.edge[0].abs() == 2.0 && v.edge[1] == 1.0));
        assert_eq!(v[0].color, [1.0; 4]);
        // A point segment or an invisible stroke draws nothing.
        let p = Pos2::new(50.0, 50.0);
        assert!(quads(&[(p, p, stroke)], rect, 1.0, false).is_empty());
    }
}
