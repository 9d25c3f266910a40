//! torchvision weights on the blocks where a key mapping or a number can go wrong, from small
//! fixtures that torch wrote (`tests/reference/weights_fixtures.py`): every tensor lands, the
//! outputs equal torch's in eval mode, bad files are named with what is wrong, and a saved
//! safetensors file carries torchvision's names.

use std::path::{Path, PathBuf};

use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNormConfig, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use model_zoo::blocks::sequential::forward_features;
use model_zoo::blocks::{FeatureLayer, InceptionConfig, ResidualBlockConfig};
use model_zoo::weights::{WeightsError, load_module_weights, load_weights, save_safetensors};
use model_zoo::{Classifier, ModelOptions};

/// Read at run time, not baked in by `env!`: a test binary reused from a shared target folder
/// must read the fixtures of the checkout it runs in.
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join(format!("tests/fixtures/weights/{name}"))
}

/// The fixture's input and torch's output as tensors, with the state dict's keys.
fn input_output<const D: usize>(
    name: &str,
    device: &Device,
) -> (Tensor<D>, Tensor<D>, Vec<String>) {
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap())
            .unwrap();
    let read = |kind: &str| {
        let shape: Vec<usize> = record[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let bytes = std::fs::read(fixture(&format!("{name}-{kind}.f32"))).unwrap();
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Tensor::<D>::from_data(TensorData::new(values, shape), device)
    };
    let keys = record["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    (read("input"), read("output"), keys)
}

/// max |ours − torch| / max |torch|.
fn relative_error<const D: usize>(ours: Tensor<D>, torch: Tensor<D>) -> f32 {
    assert_eq!(ours.dims(), torch.dims());
    let scale = torch.clone().abs().max().into_scalar::<f32>();
    (ours - torch).abs().max().into_scalar::<f32>() / scale
}

/// The tensor names in a safetensors file's header.
fn safetensors_keys(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
    let mut keys: Vec<String> = header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn torchvision_keys(keys: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = keys
        .iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("weights");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_basic_block_matches_torch_and_saves_under_torchvisions_names() {
    let device = Device::flex();
    let (x, y, keys) = input_output::<4>("basic_block", &device);
    let block = ResidualBlockConfig::new(8, 8).init_basic(&device);
    let block = load_module_weights(block, &fixture("basic_block.pth")).unwrap();
    let error = relative_error(block.forward(x.clone()), y.clone());
    assert!(error < 1e-5, "relative error {error}");

    let saved = out_dir().join("basic_block.safetensors");
    save_safetensors(&block, &saved).unwrap();
    assert_eq!(safetensors_keys(&saved), torchvision_keys(&keys));
    let again = ResidualBlockConfig::new(8, 8).init_basic(&device);
    let again = load_module_weights(again, &saved).unwrap();
    assert_eq!(
        again.forward(x.clone()).into_data(),
        block.forward(x).into_data()
    );
}

#[test]
fn a_bottleneck_with_its_downsample_projection_matches_torch() {
    let device = Device::flex();
    let (x, y, keys) = input_output::<4>("bottleneck", &device);
    assert!(keys.iter().any(|k| k == "downsample.0.weight"));
    let block = ResidualBlockConfig::new(8, 4)
        .with_stride(2)
        .init_bottleneck(&device);
    let block = load_module_weights(block, &fixture("bottleneck.pth")).unwrap();
    let error = relative_error(block.forward(x), y);
    assert!(error < 1e-5, "relative error {error}");
    let saved = out_dir().join("bottleneck.safetensors");
    save_safetensors(&block, &saved).unwrap();
    assert_eq!(safetensors_keys(&saved), torchvision_keys(&keys));
}

#[test]
fn a_vgg_bn_feature_stack_keeps_torchvisions_sequential_indices() {
    let device = Device::flex();
    let (x, y, keys) = input_output::<4>("vgg_bn_features", &device);
    let conv = |channels: [usize; 2]| {
        FeatureLayer::Conv(
            Conv2dConfig::new(channels, [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&device),
        )
    };
    let layers = vec![
        conv([3, 8]),
        FeatureLayer::BatchNorm(BatchNormConfig::new(8).init(&device)),
        FeatureLayer::Relu(Relu::new()),
        FeatureLayer::MaxPool(MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init()),
        conv([8, 16]),
        FeatureLayer::BatchNorm(BatchNormConfig::new(16).init(&device)),
        FeatureLayer::Relu(Relu::new()),
    ];
    let layers = load_module_weights(layers, &fixture("vgg_bn_features.pth")).unwrap();
    let error = relative_error(forward_features(&layers, x), y);
    assert!(error < 1e-5, "relative error {error}");
    let saved = out_dir().join("vgg_bn.safetensors");
    save_safetensors(&layers, &saved).unwrap();
    assert_eq!(safetensors_keys(&saved), torchvision_keys(&keys));
}

#[test]
fn an_inception_block_with_its_pool_branch_matches_torch() {
    let device = Device::flex();
    let (x, y, keys) = input_output::<4>("inception", &device);
    assert!(keys.iter().any(|k| k == "branch4.1.conv.weight"));
    let block = InceptionConfig::new(16, 4, 4, 8, 2, 4, 4)
        .with_kernel_5x5(3)
        .init(&device);
    let block = load_module_weights(block, &fixture("inception.pth")).unwrap();
    let error = relative_error(block.forward(x), y);
    assert!(error < 1e-5, "relative error {error}");
    let saved = out_dir().join("inception.safetensors");
    save_safetensors(&block, &saved).unwrap();
    assert_eq!(safetensors_keys(&saved), torchvision_keys(&keys));
}

#[test]
fn a_linear_head_is_transposed_on_the_way_in() {
    let device = Device::flex();
    let (x, y, _) = input_output::<2>("linear_head", &device);
    let head = LinearConfig::new(16, 5).init(&device);
    let head = load_module_weights(head, &fixture("linear_head.pth")).unwrap();
    let error = relative_error(head.forward(x), y);
    assert!(error < 1e-5, "relative error {error}");
}

#[test]
fn weights_that_do_not_fit_are_listed_by_name() {
    let device = Device::flex();
    // A BasicBlock's file into a Bottleneck: conv3/bn3 missing, and conv1 of the wrong shape.
    let block = ResidualBlockConfig::new(8, 8).init_bottleneck(&device);
    let error = load_module_weights(block, &fixture("basic_block.pth")).unwrap_err();
    let WeightsError::Mismatch(mismatch) = &error else {
        panic!("{error}")
    };
    assert!(
        mismatch.missing.iter().any(|k| k.starts_with("conv3")),
        "{:?}",
        mismatch.missing
    );
    assert!(!mismatch.wrong_shapes.is_empty(), "{error}");
    let message = error.to_string();
    assert!(message.contains("basic_block.pth"), "{message}");
    assert!(message.contains("missing"), "{message}");

    let not_weights = out_dir().join("not-weights.pth");
    std::fs::write(&not_weights, b"not a pickle").unwrap();
    let block = ResidualBlockConfig::new(8, 8).init_basic(&device);
    let error = load_module_weights(block, &not_weights).unwrap_err();
    assert!(matches!(error, WeightsError::File { .. }), "{error}");
    assert!(error.to_string().contains("not-weights.pth"), "{error}");

    let block = ResidualBlockConfig::new(8, 8).init_basic(&device);
    let error = load_module_weights(block, Path::new("weights.onnx")).unwrap_err();
    assert!(
        error.to_string().contains("unknown weights format"),
        "{error}"
    );
}

#[test]
fn a_file_for_another_depth_gets_a_hint() {
    let device = Device::flex();
    let options = ModelOptions::new();
    let resnet20 = model_zoo::create("cifar-resnet20", &options, &device).unwrap();
    let saved = out_dir().join("cifar-resnet20.safetensors");
    save_safetensors(&resnet20, &saved).unwrap();
    let resnet32 = model_zoo::create("cifar-resnet32", &options, &device).unwrap();
    let error = load_weights(resnet32, "cifar-resnet32", &saved, &device).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("hint: the file fits cifar-resnet20"),
        "{message}"
    );
    // And the right entry takes it back whole.
    let fresh = model_zoo::create("cifar-resnet20", &options, &device).unwrap();
    let loaded = load_weights(fresh, "cifar-resnet20", &saved, &device).unwrap();
    let x = Tensor::<4>::ones([1, 3, 32, 32], &device);
    assert_eq!(
        loaded.forward(x.clone()).into_data(),
        resnet20.forward(x).into_data()
    );
}

#[test]
fn googlenet_aux_heads_are_optional_in_the_file_not_in_the_model() {
    let device = Device::flex();
    let with_aux = model_zoo::create(
        "googlenet",
        &ModelOptions::new().with_aux_logits(true),
        &device,
    )
    .unwrap();
    let saved = out_dir().join("googlenet-aux.safetensors");
    save_safetensors(&with_aux, &saved).unwrap();
    assert!(
        safetensors_keys(&saved)
            .iter()
            .any(|k| k == "aux1.fc2.weight")
    );
    let without = model_zoo::create("googlenet", &ModelOptions::new(), &device).unwrap();
    let loaded = load_weights(without, "googlenet", &saved, &device).unwrap();
    let x = Tensor::<4>::ones([1, 3, 64, 64], &device);
    assert_eq!(
        loaded.forward(x.clone()).into_data(),
        with_aux.forward(x).into_data()
    );

    let plain = out_dir().join("googlenet.safetensors");
    save_safetensors(&loaded, &plain).unwrap();
    let wants_aux = model_zoo::create(
        "googlenet",
        &ModelOptions::new().with_aux_logits(true),
        &device,
    )
    .unwrap();
    let error = load_weights(wants_aux, "googlenet", &plain, &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("missing") && error.contains("aux1."),
        "{error}"
    );
}

#[test]
fn a_pickle_that_asks_for_a_command_is_refused_and_a_plain_one_loads() {
    // `model-zoo/tests/reference/hostile_fixtures.py`: a state dict holding a value whose
    // pickle calls os.system (posix.system on Linux), in both of torch's formats.
    let device = Device::flex();
    for name in ["hostile.pth", "hostile-protocol4.pth", "hostile-legacy.pth"] {
        let linear = LinearConfig::new(4, 3).init(&device);
        let error = load_module_weights(linear, &fixture(name))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(name) && error.contains("refused") && error.contains("system`"),
            "{error}"
        );
    }
    let linear = LinearConfig::new(4, 3).init(&device);
    let loaded = load_module_weights(linear, &fixture("linear-legacy.pth")).unwrap();
    let weight: f32 = loaded.weight.val().abs().sum().into_scalar::<f32>();
    assert!(weight > 0.0, "the legacy file's weights were read");
}
