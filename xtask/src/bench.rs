//! `cargo xtask bench data`.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

use benches::data_pipeline::{DataBenchConfig, run as run_data_bench, table};
use clap::Subcommand;

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
}

/// A Python with torch and torchvision: `.venv/bin/python`, made with pip when missing.
pub fn torch_python() -> Result<PathBuf, Box<dyn Error>> {
    let python = Path::new(".venv/bin/python").to_path_buf();
    let has_torch = |python: &Path| {
        Command::new(python)
            .args(["-c", "import torch, torchvision"])
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
            .args(["-m", "pip", "install", "--quiet", "torch", "torchvision"])
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
            let rows = run_data_bench(&config)?;
            print!("{}", table(&rows));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&rows)?)?;
                println!("written to {}", path.display());
            }
        }
    }
    Ok(())
}
