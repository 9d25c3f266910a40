//! Published weights fetched into a cache from a real HTTP server on the loopback address:
//! downloaded once and checked against the hash their name carries, never used when another
//! file arrives, verified in place, and offline a clear error saying where to put a copy.

// Shared by the trainer's tests; these use one of its helpers.
#[allow(dead_code)]
mod common;

// Shared with data's download tests, which use every answer; these use some.
#[allow(dead_code)]
#[path = "../../data/tests/support/http.rs"]
mod http;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::digit_image;
use data::Dataset;
use http::{Answer, blob, serve, sha256_hex};
use model_zoo::Classifier;
use model_zoo::pretrained::{ClassNames, PublishedWeights};
use trainer::eval::WeightsSpec;
use trainer::hub::{Cached, fetch_into, resolve, verify_in};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hub-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Weights published at `url` whose SHA-256 starts with `prefix`, as torchvision names them.
fn published(url: &'static str, prefix: &'static str) -> PublishedWeights {
    PublishedWeights {
        model: "resnet18",
        tag: "test",
        default: false,
        url,
        sha256_prefix: prefix,
        top1: 0.0,
        top5: 0.0,
        resize: 256,
        transform_input: false,
        classes: ClassNames::Imagenet1k,
    }
}

/// The first 8 hex digits of the SHA-256 of `bytes`, as torchvision's file names carry them.
fn prefix_of(bytes: &[u8]) -> &'static str {
    &sha256_hex(bytes)[..8]
}

const STALL: Duration = Duration::from_millis(500);

#[test]
fn weights_are_fetched_once_verified_and_refetched_when_spoilt() {
    let bytes = blob(100_000, 7);
    let prefix = prefix_of(&bytes);
    let name: &'static str = Box::leak(format!("resnet18-{prefix}.pth").into_boxed_str());
    let server = serve(vec![(name, Answer::File(bytes.clone()))]);
    let weights = published(server.url(name), prefix);
    let cache = scratch("fetch");

    assert_eq!(verify_in(&weights, &cache).unwrap(), Cached::Missing);
    let path = fetch_into(&weights, &cache, STALL).unwrap();
    assert_eq!(path, cache.join(name));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(
        verify_in(&weights, &cache).unwrap(),
        Cached::Verified(path.clone())
    );
    fetch_into(&weights, &cache, STALL).unwrap();
    assert_eq!(
        server.ranges.lock().unwrap().len(),
        1,
        "the cached file is used"
    );

    // A file spoilt in the cache is reported, and fetching replaces it.
    std::fs::write(&path, b"something else").unwrap();
    match verify_in(&weights, &cache).unwrap() {
        Cached::Mismatch {
            path: spoilt,
            sha256,
        } => {
            assert_eq!(spoilt, path);
            assert!(!sha256.starts_with(prefix));
        }
        other => panic!("{other:?}"),
    }
    fetch_into(&weights, &cache, STALL).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn another_file_is_never_cached() {
    let server = serve(vec![(
        "resnet18-0123abcd.pth",
        Answer::File(blob(10_000, 8)),
    )]);
    let weights = published(server.url("resnet18-0123abcd.pth"), "0123abcd");
    let cache = scratch("mismatch");
    let error = fetch_into(&weights, &cache, STALL).unwrap_err().to_string();
    assert!(
        error.contains("does not match the published 0123abcd"),
        "{error}"
    );
    assert_eq!(verify_in(&weights, &cache).unwrap(), Cached::Missing);
}

#[test]
fn offline_the_error_names_the_url_the_hash_and_where_a_copy_goes() {
    // Nothing listens on port 9 of the loopback address: the connection is refused at once.
    let weights = published("http://127.0.0.1:9/resnet18-f37072fd.pth", "f37072fd");
    let cache = scratch("offline");
    let started = std::time::Instant::now();
    let error = fetch_into(&weights, &cache, STALL).unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(15));
    let destination = cache.join("resnet18-f37072fd.pth");
    for part in [
        "http://127.0.0.1:9/resnet18-f37072fd.pth",
        "starts with f37072fd",
        &destination.display().to_string(),
        "CNN_ZOO_CACHE",
    ] {
        assert!(error.contains(part), "{part} missing from: {error}");
    }
}

#[test]
fn names_resolve_to_published_weights_and_paths_stay_paths() {
    let (path, published) = resolve(Path::new("runs/lenet5/best.bpk")).unwrap();
    assert_eq!(
        (path, published),
        (PathBuf::from("runs/lenet5/best.bpk"), None)
    );
    let error = resolve(Path::new("tv:resnet51")).unwrap_err().to_string();
    assert!(error.contains("tv:resnet18.imagenet1k_v1"), "{error}");
}

#[test]
fn a_cut_download_resumes_into_the_cache() {
    let bytes = blob(60_000, 9);
    let prefix = prefix_of(&bytes);
    let name: &'static str = Box::leak(format!("resnet18-{prefix}.pth").into_boxed_str());
    // The same file from a host that cuts the connection, then from one that does not.
    let cutting = serve(vec![(name, Answer::CutAfter(bytes.clone(), 25_000))]);
    let server = serve(vec![(name, Answer::File(bytes.clone()))]);
    let cache = scratch("resume");
    let cut = published(cutting.url(name), prefix);
    let error = fetch_into(&cut, &cache, STALL).unwrap_err().to_string();
    assert!(error.contains("run again to resume"), "{error}");
    assert_eq!(verify_in(&cut, &cache).unwrap(), Cached::Missing);
    let weights = published(server.url(name), prefix);
    let path = fetch_into(&weights, &cache, STALL).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bytes);
    let requests = server.ranges.lock().unwrap();
    assert_eq!(requests.last().unwrap().1.as_deref(), Some("bytes=25000-"));
}

/// How many of `images` get their label in `labels` as the most likely class, on flex.
fn top1_right(
    model: &str,
    weights: &Path,
    images: &[PathBuf],
    classes: Option<Vec<String>>,
    labels: &[String],
) -> usize {
    let predictions = trainer::eval::predict_with_weights(
        model,
        &model_zoo::ModelOptions::new(),
        weights,
        images,
        classes,
        trainer::BackendKind::Flex,
    )
    .unwrap();
    predictions
        .iter()
        .zip(labels)
        .filter(|(prediction, label)| &prediction.top5[0].0 == *label)
        .count()
}

#[test]
fn the_shipped_lenet5_reads_mnist_digits() {
    let shipped = model_zoo::pretrained::shipped_for("lenet5").unwrap();
    let cache = scratch("shipped");
    let path = trainer::hub::unpack_into(shipped, &cache).unwrap();
    assert_eq!(
        data::datasets::fetch::sha256_file(&path).unwrap(),
        shipped.sha256
    );
    // 50 test digits as PNG files, read back like any image.
    let split = data::datasets::idx::Split::Test;
    let digits = data::datasets::embedded::mnist_subset(split);
    let images: Vec<PathBuf> = (0..50)
        .map(|index| {
            let file = cache.join(format!("{index}.png"));
            digit_image(split, index).save(&file).unwrap();
            file
        })
        .collect();
    let labels: Vec<String> = (0..images.len())
        .map(|i| digits.label(i).to_string())
        .collect();
    let right = top1_right("lenet5", &path, &images, None, &labels);
    assert!(right >= 49, "{right} of 50 digits");
}

#[test]
fn the_shipped_cifar_resnet20_reads_cifar_test_images() {
    let shipped = model_zoo::pretrained::shipped_for("cifar-resnet20").unwrap();
    let path = trainer::hub::unpack_into(shipped, &scratch("shipped-cifar")).unwrap();
    // The first five test images of each class, as JPEG files (tests/fixtures/cifar10-test).
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cifar10-test");
    let classes = shipped.classes.names();
    // model-zoo keeps its own copy of the names (it knows nothing of the data crate); they must
    // be the label order the weights were trained with.
    assert_eq!(classes, data::datasets::cifar::CIFAR10_CLASSES);
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for class in &classes {
        for index in 0..5 {
            images.push(fixtures.join(class).join(format!("{index:04}.jpg")));
            labels.push(class.clone());
        }
    }
    let right = top1_right("cifar-resnet20", &path, &images, Some(classes), &labels);
    // 89.93 % of all 10,000 test images, 47 of these 50 (not chosen by how they score).
    assert!(right >= 40, "{right} of 50 images");
}

#[test]
fn weights_are_evaluated_on_a_dataset_without_a_run() {
    let shipped = model_zoo::pretrained::shipped_for("lenet5").unwrap();
    let path = trainer::hub::unpack_into(shipped, &scratch("evaluate")).unwrap();
    let data_dir = PathBuf::from("unused");
    let report =
        trainer::eval::evaluate_weights(&WeightsSpec::new("lenet5", &path, "embedded", &data_dir))
            .unwrap();
    // The embedded test digits are MNIST's first 2,000; on all 10,000 it scored 99.19 %.
    assert_eq!((report.images, report.preset), (2000, "mnist"));
    assert!(report.top1 >= 0.98, "top-1 {}", report.top1);

    // A head for other classes is an error, not a silent new head.
    let device = burn::prelude::Device::flex();
    let three = model_zoo::create("lenet5", &model_zoo::ModelOptions::new(), &device)
        .unwrap()
        .with_num_classes(3, &device);
    let three_path = scratch("three-classes");
    std::fs::create_dir_all(&three_path).unwrap();
    let three_path = three_path.join("lenet5-3.bpk");
    burn::module::Module::save_file(three, &three_path).unwrap();
    let error = trainer::eval::evaluate_weights(&WeightsSpec::new(
        "lenet5",
        &three_path,
        "embedded",
        &data_dir,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("predicts 3 classes") && error.contains("embedded has 10"),
        "{error}"
    );
}

#[test]
fn weight_files_without_runs_form_an_ensemble() {
    use trainer::ensemble::{EnsembleConfig, Member, evaluate_ensemble};

    let shipped = model_zoo::pretrained::shipped_for("lenet5").unwrap();
    let folder = scratch("ensemble-of-files");
    let trained = trainer::hub::unpack_into(shipped, &folder).unwrap();
    let device = burn::prelude::Device::flex();
    let untrained = folder.join("untrained.bpk");
    let model = model_zoo::create("lenet5", &model_zoo::ModelOptions::new(), &device).unwrap();
    burn::module::Module::save_file(model, &untrained).unwrap();
    let spec =
        |weights: &Path| WeightsSpec::new("lenet5", weights, "embedded", Path::new("unused"));
    let alone = |weights: &Path| {
        trainer::eval::evaluate_weights(&spec(weights))
            .unwrap()
            .top1
    };
    let ensemble = |files: [&Path; 2]| {
        evaluate_ensemble(&EnsembleConfig {
            members: files.map(|file| Member::Weights(spec(file))).to_vec(),
            ..EnsembleConfig::new(&[])
        })
        .unwrap()
    };

    // Each member is scored with its own weights, in the order given.
    let mixed = ensemble([&trained, &untrained]);
    let (trained_top1, untrained_top1) = (alone(&trained), alone(&untrained));
    assert!(trained_top1 > 0.98 && untrained_top1 < 0.3);
    assert_eq!(
        (mixed.members[0].top1, mixed.members[1].top1),
        (trained_top1, untrained_top1)
    );
    // Two copies of one network average to that network.
    let twice = ensemble([&trained, &trained]);
    assert_eq!(twice.top1, trained_top1);
    assert_eq!(twice.gain_over_best_member, 0.0);
}

#[test]
fn weights_without_a_run_take_test_time_augmentation() {
    use trainer::ensemble::{EnsembleConfig, Member, evaluate_ensemble};
    use trainer::eval::EvalSplit;

    let shipped = model_zoo::pretrained::shipped_for("lenet5").unwrap();
    let path = trainer::hub::unpack_into(shipped, &scratch("evaluate-flipped")).unwrap();
    let spec = WeightsSpec::new("lenet5", &path, "embedded", Path::new("unused"));
    let plain = trainer::eval::evaluate_weights(&spec).unwrap();
    let flipped = EnsembleConfig {
        members: vec![Member::Weights(spec.clone())],
        views: data::transforms::Views::Flip,
        ..EnsembleConfig::new(&[])
    };
    let report = evaluate_ensemble(&flipped).unwrap();
    // The centre view is what plain evaluation sees; the mirrored digits are other images, and
    // a LeNet-5 trained without flips reads fewer of them, so the average moves.
    assert_eq!((report.images, report.views.as_str()), (2000, "flip"));
    assert_eq!(report.members[0].top1_centre, plain.top1);
    assert_ne!(report.top1, report.top1_centre);

    let valid = EnsembleConfig {
        split: EvalSplit::Valid,
        ..flipped
    };
    let error = evaluate_ensemble(&valid).unwrap_err().to_string();
    assert!(
        error.contains("no images were held back") && error.contains("lenet5"),
        "{error}"
    );
}
