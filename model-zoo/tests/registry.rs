//! The registry's face: every entry is created by name, runs a batch, splits into features and
//! head, and takes a new head.

use burn::prelude::*;
use burn::tensor::Distribution;
use model_zoo::{Classifier, ModelOptions};

#[test]
fn small_entries_run_a_batch_and_split_into_features_and_head() {
    let device = Device::flex();
    for info in model_zoo::MODELS.iter().filter(|info| info.input[1] == 32) {
        let model = info.build(&ModelOptions::new(), &device);
        let [c, h, w] = info.input;
        let x = Tensor::random([3, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let logits = model.forward(x.clone());
        assert_eq!(logits.dims(), [3, info.num_classes], "{}", info.name);
        let split = model.forward_head(model.forward_features(x));
        let difference: f32 = (logits - split).abs().max().into_scalar::<f32>();
        assert_eq!(difference, 0.0, "{}: forward = head ∘ features", info.name);
    }
}

#[test]
fn heads_are_replaced_for_every_family() {
    let device = Device::flex();
    for name in [
        "lenet5",
        "alexnet-course",
        "vgg11",
        "resnet18",
        "cifar-resnet20",
        "nin-cifar",
    ] {
        let model = model_zoo::create(name, &ModelOptions::new(), &device).unwrap();
        let before = model_zoo::count_parameters(&model);
        let classes = model.num_classes();
        let model = model.with_num_classes(3, &device);
        assert_eq!(model.num_classes(), 3, "{name}");
        assert!(
            model_zoo::count_parameters(&model) < before,
            "{name}: {classes} → 3 classes"
        );
    }
}

#[test]
fn options_change_classes_and_channels() {
    let device = Device::flex();
    let options = ModelOptions::new()
        .with_num_classes(Some(5))
        .with_in_channels(Some(1));
    let model = model_zoo::create("resnet18", &options, &device).unwrap();
    assert_eq!(
        model.forward(Tensor::zeros([1, 1, 64, 48], &device)).dims(),
        [1, 5]
    );

    let options = ModelOptions::new().with_input_size(Some(28));
    let model = model_zoo::create("lenet5-modern", &options, &device).unwrap();
    assert_eq!(
        model.forward(Tensor::zeros([2, 1, 28, 28], &device)).dims(),
        [2, 10]
    );
}

#[test]
fn unknown_names_list_close_matches() {
    let device = Device::flex();
    let error = model_zoo::create("resnt50", &ModelOptions::new(), &device).unwrap_err();
    assert_eq!(error.close_matches[0], "resnet50");
    let message = error.to_string();
    assert!(message.contains("unknown model 'resnt50'"), "{message}");
    assert!(message.contains("did you mean resnet50"), "{message}");

    let error = model_zoo::info("vgg").unwrap_err();
    assert!(
        error.close_matches.contains(&"vgg11"),
        "{:?}",
        error.close_matches
    );
    assert!(
        model_zoo::info("VGG16").is_ok(),
        "names are case-insensitive"
    );
}

#[test]
fn names_are_unique() {
    let mut names = model_zoo::names();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count);
}

/// Mixed precision's rule (`model_zoo::blocks::precision`): each family, given a half-precision
/// input, computes in that type to its logits, and its parameters' gradients come back `f32`.
#[test]
fn every_family_computes_in_its_inputs_float_type_with_f32_gradients() {
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::DType;

    struct GradTypes<'a>(&'a burn::tensor::Gradients, Vec<DType>);
    impl ModuleVisitor for GradTypes<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = param.val().grad(self.0) {
                self.1.push(grad.dtype());
            }
        }
    }

    let device = Device::flex().autodiff();
    for (name, size) in [
        ("lenet5", 32),
        ("alexnet-paper", 67),
        ("vgg11_bn", 32),
        ("resnet50", 32),
        ("cifar-resnet20", 32),
        ("nin-cifar", 32),
        ("googlenet", 32),
        ("googlenet-paper", 32),
    ] {
        let options = ModelOptions::new().with_input_size(Some(size));
        let model = model_zoo::create(name, &options, &device).unwrap();
        let channels = model_zoo::info(name).unwrap().input[0];
        for dtype in [DType::BF16, DType::F16] {
            let x = Tensor::<4>::random(
                [2, channels, size, size],
                Distribution::Normal(0.0, 1.0),
                &device,
            )
            .cast(dtype);
            let output = model.forward_train(x);
            assert_eq!(output.logits.dtype(), dtype, "{name}");
            let mut loss = output.logits.cast(DType::F32).sum();
            for aux in output.aux_logits {
                assert_eq!(aux.dtype(), dtype, "{name}: auxiliary head");
                loss = loss + aux.cast(DType::F32).sum();
            }
            let grads = loss.backward();
            let mut types = GradTypes(&grads, Vec::new());
            model.visit(&mut types);
            assert!(!types.1.is_empty(), "{name}: no gradients");
            assert!(
                types.1.iter().all(|grad| *grad == DType::F32),
                "{name} {dtype:?}: gradients {:?}",
                types.1
            );
        }
    }
}

/// Each entry's default input, or 64×64 for the ImageNet networks that take any size.
fn small_input(info: &model_zoo::ModelInfo) -> [usize; 3] {
    let fixed = matches!(info.name, "alexnet-course" | "alexnet-paper" | "nin");
    match info.input {
        [c, 224, 224] if !fixed => [c, 64, 64],
        input => input,
    }
}

#[test]
fn every_entry_gives_its_stage_maps_shallow_to_deep() {
    let device = Device::flex();
    for info in model_zoo::MODELS.iter() {
        let model = info.build(&ModelOptions::new(), &device);
        let [c, h, w] = small_input(info);
        let x = Tensor::random([2, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let maps = model.forward_intermediates(x.clone());
        assert!(maps.len() >= 2, "{}: {} maps", info.name, maps.len());
        let sides: Vec<usize> = maps.iter().map(|map| map.dims()[2]).collect();
        assert!(
            sides.windows(2).all(|pair| pair[0] > pair[1]),
            "{}: sides {sides:?}",
            info.name
        );
        let last = maps.last().unwrap().clone();
        let difference: f32 = (last - model.forward_features(x))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert_eq!(
            difference, 0.0,
            "{}: the last map is forward_features'",
            info.name
        );
        let info_maps = model_zoo::feature_info(&model, [c, h, w], &device);
        let channels: Vec<usize> = maps.iter().map(|map| map.dims()[1]).collect();
        let described: Vec<usize> = info_maps.iter().map(|map| map.channels).collect();
        assert_eq!(channels, described, "{}", info.name);
    }
}

#[test]
fn stage_maps_match_timm_feature_info() {
    let device = Device::flex();
    // timm 1.0's `create_model(name, features_only=True).feature_info`: `.channels()` and
    // `.reduction()` (vgg16's last map is pool5's, `features.30`).
    for (name, channels, reductions) in [
        (
            "resnet50",
            vec![64, 256, 512, 1024, 2048],
            vec![2, 4, 8, 16, 32],
        ),
        (
            "resnet18",
            vec![64, 64, 128, 256, 512],
            vec![2, 4, 8, 16, 32],
        ),
        (
            "vgg16",
            vec![64, 128, 256, 512, 512, 512],
            vec![1, 2, 4, 8, 16, 32],
        ),
        ("cifar-resnet20", vec![16, 32, 64], vec![1, 2, 4]),
    ] {
        let model = model_zoo::create(name, &ModelOptions::new(), &device).unwrap();
        let input = small_input(model_zoo::info(name).unwrap());
        let maps = model_zoo::feature_info(&model, input, &device);
        let got: (Vec<usize>, Vec<usize>) = (
            maps.iter().map(|m| m.channels).collect(),
            maps.iter().map(|m| m.reduction).collect(),
        );
        assert_eq!(got, (channels, reductions), "{name}");
    }
}

#[test]
fn a_network_of_zoo_blocks_joins_the_registry_by_name() {
    use model_zoo::blocks::ConvUnitConfig;
    use model_zoo::models::custom::{BlockConfig, BlockNetConfig};
    use model_zoo::{FamilyEntry, ModelArgs};

    fn tiny(args: &ModelArgs, device: &Device) -> model_zoo::models::custom::BlockNet {
        BlockNetConfig::new(
            vec![
                BlockConfig::Conv(
                    ConvUnitConfig::new([args.in_channels, 8], 3)
                        .with_padding(1)
                        .with_batch_norm(true),
                ),
                BlockConfig::MaxPool([2, 2]),
                BlockConfig::Conv(ConvUnitConfig::pointwise(8, 4)),
            ],
            args.num_classes,
        )
        .init(device)
    }
    let entry = FamilyEntry {
        name: "registry-test-net",
        paper: "a test",
        input: [1, 32, 32],
        num_classes: 10,
        build: tiny,
    };
    model_zoo::register(entry).unwrap();
    let device = Device::flex();
    let model = model_zoo::create("registry-test-net", &ModelOptions::new(), &device).unwrap();
    // 3×3×1→8 without bias (batch norm follows) 72, batch norm 16, 1×1 8→4 with bias 36, the
    // head 4→10 50.
    assert_eq!(model_zoo::count_parameters(&model), 72 + 16 + 36 + 50);
    let images = Tensor::<4>::random([2, 1, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(
        model.forward_features(images.clone()).dims(),
        [2, 4, 16, 16]
    );
    let model = model.with_num_classes(3, &device);
    assert_eq!(model.forward(images).dims(), [2, 3]);
    assert_eq!(
        model_zoo::info("registry-test-net").unwrap().paper,
        "a test"
    );
    // A name taken, by this network or by a built-in one, is refused.
    assert!(model_zoo::register(entry).unwrap_err().contains("already"));
    let taken = FamilyEntry {
        name: "resnet18",
        ..entry
    };
    assert!(model_zoo::register(taken).is_err());
}
