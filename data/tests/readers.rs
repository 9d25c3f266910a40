//! Readers on data the tests make: CIFAR batches written here, the embedded subset, splits, and
//! every kind of bad input, which must give an error naming the file, never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use data::datasets::cifar::{CifarDataset, CifarKind, write_cifar10_batch};
use data::datasets::embedded::mnist_subset;
use data::datasets::fetch::{RemoteFile, download, fetch, sha256_file};
use data::datasets::idx::{IdxDataset, Split, read_idx};
use data::datasets::image_folder::ImageFolder;
use data::datasets::{class_counts, split};
use data::{Dataset, Subset};

/// The data crate's folder, read at run time, not baked in by `env!`: a test binary reused from
/// a shared target folder must read the files of the checkout it runs in.
fn manifest_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("readers-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::File::create(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn idx_images(n: u32, h: u32, w: u32) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend((0..n * h * w).map(|i| (i % 251) as u8));
    bytes
}

#[test]
fn idx_files_are_validated() {
    let dir = scratch("idx");
    let good = dir.join("good-idx3");
    write(&good, &idx_images(2, 3, 4));
    assert_eq!(read_idx(&good).unwrap().dims, [2, 3, 4]);

    let truncated = dir.join("truncated-idx3");
    let bytes = idx_images(2, 3, 4);
    write(&truncated, &bytes[..bytes.len() - 5]);
    let error = read_idx(&truncated).unwrap_err().to_string();
    assert!(
        error.contains("truncated-idx3") && error.contains("truncated"),
        "{error}"
    );
    assert!(error.contains("need 24 data bytes, found 19"), "{error}");

    let wrong_magic = dir.join("wrong-magic");
    write(&wrong_magic, b"\x89PNG\r\n\x1a\n0000");
    let error = read_idx(&wrong_magic).unwrap_err().to_string();
    assert!(
        error.contains("wrong-magic (byte 0): not an IDX file"),
        "{error}"
    );

    let short_header = dir.join("short-header");
    write(&short_header, &[0, 0, 8, 3, 0, 0]);
    assert!(
        read_idx(&short_header)
            .unwrap_err()
            .to_string()
            .contains("truncated header")
    );

    let bad_gzip = dir.join("bad.gz");
    write(&bad_gzip, &[0x1f, 0x8b, 8, 0, 1, 2, 3]);
    assert!(
        read_idx(&bad_gzip)
            .unwrap_err()
            .to_string()
            .contains("corrupt gzip")
    );

    let missing = IdxDataset::mnist(&dir, Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("t10k-images-idx3-ubyte") && missing.contains("fetch"),
        "{missing}"
    );
}

#[test]
fn idx_labels_outside_mnists_ten_classes_are_an_error_naming_file_record_and_value() {
    let dir = scratch("idx-labels");
    write(&dir.join("t10k-images-idx3-ubyte"), &idx_images(3, 2, 2));
    for bad in [10u8, 127, 128, 255] {
        let labels_path = dir.join("t10k-labels-idx1-ubyte");
        let mut labels = vec![0, 0, 8, 1, 0, 0, 0, 3];
        labels.extend([7, bad, 1]);
        write(&labels_path, &labels);
        let error = IdxDataset::mnist(&dir, Split::Test)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("t10k-labels-idx1-ubyte")
                && error.contains(&format!(
                    "label {bad} of record 1 is outside the 10 classes"
                )),
            "{error}"
        );
    }
    let images = dir.join("t10k-images-idx3-ubyte");
    let labels = dir.join("t10k-labels-idx1-ubyte");
    write(&labels, &[0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 2]);
    let three_classes = IdxDataset::open(&images, &labels, 3).unwrap();
    assert_eq!(three_classes.classes().len(), 3);
    assert!(IdxDataset::open(&images, &labels, 2).is_err());
}

#[test]
fn embedded_subset_is_real_mnist() {
    let train = mnist_subset(Split::Train);
    let test = mnist_subset(Split::Test);
    assert_eq!((train.len(), test.len()), (8000, 2000));
    // Every digit is well represented (MNIST's first 8,000: at least 700 of each).
    assert!(class_counts(&train).iter().all(|&count| count >= 700));
    // The first training digit of MNIST is a 5.
    assert_eq!(train.label(0), 5);
    // That it is MNIST's start, read from the full files, is checked with the shared datasets
    // (`tests/shared_datasets.rs`).
}

#[test]
fn cifar_batches_round_trip_and_short_batches_fail() {
    let dir = scratch("cifar");
    let records: Vec<(u8, Vec<u8>)> = (0..7u8)
        .map(|i| {
            (
                i % 10,
                (0..3072)
                    .map(|p| ((p + usize::from(i)) % 256) as u8)
                    .collect(),
            )
        })
        .collect();
    for name in [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
    ] {
        write_cifar10_batch(&dir.join(format!("{name}.bin")), &records).unwrap();
    }
    write_cifar10_batch(&dir.join("test_batch.bin"), &records[..3]).unwrap();
    let train = CifarDataset::open(&dir, CifarKind::Cifar10, Split::Train).unwrap();
    assert_eq!(train.len(), 35);
    let sample = train.get(8).unwrap();
    assert_eq!(sample.label, 1);
    // Red plane first: pixel (0, 0, 1) is byte 1 of the record's pixels.
    assert_eq!(sample.image.at(0, 0, 1), 2.0 / 255.0);
    assert_eq!(
        sample.image.at(2, 31, 31),
        ((3071 + 1) % 256) as f32 / 255.0
    );

    let bytes = std::fs::read(dir.join("test_batch.bin")).unwrap();
    write(&dir.join("test_batch.bin"), &bytes[..3073 + 100]);
    let error = CifarDataset::open(&dir, CifarKind::Cifar10, Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("test_batch.bin (byte 3073): short CIFAR batch"),
        "{error}"
    );

    let mut bad_label = bytes.clone();
    bad_label[3073] = 12;
    write(&dir.join("test_batch.bin"), &bad_label);
    let error = CifarDataset::open(&dir, CifarKind::Cifar10, Split::Test)
        .unwrap_err()
        .to_string();
    assert!(error.contains("label 12 of record 1"), "{error}");
}

#[test]
fn image_folders_sort_classes_and_name_bad_files() {
    let root = scratch("folder");
    for class in ["zebra", "ant"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
    }
    let rgba = image::RgbaImage::from_pixel(5, 4, image::Rgba([255, 0, 0, 128]));
    rgba.save(root.join("ant/b.png")).unwrap();
    let grey = image::GrayImage::from_pixel(6, 3, image::Luma([200]));
    grey.save(root.join("zebra/a.bmp")).unwrap();
    image::RgbImage::from_pixel(4, 4, image::Rgb([0, 255, 0]))
        .save(root.join("ant/a.jpg"))
        .unwrap();
    write(&root.join("ant/notes.txt"), b"not an image");

    let folder = ImageFolder::open(&root, 3).unwrap();
    assert_eq!(folder.classes(), ["ant", "zebra"]);
    assert_eq!(folder.len(), 3);
    assert!(folder.path(0).ends_with("ant/a.jpg") && folder.path(1).ends_with("ant/b.png"));
    let rgba_sample = folder.get(1).unwrap();
    assert_eq!(
        (rgba_sample.image.channels, rgba_sample.image.height),
        (3, 4)
    );
    assert_eq!(rgba_sample.image.at(0, 0, 0), 1.0);
    let grey_as_rgb = folder.get(2).unwrap();
    assert_eq!(grey_as_rgb.label, 1);
    assert_eq!(grey_as_rgb.image.at(1, 2, 5), 200.0 / 255.0);

    write(&root.join("zebra/empty.jpg"), b"");
    write(&root.join("zebra/broken.png"), b"\x89PNG\r\n\x1a\nnonsense");
    let folder = ImageFolder::open(&root, 3).unwrap();
    let errors: Vec<String> = (0..folder.len())
        .filter_map(|i| folder.get(i).err().map(|e| e.to_string()))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("broken.png") && e.contains("cannot decode"))
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("empty.jpg") && e.contains("0 bytes"))
    );

    let empty = scratch("empty-folder");
    let error = ImageFolder::open(&empty, 3).unwrap_err().to_string();
    assert!(error.contains("no images found"), "{error}");
}

#[test]
fn splits_are_seeded_disjoint_and_ordered() {
    let dataset: Arc<dyn Dataset> = Arc::new(mnist_subset(Split::Test));
    let (train, validation) = split(Arc::clone(&dataset), 500, 42);
    assert_eq!((train.len(), validation.len()), (1500, 500));
    let mut all: Vec<usize> = train
        .indices()
        .iter()
        .chain(validation.indices())
        .copied()
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..2000).collect::<Vec<_>>());
    assert!(validation.indices().windows(2).all(|w| w[0] < w[1]));
    let (_, again) = split(Arc::clone(&dataset), 500, 42);
    assert_eq!(again.indices(), validation.indices());
    let (_, other) = split(Arc::clone(&dataset), 500, 43);
    assert_ne!(other.indices(), validation.indices());

    let limited = Subset::first(dataset, 10);
    assert_eq!(limited.indices(), (0..10).collect::<Vec<_>>());
}

#[test]
fn downloads_fail_fast_and_keep_nothing_half_written() {
    let dir = scratch("fetch");
    let remote = RemoteFile {
        url: "http://127.0.0.1:9/train-images-idx3-ubyte.gz",
        file_name: "train-images-idx3-ubyte.gz",
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    };
    let started = std::time::Instant::now();
    let error = download(&remote, &dir, "use --data-dir")
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed().as_secs() < 15,
        "took {:?}",
        started.elapsed()
    );
    assert!(
        error.contains("cannot download http://127.0.0.1:9/") && error.contains("--data-dir"),
        "{error}"
    );
    assert!(!dir.join("train-images-idx3-ubyte.gz").exists());

    let error = fetch("imagenet", &dir).unwrap_err().to_string();
    assert!(
        error.contains("no download known for 'imagenet'"),
        "{error}"
    );

    // A file already in place with the published digest is not downloaded again.
    let asset = manifest_dir().join("assets/mnist-subset/t10k-labels-idx1-ubyte.gz");
    let digest = sha256_file(&asset).unwrap();
    assert_eq!(
        digest,
        "9016d84c0ff2a402884fc39ac1dfcb3ec411c5581759174110390192c6e1c7b5"
    );
    std::fs::copy(&asset, dir.join("labels.gz")).unwrap();
    let present = RemoteFile {
        url: "http://127.0.0.1:9/labels.gz",
        file_name: "labels.gz",
        sha256: "9016d84c0ff2a402884fc39ac1dfcb3ec411c5581759174110390192c6e1c7b5",
    };
    assert_eq!(download(&present, &dir, "").unwrap(), dir.join("labels.gz"));
}

#[test]
fn a_folder_reports_its_largest_image_side_from_the_headers() {
    let root = scratch("largest-side");
    for (class, width, height) in [("a", 20, 30), ("a", 28, 28), ("b", 70, 40), ("b", 16, 16)] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        image::RgbImage::new(width, height)
            .save(dir.join(format!("{width}x{height}.png")))
            .unwrap();
    }
    let folder = ImageFolder::open(&root, 3).unwrap();
    assert_eq!(folder.largest_side(16).unwrap(), 70);
    // Two samples spread over four files: the first of each half.
    assert_eq!(folder.largest_side(2).unwrap(), 30);
    assert_eq!(
        data::Preset::for_image_side(folder.largest_side(16).unwrap()),
        data::Preset::Imagenet
    );
    assert_eq!(data::Preset::for_image_side(64), data::Preset::Small);

    std::fs::write(root.join("a").join("0-broken.png"), b"not a png").unwrap();
    let folder = ImageFolder::open(&root, 3).unwrap();
    let error = folder.largest_side(16).unwrap_err().to_string();
    assert!(error.contains("0-broken.png"), "{error}");
}

#[test]
fn the_default_validation_is_a_tenth_up_to_5000() {
    assert_eq!(data::datasets::default_validation(1437), 143);
    assert_eq!(data::datasets::default_validation(8000), 800);
    assert_eq!(data::datasets::default_validation(50_000), 5000);
    assert_eq!(data::datasets::default_validation(9), 0);
}
