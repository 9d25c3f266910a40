//! Records what each layer did during one forward pass, so that [`crate::summary`] can report
//! output shapes, parameters and MACs from a real run rather than from a second description of
//! the network.
//!
//! Layers are run through [`Layer::run`]; outside [`record_forward`] recording costs one
//! thread-local check per layer.

use std::cell::RefCell;

use burn::module::ParamId;
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, Dropout, Linear, LocalResponseNorm, conv::Conv2d};
use burn::tensor::{DType, Tensor};

use crate::blocks::precision::in_f32;

/// One layer's contribution to a forward pass, per sample (the batch axis is dropped).
#[derive(Debug, Clone)]
pub(crate) struct LayerRecord {
    pub kind: &'static str,
    /// The first parameter of the layer, used to find its path in the module tree.
    pub param_id: Option<ParamId>,
    pub output_shape: Vec<usize>,
    pub params: usize,
    /// Multiply-accumulates per sample: torchvision's "GFLOPS" convention (conv and linear only).
    pub macs: u64,
}

thread_local! {
    static RECORDS: RefCell<Option<Vec<LayerRecord>>> = const { RefCell::new(None) };
}

/// Clears the recording even when the forward pass panics.
struct RecordingGuard;

impl Drop for RecordingGuard {
    fn drop(&mut self) {
        RECORDS.with(|records| records.borrow_mut().take());
    }
}

/// Runs `forward` with recording switched on and returns its result and the layer records.
pub(crate) fn record_forward<T>(forward: impl FnOnce() -> T) -> (T, Vec<LayerRecord>) {
    RECORDS.with(|records| *records.borrow_mut() = Some(Vec::new()));
    let guard = RecordingGuard;
    let output = forward();
    let records = RECORDS.with(|records| records.borrow_mut().take().unwrap_or_default());
    drop(guard);
    (output, records)
}

fn record(make: impl FnOnce() -> LayerRecord) {
    RECORDS.with(|records| {
        if let Some(list) = records.borrow_mut().as_mut() {
            list.push(make());
        }
    });
}

fn per_sample_shape<const D: usize>(tensor: &Tensor<D>) -> Vec<usize> {
    tensor.dims()[1..].to_vec()
}

fn parameterless<const D: usize>(kind: &'static str, output: &Tensor<D>) {
    record(|| LayerRecord {
        kind,
        param_id: None,
        output_shape: per_sample_shape(output),
        params: 0,
        macs: 0,
    });
}

/// A layer whose forward pass is recorded for summaries (Keras calls this `Layer.call`).
pub trait Layer<Input> {
    /// What the layer returns.
    type Output;
    /// Runs the layer's forward pass.
    fn run(&self, input: Input) -> Self::Output;
}

impl Layer<Tensor<4>> for Conv2d {
    type Output = Tensor<4>;
    /// In the input's float type, computed as [`crate::blocks::lowering::conv_lowering`] says
    /// (with the `kernels` feature).
    fn run(&self, input: Tensor<4>) -> Tensor<4> {
        let output = crate::blocks::precision::conv2d(self, input);
        record(|| {
            let [_, channels_out, height, width] = output.dims();
            let [_, channels_in_per_group, kernel_h, kernel_w] = self.weight.dims();
            let weights = channels_out * channels_in_per_group * kernel_h * kernel_w;
            let bias = self.bias.as_ref().map_or(0, |_| channels_out);
            LayerRecord {
                kind: "Conv2d",
                param_id: Some(self.weight.id),
                output_shape: vec![channels_out, height, width],
                params: weights + bias,
                macs: (channels_out * height * width) as u64
                    * (channels_in_per_group * kernel_h * kernel_w) as u64,
            }
        });
        output
    }
}

impl Layer<Tensor<2>> for Linear {
    type Output = Tensor<2>;
    /// On flex by [`crate::blocks::linear::linear`] (with the `kernels` feature).
    fn run(&self, input: Tensor<2>) -> Tensor<2> {
        if input.dims()[1] != self.weight.dims()[0] {
            // Burn's own shape check and message.
            return self.forward(input);
        }
        let (weight, bias) = crate::blocks::precision::linear_params(self, input.dtype());
        #[cfg(feature = "kernels")]
        let output = crate::blocks::linear::linear(input, weight, bias);
        #[cfg(not(feature = "kernels"))]
        let output = burn::tensor::module::linear(input, weight, bias);
        record_linear(self, &output);
        output
    }
}

/// Records `layer` with its output's shape.
fn record_linear(layer: &Linear, output: &Tensor<2>) {
    record(|| {
        let weights = layer.weight.shape().num_elements();
        let [_, features_out] = output.dims();
        let bias = layer.bias.as_ref().map_or(0, |_| features_out);
        LayerRecord {
            kind: "Linear",
            param_id: Some(layer.weight.id),
            output_shape: vec![features_out],
            params: weights + bias,
            macs: weights as u64,
        }
    });
}

/// `linear.run(flatten(pool.run(x)))` computed by `folded` as one product
/// ([`crate::blocks::pooled_linear`]), recorded as the three layers it stands for.
pub(crate) fn pooled_linear(
    pool: &AdaptiveAvgPool2d,
    linear: &Linear,
    channels: usize,
    folded: impl FnOnce() -> Tensor<2>,
) -> Tensor<2> {
    let [out_h, out_w] = pool.output_size;
    for (kind, output_shape) in [
        ("AdaptiveAvgPool2d", vec![channels, out_h, out_w]),
        ("Flatten", vec![channels * out_h * out_w]),
    ] {
        record(|| LayerRecord {
            kind,
            param_id: None,
            output_shape,
            params: 0,
            macs: 0,
        });
    }
    let output = folded();
    record_linear(linear, &output);
    output
}

impl<const D: usize> Layer<Tensor<D>> for BatchNorm {
    type Output = Tensor<D>;
    /// Trained on flex by [`crate::blocks::batch_norm::batch_norm`] (with the `kernels` feature).
    fn run(&self, input: Tensor<D>) -> Tensor<D> {
        let output = in_f32(input, |input| {
            #[cfg(feature = "kernels")]
            let output = crate::blocks::batch_norm::batch_norm(self, input);
            #[cfg(not(feature = "kernels"))]
            let output = self.forward(input);
            output
        });
        record_batch_norm(self, &output);
        output
    }
}

/// `relu(norm.run(input))`: conv → BN → ReLU's last two steps, trained on flex as one by
/// [`crate::blocks::batch_norm::batch_norm_relu`] (with the `kernels` feature).
pub(crate) fn batch_norm_relu<const D: usize>(norm: &BatchNorm, input: Tensor<D>) -> Tensor<D> {
    let output = in_f32(input, |input| {
        #[cfg(feature = "kernels")]
        let output = crate::blocks::batch_norm::batch_norm_relu(norm, input);
        #[cfg(not(feature = "kernels"))]
        let output = burn::tensor::activation::relu(norm.forward(input));
        output
    });
    record_batch_norm(norm, &output);
    output
}

/// `relu(norm.run(input) + shortcut())`: a residual block's last batch norm, its sum and its
/// ReLU, computed together on flex in training by
/// [`crate::blocks::batch_norm::batch_norm_add_relu`] (with the `kernels` feature). The
/// shortcut is computed after batch norm is recorded, so the layers are recorded in the order
/// of the unfused block.
pub(crate) fn batch_norm_add_relu(
    norm: &BatchNorm,
    input: Tensor<4>,
    shortcut: impl FnOnce() -> Tensor<4>,
) -> Tensor<4> {
    record_batch_norm(norm, &input);
    let shortcut = shortcut().cast(DType::F32);
    let output = in_f32(input, |input| {
        #[cfg(feature = "kernels")]
        let output = crate::blocks::batch_norm::batch_norm_add_relu(norm, input, shortcut);
        #[cfg(not(feature = "kernels"))]
        let output = burn::tensor::activation::relu(norm.forward(input) + shortcut);
        output
    });
    parameterless("Add", &output);
    output
}

/// Records `norm` with its output's shape (its input's).
fn record_batch_norm<const D: usize>(norm: &BatchNorm, output: &Tensor<D>) {
    record(|| LayerRecord {
        kind: "BatchNorm",
        param_id: Some(norm.gamma.id),
        output_shape: per_sample_shape(output),
        params: 2 * norm.gamma.shape().num_elements(),
        macs: 0,
    });
}

impl Layer<Tensor<4>> for MaxPool2d {
    type Output = Tensor<4>;
    /// On flex by [`crate::blocks::pool::max_pool2d`] (with the `kernels` feature).
    fn run(&self, input: Tensor<4>) -> Tensor<4> {
        #[cfg(feature = "kernels")]
        let output = crate::blocks::pool::max_pool2d(self, input);
        #[cfg(not(feature = "kernels"))]
        let output = self.forward(input);
        parameterless("MaxPool2d", &output);
        output
    }
}

impl Layer<Tensor<4>> for AvgPool2d {
    type Output = Tensor<4>;
    /// On flex by [`crate::blocks::pool::avg_pool2d`] (with the `kernels` feature).
    fn run(&self, input: Tensor<4>) -> Tensor<4> {
        #[cfg(feature = "kernels")]
        let output = crate::blocks::pool::avg_pool2d(self, input);
        #[cfg(not(feature = "kernels"))]
        let output = self.forward(input);
        parameterless("AvgPool2d", &output);
        output
    }
}

impl Layer<Tensor<4>> for AdaptiveAvgPool2d {
    type Output = Tensor<4>;
    fn run(&self, input: Tensor<4>) -> Tensor<4> {
        let output = self.forward(input);
        parameterless("AdaptiveAvgPool2d", &output);
        output
    }
}

impl Layer<Tensor<4>> for LocalResponseNorm {
    type Output = Tensor<4>;
    fn run(&self, input: Tensor<4>) -> Tensor<4> {
        let output = self.forward(input);
        parameterless("LocalResponseNorm", &output);
        output
    }
}

impl<const D: usize> Layer<Tensor<D>> for Dropout {
    type Output = Tensor<D>;
    fn run(&self, input: Tensor<D>) -> Tensor<D> {
        let output = self.forward(input);
        parameterless("Dropout", &output);
        output
    }
}

/// Channel concatenation of parallel branches (the Inception module's output).
pub(crate) fn concat(branches: Vec<Tensor<4>>) -> Tensor<4> {
    let output = Tensor::cat(branches, 1);
    parameterless("Concat", &output);
    output
}

/// Flattens every axis but the batch axis.
pub(crate) fn flatten(input: Tensor<4>) -> Tensor<2> {
    let output: Tensor<2> = input.flatten(1, 3);
    parameterless("Flatten", &output);
    output
}
