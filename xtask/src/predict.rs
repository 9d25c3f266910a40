//! `cargo xtask predict <run> <image>… [--weights FILE] [--json]`.

use std::error::Error;
use std::path::PathBuf;

use clap::Args;
use trainer::eval::predict_images;

#[derive(Args)]
pub struct PredictArgs {
    /// A training run's folder (holding config.json).
    run: PathBuf,
    /// Image files.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Weights to use (default: the run's best.bpk).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Print JSON: per image the top-5 and the full logits vector.
    #[arg(long)]
    json: bool,
}

pub fn run(args: PredictArgs) -> Result<(), Box<dyn Error>> {
    let predictions = predict_images(&args.run, args.weights.as_deref(), &args.images)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&predictions)?);
        return Ok(());
    }
    for prediction in predictions {
        println!("{}", prediction.image.display());
        for (class, probability) in prediction.top5 {
            println!("  {class:<16} {:6.2}%", 100.0 * probability);
        }
    }
    Ok(())
}
