//! What the paint callbacks (the canvas's particles, fill and lines, and the region pictures)
//! share: registering their GPU objects with egui's renderer, their shader modules, a
//! one-uniform bind group layout, and a pipeline that draws into egui's render pass with
//! premultiplied alpha.

use egui_wgpu::wgpu;

/// Puts a callback's GPU objects where its `prepare` and `paint` find them.
pub fn register<R: Send + Sync + 'static>(render_state: &egui_wgpu::RenderState, resource: R) {
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(resource);
}

/// A callback's WGSL module; `label` names its file.
pub fn shader(device: &wgpu::Device, label: &str, source: &'static str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

/// One uniform buffer at binding 0, read by both shader stages.
pub fn uniform_layout(device: &wgpu::Device, label: &str) -> wgpu::BindGroupLayout {
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }],
    })
}

/// A render pipeline of a callback: vertex entry `vertex_entry`, fragment entry `fs_main`,
/// premultiplied-alpha blending into egui's target.
pub struct Pipeline<'a> {
    pub label: &'a str,
    pub module: &'a wgpu::ShaderModule,
    /// The layout of bind group 0, if the shader has one.
    pub group0: Option<&'a wgpu::BindGroupLayout>,
    pub vertex_entry: &'a str,
    pub buffer: Option<wgpu::VertexBufferLayout<'a>>,
    pub topology: wgpu::PrimitiveTopology,
}

impl Pipeline<'_> {
    pub fn build(self, device: &wgpu::Device, target: wgpu::TextureFormat) -> wgpu::RenderPipeline {
        let bind_group_layouts: Vec<Option<&wgpu::BindGroupLayout>> =
            self.group0.into_iter().map(Some).collect();
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(self.label),
            bind_group_layouts: &bind_group_layouts,
            immediate_size: 0,
        });
        let buffers: Vec<Option<wgpu::VertexBufferLayout<'_>>> =
            self.buffer.into_iter().map(Some).collect();
        device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some(self.label),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: self.module,
                entry_point: Some(self.vertex_entry),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                buffers: &buffers,
            },
            primitive: wgpu::PrimitiveState {
                topology: self.topology,
                ..wgpu::PrimitiveState::default()
            },
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: self.module,
                entry_point: Some("fs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: target,
                    blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        })
    }
}
