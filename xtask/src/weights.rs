//! `cargo xtask weights list|fetch|verify`: published pretrained weights by name.

use std::error::Error;

use clap::Subcommand;
use trainer::hub::{self, Cached};
use trainer::model_zoo::pretrained::{self, PublishedWeights, SHIPPED, TORCHVISION};

#[derive(Subcommand)]
pub enum WeightsCommand {
    /// Every published weights name with its accuracy and whether it is in the cache.
    List,
    /// Download weights into the cache (checked against their SHA-256; a cut download resumes).
    Fetch {
        /// Names such as `tv:resnet50` (torchvision's default) or `tv:resnet50.imagenet1k_v1`.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Check cached files against their published hashes (default: every cached file).
    Verify {
        /// Names to check.
        names: Vec<String>,
    },
}

fn named(names: &[String]) -> Result<Vec<&'static PublishedWeights>, String> {
    names.iter().map(|name| pretrained::find(name)).collect()
}

pub fn run(command: WeightsCommand) -> Result<(), Box<dyn Error>> {
    let dir = hub::cache_dir();
    match command {
        WeightsCommand::List => {
            println!(
                "cache: {} (set {} to move it)",
                dir.display(),
                hub::CACHE_ENV
            );
            for weights in SHIPPED {
                println!(
                    "{:<32} top-1 {:6.3}%  on {}, shipped in the binary (trained by `{}`)",
                    weights.name(),
                    weights.top1,
                    weights.dataset,
                    weights
                        .command
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            for weights in TORCHVISION {
                let cached = match hub::verify_in(weights, &dir)? {
                    Cached::Missing => "",
                    Cached::Verified(_) => "cached",
                    Cached::Mismatch { .. } => "cached, hash mismatch",
                };
                let default = if weights.default {
                    format!(" (tv:{})", weights.model)
                } else {
                    String::new()
                };
                println!(
                    "{:<32} top-1 {:6.3}%  top-5 {:6.3}%  {cached}",
                    format!("{}{default}", weights.name()),
                    weights.top1,
                    weights.top5
                );
            }
        }
        WeightsCommand::Fetch { names } => {
            for weights in named(&names)? {
                let path = hub::fetch(weights)?;
                println!("{}: {}", weights.name(), path.display());
            }
        }
        WeightsCommand::Verify { names } => {
            let chosen = if names.is_empty() {
                TORCHVISION.iter().collect()
            } else {
                named(&names)?
            };
            let mut bad = 0;
            for weights in chosen {
                match hub::verify_in(weights, &dir)? {
                    Cached::Missing if names.is_empty() => {}
                    Cached::Missing => println!("{}: not in the cache", weights.name()),
                    Cached::Verified(path) => {
                        println!("{}: ok, {}", weights.name(), path.display())
                    }
                    Cached::Mismatch { path, sha256 } => {
                        bad += 1;
                        println!(
                            "{}: {} has SHA-256 {sha256}, not {}…; `weights fetch {}` replaces it",
                            weights.name(),
                            path.display(),
                            weights.sha256_prefix,
                            weights.name()
                        );
                    }
                }
            }
            if bad > 0 {
                return Err(
                    format!("{bad} cached file(s) do not match their published hash").into(),
                );
            }
        }
    }
    Ok(())
}
