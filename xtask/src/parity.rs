//! `cargo xtask parity [--models …] [--backends flex,wgpu]`: torchvision's logits against the
//! zoo's for the same seeded random weights and inputs.

use std::error::Error;
use std::path::PathBuf;
use std::process::Command;

use clap::Args;
use trainer::BackendKind;
use trainer::parity::{IMPORTABLE, ParityRow, compare};

/// f32 agreement the issue asks of every importable model on the CPU.
const TARGET_REL_ERROR: f64 = 1e-5;

#[derive(Args)]
pub struct ParityArgs {
    /// Models to compare, comma-separated (default: every importable model).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Backends of the zoo side.
    #[arg(long, value_delimiter = ',', default_value = "flex")]
    backends: Vec<BackendKind>,
    /// Python with torch and torchvision (default: .venv/bin/python, made when missing).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Working folder for state dicts and reference logits (each model's is removed after use).
    #[arg(long, default_value = "target/parity")]
    dir: PathBuf,
    /// Where to write the table as JSON (default: <dir>/parity.json).
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Loads the zoo's safetensors file back into torchvision with `strict=True` and returns the
/// worst relative error of its logits against the reference.
fn load_back(
    python: &std::path::Path,
    script: &str,
    dir: &std::path::Path,
    model: &str,
) -> Result<f64, Box<dyn Error>> {
    let output = Command::new(python)
        .arg(script)
        .arg("--load-back")
        .arg(dir)
        .arg(model)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "PyTorch could not load the zoo's {model}.safetensors: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let result: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    result["max_rel_error"]
        .as_f64()
        .ok_or_else(|| format!("{script} --load-back printed no max_rel_error").into())
}

pub fn run(args: ParityArgs) -> Result<(), Box<dyn Error>> {
    let python = match args.python {
        Some(python) => python,
        None => crate::bench::torch_python()?,
    };
    let models: Vec<String> = if args.models.is_empty() {
        IMPORTABLE.iter().map(|m| m.to_string()).collect()
    } else {
        args.models
    };
    std::fs::create_dir_all(&args.dir)?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../trainer/python/parity.py");
    println!(
        "| model | backend | inputs | max abs error | max rel error | ≤ 1e-5 | back in PyTorch (strict), max rel error |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut rows: Vec<(ParityRow, f64)> = Vec::new();
    for model in &models {
        let status = Command::new(&python)
            .arg(script)
            .arg(&args.dir)
            .arg(model)
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            return Err(format!("{script} failed for {model}").into());
        }
        for &backend in &args.backends {
            let row = compare(&args.dir, model, backend)?;
            let back = load_back(&python, script, &args.dir, model)?;
            println!(
                "| {} | {} | {:?} | {:.3e} | {:.3e} | {} | {back:.3e} |",
                row.model,
                row.backend,
                row.inputs,
                row.max_abs_error,
                row.max_rel_error,
                if row.max_rel_error <= TARGET_REL_ERROR {
                    "yes"
                } else {
                    "no"
                }
            );
            rows.push((row, back));
        }
        for entry in std::fs::read_dir(&args.dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with(&format!("{model}.")) || name.starts_with(&format!("{model}-")) {
                std::fs::remove_file(&path)?;
            }
        }
    }
    let json = args.json.unwrap_or_else(|| args.dir.join("parity.json"));
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|(row, back)| {
            let mut value = serde_json::to_value(row).expect("a row serialises");
            value["load_back_max_rel_error"] = back.into();
            value
        })
        .collect();
    std::fs::write(&json, serde_json::to_vec_pretty(&rows)?)?;
    println!("written to {}", json.display());
    Ok(())
}
