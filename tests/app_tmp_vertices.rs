use diffusion_playground::app::{App, Settings};
use egui_kittest::Harness;

#[test]
fn count_vertices() {
    for presentation in [false, true] {
        let settings = Settings {
            presentation,
            ..Settings::default()
        };
        let mut h = Harness::builder()
            .with_size([1280.0, 800.0])
            .wgpu()
            .build_eframe(move |cc| App::create(cc, settings, false));
        h.run_steps(30);
        let out = h.output().clone();
        let prims = h.ctx.tessellate(out.shapes.clone(), 1.0);
        let mut total = 0;
        let mut idx = 0;
        for p in &prims {
            if let egui::epaint::Primitive::Mesh(m) = &p.primitive {
                total += m.vertices.len();
                idx += m.indices.len();
            }
        }
        println!(
            "presentation {presentation}: {} shapes, {} primitives, {total} vertices, {} triangles",
            out.shapes.len(),
            prims.len(),
            idx / 3
        );
    }
}
