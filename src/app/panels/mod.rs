//! The parts of the window, each a function of the app's state.
//!
//! - `controls`: the left panel (data, schedule, network and training, sampler, view);
//! - `canvas`: the centre (transport, the particle canvas, the time scrubber);
//! - `plots`: the right panel (training curves, β, α, σ, log SNR);
//! - `status`: the status bar (renderer, trainer, speed);
//! - `formulas`, `lessons`, `teach_bar`: the teaching strip, the guided tour, their switches;
//! - `export`: PNG, GIF, CSV and weights, from the controls;
//! - `help`: the overlay of shortcuts and views (F1 or ?);
//! - `style`: light/dark and presentation mode.

pub(crate) mod canvas;
pub(crate) mod controls;
pub(crate) mod export;
pub(crate) mod formulas;
pub(crate) mod help;
pub(crate) mod lessons;
pub(crate) mod plots;
pub(crate) mod status;
pub(crate) mod style;
pub(crate) mod teach_bar;
