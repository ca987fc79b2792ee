//! Look: light/dark and presentation mode (text large enough for the back of a classroom).

use egui::{TextStyle, Theme};

/// How much presentation mode enlarges text.
pub const PRESENTATION_SCALE: f32 = 1.6;

/// The look the settings ask for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    pub presentation: bool,
    pub dark: bool,
}

/// Applies a look to both themes' styles; cheap to call when nothing changed (the caller
/// compares with the last look applied).
pub fn apply(ctx: &egui::Context, look: Look) {
    ctx.set_theme(if look.dark { Theme::Dark } else { Theme::Light });
    let scale = if look.presentation {
        PRESENTATION_SCALE
    } else {
        1.0
    };
    ctx.all_styles_mut(|style| {
        // From egui's defaults every time, so that toggling never compounds.
        style.text_styles = egui::style::default_text_styles();
        for font in style.text_styles.values_mut() {
            font.size *= scale;
        }
        style.spacing.slider_width = 150.0 * scale.sqrt();
        style.spacing.interact_size.y = 18.0 * scale;
    });
}

/// Lets proportional text fall back to the bundled monospace font (Hack), which has the
/// arrows and math signs (→, ↔, ∇, ‖, ▶) that the default proportional font lacks, so
/// labels look the same on every machine.
pub fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if fonts.font_data.contains_key("Hack")
        && let Some(list) = fonts.families.get_mut(&egui::FontFamily::Proportional)
        && !list.iter().any(|f| f == "Hack")
    {
        list.push("Hack".to_owned());
    }
    // DejaVu Sans fills the gaps of the default fonts in the formulas and lessons
    // (subscripts ₜ ₓ, ∇, combining accents): a fallback after them, in both families.
    fonts.font_data.insert(
        "DejaVuSans".to_owned(),
        std::sync::Arc::new(egui::FontData::from_static(include_bytes!(
            "../../../assets/fonts/DejaVuSans.ttf"
        ))),
    );
    for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
        if let Some(list) = fonts.families.get_mut(&family) {
            list.push("DejaVuSans".to_owned());
        }
    }
    ctx.set_fonts(fonts);
}

/// A panel frame without its fill: the window is cleared to the panel colour already, and
/// on a software rasteriser (lavapipe) every filled pixel costs CPU time.
pub fn unfilled(frame: egui::Frame) -> egui::Frame {
    frame.fill(egui::Color32::TRANSPARENT)
}

/// Body text size currently in use (tests compare it across presentation mode).
pub fn body_size(ctx: &egui::Context) -> f32 {
    ctx.global_style()
        .text_styles
        .get(&TextStyle::Body)
        .map_or(0.0, |f| f.size)
}
