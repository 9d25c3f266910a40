//! `--conv gemm`: a run whose convolutions are lowered to matrix products trains the same network
//! to the same loss and says so in its rows, as does `--conv auto` on flex. Its own test binary, because the lowering is chosen
//! for the whole process.

use benches::models::{self, BenchCase, Mode, ModelBenchConfig, Precision, Workload};
use model_zoo::blocks::{ConvLowering, set_conv_lowering};
use trainer::BackendKind;

#[test]
fn gemm_lowered_training_matches_the_native_one_and_is_labelled() {
    let case = BenchCase {
        model: "cifar-resnet20".into(),
        batch: 4,
        input: [3, 32, 32],
        classes: 10,
    };
    let mut losses = Vec::new();
    let mut params = 0;
    for conv in [ConvLowering::Native, ConvLowering::Gemm] {
        set_conv_lowering(conv);
        let mut training =
            Workload::new(&case, BackendKind::Flex, Mode::Train, Precision::Fp32).unwrap();
        for _ in 0..2 {
            training.step().unwrap();
        }
        losses.push(training.last_loss().unwrap());
        params = training.params;
    }
    // Same seed, same images: two SGD steps later the losses agree to rounding.
    assert!(
        (losses[0] - losses[1]).abs() <= 1e-4 * losses[0].abs().max(1.0),
        "native loss {} and gemm-lowered loss {}",
        losses[0],
        losses[1]
    );

    // `auto` is the gemm lowering on flex, and the rows say which ran.
    for (conv, variant) in [
        (ConvLowering::Gemm, "fp32-gemm-conv"),
        (ConvLowering::Auto, "fp32-gemm-conv"),
        (ConvLowering::Native, "fp32"),
    ] {
        let config = ModelBenchConfig {
            cases: vec![case.clone()],
            backends: vec![BackendKind::Flex],
            mode: Mode::Train,
            warmup: 0,
            steps: 1,
            precision: Precision::Fp32,
            conv,
        };
        let rows: Vec<_> = models::run(&config)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].variant, variant, "--conv {conv}");
        assert_eq!(rows[0].params, params);
    }
}
