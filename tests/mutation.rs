//! The stable stand-in for the fuzz targets (`fuzz/`, which need nightly and cargo-fuzz):
//! deterministic mutations of the committed seed corpus (`fuzz/corpus/<target>/`), a few
//! thousand per parser, checked against the same contracts (`fuzz/src/lib.rs`): no panic, and
//! whatever a parser accepts is usable. `scripts/fuzz.sh` runs this test when it cannot fuzz.
#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] fns

#[path = "../fuzz/src/lib.rs"]
mod contracts;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use diffusion_playground::app::{DataChoice, ScheduleKind, Settings};
use diffusion_playground::data::Normalization;
use diffusion_playground::math::solvers::SamplerKind;
use diffusion_playground::math::{Process, Schedule};
use diffusion_playground::nn::weights::{self, SavedModel};
use diffusion_playground::nn::{Activation, Embedding, MlpConfig, Parameterization};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// Mutated inputs per parser (each test takes about a second in release).
const CASES: usize = 20_000;

/// splitmix64: the same cases on every machine and every version of every crate.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// The committed seeds of a target, in name order.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Bytes that mean something to some parser: separators, quotes, line ends, signs.
const BYTES: &[u8] = b"\0\x7f\x80\xff\n\r\t ,;:\"'()[]{}-+.eE019_#/\\";

/// Floats at the edges: non-finite, beyond f32, subnormal, signed zero.
const FLOATS: [f32; 10] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::MAX,
    -1e30,
    1e12,
    1e-45,
    -0.0,
    1.0,
    -3.5,
];

/// One input: a seed with a few mutations (bit flips, interesting bytes, truncations,
/// insertions, deletions, duplications, splices with another seed, dictionary tokens, edge
/// floats written over four bytes, edge numbers written over a number).
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], tokens: &[&str]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    mutate_bytes(rng, &mut data, seeds, tokens);
    data
}

/// Edge numbers written over a number of the text.
const NUMBERS: &[&str] = &[
    "NaN",
    "inf",
    "-inf",
    "0",
    "-0.0",
    "-1",
    "1e308",
    "1e39",
    "-3.4028235e38",
    "1e-45",
    "18446744073709551615",
    "4294967296",
    "65537",
    "1000000000000",
];

/// One to four mutations (one half the time, two a quarter, ...) of `data` in place.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>], tokens: &[&str]) {
    let count = 1 + (rng.next_u64() | 1 << 3).trailing_zeros() as usize;
    for _ in 0..count {
        let len = data.len();
        let at = rng.below(len + 1);
        match rng.below(10) {
            0 if len > 0 => data[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => data[at.min(len - 1)] = BYTES[rng.below(BYTES.len())],
            2 => data.truncate(at),
            3 => {
                let extra: Vec<u8> = (0..1 + rng.below(8))
                    .map(|_| rng.next_u64() as u8)
                    .collect();
                data.splice(at..at, extra);
            }
            4 => {
                let end = (at + 1 + rng.below(16)).min(len);
                data.drain(at..end);
            }
            5 => {
                let end = (at + 1 + rng.below(32)).min(len);
                let copy = data[at..end].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, copy);
            }
            6 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            7 => {
                let token = tokens[rng.below(tokens.len())].as_bytes();
                if rng.below(2) == 0 {
                    data.splice(at..at, token.iter().copied());
                } else {
                    let end = (at + token.len()).min(len);
                    data.splice(at..end, token.iter().copied());
                }
            }
            8 if len >= 4 => {
                let at = at.min(len - 4);
                let value = FLOATS[rng.below(FLOATS.len())].to_le_bytes();
                data[at..at + 4].copy_from_slice(&value);
            }
            9 => {
                // A number of the text (a run of digits, signs, points and exponents).
                let is_num = |b: &u8| b.is_ascii_digit() || b"+-.eE".contains(b);
                let starts: Vec<usize> = (0..len)
                    .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !is_num(&data[i - 1])))
                    .collect();
                if !starts.is_empty() {
                    let start = starts[rng.below(starts.len())];
                    let end = start + data[start..].iter().take_while(|b| is_num(b)).count();
                    let number = NUMBERS[rng.below(NUMBERS.len())].bytes();
                    data.splice(start..end, number);
                }
            }
            _ => data.push(rng.next_u64() as u8),
        }
    }
}

/// A weights seed taken apart and written back with the library's own serialiser after one
/// to three changes to its parts (a metadata value, floats, a shape, a dtype, a tensor's
/// name), so that most inputs get past the container format to the checks behind it.
fn mutate_weights(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let seed = &seeds[rng.below(seeds.len())];
    let tensors = SafeTensors::deserialize(seed).unwrap();
    let (_, header) = SafeTensors::read_metadata(seed).unwrap();
    let mut meta: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut parts: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, v)| (name, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    for _ in 0..1 + rng.below(3) {
        let part = rng.below(parts.len());
        match rng.below(6) {
            0 | 1 => {
                let key = meta.keys().nth(rng.below(meta.len())).unwrap().clone();
                let mut value = meta[&key].clone().into_bytes();
                mutate_bytes(rng, &mut value, &[], WEIGHTS_TOKENS);
                meta.insert(key, String::from_utf8_lossy(&value).into_owned());
            }
            2 | 3 => {
                let data = &mut parts[part].3;
                let at = 4 * rng.below(data.len() / 4);
                let value = FLOATS[rng.below(FLOATS.len())];
                let value = if rng.below(2) == 0 {
                    value
                } else {
                    // A float of the seed, scaled: large but finite weights.
                    let old = f32::from_le_bytes(data[at..at + 4].try_into().unwrap());
                    old * 10f32.powi(rng.below(40) as i32)
                };
                data[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            4 => {
                let shape = &mut parts[part].2;
                let dim = rng.below(shape.len() + 1);
                match (dim < shape.len(), rng.below(3)) {
                    (true, 0) => shape[dim] += 1,
                    (true, 1) => shape[dim] = shape[dim].saturating_sub(1),
                    _ => shape.push(1),
                }
            }
            _ => match rng.below(3) {
                0 => {
                    // (Duplicate names would make safetensors' serialiser panic.)
                    let name = format!("layers.{}.weight", rng.below(4));
                    if parts.iter().all(|p| p.0 != name) {
                        parts[part].0 = name;
                    }
                }
                1 => parts[part].1 = Dtype::F16,
                _ => {
                    parts.remove(part);
                    if parts.is_empty() {
                        break;
                    }
                }
            },
        }
    }
    let views: Result<Vec<(String, TensorView<'_>)>, _> = parts
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data).map(|v| (name.clone(), v))
        })
        .collect();
    let meta: HashMap<String, String> = meta.into_iter().collect();
    match views.map(|views| safetensors::serialize(views, &Some(meta))) {
        Ok(Ok(bytes)) => bytes,
        // A shape that no longer fits its data: the container itself is then the input.
        _ => mutate(rng, seeds, WEIGHTS_TOKENS),
    }
}

/// Makes one input from the seeds.
type Mutator = fn(&mut Rng, &[Vec<u8>]) -> Vec<u8>;

/// Runs the seeds (inputs that once broke a parser are among them, named `regression-*`) and
/// `CASES` mutations through `check`; returns how many it accepted. `structured` (when
/// given) makes every other input instead of the byte mutations.
fn run(
    target: &str,
    tokens: &[&str],
    seed: u64,
    structured: Option<Mutator>,
    check: fn(&[u8]) -> bool,
) -> usize {
    let seeds = seeds(target);
    let mut accepted = seeds.iter().filter(|s| check(s)).count();
    let mut rng = Rng(seed);
    for case in 0..CASES {
        let input = match structured {
            Some(make) if case % 2 == 1 => make(&mut rng, &seeds),
            _ => mutate(&mut rng, &seeds, tokens),
        };
        accepted += usize::from(check(&input));
    }
    eprintln!("{target}: {CASES} mutated inputs, {accepted} accepted");
    accepted
}

const CSV_TOKENS: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "1e39",
    "3.4028235e38",
    "-3.4028235e38",
    "1e-46",
    "\r\n",
    "\"",
    ",",
    "x,y,label\n",
    "\u{feff}",
    "255",
    "256",
    "2.0",
    "2.5",
    "-1",
    "0x10",
    "1_000",
    "+",
    "\0",
    "\u{a0}",
    "é",
];

const WEIGHTS_TOKENS: &[&str] = &[
    "F32",
    "F16",
    "BF16",
    "I64",
    "U8",
    "layers.0.weight",
    "layers.1.bias",
    "layers.2.weight",
    "\"Sinusoidal\":{\"dim\":4}",
    "\"Scalar\"",
    "\"X0\"",
    "\"Score\"",
    "\"Relu\"",
    "\"Gelu\"",
    "\"num_classes\":3,",
    "\"width\":",
    "\"depth\":",
    "4096",
    "0",
    "-1",
    "1e300",
    "NaN",
    "null",
    "{\"Cosine\":{\"beta_cap\":",
    "{\"Constant\":{\"beta\":",
    "1e-300",
    "\"t_min\":\"",
    "data_offsets",
    "shape",
    "[2,4]",
    "18446744073709551615",
    "\"__metadata__\":",
];

const SETTINGS_TOKENS: &[&str] = &[
    "NaN",
    "inf",
    "-inf",
    "-1.0",
    "0",
    "18446744073709551615",
    "1e308",
    "Some(",
    "None",
    "Drawn([(0.0,1.0),(2.0,3.0)],[])",
    "Csv(\"",
    "BuiltIn(\"moons\")",
    "Langevin",
    "Ddim",
    "Cosine",
    "Constant",
    "(",
    ")",
    ",",
    ":",
    "\"",
    "index:",
    "particles:",
    "width:",
    "depth:",
    "r#\"",
    "/*",
    "//",
    "#![enable(implicit_some)]",
    "\\u{0}",
    "3.4e38",
    "Sinusoidal(dim:",
];

#[test]
fn csv_mutations_keep_the_contract() {
    for (i, seed) in seeds("csv").iter().enumerate() {
        assert!(contracts::check_csv(seed), "seed {i} is rejected");
    }
    let accepted = run("csv", CSV_TOKENS, 1, None, contracts::check_csv);
    assert!(
        accepted > CASES / 20,
        "too few accepted ({accepted}) to test much"
    );
}

#[test]
fn weights_mutations_keep_the_contract() {
    let accepted = run(
        "weights",
        WEIGHTS_TOKENS,
        2,
        Some(mutate_weights),
        contracts::check_weights,
    );
    assert!(
        accepted > CASES / 50,
        "too few accepted ({accepted}) to test much"
    );
}

#[test]
fn settings_mutations_keep_the_contract() {
    let accepted = run(
        "settings",
        SETTINGS_TOKENS,
        3,
        None,
        contracts::check_settings,
    );
    assert!(
        accepted > CASES / 50,
        "too few accepted ({accepted}) to test much"
    );
}

/// The seed models: tiny, so that mutations reach their floats and headers often.
fn seed_models() -> Vec<(&'static str, SavedModel)> {
    let model = |config: MlpConfig, schedule: Schedule, seed: u32| {
        let params = config.init_params(seed);
        SavedModel {
            config,
            schedule,
            t_min: 1e-3,
            dataset: "swiss-roll".to_owned(),
            normalization: Normalization {
                mean: [0.5, -1.0],
                scale: 2.0,
            },
            steps: 100,
            params,
        }
    };
    vec![
        (
            "eps-scalar-silu",
            model(
                MlpConfig {
                    width: 4,
                    depth: 1,
                    activation: Activation::Silu,
                    embedding: Embedding::Scalar,
                    param: Parameterization::Eps,
                    num_classes: 0,
                    ..MlpConfig::default()
                },
                Schedule::Linear {
                    beta_min: 0.1,
                    beta_max: 20.0,
                },
                1,
            ),
        ),
        (
            "x0-sinusoidal-gelu-cosine",
            model(
                MlpConfig {
                    width: 3,
                    depth: 2,
                    activation: Activation::Gelu,
                    embedding: Embedding::Sinusoidal { dim: 2 },
                    param: Parameterization::X0,
                    num_classes: 0,
                    ..MlpConfig::default()
                },
                Schedule::Cosine { beta_cap: 20.0 },
                2,
            ),
        ),
        (
            "score-classes-relu-constant",
            model(
                MlpConfig {
                    width: 4,
                    depth: 1,
                    activation: Activation::Relu,
                    embedding: Embedding::Scalar,
                    param: Parameterization::Score,
                    num_classes: 2,
                    ..MlpConfig::default()
                },
                Schedule::Constant { beta: 8.0 },
                3,
            ),
        ),
        (
            "fm-sinusoidal-silu",
            model(
                MlpConfig {
                    width: 3,
                    depth: 1,
                    activation: Activation::Silu,
                    embedding: Embedding::Sinusoidal { dim: 2 },
                    process: Process::Fm,
                    ..MlpConfig::default()
                },
                Schedule::default(),
                4,
            ),
        ),
    ]
}

/// Seed settings: the defaults, one far from them, one with values out of range, and an old
/// file that lacks most fields.
fn seed_settings() -> Vec<(&'static str, String)> {
    let mut custom = Settings {
        data: DataChoice::Drawn(vec![[0.25, -1.0], [1.5, 2.0], [-3.0, 0.5]], vec![0, 1, 1]),
        particles: 2500,
        speed: 0.5,
        zoom: 2.0,
        dark: false,
        ..Settings::default()
    };
    custom.schedule.kind = ScheduleKind::Cosine;
    custom.sampler.select(SamplerKind::Ddim);
    custom.sampler.eta = 0.5;
    custom.train.net.embedding = Embedding::Scalar;
    custom.teach.lessons = true;
    custom.teach.lesson.next_lesson();
    let out_of_range = "(schedule: (beta_min: -1.0, beta_max: NaN), train: (lr: inf, batch: 0), \
        sampler: (steps: 0, eta: 2.0), particles: 1000000000000, zoom: 0.0)";
    vec![
        ("default", Settings::default().to_stored().unwrap()),
        ("custom", custom.to_stored().unwrap()),
        ("out-of-range", out_of_range.to_owned()),
        (
            "old",
            "(particles: 3000, dark: false, csv_path: \"points.csv\")".to_owned(),
        ),
    ]
}

/// Writes the seed corpus from the library: run it after a format change
/// (`cargo test --release --test mutation -- --ignored`), then commit fuzz/corpus.
#[test]
#[ignore = "writes the committed seed corpus"]
fn write_seed_corpus() {
    for (name, model) in seed_models() {
        let path = corpus_dir("weights").join(format!("{name}.safetensors"));
        std::fs::write(path, weights::to_bytes(&model).unwrap()).unwrap();
    }
    for (name, text) in seed_settings() {
        std::fs::write(corpus_dir("settings").join(format!("{name}.ron")), text).unwrap();
    }
}

/// The committed weights seeds are what the library writes today (a format change that
/// strands them fails here: rerun `write_seed_corpus`).
#[test]
fn weights_seeds_match_the_library() {
    for (name, model) in seed_models() {
        let path = corpus_dir("weights").join(format!("{name}.safetensors"));
        let loaded = weights::from_bytes(&std::fs::read(&path).unwrap(), name).unwrap();
        assert_eq!(loaded, model, "{name}");
    }
    for (name, text) in seed_settings() {
        let path = corpus_dir("settings").join(format!("{name}.ron"));
        assert_eq!(std::fs::read_to_string(path).unwrap(), text, "{name}");
    }
}
