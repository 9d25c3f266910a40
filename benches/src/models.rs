//! `cargo xtask bench models` and `cargo xtask bench train`: images/s of zoo models for
//! inference and for a training step (forward, cross-entropy, backward, SGD step) on each
//! backend, beside the same models in PyTorch (`benches/python/torch_bench.py`) on the same
//! machine, with the ratio and the arithmetic rate reached.
//!
//! Each measurement: a first step timed alone (kernel compilation and autotuning on a GPU), more
//! warm-up steps, then the median of timed steps, each ended by `Device::sync` before the clock
//! is read. Inputs are random tensors made once on the device: data loading is not measured here
//! (`bench data` does that).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::tensor::Distribution;
use model_zoo::blocks::{ConvLowering, conv_lowering, set_conv_lowering};
use model_zoo::{Classifier, ModelOptions, ZooModel};
use serde::{Deserialize, Serialize};
use trainer::BackendKind;
pub use trainer::Precision;
use trainer::precision::{LossScale, gradients};
use trainer::sgd::MomentumSgd;

/// Inference (eval mode, no autodiff) or a whole training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Forward pass in eval mode.
    Infer,
    /// Forward, loss, backward and an SGD-momentum step.
    Train,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [Mode::Infer, Mode::Train]
            .into_iter()
            .find(|mode| mode.name() == name)
            .ok_or_else(|| format!("unknown mode '{name}' (expected infer or train)"))
    }
}

impl Mode {
    /// `infer` or `train`, as the command line and the criterion groups spell it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Infer => "infer",
            Mode::Train => "train",
        }
    }

    /// Multiply-accumulates per image relative to the forward pass: a backward pass costs about
    /// twice the forward (gradients of inputs and of weights), so a training step about three.
    fn macs_factor(self) -> u64 {
        match self {
            Mode::Infer => 1,
            Mode::Train => 3,
        }
    }
}

/// One model at a fixed batch and input size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchCase {
    /// Registry name (PyTorch's side builds the same network under that name).
    pub model: String,
    /// Mini-batch size.
    pub batch: usize,
    /// Input `[C, H, W]`.
    pub input: [usize; 3],
    /// Classes of the head.
    pub classes: usize,
}

impl BenchCase {
    fn new(model: &str, batch: usize, input: [usize; 3]) -> Self {
        let classes = if input[1] <= 32 { 10 } else { 1000 };
        Self {
            model: model.to_string(),
            batch,
            input,
            classes,
        }
    }
}

/// The CPU matrix of the trainer issue: LeNet-5 (batch 256), CIFAR ResNet-20 (128), ResNet-18
/// (128) and VGG-16 (64), all at 32×32 with 10 classes.
pub fn cpu_suite() -> Vec<BenchCase> {
    vec![
        BenchCase::new("lenet5", 256, [1, 32, 32]),
        BenchCase::new("cifar-resnet20", 128, [3, 32, 32]),
        BenchCase::new("resnet18", 128, [3, 32, 32]),
        BenchCase::new("vgg16", 64, [3, 32, 32]),
    ]
}

/// The GPU matrix: the CPU models at GPU batch sizes, and ResNet-50, VGG-16 and GoogLeNet at
/// ImageNet's 224×224.
pub fn gpu_suite() -> Vec<BenchCase> {
    vec![
        BenchCase::new("lenet5", 1024, [1, 32, 32]),
        BenchCase::new("cifar-resnet20", 128, [3, 32, 32]),
        BenchCase::new("resnet18", 256, [3, 32, 32]),
        BenchCase::new("resnet50", 64, [3, 224, 224]),
        BenchCase::new("vgg16", 32, [3, 224, 224]),
        BenchCase::new("googlenet", 64, [3, 224, 224]),
    ]
}

/// What the criterion benches (`cargo bench -p benches`) run on `backend`: the GPU matrix on a
/// GPU backend; on a CPU the CPU matrix plus ResNet-50 and GoogLeNet at 224×224 in batches of 8,
/// so that every model of the issue is in each backend's table at a size a CPU gets through.
pub fn criterion_suite(backend: BackendKind) -> Vec<BenchCase> {
    if backend.is_gpu() {
        return gpu_suite();
    }
    let mut cases = cpu_suite();
    cases.push(BenchCase::new("resnet50", 8, [3, 224, 224]));
    cases.push(BenchCase::new("googlenet", 8, [3, 224, 224]));
    cases
}

/// One measured row; PyTorch's rows use the same type with `backend` = `torch-<device>` and
/// `variant` naming the precision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelBenchRow {
    /// The case.
    pub model: String,
    /// Mini-batch size.
    pub batch: usize,
    /// Input `[C, H, W]`.
    pub input: [usize; 3],
    /// `infer` or `train`.
    pub mode: Mode,
    /// A Burn backend (`flex`, `ndarray`, `wgpu`, `vulkan`, `cuda`), or `torch-cpu` / `torch-cuda`.
    pub backend: String,
    /// The [`Precision`] for Burn (mixed: weights and optimiser state stay f32), with `-gemm-conv` when convolutions were lowered to matrix
    /// products ([`ConvLowering::Gemm`], also what [`ConvLowering::Auto`] picks on flex); PyTorch's are `fp32`, and on a GPU also
    /// `fp32-no-tf32` and `bf16-channels-last`.
    pub variant: String,
    /// Trainable parameters (checks that both sides built the same network).
    pub params: usize,
    /// Forward multiply-accumulates per image.
    pub macs_per_image: u64,
    /// Seconds of the first step (compilation and autotuning included).
    pub first_step_s: f64,
    /// Seconds from the start of the first step to the end of the warm-up.
    pub warmup_s: f64,
    /// Median seconds of a timed step.
    pub step_s: f64,
    /// Images per second at the median step.
    pub images_per_second: f64,
    /// Arithmetic rate reached: 2 × MACs × (1 forward, 3 training) × images/s, in GFLOP/s.
    pub gflops: f64,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ModelBenchConfig {
    /// The cases.
    pub cases: Vec<BenchCase>,
    /// Burn backends to measure.
    pub backends: Vec<BackendKind>,
    /// Inference or training.
    pub mode: Mode,
    /// Steps after the first before timing starts.
    pub warmup: usize,
    /// Timed steps (the median is reported).
    pub steps: usize,
    /// Float type of the forward and backward passes (mixed precision).
    pub precision: Precision,
    /// How the zoo's convolutions are computed, for the whole run.
    pub conv: ConvLowering,
}

/// Why a measurement failed.
#[derive(Debug)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One case built on one backend: the model, a batch of random images made once on the device
/// and, for training, the loss and an SGD-momentum optimiser. `measure`, the criterion benches
/// (`benches/benches/zoo.rs`) and the smoke test all time its [`Workload::step`].
pub struct Workload {
    device: Device,
    mode: Mode,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    /// `None` only while a training step moves it through the optimiser.
    model: Option<ZooModel>,
    loss: CrossEntropyLoss,
    optimizer: ModuleOptimizer,
    /// The loss of the last training step, left on the device until asked for.
    last_loss: Option<Tensor<1>>,
    precision: Precision,
    /// fp16's dynamic loss scale.
    loss_scale: Option<LossScale>,
    /// Trainable parameters.
    pub params: usize,
    /// Forward multiply-accumulates per image.
    pub macs_per_image: u64,
}

impl Workload {
    /// Builds `case` on `backend`, seeded, ready for `mode`, computing in `precision` as the
    /// trainer does (`trainer::precision`): f32 weights cast per layer, the loss in f32 and, in
    /// fp16, a dynamic loss scale.
    pub fn new(
        case: &BenchCase,
        backend: BackendKind,
        mode: Mode,
        precision: Precision,
    ) -> Result<Self, BenchError> {
        let info = model_zoo::info(&case.model).map_err(|e| BenchError(e.to_string()))?;
        let [channels, height, width] = case.input;
        let options = ModelOptions::new()
            .with_num_classes(Some(case.classes))
            .with_in_channels(Some(channels))
            .with_input_size(Some(height));
        let plain = backend.open().map_err(|e| BenchError(e.to_string()))?;
        plain.seed(0);
        let device = match mode {
            Mode::Infer => plain.clone(),
            Mode::Train => plain.clone().autodiff(),
        };
        let images = Tensor::<4>::random(
            [case.batch, channels, height, width],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let labels: Vec<i64> = (0..case.batch).map(|i| (i % case.classes) as i64).collect();
        let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [case.batch]), &device);
        // Built once: its eval-mode copy is what the summary walks and what inference runs.
        let model = info.build(&options, &device);
        let valid = model.valid();
        let summary = model_zoo::summarize(&valid, &case.model, case.input, &plain);
        let model = match mode {
            Mode::Infer => valid,
            Mode::Train => model,
        };
        Ok(Self {
            loss: CrossEntropyLossConfig::new().init(&device),
            // The trainer's SGD (momentum 0.9, no dampening: PyTorch's `SGD(momentum=0.9)`).
            optimizer: ModuleOptimizer::from(MomentumSgd {
                momentum: Some(0.9),
                nesterov: false,
                weight_decay: 0.0,
            }),
            device,
            mode,
            images,
            labels,
            model: Some(model),
            last_loss: None,
            precision,
            loss_scale: precision.loss_scale(LossScale::DEFAULT_INITIAL),
            params: summary.params,
            macs_per_image: summary.macs,
        })
    }

    /// One step (a forward pass, or forward, loss, backward and an optimiser step), ended by
    /// `Device::sync` so that its time is the device's work and not just the queueing of it.
    pub fn step(&mut self) -> Result<(), BenchError> {
        let model = self
            .model
            .take()
            .expect("a step always puts the model back");
        match self.mode {
            Mode::Infer => {
                let images = self.precision.autocast(self.images.clone());
                std::hint::black_box(model.forward(images));
                self.model = Some(model);
            }
            Mode::Train => {
                let logits = model.forward(self.precision.autocast(self.images.clone()));
                let loss = self
                    .loss
                    .forward(self.precision.logits(logits), self.labels.clone());
                self.last_loss = Some(loss.clone());
                self.model = Some(match gradients(loss, &model, self.loss_scale.as_mut()) {
                    Some(grads) => self.optimizer.step(0.01, model, grads),
                    None => model,
                });
            }
        }
        self.device
            .sync()
            .map_err(|e| BenchError(format!("the device failed: {e:?}")))
    }

    /// The loss of the last training step (read from the device now, outside any timing).
    pub fn last_loss(&self) -> Option<f32> {
        self.last_loss.clone().map(|loss| loss.into_scalar::<f32>())
    }
}

/// Measures one case on one backend: the first step alone (where a GPU backend compiles and
/// tunes its kernels; said on stderr as it ends, so a run cut short by a timeout shows how far
/// it got), `warmup` more steps, then the median of `steps` timed steps.
pub fn measure(
    case: &BenchCase,
    backend: BackendKind,
    mode: Mode,
    warmup: usize,
    steps: usize,
    precision: Precision,
) -> Result<ModelBenchRow, BenchError> {
    let mut workload = Workload::new(case, backend, mode, precision)?;
    let mut timings = Vec::with_capacity(1 + warmup + steps);
    for _ in 0..1 + warmup + steps.max(1) {
        let started = Instant::now();
        workload.step()?;
        timings.push(started.elapsed().as_secs_f64());
        // Each step until the timed ones, as it ends: where a run cut short by a timeout
        // spent its warm-up (tuning and compiling can go on past the first step).
        match timings.len() {
            1 => eprintln!(
                "{} on {backend}: first step {:.2} s",
                case.model, timings[0]
            ),
            n if n <= 1 + warmup => {
                eprintln!(
                    "{} on {backend}: warm-up step {} {:.2} s",
                    case.model,
                    n - 1,
                    timings[n - 1]
                )
            }
            _ => {}
        }
    }
    let first_step_s = timings[0];
    let warmup_s = timings[..=warmup].iter().sum();
    let step_s = median(&mut timings[1 + warmup..]);
    let images_per_second = case.batch as f64 / step_s;
    Ok(ModelBenchRow {
        model: case.model.clone(),
        batch: case.batch,
        input: case.input,
        mode,
        backend: backend.name().to_string(),
        variant: match conv_lowering().on_input(&workload.device, precision.compute_dtype()) {
            ConvLowering::Gemm => format!("{}-gemm-conv", precision.name()),
            _ => precision.name().into(),
        },
        params: workload.params,
        macs_per_image: workload.macs_per_image,
        first_step_s,
        warmup_s,
        step_s,
        images_per_second,
        gflops: 2.0 * (workload.macs_per_image * mode.macs_factor()) as f64 * images_per_second
            / 1e9,
    })
}

/// PyTorch's rows and the machine's measured matrix-product peak.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TorchResults {
    /// PyTorch's measurements.
    pub rows: Vec<ModelBenchRow>,
    /// `cpu` or `cuda`.
    pub device: String,
    /// What the device is (CPU model or GPU name).
    pub device_name: String,
    /// Measured plain fp32 matrix-product rate (sgemm on a CPU; TF32 off on a GPU), GFLOP/s.
    pub peak_fp32_gflops: f64,
    /// PyTorch's version.
    pub torch_version: String,
}

fn torch_script() -> PathBuf {
    let beside_sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/torch_bench.py");
    if beside_sources.is_file() {
        beside_sources
    } else {
        PathBuf::from("benches/python/torch_bench.py")
    }
}

/// Runs `benches/python/torch_bench.py` with `python` on the same cases.
pub fn run_torch(
    python: &Path,
    cases: &[BenchCase],
    mode: Mode,
    torch_device: &str,
    warmup: usize,
    steps: usize,
) -> Result<TorchResults, BenchError> {
    let cases_json = serde_json::to_string(cases).expect("cases serialise");
    let output = Command::new(python)
        .arg(torch_script())
        .args(["--cases", &cases_json])
        .args(["--mode", mode.name()])
        .args(["--device", torch_device])
        .args(["--warmup", &warmup.to_string()])
        .args(["--steps", &steps.to_string()])
        .output()
        .map_err(|e| BenchError(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        return Err(BenchError(format!(
            "PyTorch's side failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .map_err(|e| BenchError(format!("PyTorch's side printed no result ({e}): {text}")))
}

/// Reads PyTorch's results written earlier (e.g. on a machine that runs both sides apart).
pub fn read_torch(path: &Path) -> Result<TorchResults, BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BenchError(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| BenchError(format!("{} is not PyTorch's results: {e}", path.display())))
}

/// Measures every case on every backend, printing each row as it lands.
pub fn run(config: &ModelBenchConfig) -> Vec<Result<ModelBenchRow, (BenchCase, BenchError)>> {
    set_conv_lowering(config.conv);
    let mut rows = Vec::new();
    for case in &config.cases {
        for &backend in &config.backends {
            let row = measure(
                case,
                backend,
                config.mode,
                config.warmup,
                config.steps,
                config.precision,
            );
            match &row {
                Ok(row) => eprintln!(
                    "{} b{} {backend}: {:.1} images/s (first step {:.2} s)",
                    row.model, row.batch, row.images_per_second, row.first_step_s
                ),
                Err(error) => eprintln!("{} on {backend}: {error}", case.model),
            }
            rows.push(row.map_err(|e| (case.clone(), e)));
        }
    }
    rows
}

/// A row of the joined table: ours beside PyTorch's on the same case and precision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinedRow {
    /// Our measurement.
    #[serde(flatten)]
    pub ours: ModelBenchRow,
    /// PyTorch's images/s for the same case: eager fp32 with its default settings beside our
    /// fp32 rows, bf16 autocast channels-last beside our bf16 rows.
    pub pytorch_images_per_second: Option<f64>,
    /// Ours over PyTorch's.
    pub ratio: Option<f64>,
}

/// PyTorch's variant that one of ours is measured against: its default fp32 (TF32 on a GPU)
/// for fp32, autocast channels-last for a half precision.
fn pytorch_counterpart(variant: &str) -> String {
    let precision = variant.split('-').next().unwrap_or(variant);
    match precision {
        "fp32" => "fp32".into(),
        half => format!("{half}-channels-last"),
    }
}

/// Pairs each of our rows with PyTorch's row of the same case and precision.
pub fn join(ours: &[ModelBenchRow], torch: &TorchResults) -> Vec<JoinedRow> {
    ours.iter()
        .map(|row| {
            let theirs = torch.rows.iter().find(|t| {
                t.model == row.model
                    && t.batch == row.batch
                    && t.input == row.input
                    && t.mode == row.mode
                    && t.variant == pytorch_counterpart(&row.variant)
            });
            if let Some(theirs) = theirs.filter(|t| t.params != row.params) {
                eprintln!(
                    "warning: {} has {} parameters here and {} in PyTorch",
                    row.model, row.params, theirs.params
                );
            }
            let pytorch = theirs.map(|t| t.images_per_second);
            JoinedRow {
                ours: row.clone(),
                pytorch_images_per_second: pytorch,
                ratio: pytorch.map(|p| row.images_per_second / p),
            }
        })
        .collect()
}

/// The joined rows and PyTorch's own rows as markdown tables.
pub fn table(joined: &[JoinedRow], torch: &TorchResults) -> String {
    let peak = torch.peak_fp32_gflops;
    let mut out = String::from(
        "| model | mode | batch | input | backend | images/s | PyTorch images/s | ratio | GFLOP/s | of peak | first step (s) | warm-up (s) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in joined {
        let ours = &row.ours;
        let [c, h, w] = ours.input;
        // The peak is PyTorch's fp32 matrix product: a half-precision row has no peak beside it.
        let of_peak = if peak > 0.0 && ours.variant.starts_with("fp32") {
            format!("{:.0}%", 100.0 * ours.gflops / peak)
        } else {
            "—".into()
        };
        out.push_str(&format!(
            "| {} | {:?} | {} | {c}×{h}×{w} | {} | {:.1} | {} | {} | {:.1} | {of_peak} | {:.2} | {:.2} |\n",
            ours.model,
            ours.mode,
            ours.batch,
            match ours.variant.as_str() {
                "fp32" => ours.backend.clone(),
                variant => format!("{} ({variant})", ours.backend),
            },
            ours.images_per_second,
            row.pytorch_images_per_second
                .map_or("—".into(), |p| format!("{p:.1}")),
            row.ratio.map_or("—".into(), |r| format!("{r:.2}×")),
            ours.gflops,
            ours.first_step_s,
            ours.warmup_s,
        ));
    }
    if !torch.rows.is_empty() {
        out.push_str(&format!(
            "\nPyTorch {} on {} ({}), measured fp32 matmul peak {:.0} GFLOP/s:\n\n\
             | model | mode | batch | variant | images/s | GFLOP/s | first step (s) |\n\
             |---|---|---|---|---|---|---|\n",
            torch.torch_version, torch.device, torch.device_name, peak
        ));
        for row in &torch.rows {
            out.push_str(&format!(
                "| {} | {:?} | {} | {} | {:.1} | {:.1} | {:.2} |\n",
                row.model,
                row.mode,
                row.batch,
                row.variant,
                row.images_per_second,
                row.gflops,
                row.first_step_s
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenet5_trains_and_reports_consistent_figures_on_flex() {
        let case = BenchCase::new("lenet5", 8, [1, 32, 32]);
        let row = measure(&case, BackendKind::Flex, Mode::Train, 1, 3, Precision::Fp32).unwrap();
        assert_eq!(row.params, 61_706);
        assert_eq!(row.macs_per_image, 416_520);
        assert!(row.step_s > 0.0 && row.first_step_s > 0.0);
        assert!(row.warmup_s >= row.first_step_s);
        let expected_rate = 8.0 / row.step_s;
        assert!((row.images_per_second - expected_rate).abs() < 1e-6 * expected_rate);
        let expected_gflops = 2.0 * 3.0 * 416_520.0 * row.images_per_second / 1e9;
        assert!((row.gflops - expected_gflops).abs() < 1e-6 * expected_gflops);
    }

    #[test]
    fn join_pairs_the_row_of_the_same_case_and_precision() {
        let row = |backend: &str, variant: &str, ips: f64| ModelBenchRow {
            model: "lenet5".into(),
            batch: 256,
            input: [1, 32, 32],
            mode: Mode::Train,
            backend: backend.into(),
            variant: variant.into(),
            params: 61_706,
            macs_per_image: 416_520,
            first_step_s: 0.1,
            warmup_s: 0.2,
            step_s: 256.0 / ips,
            images_per_second: ips,
            gflops: 1.0,
        };
        let torch = TorchResults {
            rows: vec![
                row("torch-cuda", "bf16-channels-last", 4000.0),
                row("torch-cuda", "fp32", 2000.0),
            ],
            ..TorchResults::default()
        };
        let joined = join(
            &[
                row("flex", "fp32", 1000.0),
                row("cuda", "bf16", 1000.0),
                row("cuda", "fp16", 1000.0),
            ],
            &torch,
        );
        assert_eq!(joined[0].pytorch_images_per_second, Some(2000.0));
        assert_eq!(joined[0].ratio, Some(0.5));
        assert_eq!(joined[1].pytorch_images_per_second, Some(4000.0));
        assert_eq!(joined[1].ratio, Some(0.25));
        assert_eq!(joined[2].ratio, None);
        let alone = join(&[row("flex", "fp32", 1000.0)], &TorchResults::default());
        assert_eq!(alone[0].ratio, None);
    }

    #[test]
    fn only_fp32_rows_are_set_against_the_fp32_peak() {
        let row = |variant: &str| ModelBenchRow {
            model: "lenet5".into(),
            batch: 256,
            input: [1, 32, 32],
            mode: Mode::Train,
            backend: "wgpu".into(),
            variant: variant.into(),
            params: 61_706,
            macs_per_image: 416_520,
            first_step_s: 0.1,
            warmup_s: 0.2,
            step_s: 0.1,
            images_per_second: 2560.0,
            gflops: 50.0,
        };
        let torch = TorchResults {
            peak_fp32_gflops: 200.0,
            ..TorchResults::default()
        };
        let rows = [row("fp32"), row("fp32-gemm-conv"), row("fp16")];
        let table = table(&join(&rows, &torch), &torch);
        let of_peak: Vec<&str> = table
            .lines()
            .filter(|line| line.starts_with("| lenet5"))
            .map(|line| line.split(" | ").nth(9).unwrap())
            .collect();
        assert_eq!(of_peak, ["25%", "25%", "—"]);
    }
}
