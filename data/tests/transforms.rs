//! Properties of each transform.

use data::Rng;
use data::transforms::geometry::{PaddingMode, affine, pad};
use data::transforms::{
    ColorShift, MultiCrop, Normalize, OffsetDistribution, Pca, PcaLighting, Preset, RandomCrop,
    RandomResizedCrop, Resize, Transform, Views, five_crop, ten_crop,
};
use data::{Image, ImageU8};

/// A 3×h×w image whose every value is distinct: (c·h + y)·w + x, scaled.
fn ramp(channels: usize, height: usize, width: usize) -> Image {
    let n = channels * height * width;
    Image {
        channels,
        height,
        width,
        data: (0..n).map(|i| i as f32 / n as f32).collect(),
    }
}

#[test]
fn mirroring_twice_is_the_identity() {
    let image = ramp(3, 5, 7);
    assert_ne!(image.mirrored(), image);
    assert_eq!(image.mirrored().mirrored(), image);
    assert_eq!(image.mirrored().at(1, 2, 0), image.at(1, 2, 6));
}

#[test]
fn zero_rotation_and_shear_is_the_identity() {
    let image = ramp(3, 9, 12);
    assert_eq!(affine(&image, 0.0, 0.0), image);
    // A quarter turn of a square image moves pixels exactly and keeps every value.
    let square = ramp(1, 5, 5);
    let turned = affine(&square, 90.0, 0.0);
    let mut before = square.data.clone();
    let mut after = turned.data.clone();
    before.sort_by(f32::total_cmp);
    after.sort_by(f32::total_cmp);
    let max_error = before
        .iter()
        .zip(&after)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(max_error < 1e-5, "{max_error}");
    assert_ne!(turned, square);
    // Shearing keeps the centre row in place.
    let sheared = affine(&square, 0.0, 20.0);
    for x in 0..5 {
        assert!((sheared.at(0, 2, x) - square.at(0, 2, x)).abs() < 1e-6);
    }
}

#[test]
fn random_crops_are_windows_of_the_padded_image() {
    let image = ramp(3, 32, 32);
    let crop = RandomCrop {
        size: 32,
        padding: 4,
        mode: PaddingMode::Zero,
    };
    let padded = pad(&image, 4, PaddingMode::Zero);
    for seed in 0..50 {
        let out = crop.apply(image.clone(), &mut Rng::new(seed));
        assert_eq!((out.height, out.width), (32, 32));
        let found = (0..=8).any(|top| (0..=8).any(|left| padded.crop(top, left, 32, 32) == out));
        assert!(found, "seed {seed}: not a window of the padded image");
    }
    let reflected = pad(&ramp(1, 3, 3), 1, PaddingMode::Reflect);
    // Reflect padding mirrors without repeating the edge: row −1 is row 1.
    assert_eq!(reflected.at(0, 0, 1), ramp(1, 3, 3).at(0, 1, 0));
}

#[test]
fn random_resized_crops_stay_in_bounds() {
    let crop = RandomResizedCrop::new(224);
    let mut rng = Rng::new(3);
    for _ in 0..1000 {
        let (top, left, h, w) = crop.window(375, 500, &mut rng);
        assert!(h >= 1 && w >= 1 && top + h <= 375 && left + w <= 500);
        let area = (h * w) as f64 / (375.0 * 500.0);
        assert!((0.07..=1.0).contains(&area), "area {area}");
    }
    let out = crop.apply(ramp(3, 375, 500), &mut rng);
    assert_eq!((out.channels, out.height, out.width), (3, 224, 224));
}

#[test]
fn resize_sets_the_shorter_side() {
    let out = Resize { size: 256 }.apply(ramp(3, 375, 500), &mut Rng::new(0));
    assert_eq!((out.height, out.width), (256, 341));
    let constant = Image {
        data: vec![0.25; 3 * 40 * 30],
        ..ramp(3, 40, 30)
    };
    let out = Resize { size: 20 }.apply(constant, &mut Rng::new(0));
    assert_eq!((out.height, out.width), (27, 20));
    assert!(out.data.iter().all(|&v| (v - 0.25).abs() < 1e-6));
}

#[test]
fn pca_noise_has_the_configured_scale() {
    // With unit eigenvalues and the identity basis the offsets are N(0, σ) per channel.
    let lighting = PcaLighting {
        std: 0.1,
        pca: Pca {
            eigenvalues: [1.0, 1.0, 1.0],
            eigenvectors: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        },
    };
    let mut rng = Rng::new(11);
    let n = 20_000;
    let offsets: Vec<[f32; 3]> = (0..n).map(|_| lighting.offset(&mut rng)).collect();
    for c in 0..3 {
        let mean = offsets.iter().map(|o| f64::from(o[c])).sum::<f64>() / n as f64;
        let var = offsets
            .iter()
            .map(|o| (f64::from(o[c]) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!(
            mean.abs() < 0.005 && (var.sqrt() - 0.1).abs() < 0.005,
            "{mean} {var}"
        );
    }
    // ImageNet's components: the offset is mostly along the first (brightness) component,
    // whose standard deviation is σ·λ₁ = 0.02175 per unit of its eigenvector.
    let imagenet = PcaLighting {
        std: 0.1,
        pca: Pca::IMAGENET,
    };
    let image = imagenet.apply(Image::zeros(3, 2, 2), &mut Rng::new(5));
    let offset = imagenet.offset(&mut Rng::new(5));
    assert_eq!(image.at(1, 1, 1), offset[1]);
}

#[test]
fn pca_of_a_known_covariance() {
    // diag(4, 1, 9) rotated: the eigenvalues come back sorted.
    let pca = data::transforms::color::symmetric_eigen([
        [4.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 9.0],
    ]);
    assert_eq!(pca.eigenvalues, [9.0, 4.0, 1.0]);
    assert_eq!(pca.eigenvectors[2][0].abs(), 1.0);
    let a = [[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]];
    let pca = data::transforms::color::symmetric_eigen(a);
    let expected = [5.0, 3.0, 1.0];
    for (got, want) in pca.eigenvalues.iter().zip(expected) {
        assert!((got - want).abs() < 1e-9, "{got} {want}");
    }
}

#[test]
fn colour_shifts_move_whole_channels() {
    let image = Image {
        data: vec![0.5; 3 * 4 * 4],
        ..ramp(3, 4, 4)
    };
    let shift = ColorShift {
        distribution: OffsetDistribution::Uniform { max: 0.2 },
    };
    let out = shift.apply(image, &mut Rng::new(9));
    for plane in out.data.chunks(16) {
        assert!(plane.iter().all(|&v| v == plane[0]));
        assert!((plane[0] - 0.5).abs() <= 0.2);
    }
    assert_ne!(out.data[0], out.data[16]);
}

#[test]
fn normalise_then_invert_returns_the_input() {
    let image = ramp(3, 6, 6);
    let normalize = Normalize::imagenet();
    let normalized = normalize.apply(image.clone(), &mut Rng::new(0));
    assert!((normalized.at(0, 0, 0) - (0.0 - 0.485) / 0.229).abs() < 1e-6);
    let back = normalize.invert(normalized);
    let error = back
        .data
        .iter()
        .zip(&image.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(error < 1e-6, "{error}");
}

#[test]
fn ten_crops_are_the_corners_centre_and_mirrors() {
    let image = ramp(3, 10, 12);
    let crops = ten_crop(&image, 6);
    let expected_corners = [(0, 0), (0, 6), (4, 0), (4, 6), (2, 3)];
    for (crop, (top, left)) in crops[..5].iter().zip(expected_corners) {
        for c in 0..3 {
            for y in 0..6 {
                for x in 0..6 {
                    assert_eq!(crop.at(c, y, x), image.at(c, top + y, left + x));
                }
            }
        }
    }
    let mirrored = image.mirrored();
    for (crop, (top, left)) in crops[5..].iter().zip(expected_corners) {
        assert_eq!(*crop, mirrored.crop(top, left, 6, 6));
    }
    // The mirror's top-left crop is the image's top-right crop, mirrored.
    assert_eq!(crops[5], crops[1].mirrored());
    assert_eq!(five_crop(&image, 6)[4], crops[4]);
}

/// The `index`-th of the views a [`MultiCrop`] stacked along the channels.
fn unstack(stacked: &Image, channels: usize, index: usize) -> Image {
    let plane = channels * stacked.height * stacked.width;
    Image {
        channels,
        height: stacked.height,
        width: stacked.width,
        data: stacked.data[index * plane..(index + 1) * plane].to_vec(),
    }
}

#[test]
fn multi_crop_stacks_the_views_in_order() {
    let image = ramp(3, 10, 12);
    let stacked = MultiCrop {
        views: Views::TenCrop,
        size: 6,
    }
    .apply(image.clone(), &mut Rng::new(0));
    assert_eq!(
        (stacked.channels, stacked.height, stacked.width),
        (30, 6, 6)
    );
    for (index, crop) in ten_crop(&image, 6).iter().enumerate() {
        assert_eq!(unstack(&stacked, 3, index), *crop, "view {index}");
    }
    let flip = Views::Flip.of(&image, 6);
    assert_eq!(flip[0], image.crop(2, 3, 6, 6));
    assert_eq!(flip[1], image.crop(2, 3, 6, 6).mirrored());
    for (name, views) in Views::ALL {
        assert_eq!(name.parse::<Views>(), Ok(views));
        assert_eq!(views.of(&image, 6).len(), views.count());
        assert_eq!(views.of(&image, 6)[views.centre()], image.crop(2, 3, 6, 6));
    }
    assert!("twelve-crop".parse::<Views>().is_err());
}

#[test]
fn the_centre_view_is_what_plain_evaluation_sees() {
    let cases = [
        (Preset::Mnist, ramp(1, 28, 28), 32),
        (Preset::Cifar, ramp(3, 32, 32), 32),
        (Preset::Imagenet, ramp(3, 45, 60), 32),
        (Preset::None, ramp(3, 40, 40), 32),
    ];
    for (preset, image, size) in cases {
        let plain = preset.eval(size).apply(image.clone(), &mut Rng::new(0));
        let geometry = preset.multi_crop_geometry(size);
        for views in [Views::Single, Views::TenCrop] {
            let stacked = preset
                .multi_crop(geometry, views)
                .apply(image.clone(), &mut Rng::new(0));
            let centre = unstack(&stacked, image.channels, views.centre());
            assert_eq!(centre, plain, "{preset:?} {views:?}");
        }
    }
}

#[test]
fn cifar_ten_crop_corners_are_the_four_pixel_shifts_of_training() {
    let image = ramp(3, 32, 32);
    let preset = Preset::Cifar;
    let stacked = preset
        .multi_crop(preset.multi_crop_geometry(32), Views::TenCrop)
        .apply(image.clone(), &mut Rng::new(0));
    let normalize = Normalize::cifar10();
    let normalized = normalize.apply(image.clone(), &mut Rng::new(0));
    let black = normalize.apply(Image::zeros(3, 1, 1), &mut Rng::new(0));
    // Top-left view: the image moved 4 pixels down and right, black above and to the left.
    let top_left = unstack(&stacked, 3, 0);
    for c in 0..3 {
        assert_eq!(top_left.at(c, 0, 0), black.at(c, 0, 0));
        assert_eq!(top_left.at(c, 3, 31), black.at(c, 0, 0));
        assert_eq!(top_left.at(c, 4, 4), normalized.at(c, 0, 0));
        assert_eq!(top_left.at(c, 31, 31), normalized.at(c, 27, 27));
    }
    // Bottom-right view of the mirror: the mirror moved 4 pixels up and left.
    let mirrored_bottom_right = unstack(&stacked, 3, 8);
    assert_eq!(
        mirrored_bottom_right.at(0, 0, 0),
        normalized.mirrored().at(0, 4, 4)
    );
}

/// An 8-bit image whose values cycle through every byte.
fn bytes(channels: usize, height: usize, width: usize) -> ImageU8 {
    ImageU8 {
        channels,
        height,
        width,
        pixels: (0..channels * height * width)
            .map(|i| (i * 37 % 256) as u8)
            .collect(),
    }
}

#[test]
fn reading_bytes_directly_gives_the_same_images_and_draws() {
    // Every preset, training and evaluation, on a photo-sized image, a grey one, and one
    // smaller than the crop (which the f32 path pads): the 8-bit path must change nothing.
    for image in [bytes(3, 75, 100), bytes(1, 40, 30), bytes(3, 20, 24)] {
        for (name, preset) in Preset::ALL {
            for (split, transform) in [("train", preset.train(32)), ("eval", preset.eval(32))] {
                for seed in 0..8 {
                    let mut direct = Rng::new(seed);
                    let mut converted = Rng::new(seed);
                    let from_bytes = transform.apply_u8(&image, &mut direct).unwrap();
                    let from_f32 = transform.apply(image.to_image(), &mut converted);
                    assert_eq!(from_bytes, from_f32, "{name} {split}, seed {seed}");
                    assert_eq!(direct.next_u64(), converted.next_u64(), "{name} {split}");
                }
            }
        }
    }
    let image = bytes(3, 50, 60);
    assert_eq!(
        image.crop(3, 4, 10, 20),
        image.to_image().crop(3, 4, 10, 20)
    );
    let mut rng = Rng::new(0);
    assert_eq!(
        Resize { size: 30 }.apply_u8(&image, &mut rng),
        Some(Resize { size: 30 }.apply(image.to_image(), &mut rng))
    );
    let padded = RandomCrop {
        size: 32,
        padding: 4,
        mode: PaddingMode::Zero,
    };
    assert_eq!(
        padded.apply_u8(&image, &mut rng),
        None,
        "padding is the f32 path's"
    );
    assert_eq!(
        RandomResizedCrop::new(24)
            .apply_u8(&image, &mut Rng::new(5))
            .map(|i| i.data.len()),
        Some(3 * 24 * 24)
    );
}
