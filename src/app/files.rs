//! Files the way desktop users expect: the system's open and save dialogs, and files dropped
//! on the window. Whatever way a file arrives, it goes through [`App::open_file`], which
//! picks the loader by extension and puts any message beside the control that loads that
//! kind of file (the data panel for points, the weights row for networks).

use std::path::{Path, PathBuf};

use super::App;
use super::settings::DataChoice;

/// The kinds of file the app reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Points: `x,y[,label]` per line.
    Csv,
    /// A network saved by the app (safetensors).
    Weights,
    /// A picture of the canvas.
    Png,
}

impl Kind {
    #[cfg(not(target_arch = "wasm32"))]
    fn filter(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Kind::Csv => ("Points (CSV)", &["csv", "txt"]),
            Kind::Weights => ("Weights (safetensors)", &["safetensors"]),
            Kind::Png => ("PNG image", &["png"]),
        }
    }

    /// The kind a file name says it is, if any.
    pub fn of(path: &Path) -> Option<Kind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" => Some(Kind::Csv),
            "safetensors" => Some(Kind::Weights),
            _ => None,
        }
    }
}

/// The system's "open" dialog for one kind of file; None when cancelled (or when the system
/// has no dialog to show: dropping the file on the window still works).
#[cfg(not(target_arch = "wasm32"))]
pub fn pick_open(kind: Kind, start: Option<&Path>) -> Option<PathBuf> {
    let (name, exts) = kind.filter();
    dialog(start).add_filter(name, exts).pick_file()
}

/// The system's "save" dialog, suggesting `file_name`.
#[cfg(not(target_arch = "wasm32"))]
pub fn pick_save(kind: Kind, file_name: &str, start: Option<&Path>) -> Option<PathBuf> {
    let (name, exts) = kind.filter();
    dialog(start)
        .add_filter(name, exts)
        .set_file_name(file_name)
        .save_file()
}

/// The system's folder picker.
#[cfg(not(target_arch = "wasm32"))]
pub fn pick_folder(start: Option<&Path>) -> Option<PathBuf> {
    dialog(start).pick_folder()
}

#[cfg(not(target_arch = "wasm32"))]
fn dialog(start: Option<&Path>) -> rfd::FileDialog {
    let d = rfd::FileDialog::new();
    match start.and_then(|p| if p.is_dir() { Some(p) } else { p.parent() }) {
        Some(dir) if dir.is_dir() => d.set_directory(dir),
        _ => d,
    }
}

// In a browser there are no paths: the page's file input and downloads are the next step of
// the browser build; until then these dialogs offer nothing.
#[cfg(target_arch = "wasm32")]
pub fn pick_open(_kind: Kind, _start: Option<&Path>) -> Option<PathBuf> {
    None
}

#[cfg(target_arch = "wasm32")]
pub fn pick_save(_kind: Kind, _file_name: &str, _start: Option<&Path>) -> Option<PathBuf> {
    None
}

#[cfg(target_arch = "wasm32")]
pub fn pick_folder(_start: Option<&Path>) -> Option<PathBuf> {
    None
}

impl App {
    /// Loads a file chosen in a dialog or dropped on the window: points from a CSV file,
    /// a network from a weights file. Anything else is refused in plain words.
    pub fn open_file(&mut self, path: &Path) {
        match Kind::of(path) {
            Some(Kind::Csv) => {
                self.drawing = None;
                self.settings.csv_path = path.display().to_string();
                self.set_data(DataChoice::Csv(self.settings.csv_path.clone()));
            }
            Some(Kind::Weights) => {
                self.settings.weights_path = path.display().to_string();
                self.load_weights();
            }
            Some(Kind::Png) | None => {
                self.data_error = Some(format!(
                    "{} is not a file the playground reads: drop points as .csv (x,y per \
                     line) or a network as .safetensors",
                    crate::fsutil::quoted(&path.display().to_string(), 80)
                ));
            }
        }
    }

    /// Files dropped on the window this frame, opened in order.
    pub(crate) fn open_dropped(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for file in dropped {
            self.open_file(file.path());
        }
    }
}
