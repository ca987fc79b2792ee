//! Regions of the UI that seldom change (the controls, the status bar, the plots) drawn from
//! a picture of themselves.
//!
//! A software rasteriser (lavapipe) pays about a microsecond for every triangle egui sends
//! it, so a panel of text and widgets costs ~10 ms a frame even when nothing in it moves.
//! Here a region's shapes are tessellated as egui would; when the result is the same as on
//! the frame before, it is rendered once into a texture by egui's own renderer, and from then
//! on, as long as it stays the same, a single textured rectangle stands in for it. Any change
//! (a hover, a new value, a scroll) draws the region as usual for that frame; the frame after
//! a change thus tessellates it twice and, when it then stands still, rasterises it twice.
//!
//! Why a frame late: the font atlas's updates of a frame (of all its passes) reach the GPU
//! only after the frame, so a region is rendered once its triangles match those of the
//! previous frame (not pass), whose glyphs are all on the GPU by then. Only regions that
//! use no texture but the font atlas are pictured: another texture could change under the
//! same id.

use std::collections::HashMap;
use std::sync::Arc;

use egui::epaint::{ClippedPrimitive, ClippedShape, Primitive};
use egui::layers::ShapeIdx;
use egui::{Context, LayerId, Rect, Shape, TextureId, Vec2};
use egui_wgpu::wgpu;

use crate::app::callback;

/// The WGSL source (validated by naga with every other shader in `tests/shaders.rs`).
pub const SHADER: &str = include_str!("../../../shaders/blit.wgsl");

/// Where a region's shapes start in its layer (taken before the region is built).
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    layer: LayerId,
    start: usize,
}

/// Marks the next shape of `layer`.
pub fn mark(ctx: &Context, layer: LayerId) -> Mark {
    let start = ctx.graphics(|g| g.get(layer).map_or(0, |l| l.next_idx().0));
    Mark { layer, start }
}

/// The cached regions of one window, by name.
pub struct RegionCache {
    render_state: egui_wgpu::RenderState,
    regions: HashMap<&'static str, Region>,
    /// The frame the last `region` call belonged to.
    frame: u64,
}

#[derive(Default)]
struct Region {
    /// The frame that drew the region from `picture` last.
    shown_in: Option<u64>,
    /// The triangles (as bytes) of the frame `last_in`, to see whether the region stood still.
    last: Vec<u8>,
    last_in: u64,
    /// What `picture` shows.
    pictured: Vec<u8>,
    picture: Option<Arc<Picture>>,
}

/// A region's pixels, ready to draw.
struct Picture {
    bind_group: wgpu::BindGroup,
}

impl RegionCache {
    /// Registers the copy pipeline with egui's renderer.
    pub fn new(render_state: &egui_wgpu::RenderState) -> Self {
        callback::register(render_state, BlitRenderer::new(render_state));
        Self {
            render_state: render_state.clone(),
            regions: HashMap::new(),
            frame: 0,
        }
    }

    /// The regions drawn from their picture on the last frame.
    pub fn pictured(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self
            .regions
            .iter()
            .filter_map(|(name, r)| (r.shown_in == Some(self.frame)).then_some(*name))
            .collect();
        names.sort_unstable();
        names
    }

    /// Replaces the shapes added to `mark`'s layer since `mark` by a picture of them when
    /// they are the same as on the frame before. The picture is transparent where they are
    /// (premultiplied alpha), so whatever lies under the region still shows.
    pub fn region(&mut self, ctx: &Context, name: &'static str, mark: Mark) {
        let ppp = ctx.pixels_per_point();
        let screen = ctx.content_rect();
        let frame = ctx.cumulative_frame_nr();
        self.frame = frame;
        let shapes: Vec<ClippedShape> = ctx.graphics(|g| {
            g.get(mark.layer)
                .map(|l| l.all_entries().skip(mark.start).cloned().collect())
                .unwrap_or_default()
        });
        let region = self.regions.entry(name).or_default();
        let Some(px) = pixel_bounds(&shapes, screen, ppp) else {
            region.last.clear();
            return;
        };
        let primitives = ctx.tessellate(shapes, ppp);
        // A paint callback draws with its own pipeline; another texture than the font atlas
        // could change under the same id.
        let picturable = primitives.iter().all(|p| match &p.primitive {
            Primitive::Mesh(mesh) => mesh.texture_id == TextureId::default(),
            Primitive::Callback(_) => false,
        });
        if !picturable {
            region.last.clear();
            return;
        }
        // The picture spans the screen from its top-left corner to the region's far corner:
        // the shapes are tessellated and clipped exactly as on the screen (a shift to the
        // region's corner could round a clip edge the other way at a fractional scale).
        let size = [px.max.x as u32, px.max.y as u32];
        let key = fingerprint(&primitives, size, ppp);

        if region.picture.is_none() || region.pictured != key {
            let still = key == region.last && region.last_in + 1 == frame;
            if region.last_in != frame {
                region.last_in = frame;
                region.last.clone_from(&key);
            }
            if !still {
                // Changed since the last frame (or first seen this one): egui draws it.
                return;
            }
            let Some(picture) = render(&self.render_state, &primitives, size, ppp) else {
                return;
            };
            region.picture = Some(Arc::new(picture));
            region.pictured = key;
        }
        let Some(picture) = region.picture.clone() else {
            return;
        };
        region.shown_in = Some(frame);
        // A pixel of margin: the viewport's rounding cannot cut the region's edge (the
        // shader reads the texel under each pixel, transparent outside the shapes).
        let rect = Rect::from_min_max(
            ((px.min.to_vec2() - Vec2::splat(1.0)) / ppp).to_pos2(),
            ((px.max.to_vec2() + Vec2::splat(1.0)) / ppp).to_pos2(),
        );
        ctx.graphics_mut(|g| {
            let list = g.entry(mark.layer);
            let end = list.next_idx().0;
            for i in mark.start..end {
                list.reset_shape(ShapeIdx(i));
            }
            if mark.start < end {
                let callback = egui_wgpu::Callback::new_paint_callback(rect, Blit { picture });
                list.set(ShapeIdx(mark.start), rect, Shape::Callback(callback));
            }
        });
    }
}

/// Renders `primitives` into a new texture of `size` pixels with egui's renderer.
fn render(
    rs: &egui_wgpu::RenderState,
    primitives: &[ClippedPrimitive],
    size: [u32; 2],
    ppp: f32,
) -> Option<Picture> {
    let mut renderer = rs.renderer.write();
    let layout = &renderer.callback_resources.get::<BlitRenderer>()?.layout;
    let texture = rs.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("region picture"),
        size: wgpu::Extent3d {
            width: size[0],
            height: size[1],
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: rs.target_format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::TEXTURE_BINDING,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    let screen = egui_wgpu::ScreenDescriptor {
        size_in_pixels: size,
        pixels_per_point: ppp,
    };
    let mut encoder = rs
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("region picture"),
        });
    let bind_group = rs.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("region picture"),
        layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::TextureView(&view),
        }],
    });
    let prepared =
        renderer.update_buffers(&rs.device, &rs.queue, &mut encoder, primitives, &screen);
    {
        let mut pass = encoder
            .begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("region picture"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                        store: wgpu::StoreOp::Store,
                    },
                    depth_slice: None,
                })],
                ..Default::default()
            })
            .forget_lifetime();
        renderer.render(&mut pass, primitives, &screen);
    }
    drop(renderer);
    rs.queue
        .submit(prepared.into_iter().chain([encoder.finish()]));
    Some(Picture { bind_group })
}

/// The region's extent in whole physical pixels: the shapes' bounds within their clip
/// rects and the screen. `None` when it is empty.
fn pixel_bounds(shapes: &[ClippedShape], screen: Rect, ppp: f32) -> Option<Rect> {
    let mut bounds = Rect::NOTHING;
    for s in shapes {
        let visible = s
            .transform_after_tessellation
            .mul_rect(s.shape.visual_bounding_rect())
            .intersect(s.clip_rect);
        if visible.is_positive() {
            bounds = bounds.union(visible);
        }
    }
    let px = bounds.intersect(screen);
    if !px.is_positive() {
        return None;
    }
    // Within the surface's whole pixels (the screen rect in points is rounded, so its edge
    // times `ppp` may overshoot).
    let surface = Rect::from_min_max(
        (screen.min.to_vec2() * ppp).round().to_pos2(),
        (screen.max.to_vec2() * ppp).round().to_pos2(),
    );
    let px = Rect::from_min_max(
        (px.min.to_vec2() * ppp).floor().to_pos2(),
        (px.max.to_vec2() * ppp).ceil().to_pos2(),
    )
    .intersect(surface);
    px.is_positive().then_some(px)
}

/// Everything the picture depends on, as bytes: its size and scale, each mesh's clip rect
/// and triangles (all of the font atlas, see `region`).
fn fingerprint(primitives: &[ClippedPrimitive], size: [u32; 2], ppp: f32) -> Vec<u8> {
    let mut key = Vec::new();
    key.extend_from_slice(bytemuck::cast_slice(&size));
    key.extend_from_slice(&ppp.to_ne_bytes());
    for p in primitives {
        let r = p.clip_rect;
        key.extend_from_slice(bytemuck::cast_slice(&[r.min.x, r.min.y, r.max.x, r.max.y]));
        match &p.primitive {
            Primitive::Mesh(mesh) => {
                key.extend_from_slice(bytemuck::cast_slice(&mesh.indices));
                key.extend_from_slice(bytemuck::cast_slice(&mesh.vertices));
            }
            // Never pictured (see `region`).
            Primitive::Callback(_) => {}
        }
    }
    key
}

/// The copy pipeline, kept in egui-wgpu's `CallbackResources`.
struct BlitRenderer {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
}

impl BlitRenderer {
    fn new(rs: &egui_wgpu::RenderState) -> Self {
        let device = &rs.device;
        let module = callback::shader(device, "blit.wgsl", SHADER);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("region picture layout"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            }],
        });
        let pipeline = callback::Pipeline {
            label: "region picture pipeline",
            module: &module,
            group0: Some(&layout),
            vertex_entry: "vs_main",
            buffer: None,
            topology: wgpu::PrimitiveTopology::TriangleStrip,
        }
        .build(device, rs.target_format);
        Self { pipeline, layout }
    }
}

/// Draws one picture over its region.
struct Blit {
    picture: Arc<Picture>,
}

impl egui_wgpu::CallbackTrait for Blit {
    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(r) = resources.get::<BlitRenderer>() else {
            return;
        };
        render_pass.set_pipeline(&r.pipeline);
        render_pass.set_bind_group(0, &self.picture.bind_group, &[]);
        render_pass.draw(0..4, 0..1);
    }
}
