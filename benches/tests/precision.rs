//! `--precision`: a run in fp16 really computes in fp16, and a device keeps the float type it was
//! first given. Its own test binary, because a device's float type is set once per process.

use benches::models::{BenchCase, Mode, Precision, Workload, measure};
use burn::tensor::FloatDType;
use trainer::BackendKind;

#[test]
fn fp16_runs_train_in_half_precision_and_the_device_keeps_it() {
    let case = BenchCase {
        model: "cifar-resnet20".into(),
        batch: 2,
        input: [3, 32, 32],
        classes: 10,
    };
    let mut training = Workload::new(&case, BackendKind::Flex, Mode::Train, Precision::Fp16)
        .expect("flex runs fp16");
    training.step().unwrap();
    let loss = training.last_loss().unwrap();
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
    assert_eq!(
        BackendKind::Flex.device().settings().float_dtype,
        FloatDType::F16
    );

    let row = measure(&case, BackendKind::Flex, Mode::Infer, 0, 1, Precision::Fp16).unwrap();
    assert_eq!(row.variant, "fp16");

    let error = Workload::new(&case, BackendKind::Flex, Mode::Train, Precision::Fp32)
        .err()
        .expect("fp32 after fp16 in one process is refused");
    assert!(error.to_string().contains("cannot run in fp32"), "{error}");
}

#[test]
fn precision_names_round_trip_and_unknown_ones_are_refused() {
    for precision in [Precision::Fp32, Precision::Fp16, Precision::Bf16] {
        assert_eq!(precision.name().parse::<Precision>(), Ok(precision));
    }
    let error = "tf32".parse::<Precision>().unwrap_err();
    assert!(error.contains("'tf32'"), "{error}");
}
