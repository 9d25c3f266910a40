//! An adaptive average pool and the fully connected layer after it, folded into one product,
//! compute what the two layers compute: output, the gradients of input, weight and bias, and the
//! layers recorded for summaries.

use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use model_zoo::blocks::pooled_linear::pooled_linear;
use model_zoo::summary::layer_costs;

#[path = "../../kernels/tests/support/close.rs"]
mod close;

use close::assert_all_close;

/// `linear(flatten(pool(x)))` as Burn's layers compute it.
fn unfolded(pool: &AdaptiveAvgPool2d, linear: &Linear, features: Tensor<4>) -> Tensor<2> {
    linear.forward(pool.forward(features).flatten(1, 3))
}

/// Output and the gradients of input, weight and bias of `forward`.
fn outcome(
    pool: &AdaptiveAvgPool2d,
    linear: &Linear,
    features: &Tensor<4>,
    cotangent: &Tensor<2>,
    forward: impl Fn(&AdaptiveAvgPool2d, &Linear, Tensor<4>) -> Tensor<2>,
) -> [Tensor<2>; 4] {
    let features = features.clone().require_grad();
    let output = forward(pool, linear, features.clone());
    let grads = (output.clone() * cotangent.clone()).sum().backward();
    [
        output,
        features.grad(&grads).unwrap().flatten(0, 2),
        linear.weight.val().grad(&grads).unwrap(),
        linear
            .bias
            .as_ref()
            .unwrap()
            .val()
            .grad(&grads)
            .unwrap()
            .unsqueeze_dim(0),
    ]
}

#[test]
fn folding_matches_the_pool_and_the_layer() {
    let device = Device::flex().autodiff();
    // (batch, channels, feature map, pooled size, outputs): a 1×1 map copied (VGG at 32×32),
    // a 2×2 map into 7×7 windows that overlap, a 3×2 map into 5×4, and a batch too small to
    // fold, which takes the unfolded path.
    for (batch, channels, [height, width], pooled, outputs) in [
        (16, 3, [1, 1], [7, 7], 5),
        (32, 2, [2, 2], [7, 7], 4),
        (64, 2, [3, 2], [5, 4], 3),
        (2, 3, [1, 1], [7, 7], 5),
    ] {
        let pool = AdaptiveAvgPool2dConfig::new(pooled).init();
        let linear = LinearConfig::new(channels * pooled[0] * pooled[1], outputs).init(&device);
        let features = Tensor::<4>::random(
            [batch, channels, height, width],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let cotangent =
            Tensor::<2>::random([batch, outputs], Distribution::Normal(0.0, 1.0), &device);
        let expected = outcome(&pool, &linear, &features, &cotangent, unfolded);
        let actual = outcome(&pool, &linear, &features, &cotangent, pooled_linear);
        assert_all_close(
            &["output", "input grad", "weight grad", "bias grad"],
            expected,
            actual,
            1e-5,
            &format!(", batch {batch}, {height}×{width} → {pooled:?}"),
        );
    }
}

#[test]
fn the_folded_layer_is_recorded_as_the_pool_flatten_and_layer() {
    let device = Device::flex();
    let pool = AdaptiveAvgPool2dConfig::new([7, 7]).init();
    let linear = LinearConfig::new(8 * 49, 10).init(&device);
    let records = |batch: usize| {
        let features = Tensor::<4>::ones([batch, 8, 1, 1], &device);
        let (_, layers) = layer_costs(|| pooled_linear(&pool, &linear, features));
        layers
            .iter()
            .map(|layer| {
                (
                    layer.kind.clone(),
                    layer.output_shape.clone(),
                    layer.params,
                    layer.macs,
                )
            })
            .collect::<Vec<_>>()
    };
    // Batch 2 is too small to fold (the layers run one by one), batch 16 folds.
    let unfolded = records(2);
    assert_eq!(
        unfolded,
        [
            ("AdaptiveAvgPool2d".to_string(), vec![8, 7, 7], 0, 0),
            ("Flatten".to_string(), vec![392], 0, 0),
            ("Linear".to_string(), vec![10], 3930, 3920),
        ]
    );
    assert_eq!(records(16), unfolded);
}
