//! # fuzz
//!
//! Mutation fuzzing of every file the project reads, on stable Rust (cargo-fuzz needs a nightly
//! toolchain): seed files made by the project's own writers, mutated (`mutate`), each read by the
//! reader under test. A panic, an input read for longer than the hang limit, or a single
//! allocation above the cap (`guard`) is a finding; an error is the expected answer to a bad
//! file. Inputs that give an error message not seen before join the corpus, so the mutations
//! walk deeper into each format.
//!
//! `cargo run --release -p fuzz -- --seconds 600` fuzzes every reader for ten minutes
//! (docs/fuzzing.md); `cargo test -p fuzz` runs a short, fixed-seed smoke of each.

pub mod guard;
pub mod mutate;
pub mod targets;

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use mutate::{Rng, mutate};
pub use targets::TARGETS;

/// One reader under fuzz.
pub struct Target {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it reads, and through which of the project's functions.
    pub about: &'static str,
    /// The valid files mutations start from, made in the scratch folder's terms.
    pub seeds: fn(&Scratch) -> Vec<Vec<u8>>,
    /// Reads one input: `Ok` when accepted, `Err` with the reader's message when refused.
    pub read: fn(&Scratch, &[u8]) -> Result<(), String>,
}

/// A folder of this process's own, where inputs are written for the readers and which the
/// targets keep their fixed companion files in.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A fresh folder for `target` under the system's temporary folder.
    pub fn new(target: &str) -> Result<Self, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cnn-zoo-fuzz-{}-{}-{target}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self { dir })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `name` inside the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `bytes` as `name` inside the folder (parents made), and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the scratch folder is writable");
        }
        std::fs::write(&path, bytes).expect("the scratch folder is writable");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long a target is fuzzed.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// This many inputs.
    Inputs(u64),
    /// Until this much time has passed.
    Time(Duration),
}

/// What went wrong on one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// The reader panicked.
    Panic,
    /// The reader asked for a single allocation above the cap.
    OversizeAllocation,
}

/// An input that broke a reader.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What it did.
    pub kind: FindingKind,
    /// The panic message, or the size asked for.
    pub message: String,
    /// The input.
    pub input: Vec<u8>,
}

/// One target's fuzzing.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target.
    pub target: &'static str,
    /// Inputs read.
    pub inputs: u64,
    /// Inputs the reader accepted.
    pub accepted: u64,
    /// Inputs refused with an error.
    pub refused: u64,
    /// Different answers seen (error messages with their numbers and paths blanked).
    pub answers: usize,
    /// The corpus at the end: seeds and the inputs that gave a new answer.
    pub corpus: usize,
    /// Panics and oversize allocations.
    pub findings: Vec<Finding>,
    /// The longest a single input took.
    pub slowest: Duration,
    /// The whole run.
    pub elapsed: Duration,
}

/// An input taking longer than this is a hang: the process says so and exits.
pub const HANG_LIMIT: Duration = Duration::from_secs(10);
/// The corpus stops growing here, so that picking a parent stays cheap.
const MAX_CORPUS: usize = 1024;

thread_local! {
    static FUZZING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Silences the panic messages of fuzzed reads (they are counted and reported), and only those.
fn quiet_panics_while_fuzzing() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !FUZZING.with(std::cell::Cell::get) {
                default(info);
            }
        }));
    });
}

/// An answer with what varies between inputs of one kind blanked: the scratch folder and numbers.
fn answer_kind(answer: &Result<(), String>, scratch: &Scratch) -> String {
    match answer {
        Ok(()) => "accepted".into(),
        Err(message) => {
            let message = message.replace(&*scratch.dir().to_string_lossy(), "");
            let mut kind = String::with_capacity(message.len());
            for c in message.chars().take(160) {
                if c.is_ascii_digit() {
                    if !kind.ends_with('#') {
                        kind.push('#');
                    }
                } else {
                    kind.push(c);
                }
            }
            kind
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Watches the input being read; past `HANG_LIMIT` it writes that input beside the scratch
/// folder, says where, and ends the process with exit code 3.
struct Watchdog {
    clock: Instant,
    started_ms: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(target: &'static str, input_path: PathBuf) -> Self {
        let started_ms = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let clock = Instant::now();
        let thread = {
            let (started_ms, done) = (started_ms.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let started = started_ms.load(Ordering::Relaxed);
                    let now = clock.elapsed().as_millis() as u64 + 1;
                    if started != 0 && now - started > HANG_LIMIT.as_millis() as u64 {
                        let kept = input_path.with_extension("hang");
                        let _ = std::fs::copy(&input_path, &kept);
                        eprintln!(
                            "fuzz {target}: an input has been read for over {} s (a hang); it is \
                             kept at {}",
                            HANG_LIMIT.as_secs(),
                            kept.display()
                        );
                        std::process::exit(3);
                    }
                }
            })
        };
        Self {
            clock,
            started_ms,
            done,
            thread: Some(thread),
        }
    }

    /// Marks the start (`true`) or the end of one read; 0 means idle, so times count from 1.
    fn reading(&self, on: bool) {
        let now = self.clock.elapsed().as_millis() as u64 + 1;
        self.started_ms
            .store(if on { now } else { 0 }, Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Fuzzes `target` for `budget` from `seed`. Inputs are written to a scratch file before each
/// read, so a crash of the whole process (an abort) leaves the input that caused it on disk.
pub fn fuzz(target: &Target, budget: Budget, seed: u64) -> Result<Report, String> {
    quiet_panics_while_fuzzing();
    let scratch = Scratch::new(target.name)?;
    let mut corpus = (target.seeds)(&scratch);
    if corpus.is_empty() {
        return Err(format!("fuzz {}: no seed files", target.name));
    }
    let max_len = corpus.iter().map(Vec::len).max().unwrap_or(0).max(2048) * 2;
    let last_input = scratch.path("last-input");
    let watchdog = Watchdog::start(target.name, last_input.clone());
    let mut rng = Rng::new(seed);
    let mut answers = HashSet::new();
    let mut report = Report {
        target: target.name,
        inputs: 0,
        accepted: 0,
        refused: 0,
        answers: 0,
        corpus: 0,
        findings: Vec::new(),
        slowest: Duration::ZERO,
        elapsed: Duration::ZERO,
    };
    let started = Instant::now();
    let seeds = corpus.len() as u64;
    loop {
        let more = match budget {
            Budget::Inputs(n) => report.inputs < n,
            Budget::Time(limit) => started.elapsed() < limit,
        };
        if !more {
            break;
        }
        // The seeds themselves come first: each must be accepted.
        let input = if report.inputs < seeds {
            corpus[report.inputs as usize].clone()
        } else {
            let parent = &corpus[rng.below(corpus.len())];
            let other = &corpus[rng.below(corpus.len())];
            mutate(parent, other, &mut rng, max_len)
        };
        std::fs::write(&last_input, &input)
            .map_err(|e| format!("{}: {e}", last_input.display()))?;
        let (oversize_before, _) = guard::oversize_requests();
        let read_started = Instant::now();
        watchdog.reading(true);
        FUZZING.with(|f| f.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| (target.read)(&scratch, &input)));
        FUZZING.with(|f| f.set(false));
        watchdog.reading(false);
        report.slowest = report.slowest.max(read_started.elapsed());
        report.inputs += 1;
        let (oversize_after, largest) = guard::oversize_requests();
        if oversize_after > oversize_before {
            report.findings.push(Finding {
                kind: FindingKind::OversizeAllocation,
                message: format!("asked for {largest} bytes in one allocation"),
                input: input.clone(),
            });
        }
        let answer = match outcome {
            Ok(answer) => answer,
            Err(payload) => {
                report.findings.push(Finding {
                    kind: FindingKind::Panic,
                    message: panic_message(&*payload),
                    input,
                });
                continue;
            }
        };
        if report.inputs <= seeds
            && let Err(problem) = &answer
        {
            return Err(format!(
                "fuzz {}: seed {} is refused: {problem}",
                target.name, report.inputs
            ));
        }
        match &answer {
            Ok(()) => report.accepted += 1,
            Err(_) => report.refused += 1,
        }
        if answers.insert(answer_kind(&answer, &scratch)) && report.inputs > seeds {
            if corpus.len() < MAX_CORPUS {
                corpus.push(input);
            } else {
                let slot = seeds as usize + rng.below(MAX_CORPUS - seeds as usize);
                corpus[slot] = input;
            }
        }
    }
    report.answers = answers.len();
    report.corpus = corpus.len();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}
