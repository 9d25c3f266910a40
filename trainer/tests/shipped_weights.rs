//! Every shipped weights file scored again on its full test set from `../shared/datasets`
//! (beside the repository, as in this project's CI; a clone elsewhere does not have it): the
//! top-1 its manifest states must come back. Ignored by `cargo test`; `.ci/run` runs it as its
//! own announced step where the folder exists.

use std::path::{Path, PathBuf};

use model_zoo::pretrained::SHIPPED;
use trainer::eval::WeightsSpec;

#[path = "../../data/tests/support/shared_datasets.rs"]
mod shared_datasets;
use shared_datasets::{cifar_folder, shared};

/// `--dataset` and `--data-dir` of the test set each shipped file was scored on.
fn test_set(dataset: &str) -> (String, PathBuf) {
    match dataset {
        "mnist" => ("mnist".into(), shared().join("mnist")),
        "cifar10" => (
            cifar_folder().to_string_lossy().into_owned(),
            Path::new("unused").into(),
        ),
        other => panic!("no test set known for shipped weights trained on {other}"),
    }
}

#[test]
#[ignore = "reads ../shared/datasets: cargo test --workspace --test shipped_weights -- --ignored"]
fn every_shipped_file_scores_its_stated_top1() {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shipped-weights");
    for weights in SHIPPED {
        let path = trainer::hub::unpack_into(weights, &cache).unwrap();
        let (dataset, data_dir) = test_set(weights.dataset);
        let report = trainer::eval::evaluate_weights(&WeightsSpec {
            augment: Some(weights.augment.to_string()),
            ..WeightsSpec::new(weights.model, &path, &dataset, &data_dir)
        })
        .unwrap();
        let top1 = 100.0 * report.top1;
        eprintln!(
            "{}: {top1:.2} % of {} test images",
            weights.name(),
            report.images
        );
        assert_eq!(report.images, 10_000, "{}", weights.name());
        assert_eq!(report.preset, weights.augment);
        assert!(
            (top1 - weights.top1).abs() < 0.005,
            "{}: {top1} % on the test set, the manifest says {} %",
            weights.name(),
            weights.top1
        );
    }
}
