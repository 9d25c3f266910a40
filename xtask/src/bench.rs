//! `cargo xtask bench data|models|train`.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

use benches::data_pipeline::{DataBenchConfig, run as run_data_bench, stage_table, table};
use benches::models::{self, BenchCase, Mode, ModelBenchConfig, Precision, TorchResults};
use clap::{Args, Subcommand};
use trainer::BackendKind;
use trainer::model_zoo::blocks::ConvLowering;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The data pipeline's images/s with 1 and 2 workers, beside torchvision's DataLoader.
    Data {
        /// CIFAR-10 as a class-per-folder JPEG tarball.
        #[arg(long, default_value = "../shared/datasets/cifar10-jpeg.tar.gz")]
        cifar_tarball: PathBuf,
        /// Scratch folder for the extracted and generated images.
        #[arg(long, default_value = "target/bench-data")]
        work_dir: PathBuf,
        /// Images per measurement, 32×32 workload.
        #[arg(long, default_value_t = 10_000)]
        small_images: usize,
        /// Images per measurement, 224 workload.
        #[arg(long, default_value_t = 1_000)]
        large_images: usize,
        /// Python with torch and torchvision (default: .venv/bin/python, made when missing).
        #[arg(long)]
        python: Option<PathBuf>,
        /// Skip the torchvision side.
        #[arg(long)]
        no_torch: bool,
        /// Also write the rows as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Images/s of zoo models per backend (inference or training), beside PyTorch.
    Models(ModelBenchArgs),
    /// Training images/s of the trainer's CPU matrix (LeNet-5, CIFAR ResNet-20, ResNet-18 and
    /// VGG-16 at 32×32): `bench models --mode train --suite cpu`.
    Train(ModelBenchArgs),
}

#[derive(Args)]
pub struct ModelBenchArgs {
    /// `cpu` (LeNet-5 b256, CIFAR ResNet-20 b128, ResNet-18 b128, VGG-16 b64, all 32×32) or
    /// `gpu` (larger batches, and ResNet-50, VGG-16, GoogLeNet at 224×224).
    #[arg(long, default_value = "cpu")]
    suite: String,
    /// Only these models of the suite (comma-separated).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Burn backends (comma-separated): flex, ndarray, wgpu (vulkan and cuda when built with
    /// `--features vulkan` / `cuda`).
    #[arg(long, value_delimiter = ',', default_value = "flex")]
    backends: Vec<BackendKind>,
    /// `infer` or `train` (`bench train` always trains).
    #[arg(long, default_value = "train")]
    mode: Mode,
    /// Float type of the forward and backward passes: fp32, bf16 or fp16 (mixed precision, as
    /// `train --precision`: weights and optimiser state stay f32; fp16 scales its loss).
    #[arg(long, default_value = "fp32")]
    precision: Precision,
    /// How convolutions are computed: `native` (the backend's kernels), `gemm` (lowered to one
    /// matrix product over image patches, at k² times the input's memory per convolution) or
    /// `auto` (gemm on flex, where the zoo's CPU kernels are faster; native elsewhere).
    #[arg(long, default_value = "auto")]
    conv: ConvLowering,
    /// Steps after the first before timing.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed steps; the median is reported.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Python with torch and torchvision (default: .venv/bin/python, made when missing).
    #[arg(long)]
    python: Option<PathBuf>,
    /// PyTorch's device: cpu or cuda.
    #[arg(long, default_value = "cpu")]
    torch_device: String,
    /// Read PyTorch's results from this file (written by benches/python/torch_bench.py) instead
    /// of running it.
    #[arg(long)]
    torch_json: Option<PathBuf>,
    /// Skip the PyTorch side.
    #[arg(long)]
    no_torch: bool,
    /// Also write the joined rows as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print the chosen cases as JSON (the input of benches/python/torch_bench.py) and exit.
    #[arg(long)]
    list: bool,
}

fn bench_models(args: ModelBenchArgs, mode: Mode) -> Result<(), Box<dyn Error>> {
    let suite = match args.suite.as_str() {
        "cpu" => models::cpu_suite(),
        "gpu" => models::gpu_suite(),
        other => return Err(format!("unknown suite '{other}' (expected cpu or gpu)").into()),
    };
    let cases: Vec<BenchCase> = suite
        .into_iter()
        .filter(|case| args.models.is_empty() || args.models.contains(&case.model))
        .collect();
    if cases.is_empty() {
        return Err(format!("none of {:?} is in the {} suite", args.models, args.suite).into());
    }
    if args.list {
        println!("{}", serde_json::to_string(&cases)?);
        return Ok(());
    }
    let torch = match (&args.torch_json, args.no_torch) {
        (Some(path), _) => models::read_torch(path)?,
        (None, true) => TorchResults::default(),
        (None, false) => {
            let python = match &args.python {
                Some(python) => python.clone(),
                None => torch_python()?,
            };
            models::run_torch(
                &python,
                &cases,
                mode,
                &args.torch_device,
                args.warmup,
                args.steps,
            )?
        }
    };
    let config = ModelBenchConfig {
        cases,
        backends: args.backends,
        mode,
        warmup: args.warmup,
        steps: args.steps,
        precision: args.precision,
        conv: args.conv,
    };
    let mut ours = Vec::new();
    for result in models::run(&config) {
        match result {
            Ok(row) => ours.push(row),
            Err((case, error)) => eprintln!("skipped {}: {error}", case.model),
        }
    }
    let joined = models::join(&ours, &torch);
    print!("{}", models::table(&joined, &torch));
    if let Some(path) = args.json {
        let json = serde_json::json!({ "rows": joined, "pytorch": torch });
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
        println!("written to {}", path.display());
    }
    Ok(())
}

/// A Python with torch and torchvision: `.venv/bin/python`, made with pip when missing.
pub fn torch_python() -> Result<PathBuf, Box<dyn Error>> {
    let python = Path::new(".venv/bin/python").to_path_buf();
    let has_torch = |python: &Path| {
        Command::new(python)
            .args(["-c", "import torch, torchvision, safetensors"])
            .status()
            .is_ok_and(|status| status.success())
    };
    if python.is_file() && has_torch(&python) {
        return Ok(python);
    }
    eprintln!("making .venv with torch and torchvision from PyPI (several GB, once)…");
    let created = Command::new("python3")
        .args(["-m", "venv", ".venv"])
        .status()?
        .success()
        && Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "torch",
                "torchvision",
                "safetensors",
            ])
            .status()?
            .success();
    if !created || !has_torch(&python) {
        return Err(
            "could not install torch and torchvision into .venv; pass --python or --no-torch"
                .into(),
        );
    }
    Ok(python)
}

pub fn run(command: BenchCommand) -> Result<(), Box<dyn Error>> {
    match command {
        BenchCommand::Models(args) => {
            let mode = args.mode;
            bench_models(args, mode)?
        }
        BenchCommand::Train(args) => bench_models(args, Mode::Train)?,
        BenchCommand::Data {
            cifar_tarball,
            work_dir,
            small_images,
            large_images,
            python,
            no_torch,
            json,
        } => {
            let python = match (no_torch, python) {
                (true, _) => None,
                (false, Some(python)) => Some(python),
                (false, None) => Some(torch_python()?),
            };
            let config = DataBenchConfig {
                cifar_tarball,
                work_dir,
                small_images,
                large_images,
                python,
            };
            let (rows, stages) = run_data_bench(&config)?;
            print!("{}\n{}", table(&rows), stage_table(&stages));
            if let Some(path) = json {
                let json = serde_json::json!({ "rows": rows, "stages": stages });
                std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
                println!("written to {}", path.display());
            }
        }
    }
    Ok(())
}
