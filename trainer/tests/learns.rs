//! Training for real, on the CPU: LeNet-5 learns MNIST digits, a stopped run resumes to the
//! same weights as one never stopped, and a diverging run stops without touching the last good
//! checkpoint.

mod common;

use common::{digit_folder, digit_image, one_run_at_a_time, run_dir, weights, weights_in};
use std::path::{Path, PathBuf};

use data::Dataset;
use data::datasets::embedded::mnist_subset;
use data::datasets::idx::Split;
use trainer::config::{Progress, Schedule, TrainConfig, TrainControl};
use trainer::error::TrainError;
use trainer::eval::{EvalSplit, evaluate_run, predict_images};
use trainer::train::{resume, train};

fn small_run(name: &str) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        // 2,500 embedded digits: 2,000 to train on, 500 held back.
        limit: Some(2500),
        validation: Some(500),
        workers: 2,
        progress: Progress::Quiet,
        out: run_dir(name),
        ..TrainConfig::new("lenet5")
    }
}

/// The error that `config`'s run stops with, as the user reads it.
fn refusal(config: &TrainConfig) -> String {
    train(config, &TrainControl::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn without_a_validation_split_best_bpk_is_the_last_epochs_weights() {
    let _turn = one_run_at_a_time();
    let config = TrainConfig {
        epochs: 2,
        limit: Some(1000),
        validation: Some(0),
        ..small_run("lenet5-no-validation")
    };
    train(&config, &TrainControl::default()).unwrap();
    let last = std::fs::read(config.out.join("last.bpk")).unwrap();
    assert_eq!(std::fs::read(config.out.join("best.bpk")).unwrap(), last);
}

#[test]
fn lenet5_learns_2000_digits() {
    let _turn = one_run_at_a_time();
    let config = small_run("lenet5-learns");
    let report = train(&config, &TrainControl::default()).unwrap();
    let valid: Vec<f64> = report
        .metrics
        .iter()
        .filter(|m| m.split == "valid")
        .map(|m| m.top1)
        .collect();
    assert_eq!(valid.len(), 3);
    assert!(valid[2] >= 0.90, "held-back accuracy {valid:?}");
    let test = report.test.unwrap();
    assert!(test.top1 >= 0.85, "test accuracy {}", test.top1);
    for file in [
        "config.json",
        "metrics.csv",
        "curves.png",
        "last.bpk",
        "best.bpk",
        "checkpoint.json",
    ] {
        assert!(config.out.join(file).is_file(), "{file} written");
    }
    let csv = std::fs::read_to_string(config.out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * 2 + 1, "{csv}");
    assert!(csv.starts_with("epoch,split,loss,top1,top5,lr,images_per_second,seconds"));

    // Evaluating the saved last weights gives the run's own test figure back.
    let last = config.out.join("last.bpk");
    let report = evaluate_run(&config.out, Some(&last), EvalSplit::Test).unwrap();
    assert_eq!(report.images, 2000);
    assert_eq!(report.top1, report_test_top1(&config.out));
    let counted: usize = report.confusion.iter().flatten().sum();
    assert_eq!(counted, 2000);
    assert_eq!(report.per_class.len(), 10);
    let error = evaluate_run(&run_dir("not-a-run"), None, EvalSplit::Test).unwrap_err();
    assert!(error.to_string().contains("config.json"), "{error}");

    // Prediction on image files: 20 test digits saved as PNG, read back like any photo.
    let digits = mnist_subset(Split::Test);
    let folder = run_dir("digits-as-png");
    std::fs::create_dir_all(&folder).unwrap();
    let files: Vec<PathBuf> = (0..20)
        .map(|index| {
            let path = folder.join(format!("{index}.png"));
            digit_image(Split::Test, index).save(&path).unwrap();
            path
        })
        .collect();
    let predictions = predict_images(&config.out, Some(&last), &files).unwrap();
    let right = predictions
        .iter()
        .enumerate()
        .filter(|(index, p)| p.top5[0].0 == digits.label(*index).to_string())
        .count();
    assert!(right >= 16, "{right} of 20 digits recognised");
    for prediction in &predictions {
        assert_eq!((prediction.top5.len(), prediction.logits.len()), (5, 10));
        assert!(prediction.top5.windows(2).all(|w| w[0].1 >= w[1].1));
    }
    let broken = folder.join("broken.png");
    std::fs::write(&broken, b"not a png").unwrap();
    let error = predict_images(&config.out, Some(&last), &[broken]).unwrap_err();
    assert!(error.to_string().contains("broken.png"), "{error}");
}

/// The test row's top-1 from the run's metrics.csv.
fn report_test_top1(run: &std::path::Path) -> f64 {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let row = csv.lines().find(|line| line.contains(",test,")).unwrap();
    row.split(',').nth(3).unwrap().parse().unwrap()
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_good_checkpoint() {
    let _turn = one_run_at_a_time();
    let good = TrainConfig {
        epochs: 2,
        ..small_run("lenet5-diverges")
    };
    // 2,000 images are 32 steps: stopped 8 steps into the second epoch.
    let stop = TrainControl {
        stop_after_steps: Some(40),
        ..TrainControl::default()
    };
    train(&good, &stop).unwrap();
    let kept = ["last.bpk", "best.bpk", "checkpoint.json"]
        .map(|name| std::fs::read(good.out.join(name)).unwrap());
    // The run goes on with a learning rate larger than f32 can hold: its first step makes the
    // weights infinite.
    let config_path = good.out.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["lr"] = serde_json::json!(1e39);
    config["schedule"] = serde_json::json!("Constant");
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    // An edited config.json no longer matches the run's manifest, which would refuse it: this
    // run goes on as one written before manifests.
    std::fs::remove_file(good.out.join("manifest.json")).unwrap();
    let error = resume(&good.out, &TrainControl::default()).unwrap_err();
    assert!(
        matches!(error, TrainError::Diverged { epoch: 2, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("last good checkpoint is kept"));
    for (name, saved) in ["last.bpk", "best.bpk", "checkpoint.json"].iter().zip(kept) {
        assert_eq!(std::fs::read(good.out.join(name)).unwrap(), saved, "{name}");
    }
}

#[test]
fn bad_settings_are_clear_errors() {
    let _turn = one_run_at_a_time();
    let config = TrainConfig {
        dataset: "mnist".into(),
        data_dir: run_dir("no-mnist-here"),
        ..small_run("lenet5-no-data")
    };
    let error = refusal(&config);
    assert!(
        error.contains("train-images-idx3-ubyte") && error.contains("fetch"),
        "{error}"
    );
    let config = TrainConfig {
        model: "lenet6".into(),
        ..small_run("lenet6")
    };
    assert!(refusal(&config).contains("did you mean lenet5"));
}

#[test]
fn a_stopped_run_resumes_to_the_weights_of_one_never_stopped() {
    let _turn = one_run_at_a_time();
    // Momentum, weight decay, a warm-up, a plateau schedule and a weight average: all state a
    // checkpoint carries.
    let config = |name: &str| TrainConfig {
        epochs: 2,
        ema_decay: 0.9,
        limit: Some(1000),
        weight_decay: 5e-4,
        warmup_epochs: 1,
        schedule: Schedule::Plateau,
        plateau_patience: 0,
        ..small_run(name)
    };
    let whole = config("resume-whole");
    train(&whole, &TrainControl::default()).unwrap();

    // 500 training images in batches of 64: 8 steps an epoch; stop mid-way through epoch 2.
    let parts = config("resume-parts");
    let stop = |steps| TrainControl {
        stop_after_steps: Some(steps),
        ..TrainControl::default()
    };
    let stopped = train(&parts, &stop(11)).unwrap();
    assert!(stopped.test.is_none());
    let checkpoint = std::fs::read_to_string(parts.out.join("checkpoint.json")).unwrap();
    assert!(checkpoint.contains("\"epoch\": 1") && checkpoint.contains("\"step\": 3"));
    resume(&parts.out, &stop(2)).unwrap();
    let finished = resume(&parts.out, &TrainControl::default()).unwrap();

    assert_eq!(weights(&whole.out), weights(&parts.out));
    let average = weights_in(&whole.out, "ema.bpk");
    assert_eq!(average, weights_in(&parts.out, "ema.bpk"));
    assert_ne!(average, weights(&whole.out));
    let csv = |run: &Path| {
        let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        // Everything but the timing columns.
        text.lines()
            .map(|line| line.split(',').take(6).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
    };
    assert_eq!(csv(&whole.out), csv(&parts.out));
    assert!(finished.test.is_some());
    let error = resume(&run_dir("never-started"), &TrainControl::default()).unwrap_err();
    assert!(error.to_string().contains("nothing to resume"), "{error}");
}

/// The defaults a run chose, as its config.json records them.
fn chosen_defaults(run: &Path) -> (String, usize, usize) {
    let text = std::fs::read_to_string(run.join("config.json")).unwrap();
    let config: TrainConfig = serde_json::from_str(&text).unwrap();
    (
        config.augment.unwrap(),
        config.image_size.unwrap(),
        config.validation.unwrap(),
    )
}

#[test]
fn an_image_folder_gets_defaults_that_fit_its_images() {
    let _turn = one_run_at_a_time();
    // Small images keep their size and get padding and random crops; a tenth is held back.
    let small = run_dir("small-digit-folder");
    digit_folder(&small.join("train"), Split::Train, 300, 28);
    // MNIST's first 100 test digits hold every class (the first 50 have no 8).
    digit_folder(&small.join("test"), Split::Test, 100, 28);
    let config = TrainConfig {
        dataset: small.display().to_string(),
        epochs: 1,
        workers: 2,
        progress: Progress::Quiet,
        out: run_dir("small-digit-folder-run"),
        ..TrainConfig::new("lenet5")
    };
    train(&config, &TrainControl::default()).unwrap();
    assert_eq!(chosen_defaults(&config.out), ("small".to_string(), 28, 30));

    // Large images get the ImageNet recipe at the model's input size.
    let large = run_dir("large-digit-folder");
    digit_folder(&large.join("train"), Split::Train, 100, 96);
    digit_folder(&large.join("test"), Split::Test, 100, 96);
    let config = TrainConfig {
        dataset: large.display().to_string(),
        out: run_dir("large-digit-folder-run"),
        ..config
    };
    train(&config, &TrainControl::default()).unwrap();
    assert_eq!(
        chosen_defaults(&config.out),
        ("imagenet".to_string(), 32, 10)
    );
}

/// Flips one byte in the middle of `path`.
fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_file_that_changed_after_the_run_wrote_it_is_named_and_not_used() {
    let _turn = one_run_at_a_time();
    let config = TrainConfig {
        epochs: 2,
        limit: Some(600),
        validation: Some(100),
        ..small_run("lenet5-integrity")
    };
    // 500 training images are 8 steps: stopped 2 steps into the second epoch.
    let stop = TrainControl {
        stop_after_steps: Some(10),
        ..TrainControl::default()
    };
    train(&config, &stop).unwrap();
    let listed: Vec<String> = trainer::manifest::verify_run(&config.out)
        .unwrap()
        .into_iter()
        .map(|(path, outcome)| {
            assert!(outcome.is_ok(), "{outcome:?}");
            path.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    for name in ["config.json", "best.bpk", "last.bpk", "checkpoint.json"] {
        assert!(
            listed.iter().any(|listed| listed == name),
            "{name}: {listed:?}"
        );
    }
    assert!(
        listed.iter().any(|n| n.starts_with("checkpoint-e1-s2")),
        "{listed:?}"
    );

    // A checkpoint's weights that rotted: resume names them and stops.
    let checkpoint = config.out.join("checkpoint-e1-s2.bpk");
    let good = std::fs::read(&checkpoint).unwrap();
    flip_a_byte(&checkpoint);
    let error = resume(&config.out, &TrainControl::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("checkpoint-e1-s2.bpk") && error.contains("does not match"),
        "{error}"
    );
    std::fs::write(&checkpoint, good).unwrap();
    resume(&config.out, &TrainControl::default()).unwrap();

    // Weights cut short or changed: evaluation, prediction and --weights refuse them.
    let best = config.out.join("best.bpk");
    flip_a_byte(&best);
    let error = evaluate_run(&config.out, None, EvalSplit::Test)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("best.bpk") && error.contains("does not match"),
        "{error}"
    );
    let finetune = TrainConfig {
        weights: Some(best.clone()),
        epochs: 1,
        ..small_run("lenet5-integrity-finetune")
    };
    let error = refusal(&finetune);
    assert!(error.contains("best.bpk"), "{error}");
    let last = config.out.join("last.bpk");
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() - 100]).unwrap();
    let error = evaluate_run(&config.out, Some(&last), EvalSplit::Test)
        .unwrap_err()
        .to_string();
    assert!(error.contains("last.bpk"), "{error}");
    let failed: Vec<_> = trainer::manifest::verify_run(&config.out)
        .unwrap()
        .into_iter()
        .filter(|(_, outcome)| outcome.is_err())
        .map(|(path, _)| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(failed, ["best.bpk", "last.bpk"]);
}

#[test]
fn splits_with_different_classes_are_an_error() {
    let _turn = one_run_at_a_time();
    let folder = run_dir("mismatched-splits");
    for (split, class) in [
        ("train", "cat"),
        ("train", "dog"),
        ("test", "cat"),
        ("test", "fox"),
    ] {
        let dir = folder.join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        image::GrayImage::new(28, 28)
            .save(dir.join("0.png"))
            .unwrap();
    }
    let config = TrainConfig {
        dataset: folder.display().to_string(),
        epochs: 1,
        progress: Progress::Quiet,
        out: run_dir("mismatched-splits-run"),
        ..TrainConfig::new("lenet5")
    };
    let error = refusal(&config);
    assert!(
        error.contains("different classes") && error.contains("dog") && error.contains("fox"),
        "{error}"
    );
}

#[test]
fn a_run_that_failed_to_start_does_not_hold_its_folder() {
    let _turn = one_run_at_a_time();
    let missing = TrainConfig {
        dataset: "no/such/folder".to_string(),
        epochs: 1,
        limit: Some(300),
        progress: Progress::Quiet,
        out: run_dir("failed-start"),
        ..TrainConfig::new("lenet5")
    };
    let error = refusal(&missing);
    assert!(error.contains("no/such/folder"), "{error}");
    assert!(missing.out.join("config.json").is_file());
    // The same --out with the data fixed: nothing trained there, so nothing to overwrite.
    let fixed = TrainConfig {
        dataset: "embedded".to_string(),
        ..missing.clone()
    };
    train(&fixed, &TrainControl::default()).unwrap();
    let error = refusal(&fixed);
    assert!(error.contains("holds a run already"), "{error}");
}

#[test]
fn four_accumulated_batches_of_16_step_as_one_batch_of_64() {
    let _turn = one_run_at_a_time();
    // 512 training images: 8 batches of 64, or 32 of 16 in 8 groups of 4. LeNet-5 has no batch
    // norm, and each sample's augmentation depends on the sample, not on its batch.
    let config = |name: &str, batch_size, accumulate| TrainConfig {
        epochs: 2,
        limit: Some(612),
        validation: Some(100),
        batch_size,
        accumulate,
        ..small_run(name)
    };
    let whole = config("accumulate-64x1", 64, 1);
    train(&whole, &TrainControl::default()).unwrap();
    let accumulated = config("accumulate-16x4", 16, 4);
    // A stop asked for mid-group waits for the group's end: no gradients are left half-summed.
    let stop = TrainControl {
        stop_after_steps: Some(6),
        ..TrainControl::default()
    };
    train(&accumulated, &stop).unwrap();
    let checkpoint = std::fs::read_to_string(accumulated.out.join("checkpoint.json")).unwrap();
    assert!(checkpoint.contains("\"step\": 8"), "{checkpoint}");
    resume(&accumulated.out, &TrainControl::default()).unwrap();

    let (expected, actual) = (weights(&whole.out), weights(&accumulated.out));
    let mut largest = 0.0f32;
    for (a, b) in expected.iter().flatten().zip(actual.iter().flatten()) {
        largest = largest.max((a - b).abs());
    }
    assert!(largest < 1e-4, "weights differ by up to {largest}");
    // Without accumulation, batches of 16 take 4 times as many steps and end elsewhere.
    let small_batches = config("accumulate-16x1", 16, 1);
    train(&small_batches, &TrainControl::default()).unwrap();
    let mut apart = 0.0f32;
    for (a, b) in expected
        .iter()
        .flatten()
        .zip(weights(&small_batches.out).iter().flatten())
    {
        apart = apart.max((a - b).abs());
    }
    assert!(apart > 100.0 * largest.max(1e-6), "{apart} vs {largest}");
}

#[test]
fn a_registered_network_of_zoo_blocks_trains_by_name() {
    use model_zoo::blocks::{ConvUnitConfig, InceptionConfig};
    use model_zoo::models::custom::{BlockConfig, BlockNetConfig};
    use model_zoo::{FamilyEntry, ModelArgs};

    fn bottleneck_inception(
        args: &ModelArgs,
        device: &burn::prelude::Device,
    ) -> model_zoo::models::custom::BlockNet {
        BlockNetConfig::new(
            vec![
                BlockConfig::Conv(
                    ConvUnitConfig::new([args.in_channels, 16], 3)
                        .with_padding(1)
                        .with_batch_norm(true),
                ),
                BlockConfig::MaxPool([2, 2]),
                BlockConfig::Conv(
                    ConvUnitConfig::new([16, 32], 3)
                        .with_padding(1)
                        .with_batch_norm(true),
                ),
                BlockConfig::MaxPool([2, 2]),
                BlockConfig::Conv(ConvUnitConfig::pointwise(32, 8).with_batch_norm(true)),
                BlockConfig::Inception(InceptionConfig::new(8, 8, 8, 16, 4, 8, 8)),
            ],
            args.num_classes,
        )
        .init(device)
    }
    let _turn = one_run_at_a_time();
    model_zoo::register(FamilyEntry {
        name: "learns-bottleneck-inception",
        paper: "a test",
        input: [1, 32, 32],
        num_classes: 10,
        build: bottleneck_inception,
    })
    .unwrap();
    let config = TrainConfig {
        model: "learns-bottleneck-inception".into(),
        ..small_run("registered-network")
    };
    let report = train(&config, &TrainControl::default()).unwrap();
    let test = report.test.unwrap();
    // 2,000 digits, three epochs of a 7,810-parameter network: 46.6 % here, far from chance
    // (10 %).
    assert!(test.top1 > 0.3, "test top-1 {}", test.top1);
    assert!(config.out.join("best.bpk").is_file());
    let evaluated = evaluate_run(&config.out, None, EvalSplit::Test).unwrap();
    assert!(
        (evaluated.top1 - test.top1).abs() < 1e-9,
        "{} {}",
        evaluated.top1,
        test.top1
    );
}

#[test]
fn a_student_learns_digits_from_its_teacher_alone() {
    let _turn = one_run_at_a_time();
    // α = 1: the loss is the soft term alone, so the labels never reach the gradient and
    // whatever the student learns comes from the shipped LeNet-5 teaching it.
    let config = |name: &str, alpha: f64, teachers: Vec<PathBuf>| TrainConfig {
        epochs: 3,
        limit: Some(1100),
        validation: Some(100),
        teachers,
        distillation_alpha: alpha,
        distillation_temperature: 4.0,
        ..small_run(name)
    };
    let teacher = PathBuf::from("zoo:lenet5.mnist");
    let taught = config("distil-alpha-1", 1.0, vec![teacher.clone()]);
    let report = train(&taught, &TrainControl::default()).unwrap();
    let top1 = report.test.unwrap().top1;
    // Chance is 10 %; the labels train LeNet-5 to about 85 % in as many steps.
    assert!(top1 >= 0.75, "taught by the teacher alone: {top1}");

    // α = 0: the teacher's term weighs nothing, and the run is the one without a teacher.
    let ignored = config("distil-alpha-0", 0.0, vec![teacher.clone(), teacher]);
    train(&ignored, &TrainControl::default()).unwrap();
    let plain = config("distil-none", 0.0, Vec::new());
    train(&plain, &TrainControl::default()).unwrap();
    assert_eq!(weights(&ignored.out), weights(&plain.out));
    assert_ne!(weights(&taught.out), weights(&plain.out));
}

#[test]
fn a_student_learns_digits_from_a_teacher_of_another_architecture() {
    let _turn = one_run_at_a_time();
    // The modern LeNet-5 (ReLU, max pooling) taught by the shipped classic one alone (α = 1):
    // --teacher-model names the teacher's architecture where it differs from the student's.
    // τ = 1: at τ = 4 the soft term's gradient, 4× the labels', diverges this ReLU network at
    // the default learning rate.
    let config = |name: &str, teacher_model: &str| TrainConfig {
        epochs: 3,
        limit: Some(1100),
        validation: Some(100),
        teachers: vec![PathBuf::from("zoo:lenet5.mnist")],
        teacher_model: Some(teacher_model.into()),
        distillation_alpha: 1.0,
        distillation_temperature: 1.0,
        ..TrainConfig {
            model: "lenet5-modern".into(),
            ..small_run(name)
        }
    };
    let report = train(&config("distil-modern", "lenet5"), &TrainControl::default()).unwrap();
    let top1 = report.test.unwrap().top1;
    // Chance is 10 %; the labels train it to 70.8 % in as many steps, the teacher to 74.0 %.
    assert!(top1 >= 0.6, "taught by the classic LeNet-5 alone: {top1}");

    // The classic LeNet-5's weights do not load as another architecture, and the error says so.
    let error = refusal(&config("distil-misnamed", "cifar-resnet20"));
    assert!(error.contains("zoo:lenet5.mnist"), "{error}");
}

#[test]
fn a_teacher_trained_under_another_normalisation_is_named() {
    let _turn = one_run_at_a_time();
    let config = |name: &str, augment: Option<&str>, teacher: PathBuf| TrainConfig {
        epochs: 1,
        limit: Some(200),
        validation: Some(0),
        augment: augment.map(String::from),
        teachers: vec![teacher],
        ..small_run(name)
    };
    // A teacher trained on raw pixels (`--augment none`), its run folder saying so.
    let raw_teacher = TrainConfig {
        epochs: 1,
        limit: Some(200),
        validation: Some(0),
        augment: Some("none".into()),
        ..small_run("distil-raw-teacher")
    };
    train(&raw_teacher, &TrainControl::default()).unwrap();
    let raw_weights = raw_teacher.out.join("last.bpk");

    // It teaches a run on raw pixels, but not one normalised as MNIST's default preset does.
    let alike = config("distil-raw-student", Some("none"), raw_weights.clone());
    train(&alike, &TrainControl::default()).unwrap();
    let unlike = config("distil-normalised-student", None, raw_weights.clone());
    let error = refusal(&unlike);
    assert!(
        error.contains(&format!("--teacher {}", raw_weights.display()))
            && error.contains("'none'")
            && error.contains("'mnist'"),
        "{error}"
    );

    // A shipped teacher's recipe says how its inputs were normalised.
    let shipped = config(
        "distil-shipped-on-raw",
        Some("none"),
        PathBuf::from("zoo:lenet5.mnist"),
    );
    let error = refusal(&shipped);
    assert!(error.contains("--teacher zoo:lenet5.mnist"), "{error}");
}

#[test]
fn a_teacher_of_other_classes_is_named() {
    let _turn = one_run_at_a_time();
    let config = TrainConfig {
        epochs: 1,
        limit: Some(200),
        validation: Some(0),
        classes: Some("0,1".into()),
        teachers: vec![PathBuf::from("zoo:lenet5.mnist")],
        ..small_run("distil-other-classes")
    };
    let error = refusal(&config);
    assert!(
        error.contains("--teacher zoo:lenet5.mnist") && error.contains("10 classes"),
        "{error}"
    );
}
