//! An adaptive average pool that enlarges its input, followed by a fully connected layer, computed
//! as one smaller fully connected layer.
//!
//! Why: VGG pools its last feature map to 7×7 before its first 25,088 → 4,096 layer (as
//! torchvision does), so at CIFAR's 32×32 the 1×1 map is copied 49 times and that layer does 49×
//! the work it needs. Pooling is linear, `pooled = x · A` per channel for a fixed `[Q, P]` matrix
//! `A` (`Q` input cells, `P` pooled ones), so `flatten(pooled) · W = flatten(x) · W'` with
//! `W'[c, q, o] = Σ_p A[q, p] · W[c, p, o]`. Folding costs one pass over `W` (and one over its
//! gradient backward); at batch 64 and a 1×1 map it leaves 2 % of the layer's multiplies. The
//! result equals the unfolded one up to rounding; the layer's parameters, gradients and recorded
//! MACs are the unfolded layer's.

use burn::nn::Linear;
use burn::nn::pool::AdaptiveAvgPool2d;
use burn::prelude::*;
use burn::tensor::{TensorCreationOptions, TensorData};

use crate::trace::{self, Layer};

/// `linear(flatten(pool(features)))`, folded when that is cheaper (see the module docs).
pub fn pooled_linear(pool: &AdaptiveAvgPool2d, linear: &Linear, features: Tensor<4>) -> Tensor<2> {
    let [batch, channels, height, width] = features.dims();
    let [inputs, pooled] = [height * width, pool.output_size[0] * pool.output_size[1]];
    let [features_in, features_out] = linear.weight.dims();
    if !folding_pays(batch, inputs, pooled) || features_in != channels * pooled {
        return linear.run(trace::flatten(pool.run(features)));
    }
    trace::pooled_linear(pool, linear, channels, || {
        let device = features.device();
        let dtype = features.dtype();
        let pooling = Tensor::<2>::from_data(
            TensorData::new(
                pooling_matrix([height, width], pool.output_size),
                [inputs, pooled],
            ),
            TensorCreationOptions::new(device).with_dtype(dtype),
        );
        let (weight, bias) = crate::blocks::precision::linear_params(linear, dtype);
        let folded = pooling
            .unsqueeze::<3>()
            .expand([channels, inputs, pooled])
            .matmul(weight.reshape([channels, pooled, features_out]))
            .reshape([channels * inputs, features_out]);
        let input = features.flatten(1, 3);
        #[cfg(feature = "kernels")]
        let output = crate::blocks::linear::linear(input, folded, bias);
        #[cfg(not(feature = "kernels"))]
        let output = burn::tensor::module::linear(input, folded, bias);
        output
    })
}

/// Whether the folded layer does less work than the pooled one: `batch · Q` rows against the
/// pooled `batch · P`, plus folding the weights (`P · Q` per weight row, forward and backward).
fn folding_pays(batch: usize, inputs: usize, pooled: usize) -> bool {
    inputs < pooled && batch * (pooled - inputs) > 2 * pooled * inputs
}

/// `A` with `A[q, p]` the weight of input cell `q` in pooled cell `p`: adaptive pooling's
/// windows, rows `⌊i·H/h⌋..⌈(i+1)·H/h⌉` (as PyTorch and Burn take them), averaged.
fn pooling_matrix([height, width]: [usize; 2], [out_h, out_w]: [usize; 2]) -> Vec<f32> {
    let window = |index: usize, size: usize, out: usize| {
        index * size / out..((index + 1) * size).div_ceil(out)
    };
    let pooled = out_h * out_w;
    let mut matrix = vec![0.0; height * width * pooled];
    for (row_out, col_out) in (0..out_h).flat_map(|row| (0..out_w).map(move |col| (row, col))) {
        let (rows, cols) = (
            window(row_out, height, out_h),
            window(col_out, width, out_w),
        );
        let weight = 1.0 / (rows.len() * cols.len()) as f32;
        for row in rows {
            for col in cols.clone() {
                matrix[(row * width + col) * pooled + row_out * out_w + col_out] = weight;
            }
        }
    }
    matrix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_cell_map_is_copied_to_every_pooled_cell() {
        assert_eq!(pooling_matrix([1, 1], [2, 3]), vec![1.0; 6]);
    }

    #[test]
    fn overlapping_windows_share_their_cells() {
        // 2 → 3: windows 0..1, 0..2, 1..2 (PyTorch's).
        let matrix = pooling_matrix([1, 2], [1, 3]);
        assert_eq!(matrix, vec![1.0, 0.5, 0.0, 0.0, 0.5, 1.0]);
    }

    #[test]
    fn folding_pays_only_for_enlarging_pools_and_large_enough_batches() {
        assert!(folding_pays(64, 1, 49));
        assert!(!folding_pays(2, 1, 49));
        assert!(!folding_pays(64, 49, 49));
        assert!(!folding_pays(512, 64, 49));
    }
}
