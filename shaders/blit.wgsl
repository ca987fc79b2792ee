// Copies a cached picture of a UI region (see src/app/region_cache.rs) into egui's render
// pass, one texel per pixel: the callback's viewport has exactly the texture's size.

@group(0) @binding(0) var picture: texture_2d<f32>;

struct VsOut {
    @builtin(position) clip: vec4<f32>,
    // 0..1 across the viewport.
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) vi: u32) -> VsOut {
    // A triangle strip over the whole viewport.
    var corners = array<vec2<f32>, 4>(
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 0.0), vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 1.0),
    );
    let uv = corners[vi];
    var out: VsOut;
    out.clip = vec4<f32>(2.0 * uv.x - 1.0, 1.0 - 2.0 * uv.y, 0.0, 1.0);
    out.uv = uv;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    let size = textureDimensions(picture);
    let texel = min(vec2<u32>(in.uv * vec2<f32>(size)), size - vec2<u32>(1u));
    return textureLoad(picture, texel, 0);
}
