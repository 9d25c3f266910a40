//! `cargo xtask eval <run> [--weights FILE] [--split test|valid] [--json FILE]`.

use std::error::Error;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use trainer::eval::{EvalSplit, evaluate_run, write_report};

#[derive(Clone, Copy, ValueEnum)]
enum SplitArg {
    Test,
    Valid,
}

#[derive(Args)]
pub struct EvalArgs {
    /// A training run's folder (holding config.json).
    run: PathBuf,
    /// Weights to evaluate (default: the run's best.bpk).
    #[arg(long)]
    weights: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    split: SplitArg,
    /// Where to write the report with the confusion matrix (default: <run>/eval.json; the
    /// matrix is also drawn beside it as .png).
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> Result<(), Box<dyn Error>> {
    let split = match args.split {
        SplitArg::Test => EvalSplit::Test,
        SplitArg::Valid => EvalSplit::Valid,
    };
    let report = evaluate_run(&args.run, args.weights.as_deref(), split)?;
    println!(
        "{}: {} images, top-1 {:.2}%, top-5 {:.2}%",
        report.weights.display(),
        report.images,
        100.0 * report.top1,
        100.0 * report.top5
    );
    for (class, accuracy) in report.classes.iter().zip(&report.per_class) {
        println!("  {class:<16} {:6.2}%", 100.0 * accuracy);
    }
    let path = args.json.unwrap_or_else(|| args.run.join("eval.json"));
    write_report(&report, &path)?;
    let png = path.with_extension("png");
    let title = format!("{} ({} images)", report.weights.display(), report.images);
    trainer::plot::write_confusion(&png, &title, &report.classes, &report.confusion)?;
    println!(
        "confusion matrix and per-class accuracy in {} and {}",
        path.display(),
        png.display()
    );
    Ok(())
}
