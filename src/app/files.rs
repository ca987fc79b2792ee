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

// In a browser there are no paths: the page's file picker hands over a file's bytes later,
// through `web_files`, which the frame loop empties into `App::open_bytes`. Saving to a file
// (downloads) is not there yet, so the save dialogs offer nothing.
#[cfg(target_arch = "wasm32")]
pub fn pick_open(kind: Kind, _start: Option<&Path>) -> Option<PathBuf> {
    let (name, exts) = kind.filter();
    let dialog = rfd::AsyncFileDialog::new().add_filter(name, exts);
    wasm_bindgen_futures::spawn_local(async move {
        if let Some(file) = dialog.pick_file().await {
            let bytes = file.read().await;
            web_files::push(file.file_name(), bytes);
        }
    });
    None
}

#[cfg(target_arch = "wasm32")]
pub fn pick_save(_kind: Kind, _file_name: &str, _start: Option<&Path>) -> Option<PathBuf> {
    None
}

/// Offers `bytes` as a download named `file_name` (the page's save dialog: a link to click).
#[cfg(target_arch = "wasm32")]
pub fn download(file_name: &str, bytes: Vec<u8>) {
    let dialog = rfd::AsyncFileDialog::new().set_file_name(file_name);
    wasm_bindgen_futures::spawn_local(async move {
        if let Some(handle) = dialog.save_file().await
            && let Err(e) = handle.write(&bytes).await
        {
            log::warn!("the download failed: {e}");
        }
    });
}

#[cfg(target_arch = "wasm32")]
pub fn pick_folder(_start: Option<&Path>) -> Option<PathBuf> {
    None
}

/// Files a browser has handed over (picked or dropped), waiting for the next frame.
#[cfg(target_arch = "wasm32")]
mod web_files {
    use std::cell::RefCell;

    thread_local! {
        static WAITING: RefCell<Vec<(String, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    }

    pub fn push(name: String, bytes: Vec<u8>) {
        WAITING.with(|w| w.borrow_mut().push((name, bytes)));
    }

    pub fn take() -> Vec<(String, Vec<u8>)> {
        WAITING.with(|w| std::mem::take(&mut *w.borrow_mut()))
    }
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
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn open_dropped(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for file in dropped {
            self.open_file(file.path());
        }
    }

    /// In a browser: files dropped on the page are read asynchronously and, like picked ones,
    /// opened on a later frame.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn open_dropped(&mut self, ctx: &egui::Context) {
        for file in ctx.input(|i| i.raw.dropped_files.clone()) {
            wasm_bindgen_futures::spawn_local(async move {
                let name = file.path().display().to_string();
                match file.bytes_async().await {
                    Ok(bytes) => web_files::push(name, bytes),
                    Err(e) => log::warn!("{name}: the browser could not read it: {e}"),
                }
            });
        }
        for (name, bytes) in web_files::take() {
            self.open_bytes(&name, &bytes);
        }
    }

    /// A file's bytes, by its name's extension: points from CSV, a network from weights.
    #[cfg(target_arch = "wasm32")]
    pub fn open_bytes(&mut self, name: &str, bytes: &[u8]) {
        match Kind::of(Path::new(name)) {
            Some(Kind::Csv) => match super::LoadedData::from_csv_bytes(name, bytes) {
                Ok(data) => {
                    self.drawing = None;
                    self.use_data(DataChoice::Csv(name.to_owned()), data);
                }
                Err(e) => self.data_error = Some(e),
            },
            Some(Kind::Weights) => super::export::load_weights_bytes(self, name, bytes),
            Some(Kind::Png) | None => {
                self.data_error = Some(format!(
                    "{} is not a file the playground reads: open points as .csv (x,y per \
                     line) or a network as .safetensors",
                    crate::fsutil::quoted(name, 80)
                ));
            }
        }
    }
}
