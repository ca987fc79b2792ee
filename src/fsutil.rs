//! Files in and out: atomic writes, shared by every file the program saves (CSV, weights,
//! exports), and bounded reads, shared by every file it reads (CSV data, weights). Also the
//! one way text found inside a file is shown to a person ([`quoted`]).
//!
//! A file to read may be anything its path names: a FIFO whose open blocks until a writer
//! comes, a device such as `/dev/zero` that never ends, a file far larger than any the
//! program writes. [`read_bounded`] reads regular files only, opens without blocking, and
//! stops at a size limit, so no path can hang the program or exhaust its memory.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to a fresh temporary file next to `path` (same directory, hence same file
/// system, so the rename is atomic), syncs it and renames it over `path`; on any failure the
/// temporary file is removed and `path` is untouched. A reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let Some(name) = path.file_name() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path names no file",
        ));
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // Unique per process and call, so concurrent writers never share a temporary file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}.{count}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Why [`read_bounded`] read nothing. Each names the file as the caller gave it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read (missing, no permission, an I/O error).
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A directory, FIFO, socket or device: nothing a program writes as a data file.
    #[error("{file}: not a regular file (it is {kind})")]
    NotAFile { file: String, kind: &'static str },
    /// Larger than the caller's limit (said by the file system, or found while reading a
    /// file that grew). Nothing was kept.
    #[error("{file}: too large: {bytes} bytes or more, the limit for {what} is {limit} bytes")]
    TooLarge {
        file: String,
        bytes: u64,
        limit: u64,
        what: &'static str,
    },
}

impl ReadError {
    /// The same error without the file's name, for a caller whose own error names the file
    /// (`DataError::Io`, `WeightsError::Io`): a refused file reads as an I/O error of kind
    /// `InvalidInput` (not a regular file) or `FileTooLarge`.
    pub fn into_io_error(self) -> std::io::Error {
        use std::io::{Error, ErrorKind};
        match self {
            ReadError::Io { source, .. } => source,
            ReadError::NotAFile { kind, .. } => Error::new(
                ErrorKind::InvalidInput,
                format!("not a regular file (it is {kind})"),
            ),
            ReadError::TooLarge {
                bytes, limit, what, ..
            } => Error::new(
                ErrorKind::FileTooLarge,
                format!("too large: {bytes} bytes or more, the limit for {what} is {limit} bytes"),
            ),
        }
    }
}

/// Reads a whole regular file of at most `limit` bytes; `what` names the kind of file in the
/// size error ("a CSV file"). Never blocks on a special file and never holds more than
/// `limit + 1` bytes:
///
/// - the path is looked at first (`stat`) and anything but a regular file is refused without
///   being opened, because opening some devices has effects of its own;
/// - it is then opened with `O_NONBLOCK` (unix), so a FIFO that took the place of the file
///   meanwhile opens at once instead of waiting for a writer, and `O_NOCTTY`, so a terminal
///   never becomes the controlling one;
/// - the opened handle is checked again (`fstat`: what was opened, not what the path names
///   now) before a byte is read;
/// - the read stops after `limit + 1` bytes, so a file that grows while it is read is still
///   bounded.
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let file = path.display().to_string();
    let meta = fs::metadata(path).map_err(|source| ReadError::Io {
        file: file.clone(),
        source,
    })?;
    check(&file, &meta, limit, what)?;
    open_and_read(path, limit, what)
}

/// The part of [`read_bounded`] after the look at the path: open without blocking, check the
/// handle, read at most `limit + 1` bytes. Alone it is what happens when the path changed
/// between the look and the open.
fn open_and_read(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let file = path.display().to_string();
    let io = |source| ReadError::Io {
        file: file.clone(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let handle = options.open(path).map_err(io)?;
    let meta = handle.metadata().map_err(io)?;
    check(&file, &meta, limit, what)?;
    // The capacity comes from the checked size; `read_to_end` grows past it if need be.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    handle
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            file,
            bytes: bytes.len() as u64,
            limit,
            what,
        });
    }
    Ok(bytes)
}

/// A regular file no larger than `limit`, or why not.
fn check(file: &str, meta: &fs::Metadata, limit: u64, what: &'static str) -> Result<(), ReadError> {
    if !meta.is_file() {
        return Err(ReadError::NotAFile {
            file: file.to_owned(),
            kind: kind_of(meta),
        });
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            file: file.to_owned(),
            bytes: meta.len(),
            limit,
            what,
        });
    }
    Ok(())
}

/// What kind of thing a path that is not a regular file names, in words.
fn kind_of(meta: &fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}

/// Text found inside a file (a name in a model's metadata, a tensor's name), made safe to
/// show a person: quoted, at most `max_chars` characters (then `…` after the quote), with
/// control characters, invisible ones (bidirectional overrides, zero-width spaces) and the
/// quote itself escaped (`\u{1b}`, `\n`, `\"`), so a file can neither drive the terminal,
/// nor disguise what it says, nor flood the message.
pub fn quoted(text: &str, max_chars: usize) -> String {
    let (body, cut) = escaped(text, max_chars, |c| c == '"' || c == '\\');
    format!("\"{body}\"{}", if cut { "…" } else { "" })
}

/// Like [`quoted`] without the quotes, for longer text that came from a file (a parser's
/// message that may repeat part of it): control and invisible characters escaped, at most
/// `max_chars` characters, then `…`.
pub fn printable(text: &str, max_chars: usize) -> String {
    let (body, cut) = escaped(text, max_chars, |_| false);
    if cut { body + "…" } else { body }
}

/// `text`'s first `max_chars` characters with those that need it escaped as Rust escapes
/// them, and whether any were cut.
fn escaped(text: &str, max_chars: usize, also: impl Fn(char) -> bool) -> (String, bool) {
    let mut out = String::with_capacity(text.len().min(4 * max_chars));
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            return (out, true);
        }
        if c.is_control() || invisible(c) || also(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    (out, false)
}

/// Format characters and separators that change how text around them shows without
/// showing themselves: soft hyphen, bidirectional marks, embeddings, overrides and isolates,
/// zero-width characters, line and paragraph separators, the byte-order mark.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded(&path, 5, "a test file").unwrap(), b"12345");
        assert_eq!(read_bounded(&path, 100, "a test file").unwrap(), b"12345");
        let err = read_bounded(&path, 4, "a test file").unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::TooLarge {
                    bytes: 5,
                    limit: 4,
                    ..
                }
            ),
            "{err:?}"
        );
        let m = err.to_string();
        assert!(m.contains("f.txt") && m.contains("a test file"), "{m}");
        fs::write(&path, b"").unwrap();
        assert_eq!(read_bounded(&path, 0, "a test file").unwrap(), b"");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.csv");
        let f = fs::File::create(&path).unwrap();
        // Sparse where the file system can (tests/untrusted_files.rs tries 1 TiB on unix).
        f.set_len(2 << 20).unwrap();
        let err = read_bounded(&path, 1 << 20, "a CSV file").unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { bytes, .. } if bytes == 2 << 20),
            "{err:?}"
        );
    }

    #[test]
    fn missing_files_and_directories_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = read_bounded(&missing, 10, "a test file").unwrap_err();
        assert!(matches!(err, ReadError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("missing"), "{err}");
        let err = read_bounded(dir.path(), 10, "a test file").unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::NotAFile {
                    kind: "a directory",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_fifos_are_refused_without_blocking() {
        let err = read_bounded(Path::new("/dev/zero"), 10, "a test file").unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::NotAFile {
                    kind: "a character device",
                    ..
                }
            ),
            "{err:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // No writer ever comes: a blocking open would never return. Both the whole read and
        // the open alone (a FIFO put in the file's place after the look at the path) must
        // come back at once, refusing it; a thread with a deadline turns a hang into a failure.
        for skip_look in [false, true] {
            let (tx, rx) = std::sync::mpsc::channel();
            let path = fifo.clone();
            std::thread::spawn(move || {
                let result = if skip_look {
                    open_and_read(&path, 10, "a test file")
                } else {
                    read_bounded(&path, 10, "a test file")
                };
                let _ = tx.send(result);
            });
            let err = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("reading a FIFO blocked")
                .unwrap_err();
            assert!(
                matches!(err, ReadError::NotAFile { kind: "a FIFO", .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains("fifo"), "{err}");
        }
        // Same for a device opened directly: refused before a byte is read.
        let err = open_and_read(Path::new("/dev/zero"), 10, "a test file").unwrap_err();
        assert!(matches!(err, ReadError::NotAFile { .. }), "{err:?}");
    }

    #[test]
    fn quoted_escapes_and_truncates() {
        assert_eq!(quoted("moons", 40), "\"moons\"");
        assert_eq!(quoted("données.csv", 40), "\"données.csv\"");
        let hostile = "\u{1b}[2J\u{1b}]0;owned\u{7}\r\n\u{202e}evil\u{200b}\"\\";
        for q in [quoted(hostile, 100), printable(hostile, 100)] {
            assert!(!q.chars().any(|c| c.is_control() || invisible(c)), "{q:?}");
            assert!(
                q.contains("\\u{1b}") && q.contains("\\n") && q.contains("\\u{202e}"),
                "{q}"
            );
        }
        assert!(
            quoted(hostile, 100).ends_with("\\\"\\\\\""),
            "{}",
            quoted(hostile, 100)
        );
        let long = "x".repeat(1000);
        assert_eq!(quoted(&long, 40), format!("\"{}\"…", "x".repeat(40)));
        assert_eq!(printable(&long, 40), format!("{}…", "x".repeat(40)));
        // Truncation counts characters, never splitting one.
        assert_eq!(quoted("ééé", 2), "\"éé\"…");
        assert_eq!(quoted("éé", 2), "\"éé\"");
    }
}
