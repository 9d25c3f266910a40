//! Faults while a run writes or reads: a write that fails (a full disk, a file in the way)
//! leaves the previous checkpoint usable; a checkpoint whose files are missing or cut is named;
//! a run is not resumed on training data that changed under it (a file that disappears while
//! an epoch runs is the pipeline's: data/tests/pipeline.rs); quitting waits for the write in
//! progress.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{digit_folder, one_run_at_a_time, run_dir, weights};
use data::datasets::idx::Split;
use trainer::checkpoint::Checkpoint;
use trainer::config::{Progress, TrainConfig, TrainControl};
use trainer::train::{resume, train};

/// 500 training images in batches of 64: 8 steps an epoch.
fn small_run(name: &str) -> TrainConfig {
    TrainConfig {
        epochs: 1,
        limit: Some(600),
        validation: Some(100),
        workers: 2,
        progress: Progress::Quiet,
        out: run_dir(name),
        ..TrainConfig::new("lenet5")
    }
}

fn stop_after(steps: usize) -> TrainControl {
    TrainControl {
        stop_after_steps: Some(steps),
        ..TrainControl::default()
    }
}

fn all_listed_files_match(run: &Path) {
    for (path, outcome) in trainer::manifest::verify_run(run).unwrap() {
        assert!(outcome.is_ok(), "{}: {outcome:?}", path.display());
    }
}

#[test]
fn a_write_that_fails_leaves_the_previous_checkpoint_usable() {
    let _turn = one_run_at_a_time();
    let whole = small_run("fault-whole");
    train(&whole, &TrainControl::default()).unwrap();
    // A folder where the next file's temporary copy goes makes that write fail as a full disk
    // would: the weights of the next checkpoint, its checkpoint.json, or the epoch's weights.
    for blocked in [
        "checkpoint-e0-s5.bpk.tmp",
        "checkpoint.json.tmp",
        "last.bpk.tmp",
    ] {
        let config = small_run(&format!("fault-{blocked}"));
        train(&config, &stop_after(3)).unwrap();
        let before = std::fs::read(config.out.join("checkpoint.json")).unwrap();
        std::fs::create_dir(config.out.join(blocked)).unwrap();
        let steps = if blocked == "last.bpk.tmp" { 10 } else { 2 };
        let error = resume(&config.out, &stop_after(steps))
            .unwrap_err()
            .to_string();
        assert!(error.contains(blocked), "{blocked}: {error}");
        assert_eq!(
            std::fs::read(config.out.join("checkpoint.json")).unwrap(),
            before,
            "{blocked}: the checkpoint moved on without its files"
        );
        all_listed_files_match(&config.out);
        std::fs::remove_dir(config.out.join(blocked)).unwrap();
        resume(&config.out, &TrainControl::default()).unwrap();
        assert_eq!(weights(&config.out), weights(&whole.out), "{blocked}");
    }
}

#[test]
fn a_checkpoint_whose_files_are_missing_or_cut_is_named() {
    let _turn = one_run_at_a_time();
    let config = small_run("fault-checkpoint-files");
    train(&config, &stop_after(3)).unwrap();
    let model = config.out.join("checkpoint-e0-s3.bpk");
    let optimizer = config.out.join("checkpoint-e0-s3.optim.bpk");
    let model_bytes = std::fs::read(&model).unwrap();
    std::fs::remove_file(&model).unwrap();
    let error = resume(&config.out, &TrainControl::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("checkpoint-e0-s3.bpk"), "{error}");
    std::fs::write(&model, &model_bytes).unwrap();

    let optimizer_bytes = std::fs::read(&optimizer).unwrap();
    std::fs::write(&optimizer, &optimizer_bytes[..optimizer_bytes.len() / 2]).unwrap();
    let error = resume(&config.out, &TrainControl::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("checkpoint-e0-s3.optim.bpk"), "{error}");
    std::fs::write(&optimizer, &optimizer_bytes).unwrap();
    resume(&config.out, &TrainControl::default()).unwrap();
}

#[test]
fn a_checkpoint_naming_a_file_outside_its_run_is_refused() {
    let config = small_run("fault-outside");
    std::fs::create_dir_all(&config.out).unwrap();
    let outside = config.out.with_file_name("fault-outside-victim.bpk");
    std::fs::write(&outside, b"someone else's file").unwrap();
    let checkpoint = serde_json::json!({
        "epoch": 0, "step": 1, "model": "../fault-outside-victim.bpk",
        "optimizer": "o.bpk", "best": null, "metrics": [],
        "schedule": {"plateau_scale": 1.0, "plateau_best": null, "plateau_waited": 0},
        "tally": {"seen": 0, "loss_sum": 0.0, "top1": 0, "top5": 0, "seconds": 0.0}
    });
    std::fs::write(config.out.join("checkpoint.json"), checkpoint.to_string()).unwrap();
    let error = Checkpoint::read(&config.out).unwrap_err().to_string();
    assert!(error.contains("not a file in the run folder"), "{error}");
    assert!(outside.is_file());
}

#[test]
fn a_run_resumed_on_changed_training_data_is_refused() {
    let _turn = one_run_at_a_time();
    let folder = run_dir("fault-vanishing-folder");
    digit_folder(&folder.join("train"), Split::Train, 200, 28);
    digit_folder(&folder.join("test"), Split::Test, 100, 28);
    let config = TrainConfig {
        dataset: folder.display().to_string(),
        epochs: 2,
        batch_size: 32,
        validation: Some(20),
        limit: None,
        ..small_run("fault-vanishing-run")
    };
    // Stopped inside the first epoch, then one training image goes: resumed as it was, the run
    // would hold back other images for validation and train on a different set.
    train(&config, &stop_after(2)).unwrap();
    let image = folder
        .join("train/0")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&image).unwrap();
    std::fs::remove_file(&image).unwrap();
    let error = resume(&config.out, &TrainControl::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("training data changed")
            && error.contains("200 images")
            && error.contains("199 images"),
        "{error}"
    );
    Checkpoint::read(&config.out).unwrap();
    all_listed_files_match(&config.out);
    std::fs::write(&image, bytes).unwrap();
    let finished = resume(&config.out, &TrainControl::default()).unwrap();
    assert!(finished.test.is_some());
}

#[test]
fn quitting_waits_for_the_files_being_written() {
    let dir = run_dir("fault-quit");
    std::fs::create_dir_all(&dir).unwrap();
    let (first, second) = (dir.join("first"), dir.join("second"));
    let writer = {
        let (first, second) = (first.clone(), second.clone());
        std::thread::spawn(move || {
            let _group = trainer::atomic_file::writing();
            trainer::atomic_file::write_atomically(&first, b"1").unwrap();
            std::thread::sleep(Duration::from_millis(300));
            trainer::atomic_file::write_atomically(&second, b"2").unwrap();
        })
    };
    while !first.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let asked = Instant::now();
    let no_more_writes = trainer::atomic_file::wait_for_writes();
    assert!(second.is_file(), "the quitter did not wait for the group");
    assert!(asked.elapsed() >= Duration::from_millis(200));
    drop(no_more_writes);
    writer.join().unwrap();
}
