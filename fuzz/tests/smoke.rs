//! A short, fixed-seed fuzz of every reader: no panic, no allocation above the cap, and the
//! mutations reach both answers (some inputs accepted, most refused) with more than one kind of
//! refusal, so the smoke cannot pass by never reaching the reader. The long run is
//! `cargo run --release -p fuzz -- --seconds 600` (docs/fuzzing.md).

use fuzz::{Budget, fuzz, guard, target};

#[global_allocator]
static ALLOCATOR: guard::CappedAllocator = guard::CappedAllocator;

fn smoke(name: &str, inputs: u64) {
    guard::set_cap(guard::DEFAULT_CAP);
    let report = fuzz(target(name).unwrap(), Budget::Inputs(inputs), 2026).unwrap();
    assert_eq!(report.inputs, inputs);
    let findings: Vec<String> = report
        .findings
        .iter()
        .map(|f| format!("{:?}: {}", f.kind, f.message))
        .collect();
    assert!(findings.is_empty(), "{name}: {findings:#?}");
    assert!(report.accepted >= 1, "{name}: nothing accepted: {report:?}");
    assert!(
        report.refused >= inputs / 4,
        "{name}: few refusals: {report:?}"
    );
    assert!(
        report.answers >= 3,
        "{name}: one kind of answer: {report:?}"
    );
}

#[test]
fn idx() {
    smoke("idx", 400);
}

#[test]
fn cifar() {
    smoke("cifar", 300);
}

#[test]
fn image() {
    smoke("image", 300);
}

#[test]
fn image_folder() {
    smoke("image-folder", 150);
}

#[test]
fn pth() {
    smoke("pth", 150);
}

#[test]
fn safetensors() {
    smoke("safetensors", 150);
}

#[test]
fn burnpack() {
    smoke("burnpack", 150);
}

#[test]
fn run_files() {
    smoke("run-files", 150);
}

#[test]
fn recipe() {
    smoke("recipe", 300);
}

#[test]
fn tar_gz() {
    smoke("tar-gz", 300);
}
