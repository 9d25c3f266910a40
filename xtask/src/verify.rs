//! `cargo xtask verify <run|file>…`: every file of a run against its manifest, or one file.

use std::error::Error;
use std::path::PathBuf;

use clap::Args;
use trainer::manifest::{self, Check};

#[derive(Args)]
pub struct VerifyArgs {
    /// Run folders (every file their manifest.json lists) or single files (against the
    /// manifest of their folder).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: VerifyArgs) -> Result<(), Box<dyn Error>> {
    let mut bad = 0;
    for path in &args.paths {
        if path.is_dir() {
            for (file, outcome) in manifest::verify_run(path)? {
                match outcome {
                    Ok(()) => println!("ok        {}", file.display()),
                    Err(problem) => {
                        bad += 1;
                        println!("MISMATCH  {problem}");
                    }
                }
            }
        } else {
            match manifest::verify(path) {
                Ok(Check::Matches) => println!("ok        {}", path.display()),
                Ok(Check::Unlisted) => {
                    let digest = manifest::digest(path)?;
                    println!(
                        "unlisted  {}: no manifest beside it lists it; SHA-256 {} ({} bytes)",
                        path.display(),
                        digest.sha256,
                        digest.bytes
                    );
                }
                Err(problem) => {
                    bad += 1;
                    println!("MISMATCH  {problem}");
                }
            }
        }
    }
    if bad > 0 {
        return Err(format!("{bad} file(s) do not match their manifest").into());
    }
    Ok(())
}
