//! How the zoo's convolutions are computed: by the backend's own convolution kernel, or lowered
//! to one matrix product over image patches ("im2col", Chellapilla et al. 2006; the lowering
//! behind cuDNN's GEMM algorithms) whose gradients are the backend's own convolution gradients.
//!
//! Why: on Burn 0.22.1's GPU backends an f32 convolution wider than 1×1 has one forward kernel
//! that runs, a direct convolution (its implicit-GEMM rivals need tensor-core types and decline
//! for f32), far below the same backend's f32 matrix products, while the convolution gradients
//! have im2col candidates of their own (measured in `docs/kernels.md`). An earlier lowering
//! written as differentiable tensor ops was slower than the direct kernel: autodiff turned its
//! patch gathering into `k²`
//! scatter-adds. Here the lowering is one backend operation (a Burn backend extension) whose
//! backward pass is the backend's `conv2d_x_backward` and `conv2d_weight_backward`, so only the
//! forward pass changes. On flex all three passes are the zoo's own patch-matrix kernels
//! (`lowering/patches.rs`, chosen by `lowering/cpu.rs`), which spend less of a step outside
//! matrix products than flex's, except
//! the forward and input-gradient passes of 3×3 "same" convolutions on AVX-512 CPUs, which are
//! direct (`lowering/direct.rs`), maps with fewer pixels than kernel taps, whose passes are
//! products with the convolution's matrix (`lowering/dense.rs`), and the other 3×3 "same"
//! convolutions of 64 channels or more, computed by Winograd's F(2×2, 3×3)
//! (`lowering/winograd.rs`). The
//! choice is process-wide, like PyTorch's `torch.backends.cudnn` switches; the parameters, and
//! so checkpoints, are the same either way.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::ops::ModuleOps;
use burn::backend::ops::conv::calculate_conv_output_sizes;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape, Slice};
use serde::{Deserialize, Serialize};

use self::shared::Geometry;
use crate::support::{TapWindow, f32_tensor, f32_values, on_flex, on_gpu, tap_window};

mod cpu;
mod dense;
mod direct;
mod patches;
mod shared;
mod winograd;

/// How the zoo computes a `Conv2d` (model-zoo's layer tracing calls [`conv2d`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvLowering {
    /// [`ConvLowering::Gemm`] on flex in `f32`, where the zoo's patch-matrix kernels train
    /// CIFAR ResNet-20 1.6× as fast as flex's own convolutions (`benches/RESULTS.md`);
    /// [`ConvLowering::Native`] on every other backend and float type.
    #[default]
    Auto,
    /// The backend's convolution (`Conv2d::forward`).
    Native,
    /// Patches gathered into a matrix, then one batched matrix product with the kernel
    /// ([`conv2d_as_gemm`]). Costs the patch matrix in memory: `k²` times the input (on flex,
    /// one image's band of at most 4 MiB per thread).
    Gemm,
}

impl ConvLowering {
    /// Every choice, as the command line names them.
    pub const ALL: [ConvLowering; 3] =
        [ConvLowering::Auto, ConvLowering::Native, ConvLowering::Gemm];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ConvLowering::Auto => "auto",
            ConvLowering::Native => "native",
            ConvLowering::Gemm => "gemm",
        }
    }

    /// What this choice means for convolutions on `device`: [`ConvLowering::Native`] or
    /// [`ConvLowering::Gemm`].
    pub fn on(self, device: &Device) -> ConvLowering {
        self.on_input(device, device.settings().float_dtype.into())
    }

    /// What this choice means for a convolution of a `dtype` input on `device` (under mixed
    /// precision the input's type is not the device's default).
    pub fn on_input(self, device: &Device, dtype: DType) -> ConvLowering {
        let f32_flex = dtype == DType::F32 && on_flex(device);
        match self {
            ConvLowering::Auto if f32_flex => ConvLowering::Gemm,
            ConvLowering::Auto => ConvLowering::Native,
            chosen => chosen,
        }
    }
}

impl fmt::Display for ConvLowering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConvLowering {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|lowering| lowering.name() == name)
            .ok_or_else(|| {
                format!("unknown convolution lowering '{name}' (expected auto, native or gemm)")
            })
    }
}

static LOWERING: AtomicU8 = AtomicU8::new(0);

/// Chooses how every zoo convolution in this process is computed from now on.
pub fn set_conv_lowering(lowering: ConvLowering) {
    LOWERING.store(lowering as u8, Ordering::Relaxed);
}

/// The lowering in force ([`ConvLowering::Auto`] unless [`set_conv_lowering`] said otherwise).
pub fn conv_lowering() -> ConvLowering {
    let stored = LOWERING.load(Ordering::Relaxed);
    ConvLowering::ALL
        .into_iter()
        .find(|lowering| *lowering as u8 == stored)
        .unwrap_or_default()
}

/// The convolution of `input` by `weight` (plus `bias`), computed the way [`conv_lowering`]
/// says. Convolutions the lowering does not cover (grouped, asymmetric padding) take the
/// backend's own kernel, where a GPU backend gets the bias as a separate addition (see
/// [`native_conv2d`]).
pub fn conv2d(
    input: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let device = input.device();
    let lowering = conv_lowering().on_input(&device, input.dtype());
    let symmetric = options.padding.iter().all(|(begin, end)| begin == end);
    if lowering == ConvLowering::Gemm && options.groups == 1 && symmetric {
        gemm_conv2d(input, weight, bias, options)
    } else {
        native_conv2d(input, weight, bias, options, on_gpu(&device))
    }
}

/// The backend's convolution; with `bias_apart`, a bias-free one followed by the bias added
/// as its own operation, which the GPU backends' fusion merges into the next element-wise
/// kernel. Why: cubek 0.3.1's implicit-GEMM convolution (the tensor-core kernel) charges a
/// bias stage against shared memory after choosing its tiling and then declines, so every
/// biased convolution (VGG, AlexNet, LeNet-5, NiN, GoogLeNet-paper) fell back to the direct
/// kernel (`benches/RESULTS.md`, run 5). The result is the same up to rounding.
fn native_conv2d(
    input: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    bias_apart: bool,
) -> Tensor<4> {
    match bias {
        Some(bias) if bias_apart => {
            let channels = bias.dims()[0];
            burn::tensor::module::conv2d(input, weight, None, options)
                + bias.reshape([1, channels, 1, 1])
        }
        bias => burn::tensor::module::conv2d(input, weight, bias, options),
    }
}

/// The backend's convolution options for `conv`, when it is one [`conv2d_as_gemm`] covers.
fn lowered_options(conv: &Conv2d) -> Option<ConvOptions<2>> {
    if conv.groups != 1 {
        return None;
    }
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        // `Same` depends on the input's size; Burn works it out inside `forward`.
        PaddingConfig2d::Same => return None,
    };
    Some(ConvOptions::new_with_padding(
        conv.stride,
        padding,
        conv.dilation,
        1,
    ))
}

/// `conv.forward(input)` computed as one matrix product over image patches: the input's
/// `kh·kw` shifted windows are copied into a patch matrix `[B, kh·kw·C, OH·OW]` (zero where a
/// window reaches into the padding), and the kernel, reordered to `[O, kh·kw·C]`, multiplies
/// it. The gradients are the backend's own convolution gradients, except on flex, where they
/// are patch-matrix products too.
///
/// # Panics
/// If `conv` is grouped or uses `Same` padding; model-zoo's layers send those to
/// `Conv2d::forward` instead.
pub fn conv2d_as_gemm(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    let options = lowered_options(conv)
        .expect("conv2d_as_gemm covers ungrouped convolutions with explicit or no padding");
    gemm_conv2d(
        input,
        conv.weight.val(),
        conv.bias.as_ref().map(|bias| bias.val()),
        options,
    )
}

/// [`conv2d_as_gemm`] of `input` by `weight`, then `bias` added.
fn gemm_conv2d(
    input: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let output = Tensor::<4>::from_dispatch(Dispatch::conv2d_patch_matmul(
        input.into_dispatch(),
        weight.into_dispatch(),
        options,
    ));
    match bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            output + bias.reshape([1, channels, 1, 1])
        }
        None => output,
    }
}

/// A convolution computed as a matrix product over image patches, one backend operation with
/// its own backward pass (see the module documentation).
#[backend_extension(Flex, NdArray, Cube, Fusion, Autodiff)]
pub trait PatchMatmulConv: Backend {
    /// The ungrouped, bias-free convolution of `x` `[B, C, H, W]` by `weight` `[O, C, kh, kw]`.
    #[fusion(dtype = x, shape = output_shape(x, weight, options))]
    fn conv2d_patch_matmul(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        patch_matmul::<Self>(x, weight, &options)
    }

    /// The gradient with respect to `x` of [`Self::conv2d_patch_matmul`], given the gradient
    /// with respect to its output; by default the backend's own.
    #[fusion(default)]
    fn conv2d_patch_matmul_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options)
    }

    /// The gradient with respect to `weight` of [`Self::conv2d_patch_matmul`]; by default the
    /// backend's own.
    #[fusion(default)]
    fn conv2d_patch_matmul_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options)
    }
}

/// On flex all three passes are the zoo's own patch-matrix kernels (`cpu.rs`) for `f32`.
impl PatchMatmulConv for Flex {
    fn conv2d_patch_matmul(
        x: FlexTensor,
        weight: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let Some(geometry) = f32_geometry(&x, &weight, &options) else {
            return patch_matmul::<Self>(x, weight, &options);
        };
        let output = cpu::forward(&geometry, &f32_values(&x), &f32_values(&weight));
        let [out_h, out_w] = geometry.output;
        f32_tensor(
            output,
            [geometry.batch, geometry.out_channels, out_h, out_w],
        )
    }

    fn conv2d_patch_matmul_x_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let Some(geometry) = f32_geometry(&x, &weight, &options) else {
            return Self::conv2d_x_backward(x, weight, output_grad, options);
        };
        let input_grad =
            cpu::input_gradient(&geometry, &f32_values(&weight), &f32_values(&output_grad));
        f32_tensor(input_grad, x.shape())
    }

    fn conv2d_patch_matmul_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let Some(geometry) = f32_geometry(&x, &weight, &options) else {
            return Self::conv2d_weight_backward(x, weight, output_grad, options);
        };
        let weight_grad =
            cpu::weight_gradient(&geometry, &f32_values(&x), &f32_values(&output_grad));
        f32_tensor(weight_grad, weight.shape())
    }
}

impl PatchMatmulConv for burn::backend::NdArray {}
impl PatchMatmulConv for burn::backend::wgpu::CubeBackend {}

/// The sizes of the convolution of `x` by `weight`, when both are `f32` (the only type the CPU
/// kernels take).
fn f32_geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<Geometry> {
    if x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return None;
    }
    let [batch, channels, height, width] = x.shape().dims();
    let [out_channels, _, kernel_h, kernel_w] = weight.shape().dims();
    Some(Geometry {
        batch,
        channels,
        input: [height, width],
        out_channels,
        kernel: [kernel_h, kernel_w],
        stride: options.stride,
        padding: [options.padding[0].0, options.padding[1].0],
        dilation: options.dilation,
        output: output_size([height, width], [kernel_h, kernel_w], options),
    })
}

/// `[B, O, OH, OW]` for an input of shape `x` and a kernel of shape `weight`.
fn output_shape(x: &Shape, weight: &Shape, options: &ConvOptions<2>) -> Shape {
    let [batch, _, height, width] = x.dims();
    let [out_channels, _, kernel_h, kernel_w] = weight.dims();
    let [out_h, out_w] = output_size([height, width], [kernel_h, kernel_w], options);
    Shape::new([batch, out_channels, out_h, out_w])
}

fn output_size(input: [usize; 2], kernel: [usize; 2], options: &ConvOptions<2>) -> [usize; 2] {
    let sizes = calculate_conv_output_sizes(
        &kernel,
        &options.stride,
        &options.padding,
        &options.dilation,
        &input,
    );
    [sizes[0], sizes[1]]
}

/// The forward pass on any backend, from its own tensor operations: one strided slice and one
/// slice assignment per kernel tap build the patch matrix, then one batched matrix product.
fn patch_matmul<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    options: &ConvOptions<2>,
) -> FloatTensor<B> {
    let [batch, channels, height, width] = x.shape().dims();
    let [out_channels, _, kernel_h, kernel_w] = weight.shape().dims();
    let [out_h, out_w] = output_size([height, width], [kernel_h, kernel_w], options);
    let taps = kernel_h * kernel_w;
    let device = x.device();
    let dtype = x.dtype().into();

    let windows: Vec<Option<(TapWindow, TapWindow)>> = (0..taps)
        .map(|tap| {
            let row = tap_window(
                tap / kernel_w,
                height,
                out_h,
                options.stride[0],
                options.padding[0].0,
                options.dilation[0],
            )?;
            let column = tap_window(
                tap % kernel_w,
                width,
                out_w,
                options.stride[1],
                options.padding[1].0,
                options.dilation[1],
            )?;
            Some((row, column))
        })
        .collect();
    // The buffer only needs zeros where some tap's window stops short of the output's edge.
    let clipped = windows.iter().any(|window| match window {
        None => true,
        Some((row, column)) => {
            row.first > 0 || row.last < out_h || column.first > 0 || column.last < out_w
        }
    });
    let depth = taps * channels;
    let pointwise = taps == 1 && options.stride == [1, 1] && !clipped;
    if pointwise {
        // A 1×1 convolution's patch matrix is the input itself.
        return lowered_product::<B>(x, weight, [batch, out_channels, out_h, out_w], depth);
    }
    let patches_shape = Shape::new([batch, depth, out_h, out_w]);
    let mut patches = match clipped {
        true => B::float_zeros(patches_shape, &device, dtype),
        false => B::float_empty(patches_shape, &device, dtype),
    };
    for (tap, window) in windows.into_iter().enumerate() {
        let Some((row, column)) = window else {
            continue;
        };
        let read = |window: &TapWindow, stride: usize| Slice {
            start: window.start as isize,
            end: Some((window.start + (window.last - window.first - 1) * stride + 1) as isize),
            step: stride as isize,
        };
        let source = B::float_slice(
            x.clone(),
            &[
                Slice::from(0..batch),
                Slice::from(0..channels),
                read(&row, options.stride[0]),
                read(&column, options.stride[1]),
            ],
        );
        patches = B::float_slice_assign(
            patches,
            &[
                Slice::from(0..batch),
                Slice::from(tap * channels..(tap + 1) * channels),
                Slice::from(row.first..row.last),
                Slice::from(column.first..column.last),
            ],
            source,
        );
    }

    lowered_product::<B>(patches, weight, [batch, out_channels, out_h, out_w], depth)
}

/// The kernel times the patch matrix `patches` (`[B, depth, OH, OW]`, rows in (tap, channel)
/// order), as the convolution's output `[B, O, OH, OW]`.
fn lowered_product<B: Backend>(
    patches: FloatTensor<B>,
    weight: FloatTensor<B>,
    [batch, out_channels, out_h, out_w]: [usize; 4],
    depth: usize,
) -> FloatTensor<B> {
    let patches = B::float_reshape(patches, Shape::new([batch, depth, out_h * out_w]));
    // [O, C, kh, kw] → [1, O, kh·kw·C], the patches' row order.
    let kernel = B::float_permute(weight, &[0, 2, 3, 1]);
    let kernel = B::float_reshape(kernel, Shape::new([1, out_channels, depth]));
    let output = B::float_matmul(kernel, patches);
    B::float_reshape(output, Shape::new([batch, out_channels, out_h, out_w]))
}

impl<B: PatchMatmulConv, C: CheckpointStrategy> PatchMatmulConv for Autodiff<B, C> {
    fn conv2d_patch_matmul(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        /// The backward pass of a convolution, whichever way its forward pass ran.
        #[derive(Debug)]
        struct ConvGradients;

        impl<B: PatchMatmulConv> Backward<B, 2> for ConvGradients {
            type State = (NodeId, NodeId, ConvOptions<2>);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_weight] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, weight_state, options) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                let weight =
                    checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
                if let Some(node) = node_x {
                    let grad_x = B::conv2d_patch_matmul_x_backward(
                        x.clone(),
                        weight.clone(),
                        grad.clone(),
                        options.clone(),
                    );
                    grads.register::<B>(node.id, grad_x);
                }
                if let Some(node) = node_weight {
                    let grad_weight =
                        B::conv2d_patch_matmul_weight_backward(x, weight, grad, options);
                    grads.register::<B>(node.id, grad_weight);
                }
            }
        }

        match ConvGradients
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                prep.finish(
                    (x_state, weight_state, options.clone()),
                    B::conv2d_patch_matmul(x.into_primitive(), weight.into_primitive(), options),
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_patch_matmul(
                x.into_primitive(),
                weight.into_primitive(),
                options,
            )),
        }
    }
}
