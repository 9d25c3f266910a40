//! The zoo's fully connected layer on flex computes what Burn's `Linear::forward` computes:
//! output and the gradients of the input, weight and bias; and its matrix product is right
//! with either factor transposed.

use burn::backend::Dispatch;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use zoo_kernels::linear::{MatmulOps, linear};

#[path = "support/close.rs"]
mod close;

use close::assert_all_close;

/// Output and the gradients of input, weight and (where there is one) bias of `forward`.
fn outcome(
    layer: &Linear,
    input: &Tensor<2>,
    cotangent: &Tensor<2>,
    forward: impl Fn(&Linear, Tensor<2>) -> Tensor<2>,
) -> Vec<Tensor<2>> {
    let input = input.clone().require_grad();
    let output = forward(layer, input.clone());
    let grads = (output.clone() * cotangent.clone()).sum().backward();
    let mut outcome = vec![
        output,
        input.grad(&grads).unwrap(),
        layer.weight.val().grad(&grads).unwrap(),
    ];
    if let Some(bias) = &layer.bias {
        outcome.push(bias.val().grad(&grads).unwrap().unsqueeze_dim(0));
    }
    outcome
}

#[test]
fn training_matches_burns_linear_layer() {
    let device = Device::flex().autodiff();
    for (features, batch, bias) in [([7, 5], 3, true), ([40, 33], 17, false), ([1, 1], 1, true)] {
        let layer = LinearConfig::new(features[0], features[1])
            .with_bias(bias)
            .init(&device);
        let input = Tensor::<2>::random(
            [batch, features[0]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let cotangent = Tensor::<2>::random(
            [batch, features[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let expected = outcome(&layer, &input, &cotangent, Linear::forward);
        let actual = outcome(&layer, &input, &cotangent, |layer, input| {
            let bias = layer.bias.as_ref().map(|bias| bias.val());
            linear(input, layer.weight.val(), bias)
        });
        assert_all_close(
            &["output", "input grad", "weight grad", "bias grad"],
            expected,
            actual,
            1e-5,
            &format!(" of {features:?}, batch {batch}"),
        );
    }
}

/// `op(a) · op(b)` by the zoo against Burn's own product of the transposed tensors, and the
/// gradients of both factors through it.
#[test]
fn products_with_transposed_factors_match_burns_matmul() {
    let device = Device::flex().autodiff();
    let [m, k, n] = [4, 6, 5];
    for (transpose_a, transpose_b) in [(false, false), (true, false), (false, true), (true, true)] {
        let a_shape = if transpose_a { [k, m] } else { [m, k] };
        let b_shape = if transpose_b { [n, k] } else { [k, n] };
        let a = Tensor::<2>::random(a_shape, Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<2>::random(b_shape, Distribution::Normal(0.0, 1.0), &device);
        let cotangent = Tensor::<2>::random([m, n], Distribution::Normal(0.0, 1.0), &device);
        let op = |tensor: Tensor<2>, transpose: bool| {
            if transpose {
                tensor.transpose()
            } else {
                tensor
            }
        };
        let run = |zoos: bool| {
            let (a, b) = (a.clone().require_grad(), b.clone().require_grad());
            let product = match zoos {
                true => Tensor::<2>::from_dispatch(Dispatch::zoo_matmul(
                    a.clone().into_dispatch(),
                    b.clone().into_dispatch(),
                    transpose_a,
                    transpose_b,
                )),
                false => op(a.clone(), transpose_a).matmul(op(b.clone(), transpose_b)),
            };
            let grads = (product.clone() * cotangent.clone()).sum().backward();
            [product, a.grad(&grads).unwrap(), b.grad(&grads).unwrap()]
        };
        assert_all_close(
            &["product", "lhs grad", "rhs grad"],
            run(false),
            run(true),
            1e-5,
            &format!(", transposed {transpose_a}, {transpose_b}"),
        );
    }
}
