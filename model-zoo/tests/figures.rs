//! Every registry entry's parameters and MACs at its default input, pinned to outside figures:
//! torchvision's own models (`reference/torchvision_figures.py`, run with torch 2.x and
//! torchvision 0.2x) and, where torchvision has no twin, the papers' layer tables
//! (`reference/paper_figures.py`, plain arithmetic). The figures agree with both.
//!
//! Each summary is a real forward pass on the flex CPU backend, so this also checks that every
//! entry runs at full size and returns one logit per class.

use burn::prelude::*;
use model_zoo::{ModelOptions, summarize};

/// (name, parameters, MACs at the entry's default input).
const FIGURES: &[(&str, usize, u64)] = &[
    // LeNet-5 as in the chapter (paper_figures.py; the issue: 61,706 and 416,520).
    ("lenet5", 61_706, 416_520),
    ("lenet5-modern", 61_706, 416_520),
    // torchvision_figures.py.
    ("alexnet", 61_100_840, 714_188_480),
    // paper_figures.py (the issue: 62,378,344 and 60,965,224 parameters), at 227×227.
    ("alexnet-course", 62_378_344, 1_135_256_096),
    ("alexnet-paper", 60_965_224, 724_406_816),
    // torchvision_figures.py.
    ("vgg11", 132_863_336, 7_609_090_048),
    ("vgg11_bn", 132_868_840, 7_609_090_048),
    ("vgg13", 133_047_848, 11_308_466_176),
    ("vgg13_bn", 133_053_736, 11_308_466_176),
    ("vgg16", 138_357_544, 15_470_264_320),
    ("vgg16_bn", 138_365_992, 15_470_264_320),
    ("vgg19", 143_667_240, 19_632_062_464),
    ("vgg19_bn", 143_678_248, 19_632_062_464),
    ("resnet18", 11_689_512, 1_814_073_344),
    ("resnet34", 21_797_672, 3_663_761_408),
    ("resnet50", 25_557_032, 4_089_184_256),
    ("resnet101", 44_549_160, 7_801_405_440),
    ("resnet152", 60_192_808, 11_513_626_624),
    // torchvision_figures.py, the residual nets less their projection shortcuts.
    ("plain-resnet18", 11_515_688, 1_794_805_760),
    ("plain-resnet34", 21_623_848, 3_644_493_824),
    ("plain-resnet50", 22_780_456, 3_729_522_688),
    ("plain-resnet101", 41_772_584, 7_441_743_872),
    ("plain-resnet152", 57_416_232, 11_153_965_056),
    // paper_figures.py (He et al. §4.2: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M parameters).
    ("cifar-resnet20", 269_722, 40_551_040),
    ("cifar-resnet32", 464_154, 68_862_592),
    ("cifar-resnet44", 658_586, 97_174_144),
    ("cifar-resnet56", 853_018, 125_485_696),
    ("cifar-resnet110", 1_727_962, 252_887_680),
    ("plain-cifar-resnet20", 269_722, 40_551_040),
    ("plain-cifar-resnet32", 464_154, 68_862_592),
    ("plain-cifar-resnet44", 658_586, 97_174_144),
    ("plain-cifar-resnet56", 853_018, 125_485_696),
    ("plain-cifar-resnet110", 1_727_962, 252_887_680),
    // paper_figures.py.
    ("nin", 7_595_176, 969_460_864),
    ("nin-cifar", 966_986, 222_486_528),
    // torchvision_figures.py (googlenet without aux heads).
    ("googlenet", 6_624_904, 1_498_376_192),
    // paper_figures.py.
    ("googlenet-paper", 6_998_552, 1_582_671_872),
];

fn check(names: impl Fn(&str) -> bool) {
    let device = Device::flex();
    for &(name, params, macs) in FIGURES.iter().filter(|(name, ..)| names(name)) {
        let info = model_zoo::info(name).unwrap();
        let model = info.build(&ModelOptions::new(), &device);
        let summary = summarize(&model, name, info.input, &device);
        assert_eq!(summary.params, params, "{name}: parameters");
        assert_eq!(summary.macs, macs, "{name}: MACs");
        assert_eq!(summary.output_shape, [info.num_classes], "{name}: logits");
        let layer_params: usize = summary.layers.iter().map(|layer| layer.params).sum();
        assert_eq!(
            layer_params, params,
            "{name}: every layer with parameters is summarised"
        );
    }
}

#[test]
fn every_registry_entry_has_a_figure() {
    let pinned: Vec<&str> = FIGURES.iter().map(|(name, ..)| *name).collect();
    assert_eq!(pinned, model_zoo::names());
}

// Split by family so the test harness spreads them over the cores.
#[test]
fn lenet_alexnet_nin_googlenet_figures() {
    check(|name| !name.starts_with("vgg") && !name.contains("resnet"));
}

#[test]
fn vgg_figures() {
    check(|name| name.starts_with("vgg"));
}

#[test]
fn imagenet_resnet_figures() {
    check(|name| name.contains("resnet") && !name.contains("cifar"));
}

#[test]
fn cifar_resnet_figures() {
    check(|name| name.contains("cifar-resnet"));
}

#[test]
fn cifar_resnet_option_b_adds_exactly_the_projections() {
    // paper_figures.py: option B adds two 1×1 projections with batch norm (16→32, 32→64).
    let device = Device::flex();
    let options =
        ModelOptions::new().with_shortcut(Some(model_zoo::blocks::ShortcutKind::Projection));
    for (name, params, macs) in [
        ("cifar-resnet20", 272_474, 40_813_184),
        ("cifar-resnet110", 1_730_714, 253_149_824),
    ] {
        let model = model_zoo::create(name, &options, &device).unwrap();
        let summary = summarize(&model, name, [3, 32, 32], &device);
        assert_eq!((summary.params, summary.macs), (params, macs), "{name}");
    }
}

#[test]
fn googlenet_aux_heads_add_their_parameters() {
    // torchvision_figures.py: googlenet(aux_logits=True) has 13,004,888 parameters.
    let device = Device::flex();
    let model = model_zoo::create(
        "googlenet",
        &ModelOptions::new().with_aux_logits(true),
        &device,
    )
    .unwrap();
    assert_eq!(model_zoo::count_parameters(&model), 13_004_888);
}
