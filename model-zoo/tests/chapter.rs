//! The chapter's own figures: shape trails, the Inception cost example, the 1×1 convolution, and
//! why residual blocks make identity easy to learn.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use model_zoo::blocks::{
    ConvUnitConfig, InceptionConfig, NaiveInceptionConfig, ResidualBlockConfig, ShortcutKind,
};
use model_zoo::summary::{LayerSummary, layer_costs};
use model_zoo::{Classifier, ModelOptions, summarize};

fn shapes_of<'a>(layers: &'a [LayerSummary], kind: &str) -> Vec<&'a [usize]> {
    layers
        .iter()
        .filter(|layer| layer.kind == kind)
        .map(|layer| layer.output_shape.as_slice())
        .collect()
}

#[test]
fn alexnet_course_shape_trail() {
    // 227×227×3 → 55×55×96 → pool 27×27×96 → 27×27×256 → pool 13×13×256 → 13×13×384 ×2 →
    // 13×13×256 → pool 6×6×256 = 9216 → FC 4096 → FC 4096 → softmax 1000.
    let device = Device::flex();
    let model = model_zoo::create("alexnet-course", &ModelOptions::new(), &device).unwrap();
    let summary = summarize(&model, "alexnet-course", [3, 227, 227], &device);
    let convs: Vec<&[usize]> = shapes_of(&summary.layers, "Conv2d");
    assert_eq!(
        convs,
        [
            &[96, 55, 55][..],
            &[256, 27, 27],
            &[384, 13, 13],
            &[384, 13, 13],
            &[256, 13, 13]
        ]
    );
    let pools = shapes_of(&summary.layers, "MaxPool2d");
    assert_eq!(pools, [&[96, 27, 27][..], &[256, 13, 13], &[256, 6, 6]]);
    assert_eq!(shapes_of(&summary.layers, "Flatten"), [&[9216][..]]);
    assert_eq!(
        shapes_of(&summary.layers, "Linear"),
        [&[4096][..], &[4096], &[1000]]
    );
    let names: Vec<&str> = summary
        .layers
        .iter()
        .map(|layer| layer.name.as_str())
        .collect();
    // torchvision's Sequential indices, so state-dict keys line up.
    for expected in [
        "features.0",
        "features.3",
        "features.6",
        "features.8",
        "features.10",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    for expected in ["classifier.1", "classifier.4", "classifier.6"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
}

#[test]
fn alexnet_paper_uses_grouped_convolutions_and_lrn() {
    let device = Device::flex();
    let model = model_zoo::create("alexnet-paper", &ModelOptions::new(), &device).unwrap();
    let summary = summarize(&model, "alexnet-paper", [3, 227, 227], &device);
    assert_eq!(
        shapes_of(&summary.layers, "LocalResponseNorm"),
        [&[96, 55, 55][..], &[256, 27, 27]]
    );
    // conv2: 256 filters of 5×5×48 (each GPU sees half of conv1's 96 maps) + bias.
    let conv2 = summary
        .layers
        .iter()
        .filter(|l| l.kind == "Conv2d")
        .nth(1)
        .unwrap();
    assert_eq!(conv2.params, 256 * 5 * 5 * 48 + 256);
}

#[test]
fn vgg16_shape_trail() {
    // 224×224×64 → pool 112 → ×128 → pool 56 → ×256 → pool 28 → ×512 → pool 14 → ×512 → pool 7.
    let device = Device::flex();
    let model = model_zoo::create("vgg16", &ModelOptions::new(), &device).unwrap();
    let summary = summarize(&model, "vgg16", [3, 224, 224], &device);
    assert_eq!(
        shapes_of(&summary.layers, "MaxPool2d"),
        [
            &[64, 112, 112][..],
            &[128, 56, 56],
            &[256, 28, 28],
            &[512, 14, 14],
            &[512, 7, 7]
        ]
    );
    let convs = shapes_of(&summary.layers, "Conv2d");
    assert_eq!(convs.len(), 13);
    assert_eq!(convs[0], [64, 224, 224]);
    assert_eq!(convs[12], [512, 14, 14]);
    assert_eq!(shapes_of(&summary.layers, "Flatten"), [&[25088][..]]);
    assert_eq!(shapes_of(&summary.layers, "Linear").len(), 3);
}

#[test]
fn vgg_accepts_cifar_sized_inputs() {
    let device = Device::flex();
    let options = ModelOptions::new().with_num_classes(Some(10));
    let model = model_zoo::create("vgg11_bn", &options, &device).unwrap();
    let logits = model.forward(Tensor::zeros([2, 3, 32, 32], &device));
    assert_eq!(logits.dims(), [2, 10]);
}

#[test]
fn nin_shape_trail() {
    // 224 → 54 → pool 26 → pool 12 → pool 5, then one 5×5 map per class, averaged.
    let device = Device::flex();
    let model = model_zoo::create("nin", &ModelOptions::new(), &device).unwrap();
    let summary = summarize(&model, "nin", [3, 224, 224], &device);
    assert_eq!(
        shapes_of(&summary.layers, "MaxPool2d"),
        [&[96, 26, 26][..], &[256, 12, 12], &[384, 5, 5]]
    );
    assert_eq!(shapes_of(&summary.layers, "Conv2d")[0], [96, 54, 54]);
    assert_eq!(shapes_of(&summary.layers, "Conv2d")[11], [1000, 5, 5]);
    assert!(
        shapes_of(&summary.layers, "Linear").is_empty(),
        "NiN has no FC layer"
    );

    let model = model_zoo::create("nin-cifar", &ModelOptions::new(), &device).unwrap();
    let summary = summarize(&model, "nin-cifar", [3, 32, 32], &device);
    assert_eq!(shapes_of(&summary.layers, "MaxPool2d"), [&[96, 16, 16][..]]);
    assert_eq!(shapes_of(&summary.layers, "AvgPool2d"), [&[192, 8, 8][..]]);
}

#[test]
fn five_by_five_convolution_costs_120_million_multiplications() {
    // 28×28×192 → 5×5 "same", 32 filters: 28·28·32 outputs × 5·5·192 = 120,422,400.
    let device = Device::flex();
    let x = Tensor::<4>::zeros([1, 192, 28, 28], &device);
    let conv = ConvUnitConfig::new([192, 32], 5)
        .with_padding(2)
        .with_batch_norm(false)
        .init(&device);
    let (y, layers) = layer_costs(|| conv.forward(x.clone()));
    assert_eq!(y.dims(), [1, 32, 28, 28]);
    assert_eq!(layers[0].macs, 120_422_400);

    // With a 16-channel 1×1 bottleneck: 2,408,448 + 10,035,200 = 12,443,648, a tenth.
    let shrink = ConvUnitConfig::pointwise(192, 16).init(&device);
    let expand = ConvUnitConfig::new([16, 32], 5)
        .with_padding(2)
        .with_batch_norm(false)
        .init(&device);
    let (y, layers) = layer_costs(|| expand.forward(shrink.forward(x)));
    assert_eq!(y.dims(), [1, 32, 28, 28]);
    let macs: Vec<u64> = layers.iter().map(|layer| layer.macs).collect();
    assert_eq!(macs, [2_408_448, 10_035_200]);
    assert_eq!(macs.iter().sum::<u64>(), 12_443_648);
}

#[test]
fn one_by_one_convolution_shrinks_channels() {
    // The chapter: 28×28×192 * 32 filters of 1×1×192 = 28×28×32.
    let device = Device::flex();
    let shrink = ConvUnitConfig::pointwise(192, 32).init(&device);
    let (y, layers) = layer_costs(|| shrink.forward(Tensor::ones([1, 192, 28, 28], &device)));
    assert_eq!(y.dims(), [1, 32, 28, 28]);
    assert_eq!(layers[0].params, 192 * 32 + 32);
    assert_eq!(layers[0].macs, 28 * 28 * 32 * 192);
}

#[test]
fn inception_module_outputs_256_channels() {
    // 28×28×192 → 64 (1×1) + 128 (3×3) + 32 (5×5) + 32 (pool) = 28×28×256.
    let device = Device::flex();
    let config = InceptionConfig::new(192, 64, 96, 128, 16, 32, 32);
    assert_eq!(config.out_channels(), 256);
    let module = config.init(&device);
    let (y, layers) = layer_costs(|| module.forward(Tensor::ones([2, 192, 28, 28], &device)));
    assert_eq!(y.dims(), [2, 256, 28, 28]);
    assert_eq!(layers.last().unwrap().kind, "Concat");

    // The naive module's pool branch keeps all 192 channels: 64 + 128 + 32 + 192.
    let naive = NaiveInceptionConfig::new(192, 64, 128, 32).init(&device);
    let y = naive.forward(Tensor::ones([1, 192, 28, 28], &device));
    assert_eq!(y.dims(), [1, 416, 28, 28]);
}

fn non_negative(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Uniform(0.0, 1.0), device)
}

fn max_abs_difference<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn residual_block_with_zero_last_layer_is_the_identity() {
    // a[l+2] = g(W[l+2] a[l+1] + b[l+2] + a[l]) = g(a[l]) = a[l] when W = 0, b = 0 and a ≥ 0.
    let device = Device::flex();
    let x = non_negative([2, 16, 8, 8], &device);
    let zero_last = |mut block: model_zoo::blocks::BasicBlock| {
        block.conv2.weight = Param::from_tensor(Tensor::zeros(block.conv2.weight.dims(), &device));
        block
    };
    let residual = zero_last(ResidualBlockConfig::new(16, 16).init_basic(&device));
    assert_eq!(
        max_abs_difference(residual.forward(x.clone()), x.clone()),
        0.0
    );

    let plain = zero_last(
        ResidualBlockConfig::new(16, 16)
            .with_residual(false)
            .init_basic(&device),
    );
    let y = plain.forward(x.clone());
    assert_eq!(y.clone().abs().max().into_scalar::<f32>(), 0.0);
    assert!(max_abs_difference(y, x) > 0.5);
}

#[test]
fn bottleneck_with_zero_last_layer_is_the_identity() {
    let device = Device::flex();
    let x = non_negative([2, 64, 8, 8], &device);
    let mut block = ResidualBlockConfig::new(64, 16).init_bottleneck(&device);
    block.conv3.weight = Param::from_tensor(Tensor::zeros(block.conv3.weight.dims(), &device));
    assert_eq!(max_abs_difference(block.forward(x.clone()), x), 0.0);
}

#[test]
fn option_a_shortcut_subsamples_and_zero_pads() {
    // With a zero last layer, a downsampling block with option A returns x[:, :, ::2, ::2]
    // with 8 zero channels before and after.
    let device = Device::flex();
    let x = non_negative([1, 16, 8, 8], &device);
    let mut block = ResidualBlockConfig::new(16, 32)
        .with_stride(2)
        .with_shortcut(ShortcutKind::ZeroPad)
        .init_basic(&device);
    block.conv2.weight = Param::from_tensor(Tensor::zeros(block.conv2.weight.dims(), &device));
    let y = block.forward(x.clone());
    assert_eq!(y.dims(), [1, 32, 4, 4]);
    let values = x.into_data().try_to_vec::<f32>().unwrap();
    let expected: Vec<f32> = (0..32)
        .flat_map(|c| (0..4).flat_map(move |h| (0..4).map(move |w| (c, h, w))))
        .map(|(c, h, w)| match c {
            8..24 => values[(c - 8) * 64 + 2 * h * 8 + 2 * w],
            _ => 0.0,
        })
        .collect();
    assert_eq!(y.into_data().try_to_vec::<f32>().unwrap(), expected);
}

#[test]
fn googlenet_returns_aux_logits_when_training() {
    let device = Device::flex();
    let options = ModelOptions::new()
        .with_aux_logits(true)
        .with_num_classes(Some(7));
    let model = model_zoo::create("googlenet", &options, &device).unwrap();
    let x = Tensor::zeros([2, 3, 64, 64], &device);
    let output = model.forward_train(x.clone());
    assert_eq!(output.logits.dims(), [2, 7]);
    let aux: Vec<[usize; 2]> = output.aux_logits.iter().map(|t| t.dims()).collect();
    assert_eq!(aux, [[2, 7], [2, 7]]);
    assert_eq!(model.forward(x).dims(), [2, 7]);

    let model = model.with_num_classes(3, &device);
    let output = model.forward_train(Tensor::zeros([1, 3, 64, 64], &device));
    assert_eq!(output.aux_logits[1].dims(), [1, 3]);
}

#[test]
fn googlenet_transform_input_rescales_imagenet_inputs_as_torchvision_does() {
    use model_zoo::models::googlenet::{GoogLeNetConfig, transform_input};
    let device = Device::flex();
    // torchvision: x_c · (std_c / 0.5) + (mean_c − 0.5) / 0.5, which maps an input normalised
    // with ImageNet's mean and std to (raw − 0.5) / 0.5.
    let raw = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
    let per_channel =
        |values: [f32; 3]| Tensor::<1>::from_floats(values, &device).reshape([1, 3, 1, 1]);
    let normalised =
        (raw.clone() - per_channel([0.485, 0.456, 0.406])) / per_channel([0.229, 0.224, 0.225]);
    let half_scaled = (raw - 0.5) / 0.5;
    assert!(max_abs_difference(transform_input(normalised.clone()), half_scaled.clone()) < 1e-6);

    let plain = GoogLeNetConfig::new().with_num_classes(5).init(&device);
    let mut pretrained_style = plain.clone();
    pretrained_style.transform_input = true;
    let built = GoogLeNetConfig::new()
        .with_transform_input(true)
        .init(&device);
    assert!(built.transform_input && !plain.transform_input);
    let expected = plain.forward(half_scaled);
    let scale = expected.clone().abs().max().into_scalar::<f32>();
    let difference = max_abs_difference(pretrained_style.forward(normalised), expected);
    assert!(
        difference <= 1e-5 * scale,
        "{difference} vs logits up to {scale}"
    );
}

#[test]
fn deepening_with_zero_residual_blocks_keeps_the_logits() {
    use model_zoo::models::cifar_resnet::{AppendedBlock, CifarResNetConfig};
    let device = Device::flex();
    let net = CifarResNetConfig::new(20).init(&device);
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let logits = net.forward(x.clone());
    let deepened = net.clone().deepen(2, AppendedBlock::ZeroResidual, &device);
    assert_eq!(deepened.layer3.len(), 5);
    assert_eq!(
        max_abs_difference(deepened.forward(x.clone()), logits.clone()),
        0.0
    );
    let plain = net.deepen(2, AppendedBlock::Plain, &device);
    assert!(max_abs_difference(plain.forward(x), logits) > 1e-3);
}
