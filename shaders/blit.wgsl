// Copies a cached picture of a UI region (see src/app/region_cache.rs) into egui's render
// pass. The picture covers the screen from its top-left corner, so the texel under a pixel
// has that pixel's coordinates.

@group(0) @binding(0) var picture: texture_2d<f32>;

@vertex
fn vs_main(@builtin(vertex_index) vi: u32) -> @builtin(position) vec4<f32> {
    // A triangle strip over the whole viewport (the region).
    var corners = array<vec2<f32>, 4>(
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, -1.0), vec2<f32>(-1.0, 1.0), vec2<f32>(1.0, 1.0),
    );
    return vec4<f32>(corners[vi], 0.0, 1.0);
}

@fragment
fn fs_main(@builtin(position) pixel: vec4<f32>) -> @location(0) vec4<f32> {
    let size = textureDimensions(picture);
    let texel = vec2<u32>(pixel.xy);
    if texel.x >= size.x || texel.y >= size.y {
        return vec4<f32>(0.0);
    }
    return textureLoad(picture, texel, 0);
}
