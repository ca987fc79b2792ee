//! CSV loading and writing: good files load, every bad file gives an error that names the
//! file (and the line), writing round-trips, and no input makes the parser panic.

use std::fs;
use std::path::{Path, PathBuf};

use diffusion_playground::data::{self, DataError, Dataset, LineProblem};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Writes `bytes` to `name` in a fresh temporary directory (kept alive by the returned guard).
fn file_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    fs::write(&path, bytes).expect("write");
    (dir, path)
}

fn load(bytes: &[u8]) -> Result<Dataset, DataError> {
    let (_dir, path) = file_with("data.csv", bytes);
    data::load_csv(&path)
}

/// The error for `bytes`, checking that its message starts with `<path>:<line>:`.
fn error_at(bytes: &[u8], line: usize) -> String {
    let (_dir, path) = file_with("data.csv", bytes);
    let err = data::load_csv(&path).expect_err("should be rejected");
    let message = err.to_string();
    let prefix = format!("{}:{line}: ", path.display());
    assert!(
        message.starts_with(&prefix),
        "{message:?} should start with {prefix:?}"
    );
    assert!(!message.contains('\n'), "one line: {message:?}");
    message
}

#[test]
fn plain_file_loads() {
    let d = load(b"1,2\n3.5,-4e-1\n").expect("loads");
    assert_eq!(d.points, vec![[1.0, 2.0], [3.5, -0.4]]);
    assert_eq!(d.labels, None);
    assert_eq!(d.num_classes, 0);
    assert!(d.name.ends_with("data.csv"), "{}", d.name);
}

#[test]
fn header_labels_crlf_blank_lines_bom_and_quotes_are_tolerated() {
    let text = "\u{feff}x,y,label\r\n\r\n 1 , 2 ,0\r\n\"3\",\"4\",\"2\"  \r\n5,6,1.0\t\n\n";
    let d = load(text.as_bytes()).expect("loads");
    assert_eq!(d.points, vec![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    assert_eq!(d.labels, Some(vec![0, 2, 1]));
    assert_eq!(d.num_classes, 3);

    let d = load(b"x,y\n0,0\n1,1").expect("loads without a final newline");
    assert_eq!(d.points, vec![[0.0, 0.0], [1.0, 1.0]]);
}

#[test]
fn non_numbers_are_rejected_with_their_line() {
    let m = error_at(b"x,y\n1,2\n\n3,abc\n", 4);
    assert!(m.ends_with("\"abc\" is not a number"), "{m}");
    // A first line with one number is data, not a header.
    let m = error_at(b"1,abc\n1,2\n", 1);
    assert!(m.contains("\"abc\" is not a number"), "{m}");
    let m = error_at(b"1,2\n,3\n", 2);
    assert!(m.contains("\"\" is not a number"), "{m}");
}

#[test]
fn non_finite_and_out_of_range_values_are_rejected() {
    for (bad, what) in [
        ("NaN", "finite"),
        ("inf", "finite"),
        ("-infinity", "finite"),
    ] {
        let m = error_at(format!("1,2\n3,{bad}\n").as_bytes(), 2);
        assert!(m.contains(what), "{m}");
    }
    let m = error_at(b"1,2\n1e39,0\n", 2);
    assert!(m.contains("32-bit"), "{m}");
}

#[test]
fn wrong_column_counts_are_rejected() {
    let m = error_at(b"1,2,3,4\n1,2,3,4\n", 1);
    assert!(m.contains("found 4"), "{m}");
    error_at(b"1\n2\n", 1);
    error_at(b"1;2\n3;4\n", 1);
    let m = error_at(b"x,y,label\n1,2,0\n3,4\n", 3);
    assert!(m.contains("line 1 has 3"), "{m}");
    let m = error_at(b"1,2\n3,4\n5,6,\n", 3);
    assert!(m.contains("line 1 has 2"), "{m}");
    // Data rows must match the header's count too.
    error_at(b"x,y\n1,2,0\n3,4,1\n", 2);
}

#[test]
fn bad_labels_are_rejected() {
    for bad in ["-1", "1.5", "abc", "nan", "inf", "1e12"] {
        let m = error_at(format!("1,2,0\n3,4,{bad}\n").as_bytes(), 2);
        assert!(m.contains("label"), "{bad}: {m}");
    }
    let d = load(b"1,2,0\n3,4,255\n").expect("the largest label loads");
    assert_eq!(d.num_classes, 256);
    let m = error_at(b"1,2,0\n3,4,256\n", 2);
    assert!(m.contains("too large"), "{m}");
}

#[test]
fn too_few_points_are_rejected() {
    for bytes in [&b""[..], b"\n\n", b"x,y\n", b"x,y\n1,2\n", b"1,2"] {
        let (_dir, path) = file_with("few.csv", bytes);
        let err = data::load_csv(&path).expect_err("too few points");
        assert!(matches!(err, DataError::TooFewPoints { .. }), "{err:?}");
        let m = err.to_string();
        assert!(m.starts_with(&format!("{}: ", path.display())), "{m}");
        assert!(m.contains("at least 2"), "{m}");
    }
}

#[test]
fn binary_files_are_rejected_with_their_line() {
    let m = error_at(b"1,2\n3,4\n5,\xff\xfe6\n", 3);
    assert!(m.contains("not a text file") && m.contains("UTF-8"), "{m}");
    let m = error_at(b"1,2\n3,\x004\n", 2);
    assert!(m.contains("NUL"), "{m}");
    // UTF-16 (what some spreadsheet exports produce) is not UTF-8.
    error_at(&[0xff, 0xfe, b'1', 0, b',', 0, b'2', 0], 1);
    // A PNG header.
    error_at(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 1);
}

#[test]
fn missing_and_unreadable_files_are_rejected_with_their_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.csv");
    let err = data::load_csv(&missing).expect_err("missing");
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read", missing.display()))
    );
    let err = data::load_csv(dir.path()).expect_err("a directory");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn errors_are_structured() {
    let err = data::parse_csv("in-memory", b"1,2\n3,x\n").expect_err("bad");
    match err {
        DataError::Line {
            file,
            line,
            problem,
        } => {
            assert_eq!((file.as_str(), line), ("in-memory", 2));
            assert_eq!(problem, LineProblem::NotANumber("x".into()));
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn no_temporaries_left(dir: &Path) {
    let names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "left behind: {names:?}"
    );
}

#[test]
fn write_then_load_round_trips_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = StdRng::seed_from_u64(3);
    let points: Vec<[f32; 2]> = (0..500)
        .map(|_| {
            let scale = 10f32.powi(rng.random_range(-30..30));
            [
                rng.random::<f32>() * scale - scale / 2.0,
                rng.random::<f32>() - 0.5,
            ]
        })
        .chain([[0.1, -0.0], [f32::MAX, f32::MIN_POSITIVE], [1e-45, 3.0]])
        .collect();
    let labels: Vec<u32> = (0..points.len() as u32).map(|i| i % 7).collect();

    let with = dir.path().join("with.csv");
    data::write_csv(&with, &points, Some(&labels)).expect("write");
    let text = fs::read_to_string(&with).expect("read back");
    assert!(text.starts_with("x,y,label\n"), "{}", &text[..20]);
    let d = data::load_csv(&with).expect("load");
    assert_eq!(d.points, points, "bit-exact round trip");
    assert_eq!(d.labels.as_deref(), Some(&labels[..]));
    assert_eq!(d.num_classes, 7);

    let without = dir.path().join("without.csv");
    data::write_csv(&without, &points, None).expect("write");
    assert!(
        fs::read_to_string(&without)
            .expect("read")
            .starts_with("x,y\n")
    );
    let d = data::load_csv(&without).expect("load");
    assert_eq!((d.points, d.labels), (points.clone(), None));

    // Overwriting replaces the file whole.
    data::write_csv(&without, &points[..2], None).expect("overwrite");
    assert_eq!(data::load_csv(&without).expect("load").points, points[..2]);
    no_temporaries_left(dir.path());
}

#[test]
fn writing_invalid_data_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("out.csv");
    let err = data::write_csv(&path, &[[0.0, 1.0], [2.0, 3.0]], Some(&[0])).expect_err("count");
    assert!(matches!(err, DataError::LabelCount { .. }), "{err:?}");
    let err = data::write_csv(&path, &[[0.0, f32::NAN]], None).expect_err("NaN");
    assert!(err.to_string().contains("not finite"), "{err}");
    let err = data::write_csv(&path, &[[0.0, 1.0]], Some(&[1000])).expect_err("label");
    assert!(err.to_string().contains("too large"), "{err}");
    assert!(!path.exists());
    let err = data::write_csv(dir.path().join("no/such/dir.csv"), &[[0.0, 1.0]], None)
        .expect_err("missing directory");
    assert!(err.to_string().contains("cannot write"), "{err}");
    no_temporaries_left(dir.path());
}

#[test]
fn from_points_validates() {
    let d = Dataset::from_points("drawn", vec![[0.0, 0.0], [1.0, 2.0]], Some(vec![0, 3]))
        .expect("valid");
    assert_eq!((d.name.as_str(), d.num_classes, d.len()), ("drawn", 4, 2));
    let d = Dataset::from_points("drawn", vec![[0.0, 0.0], [1.0, 2.0]], None).expect("valid");
    assert_eq!(d.num_classes, 0);

    let err = Dataset::from_points("drawn", vec![[0.0, 0.0]], None).expect_err("one point");
    assert_eq!(
        err.to_string(),
        "drawn: 1 point(s), but at least 2 are needed"
    );
    let err =
        Dataset::from_points("drawn", vec![[0.0, 0.0], [f32::INFINITY, 0.0]], None).expect_err("");
    assert!(err.to_string().starts_with("drawn: point 1"), "{err}");
    let err = Dataset::from_points("drawn", vec![[0.0; 2]; 3], Some(vec![0])).expect_err("count");
    assert_eq!(err.to_string(), "drawn: 1 labels for 3 points");
    let err = Dataset::from_points("drawn", vec![[0.0; 2]; 2], Some(vec![0, 256])).expect_err("");
    assert!(err.to_string().contains("too large"), "{err}");
}

/// Random bytes and random edits of a valid file: the parser answers, never panics, and an
/// answer of Ok is a valid dataset.
#[test]
fn parser_never_panics() {
    let mut rng = StdRng::seed_from_u64(17);
    let valid = b"x,y,label\n1.5,-2,0\n3e2,4,1\n\n5,6,2\n";
    let alphabet = b"0123456789,.-+eE \r\n\t\"xyabcNaInf\0\xff\xc3\xa9";
    for i in 0..20_000 {
        let bytes: Vec<u8> = if i % 2 == 0 {
            (0..rng.random_range(0..60))
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect()
        } else {
            let mut b = valid.to_vec();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..b.len());
                match rng.random_range(0..3) {
                    0 => b[at] = alphabet[rng.random_range(0..alphabet.len())],
                    1 => {
                        b.remove(at);
                    }
                    _ => b.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                }
            }
            b
        };
        if let Ok(d) = data::parse_csv("fuzz.csv", &bytes) {
            assert!(d.points.len() >= 2);
            assert!(
                d.points
                    .iter()
                    .all(|p| p[0].is_finite() && p[1].is_finite())
            );
            if let Some(labels) = &d.labels {
                assert_eq!(labels.len(), d.points.len());
                assert!(labels.iter().all(|&l| l < d.num_classes));
            }
        }
    }
}
