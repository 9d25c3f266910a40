//! `bench models --precision`: the half-precision rows time the trainer's mixed precision, whose
//! step computes something other than f32's and close to it, in one process.

use benches::models::{BenchCase, Mode, Precision, Workload, measure};
use trainer::BackendKind;

#[test]
fn half_precision_rows_train_close_to_fp32_in_one_process() {
    let case = BenchCase {
        model: "cifar-resnet20".into(),
        batch: 2,
        input: [3, 32, 32],
        classes: 10,
    };
    let loss = |precision| {
        let mut training = Workload::new(&case, BackendKind::Flex, Mode::Train, precision)
            .expect("flex runs every precision");
        training.step().unwrap();
        training.last_loss().unwrap()
    };
    let reference = loss(Precision::Fp32);
    for precision in [Precision::Bf16, Precision::Fp16] {
        let half = loss(precision);
        assert_ne!(half, reference, "{precision} computed in f32");
        assert!(
            (half - reference).abs() <= 0.02 * reference,
            "{precision}: loss {half} against f32's {reference}"
        );
    }
    let row = measure(&case, BackendKind::Flex, Mode::Infer, 0, 1, Precision::Fp16).unwrap();
    assert_eq!(row.variant, "fp16");
}
