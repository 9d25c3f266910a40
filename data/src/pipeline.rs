//! The multithreaded pipeline: worker threads read, decode and augment whole mini-batches while
//! the consumer trains; a bounded window of batches is ready ahead of it.
//!
//! Every sample's randomness comes from (seed, epoch, index) and the batch plan from (seed,
//! epoch), so the batches are the same whatever the number of workers. Memory is bounded by
//! `prefetch` batches in flight or waiting. A worker's error reaches the consumer as an error;
//! dropping an [`Epoch`] (an early break) stops and joins every worker.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::datasets::Dataset;
use crate::error::DataError;
use crate::image::Image;
use crate::rng::Rng;
use crate::transforms::Transform;
use crate::transforms::mix::{BatchMix, MixedLabels};

/// What to do with a sample that cannot be read or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBadSample {
    /// Stop with an error naming the file (the default).
    Fail,
    /// Leave it out of its batch and report it in [`HostBatch::skipped`].
    Skip,
}

/// How batches are formed.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Samples per batch.
    pub batch_size: usize,
    /// Worker threads (at least one).
    pub workers: usize,
    /// Batches in flight or ready ahead of the consumer.
    pub prefetch: usize,
    /// Shuffle every epoch.
    pub shuffle: bool,
    /// Drop the last, smaller batch.
    pub drop_last: bool,
    /// Seed of the shuffle and of every sample's augmentation.
    pub seed: u64,
    /// Bad-sample policy.
    pub on_bad_sample: OnBadSample,
    /// Mixup and CutMix of each batch (off by default).
    pub batch_mix: BatchMix,
}

impl LoaderConfig {
    /// Shuffled batches of `batch_size`, one worker per core, two batches per worker ahead.
    pub fn new(batch_size: usize) -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            batch_size,
            workers,
            prefetch: 2 * workers,
            shuffle: true,
            drop_last: false,
            seed: 0,
            on_bad_sample: OnBadSample::Fail,
            batch_mix: BatchMix::default(),
        }
    }
}

/// Spare batch buffers. A `HostBatch` dropped by its consumer gives its pixel buffer back, and a
/// later batch is built in it instead of in fresh memory: at 224 × 224 a batch of 128 is 77 MB,
/// and touching that much new memory costs page faults. At most `limit` buffers are kept.
#[derive(Debug)]
struct BufferPool {
    spare: Mutex<Vec<Vec<f32>>>,
    limit: usize,
}

impl BufferPool {
    fn spare(&self) -> MutexGuard<'_, Vec<Vec<f32>>> {
        self.spare
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An empty buffer, with the capacity of a returned one when there is one.
    fn take(&self) -> Vec<f32> {
        let mut buffer = self.spare().pop().unwrap_or_default();
        buffer.clear();
        buffer
    }

    /// Keeps `buffer` for a later batch, unless enough are kept already.
    fn give(&self, buffer: Vec<f32>) {
        let mut spare = self.spare();
        if buffer.capacity() > 0 && spare.len() < self.limit {
            spare.push(buffer);
        }
    }
}

/// A batch in host memory: NCHW `f32` images and their labels. Dropping it returns its pixel
/// buffer to the loader for later batches; [`HostBatch::to_device`] hands the buffer to the
/// tensor instead (no copy).
#[derive(Debug)]
pub struct HostBatch {
    /// `[N, C, H, W]`.
    pub shape: [usize; 4],
    /// The pixels, NCHW.
    pub images: Vec<f32>,
    /// Labels.
    pub labels: Vec<i64>,
    /// Dataset indices of the samples.
    pub indices: Vec<usize>,
    /// Samples left out under [`OnBadSample::Skip`].
    pub skipped: Vec<DataError>,
    /// The second labels and weight, when the batch was mixed ([`LoaderConfig::batch_mix`]).
    pub mix: Option<MixedLabels>,
    /// Where the pixel buffer goes back when the batch is dropped.
    pool: Arc<BufferPool>,
}

impl Drop for HostBatch {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.images));
    }
}

/// A batch on a Burn device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[N, C, H, W]`.
    pub images: Tensor<4>,
    /// `[N]` class indices.
    pub labels: Tensor<1, Int>,
    /// A mixed batch's second labels and the weight of `labels`.
    pub mix: Option<MixedTargets>,
}

/// The targets of a mixed batch beside its labels: the loss is
/// `weight · CE(labels) + (1 − weight) · CE(partner)`.
#[derive(Debug, Clone)]
pub struct MixedTargets {
    /// `[N]` class indices of the images mixed in.
    pub partner: Tensor<1, Int>,
    /// The weight of the batch's own labels.
    pub weight: f32,
}

impl HostBatch {
    /// Moves the batch onto `device` (the pixel buffer is handed over, not copied).
    pub fn to_device(mut self, device: &Device) -> Batch {
        let images = std::mem::take(&mut self.images);
        let labels = std::mem::take(&mut self.labels);
        let n = labels.len();
        Batch {
            images: Tensor::from_data(TensorData::new(images, self.shape), device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
            mix: self.mix.take().map(|mix| MixedTargets {
                partner: Tensor::from_data(TensorData::new(mix.partner, [n]), device),
                weight: mix.weight,
            }),
        }
    }
}

/// Streams a dataset through a transform into batches, built by worker threads while the
/// consumer trains.
///
/// ```
/// use std::sync::Arc;
/// use data::datasets::image_folder::ImageFolder;
/// use data::{DataLoader, LoaderConfig, Preset};
///
/// # let root = std::env::temp_dir().join(format!("data-doc-loader-{}", std::process::id()));
/// # for (class, shade) in [("cat", 40u8), ("dog", 200)] {
/// #     std::fs::create_dir_all(root.join(class)).unwrap();
/// #     for i in 0..3 {
/// #         image::RgbImage::from_pixel(40, 30, image::Rgb([shade; 3]))
/// #             .save(root.join(class).join(format!("{i}.png")))
/// #             .unwrap();
/// #     }
/// # }
/// // One sub-folder per class (`root/cat/*.png`, `root/dog/*.png`), as torchvision's ImageFolder.
/// let folder = ImageFolder::open(&root, 3)?;
/// let loader = DataLoader::new(
///     Arc::new(folder),
///     Arc::new(Preset::Small.train(32)),
///     LoaderConfig {
///         workers: 2,
///         shuffle: true,
///         ..LoaderConfig::new(4)
///     },
/// );
/// let mut seen = 0;
/// for batch in loader.epoch(0) {
///     // NCHW f32 pixels and labels; `batch.to_device(&device)` makes Burn tensors of them.
///     let batch = batch?;
///     assert_eq!(batch.shape[1..], [3, 32, 32]);
///     seen += batch.labels.len();
/// }
/// assert_eq!(seen, 6);
/// # std::fs::remove_dir_all(&root).unwrap();
/// # Ok::<(), data::DataError>(())
/// ```
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    transform: Arc<dyn Transform>,
    config: LoaderConfig,
    pool: Arc<BufferPool>,
}

impl DataLoader {
    /// A loader over `dataset`, applying `transform` to every sample.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        transform: Arc<dyn Transform>,
        config: LoaderConfig,
    ) -> Self {
        assert!(config.batch_size > 0, "batch size must be positive");
        // Batches alive at once: those ready or being built, and the one being consumed.
        let limit = config.prefetch.max(1) + config.workers.max(1) + 1;
        Self {
            dataset,
            transform,
            config,
            pool: Arc::new(BufferPool {
                spare: Mutex::new(Vec::new()),
                limit,
            }),
        }
    }

    /// Batch buffers kept for reuse (at most prefetch + workers + 1).
    pub fn spare_buffers(&self) -> usize {
        self.pool.spare().len()
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// The batch plan of `epoch`: dataset indices of each batch, in delivery order.
    pub fn plan(&self, epoch: usize) -> Vec<Vec<usize>> {
        let n = self.dataset.len();
        let order = if self.config.shuffle {
            Rng::new(self.config.seed ^ (epoch as u64).wrapping_mul(0x2545_f491_4f6c_dd1d))
                .permutation(n)
        } else {
            (0..n).collect()
        };
        order
            .chunks(self.config.batch_size)
            .filter(|chunk| !self.config.drop_last || chunk.len() == self.config.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// Number of batches in an epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.dataset.len();
        let b = self.config.batch_size;
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Starts the workers for `epoch` and returns its batches, in order.
    pub fn epoch(&self, epoch: usize) -> Epoch {
        self.epoch_from(epoch, 0)
    }

    /// Like [`DataLoader::epoch`], starting at batch `first_batch` of the epoch's plan: a resumed
    /// run gets exactly the batches, and the augmentations, that the stopped run had left.
    pub fn epoch_from(&self, epoch: usize, first_batch: usize) -> Epoch {
        let plan = self.plan(epoch);
        let total = plan.len();
        let first_batch = first_batch.min(total);
        let shared = Arc::new(Shared {
            plan,
            dataset: Arc::clone(&self.dataset),
            transform: Arc::clone(&self.transform),
            pool: Arc::clone(&self.pool),
            seed: self.config.seed,
            epoch: epoch as u64,
            window: self.config.prefetch.max(1),
            on_bad_sample: self.config.on_bad_sample,
            batch_mix: self.config.batch_mix,
            state: Mutex::new(State {
                next_claim: first_batch,
                next_delivery: first_batch,
                ready: BTreeMap::new(),
                stop: false,
                live_workers: 0,
            }),
            changed: Condvar::new(),
        });
        let workers = self.config.workers.max(1).min((total - first_batch).max(1));
        shared.lock().live_workers = workers;
        let handles = (0..workers)
            .map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || work(&shared))
            })
            .collect();
        Epoch {
            shared,
            handles,
            first_batch,
            total,
            failed: false,
        }
    }
}

struct State {
    next_claim: usize,
    next_delivery: usize,
    ready: BTreeMap<usize, Result<HostBatch, DataError>>,
    stop: bool,
    live_workers: usize,
}

struct Shared {
    plan: Vec<Vec<usize>>,
    dataset: Arc<dyn Dataset>,
    transform: Arc<dyn Transform>,
    pool: Arc<BufferPool>,
    seed: u64,
    epoch: u64,
    window: usize,
    on_bad_sample: OnBadSample,
    batch_mix: BatchMix,
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sample `index`, transformed, and its label. Image files go to the transform as 8-bit
    /// pixels, so a first crop or resize converts only what it keeps.
    fn read(&self, index: usize, rng: &mut Rng) -> Result<(Image, usize), DataError> {
        match self.dataset.get_u8(index) {
            Some(sample) => {
                let sample = sample?;
                let image = self
                    .transform
                    .apply_u8(&sample.image, rng)
                    .unwrap_or_else(|| self.transform.apply(sample.image.to_image(), rng));
                Ok((image, sample.label))
            }
            None => {
                let sample = self.dataset.get(index)?;
                Ok((self.transform.apply(sample.image, rng), sample.label))
            }
        }
    }

    fn build(&self, batch: usize) -> Result<HostBatch, DataError> {
        let indices = &self.plan[batch];
        let mut images = self.pool.take();
        let mut labels = Vec::with_capacity(indices.len());
        let mut kept = Vec::with_capacity(indices.len());
        let mut skipped = Vec::new();
        let mut sample_shape: Option<[usize; 3]> = None;
        for &index in indices {
            let mut rng = Rng::for_sample(self.seed, self.epoch, index as u64);
            let (image, label) = match self.read(index, &mut rng) {
                Ok(read) => read,
                Err(error) if self.on_bad_sample == OnBadSample::Skip => {
                    skipped.push(error);
                    continue;
                }
                Err(error) => return Err(error),
            };
            // Checked here for any dataset: a label past the classes would index past the
            // model's head inside the loss.
            let classes = self.dataset.classes().len();
            if label >= classes {
                return Err(DataError::new(
                    format!("sample {index}"),
                    format!("label {label} is outside the dataset's {classes} classes"),
                ));
            }
            let shape = [image.channels, image.height, image.width];
            match sample_shape {
                None => {
                    sample_shape = Some(shape);
                    images.reserve(indices.len() * image.data.len());
                }
                Some(first) if first != shape => {
                    return Err(DataError::new(
                        format!("sample {index}"),
                        format!(
                            "transformed to {shape:?} while its batch holds {first:?}: \
                             the transform must give every image the same size"
                        ),
                    ));
                }
                Some(_) => {}
            }
            images.extend_from_slice(&image.data);
            labels.push(label as i64);
            kept.push(index);
        }
        let [c, h, w] = sample_shape.unwrap_or([0, 0, 0]);
        let shape = [kept.len(), c, h, w];
        // The batch's own generator: mixing depends on (seed, epoch, batch), not on the worker.
        let mut rng = Rng::for_sample(self.seed ^ MIX_SALT, self.epoch, batch as u64);
        let mix = self.batch_mix.apply(shape, &mut images, &labels, &mut rng);
        Ok(HostBatch {
            shape,
            images,
            labels,
            indices: kept,
            skipped,
            mix,
            pool: Arc::clone(&self.pool),
        })
    }
}

/// Keeps the batches' mixing draws apart from the samples' augmentation draws.
const MIX_SALT: u64 = 0x6d69_7875_705f_6375;

/// Counts a worker out even when it panics, so the consumer never waits for a dead thread.
struct WorkerExit<'a>(&'a Shared);

impl Drop for WorkerExit<'_> {
    fn drop(&mut self) {
        self.0.lock().live_workers -= 1;
        self.0.changed.notify_all();
    }
}

fn work(shared: &Shared) {
    let _exit = WorkerExit(shared);
    loop {
        let batch = {
            let mut state = shared.lock();
            loop {
                if state.stop || state.next_claim >= shared.plan.len() {
                    return;
                }
                if state.next_claim < state.next_delivery + shared.window {
                    break;
                }
                state = shared.wait(state);
            }
            state.next_claim += 1;
            state.next_claim - 1
        };
        // A panic in a user's transform (or a dataset) becomes this batch's error: the epoch
        // ends there, instead of the other workers waiting forever for a batch never built.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shared.build(batch)))
            .unwrap_or_else(|payload| {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|text| text.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_string());
                Err(DataError::new(
                    format!("batch {batch}"),
                    format!("a worker thread panicked while building it: {message}"),
                ))
            });
        let failed = result.is_err();
        let mut state = shared.lock();
        state.ready.insert(batch, result);
        state.stop |= failed;
        shared.changed.notify_all();
    }
}

/// The batches of one epoch, in plan order. Dropping it stops and joins the workers.
pub struct Epoch {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    first_batch: usize,
    total: usize,
    failed: bool,
}

impl Epoch {
    /// Number of batches this epoch delivers.
    pub fn len(&self) -> usize {
        self.total - self.first_batch
    }

    /// Whether the epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Iterator for Epoch {
    type Item = Result<HostBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut state = self.shared.lock();
        loop {
            if self.failed || state.next_delivery >= self.total {
                return None;
            }
            let next = state.next_delivery;
            if let Some(result) = state.ready.remove(&next) {
                state.next_delivery += 1;
                self.shared.changed.notify_all();
                match result {
                    Ok(batch) if batch.indices.is_empty() => continue,
                    Ok(batch) => return Some(Ok(batch)),
                    Err(error) => {
                        self.failed = true;
                        return Some(Err(error));
                    }
                }
            }
            if state.live_workers == 0 {
                self.failed = true;
                return Some(Err(DataError::new(
                    format!("batch {next}"),
                    "every worker thread stopped before producing it (a worker panicked)",
                )));
            }
            state = self.shared.wait(state);
        }
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        for handle in self.handles.drain(..) {
            // A worker that panicked has already been counted out; nothing more to do.
            let _ = handle.join();
        }
    }
}
