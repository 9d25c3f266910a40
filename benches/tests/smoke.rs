//! The benches' smoke mode: every entry of the criterion and GPU suites takes one tiny step
//! (batch 2) for inference and for training on flex, and the other CPU backends run LeNet-5
//! through `measure`, so that no bench rots between benchmark runs. Timings are never asserted.

use benches::models::{BenchCase, Mode, Precision, Workload, criterion_suite, gpu_suite, measure};
use trainer::BackendKind;

/// Each model and input size the benches use, once, at batch 2.
fn tiny_cases() -> Vec<BenchCase> {
    let mut cases: Vec<BenchCase> = Vec::new();
    for case in criterion_suite(BackendKind::Flex)
        .into_iter()
        .chain(gpu_suite())
    {
        if !cases
            .iter()
            .any(|seen| seen.model == case.model && seen.input == case.input)
        {
            cases.push(BenchCase { batch: 2, ..case });
        }
    }
    cases
}

#[test]
fn every_bench_entry_takes_a_step() {
    let cases = tiny_cases();
    for model in [
        "lenet5",
        "cifar-resnet20",
        "resnet18",
        "resnet50",
        "vgg16",
        "googlenet",
    ] {
        assert!(
            cases.iter().any(|case| case.model == model),
            "{model} is in no bench suite"
        );
    }
    for case in &cases {
        let mut inference =
            Workload::new(case, BackendKind::Flex, Mode::Infer, Precision::Fp32).unwrap();
        inference.step().unwrap();
        assert_eq!(inference.last_loss(), None);

        let mut training =
            Workload::new(case, BackendKind::Flex, Mode::Train, Precision::Fp32).unwrap();
        assert_eq!(training.params, inference.params, "{}", case.model);
        assert!(training.macs_per_image > 0, "{}", case.model);
        training.step().unwrap();
        let loss = training.last_loss().unwrap();
        assert!(
            loss.is_finite() && loss > 0.0,
            "{}: loss {loss}",
            case.model
        );
    }
}

#[test]
fn every_cpu_backend_measures_a_row() {
    let lenet = BenchCase {
        batch: 2,
        ..criterion_suite(BackendKind::Flex)[0].clone()
    };
    assert_eq!(lenet.model, "lenet5");
    for backend in BackendKind::ALL.iter().copied().filter(|b| !b.is_gpu()) {
        for mode in [Mode::Infer, Mode::Train] {
            let row = measure(&lenet, backend, mode, 1, 2, Precision::Fp32).unwrap();
            assert_eq!((row.backend.as_str(), row.mode), (backend.name(), mode));
            // LeNet-5 as the chapter draws it: 61,706 parameters, 416,520 MACs an image.
            assert_eq!((row.params, row.macs_per_image), (61_706, 416_520));
            assert!(row.step_s > 0.0 && row.images_per_second.is_finite());
            assert!(row.warmup_s >= row.first_step_s);
        }
    }
}
