//! The multithreaded pipeline: determinism across worker counts, exact epochs, errors and
//! shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::prelude::*;
use data::datasets::embedded::mnist_subset;
use data::datasets::idx::Split;
use data::{DataError, DataLoader, Dataset, HostBatch, LoaderConfig, OnBadSample, Preset, Sample};

fn loader(workers: usize, seed: u64) -> DataLoader {
    let dataset: Arc<dyn Dataset> = Arc::new(mnist_subset(Split::Test));
    let transform = Arc::new(
        data::Compose::identity()
            .then(data::transforms::RandomCrop {
                size: 32,
                padding: 4,
                mode: data::transforms::PaddingMode::Zero,
            })
            .then(data::transforms::RandomAffine {
                degrees: 10.0,
                shear: 5.0,
            }),
    );
    let config = LoaderConfig {
        workers,
        prefetch: 3,
        seed,
        ..LoaderConfig::new(64)
    };
    DataLoader::new(dataset, transform, config)
}

fn collect(loader: &DataLoader, epoch: usize) -> Vec<HostBatch> {
    loader.epoch(epoch).map(Result::unwrap).collect()
}

#[test]
fn one_and_two_workers_give_identical_batches() {
    let one = collect(&loader(1, 7), 3);
    let two = collect(&loader(2, 7), 3);
    let four = collect(&loader(4, 7), 3);
    assert_eq!(one.len(), 32);
    for ((a, b), c) in one.iter().zip(&two).zip(&four) {
        assert_eq!(a.indices, b.indices);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.images, b.images);
        assert_eq!(a.images, c.images);
    }
}

#[test]
fn mixed_batches_are_the_same_for_any_number_of_workers() {
    let mixing = |workers| {
        let dataset = Arc::clone(loader(workers, 7).dataset());
        let config = LoaderConfig {
            workers,
            seed: 7,
            batch_mix: data::transforms::BatchMix {
                mixup_alpha: 0.2,
                cutmix_alpha: 1.0,
            },
            ..LoaderConfig::new(64)
        };
        let transform =
            Arc::new(data::Compose::identity().then(data::transforms::CenterCrop { size: 32 }));
        DataLoader::new(dataset, transform, config)
    };
    let (one, three) = (collect(&mixing(1), 2), collect(&mixing(3), 2));
    assert!(one.iter().all(|batch| batch.mix.is_some()));
    for (a, b) in one.iter().zip(&three) {
        assert_eq!(a.mix, b.mix);
        assert_eq!(a.images, b.images);
        let mix = a.mix.as_ref().unwrap();
        let n = a.labels.len();
        // Each image's partner is the one before it in the batch.
        assert!((0..n).all(|i| mix.partner[i] == a.labels[(i + n - 1) % n]));
    }
    // Another epoch draws other weights.
    let next = collect(&mixing(1), 3);
    assert_ne!(one[0].mix, next[0].mix);
}

#[test]
fn dropped_batches_lend_their_buffers_to_later_ones() {
    let reference = collect(&loader(2, 11), 1);
    let recycling = loader(2, 11);
    // Each batch is dropped before the next arrives, so later batches are built in the
    // buffers of earlier ones; the pixels must not notice.
    for (batch, expected) in recycling.epoch(1).zip(&reference) {
        let batch = batch.unwrap();
        assert_eq!(batch.indices, expected.indices);
        assert_eq!(batch.images, expected.images);
    }
    let kept = recycling.spare_buffers();
    // prefetch 3 + 2 workers + the batch in the consumer's hands.
    assert!((1..=6).contains(&kept), "{kept} spare buffers");
    drop(reference);
    // A batch moved onto a device gives its buffer to the tensor: nothing comes back. The
    // whole epoch is consumed, because batches still queued when a consumer stops early are
    // dropped on the host and do return their buffers.
    let fresh = loader(1, 11);
    for batch in fresh.epoch(0) {
        batch.unwrap().to_device(&Device::flex());
    }
    assert_eq!(fresh.spare_buffers(), 0);
}

#[test]
fn an_epoch_resumed_mid_way_gives_the_remaining_batches_unchanged() {
    let loader = loader(2, 5);
    let whole = collect(&loader, 2);
    let rest: Vec<HostBatch> = loader.epoch_from(2, 20).map(Result::unwrap).collect();
    assert_eq!(loader.epoch_from(2, 20).len(), whole.len() - 20);
    assert_eq!(rest.len(), whole.len() - 20);
    for (a, b) in whole[20..].iter().zip(&rest) {
        assert_eq!(a.indices, b.indices);
        assert_eq!(a.images, b.images);
    }
    assert!(loader.epoch_from(2, whole.len() + 3).next().is_none());
}

#[test]
fn epochs_cover_every_sample_once_and_reshuffle() {
    let loader = loader(2, 1);
    let first = collect(&loader, 0);
    let mut seen: Vec<usize> = first.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(first.last().unwrap().indices.len(), 2000 % 64);
    seen.sort_unstable();
    assert_eq!(seen, (0..2000).collect::<Vec<_>>());
    let second = collect(&loader, 1);
    assert_ne!(first[0].indices, second[0].indices);
    assert_eq!(first[0].shape, [64, 1, 32, 32]);

    let dataset: Arc<dyn Dataset> = Arc::new(mnist_subset(Split::Test));
    let config = LoaderConfig {
        drop_last: true,
        shuffle: false,
        ..LoaderConfig::new(64)
    };
    let loader = DataLoader::new(dataset, Arc::new(Preset::Mnist.eval(32)), config);
    let batches = collect(&loader, 0);
    assert_eq!(batches.len(), 2000 / 64);
    assert_eq!(loader.batches_per_epoch(), 31);
    assert_eq!(batches[0].indices, (0..64).collect::<Vec<_>>());
}

#[test]
fn batches_become_tensors() {
    let batch = loader(2, 0).epoch(0).next().unwrap().unwrap();
    let labels = batch.labels.clone();
    let device = Device::flex();
    let on_device = batch.to_device(&device);
    assert_eq!(on_device.images.dims(), [64, 1, 32, 32]);
    let device_labels: Vec<i64> = on_device
        .labels
        .into_data()
        .convert::<i64>()
        .try_to_vec()
        .unwrap();
    assert_eq!(device_labels, labels);
}

/// A dataset whose sample 100 cannot be read, and which counts reads.
struct Faulty {
    inner: data::datasets::idx::IdxDataset,
    reads: AtomicUsize,
}

impl Dataset for Faulty {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn label(&self, index: usize) -> usize {
        self.inner.label(index)
    }
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if index == 100 {
            return Err(DataError::new("digits/100.png", "cannot decode image"));
        }
        self.inner.get(index)
    }
    fn classes(&self) -> &[String] {
        self.inner.classes()
    }
}

fn faulty_loader(on_bad_sample: OnBadSample) -> (DataLoader, Arc<Faulty>) {
    let faulty = Arc::new(Faulty {
        inner: mnist_subset(Split::Test),
        reads: AtomicUsize::new(0),
    });
    let config = LoaderConfig {
        workers: 2,
        shuffle: false,
        on_bad_sample,
        ..LoaderConfig::new(50)
    };
    let dataset: Arc<dyn Dataset> = faulty.clone();
    (
        DataLoader::new(dataset, Arc::new(data::Compose::identity()), config),
        faulty,
    )
}

#[test]
fn a_worker_error_reaches_the_consumer() {
    let (loader, _) = faulty_loader(OnBadSample::Fail);
    let results: Vec<_> = loader.epoch(0).collect();
    assert_eq!(
        results.len(),
        3,
        "two good batches, then the error, then the end"
    );
    assert!(results[0].is_ok() && results[1].is_ok());
    let error = results[2].as_ref().unwrap_err().to_string();
    assert_eq!(error, "digits/100.png: cannot decode image");
}

#[test]
fn skipped_samples_are_reported() {
    let (loader, _) = faulty_loader(OnBadSample::Skip);
    let batches: Vec<HostBatch> = loader.epoch(0).map(Result::unwrap).collect();
    assert_eq!(batches.len(), 40);
    assert_eq!(batches[2].indices.len(), 49);
    assert_eq!(batches[2].skipped.len(), 1);
    assert!(batches[2].skipped[0].to_string().contains("digits/100.png"));
}

#[test]
fn an_early_break_stops_the_workers() {
    let (loader, faulty) = faulty_loader(OnBadSample::Skip);
    {
        let mut epoch = loader.epoch(0);
        epoch.next().unwrap().unwrap();
    } // dropped: workers stop and are joined here
    let reads_after_drop = faulty.reads.load(Ordering::SeqCst);
    // Prefetch bounds the work done ahead: at most the first batch plus the window.
    assert!(reads_after_drop <= 50 * (1 + 4), "{reads_after_drop} reads");
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        faulty.reads.load(Ordering::SeqCst),
        reads_after_drop,
        "no thread still running"
    );
}

/// MNIST's digits presented as if there were only five classes.
struct FiveClasses(data::datasets::idx::IdxDataset);

impl Dataset for FiveClasses {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn label(&self, index: usize) -> usize {
        self.0.label(index)
    }
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        self.0.get(index)
    }
    fn classes(&self) -> &[String] {
        &self.0.classes()[..5]
    }
}

#[test]
fn a_label_outside_the_classes_ends_the_epoch_with_an_error_naming_the_sample() {
    let dataset: Arc<dyn Dataset> = Arc::new(FiveClasses(mnist_subset(Split::Test)));
    let first_outside = (0..dataset.len())
        .find(|&index| dataset.label(index) >= 5)
        .unwrap();
    let config = LoaderConfig {
        workers: 2,
        shuffle: false,
        ..LoaderConfig::new(50)
    };
    let loader = DataLoader::new(dataset.clone(), Arc::new(data::Compose::identity()), config);
    let error = loader
        .epoch(0)
        .find_map(Result::err)
        .expect("a batch with a label past the classes fails")
        .to_string();
    let label = dataset.label(first_outside);
    assert!(
        error.contains(&format!("sample {first_outside}"))
            && error.contains(&format!("label {label} is outside the dataset's 5 classes")),
        "{error}"
    );
}

/// A user's transform with a bug that shows once: it panics on the first image it sees with
/// many bright pixels, and works on every other, so the other worker lives on.
#[derive(Debug, Default)]
struct PanicsOnce(std::sync::atomic::AtomicBool);

impl data::Transform for PanicsOnce {
    fn apply(&self, image: data::Image, _rng: &mut data::Rng) -> data::Image {
        let bright = image.data.iter().filter(|v| **v > 0.5).count() > 150;
        if bright && !self.0.swap(true, Ordering::SeqCst) {
            panic!("a bug in the user's transform");
        }
        image
    }
}

#[test]
fn a_panicking_transform_ends_the_epoch_with_an_error_not_a_hang() {
    let dataset = Arc::new(mnist_subset(Split::Train));
    let config = LoaderConfig {
        workers: 2,
        prefetch: 2,
        ..LoaderConfig::new(16)
    };
    let loader = DataLoader::new(dataset, Arc::new(PanicsOnce::default()), config);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome: Vec<Result<usize, String>> = loader
            .epoch(0)
            .map(|batch| batch.map(|b| b.labels.len()).map_err(|e| e.to_string()))
            .collect();
        let _ = sender.send(outcome);
    });
    let outcome = receiver
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the epoch ended instead of hanging");
    let error = outcome
        .iter()
        .find_map(|batch| batch.as_ref().err())
        .expect("the panic became an error");
    assert!(
        error.contains("panicked") && error.contains("a bug in the user's transform"),
        "{error}"
    );
    assert!(
        outcome.last().unwrap().is_err(),
        "the epoch ends at the error"
    );
}

#[test]
fn an_image_file_that_disappears_while_an_epoch_runs_ends_it_with_an_error_naming_it() {
    let root = std::env::temp_dir().join(format!("vanishing-folder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let digits = mnist_subset(Split::Test);
    for index in 0..40 {
        let class = root.join(digits.label(index).to_string());
        std::fs::create_dir_all(&class).unwrap();
        let pixels: Vec<u8> = digits
            .get(index)
            .unwrap()
            .image
            .data
            .iter()
            .map(|v| (v * 255.0) as u8)
            .collect();
        image::GrayImage::from_raw(28, 28, pixels)
            .unwrap()
            .save(class.join(format!("{index:02}.png")))
            .unwrap();
    }
    let folder = Arc::new(data::datasets::image_folder::ImageFolder::open(&root, 1).unwrap());
    // In order, one batch in flight: the last batch is read after the first is taken.
    let config = LoaderConfig {
        workers: 1,
        prefetch: 1,
        shuffle: false,
        ..LoaderConfig::new(8)
    };
    let loader = DataLoader::new(folder.clone(), Arc::new(data::Compose::identity()), config);
    let last = folder.path(folder.len() - 1).to_path_buf();
    let mut epoch = loader.epoch(0);
    epoch.next().unwrap().unwrap();
    std::fs::remove_file(&last).unwrap();
    let outcome: Vec<Result<usize, String>> = epoch
        .map(|batch| batch.map(|b| b.labels.len()).map_err(|e| e.to_string()))
        .collect();
    let error = outcome
        .iter()
        .find_map(|batch| batch.as_ref().err())
        .expect("the missing file became an error");
    assert!(error.contains(&*last.to_string_lossy()), "{error}");
    assert!(
        outcome.last().unwrap().is_err(),
        "the epoch ends at the error"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
