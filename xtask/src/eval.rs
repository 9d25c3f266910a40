//! `cargo xtask eval <run|weights>… [--tta none|flip|five-crop|ten-crop] [--resize S --crop C]`.

use std::error::Error;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use trainer::BackendKind;
use trainer::data::transforms::Views;
use trainer::ensemble::{Averaging, EnsembleConfig, EnsembleReport, Member, evaluate_ensemble};
use trainer::eval::{
    EvalReport, EvalSplit, WeightsSpec, evaluate_run, evaluate_weights, write_json,
};

#[derive(Clone, Copy, ValueEnum)]
enum SplitArg {
    Test,
    Valid,
}

#[derive(Clone, Copy, ValueEnum)]
enum AverageArg {
    Probabilities,
    Logits,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Training runs' folders (holding config.json), or weight files inside them; several form
    /// an ensemble whose outputs are averaged.
    #[arg(required_unless_present = "model")]
    runs: Vec<PathBuf>,
    /// Weights to evaluate with a single run folder (default: its best.bpk), or with --model
    /// (a file, or named weights: zoo:lenet5.mnist, tv:resnet50); with --model, repeat it for an
    /// ensemble of weight files.
    #[arg(long)]
    weights: Vec<PathBuf>,
    /// Evaluate --weights of this registry model on --dataset's test split, without a run (with
    /// or without test-time augmentation).
    #[arg(long, requires_all = ["weights", "dataset"], conflicts_with = "runs")]
    model: Option<String>,
    /// With --model: embedded, mnist, cifar10 or an image folder.
    #[arg(long, requires = "model")]
    dataset: Option<String>,
    /// With --model: the folder of mnist's or cifar10's files.
    #[arg(long, default_value = "datasets", requires = "model")]
    data_dir: PathBuf,
    /// With --model: the preset whose evaluation transform the weights expect (mnist, cifar,
    /// small, imagenet, alexnet; default: a shipped file's recipe's, else the dataset's own).
    #[arg(long, requires = "model")]
    augment: Option<String>,
    /// With --model: the backend.
    #[arg(long, default_value = "flex", requires = "model")]
    backend: BackendKind,
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    split: SplitArg,
    /// Test-time augmentation: none, flip, five-crop, ten-crop (outputs averaged over the views).
    #[arg(long, default_value = "none")]
    tta: Views,
    /// Resize the shorter side to S before cutting the views (default: 256/224 of the crop for
    /// the ImageNet presets, none for MNIST and CIFAR).
    #[arg(long)]
    resize: Option<usize>,
    /// Side of each view (default: the runs' input size).
    #[arg(long)]
    crop: Option<usize>,
    /// Zeros added to every side before cutting (default: 4 for MNIST and CIFAR, 0 otherwise).
    #[arg(long)]
    pad: Option<usize>,
    /// What the ensemble and the views average.
    #[arg(long, value_enum, default_value_t = AverageArg::Probabilities)]
    average: AverageArg,
    /// Images per batch (each is `views` crops in one forward pass).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Where to write the report (default: <run>/eval.json for one run without test-time
    /// augmentation, with its confusion matrix drawn beside it as .png; otherwise
    /// ensemble-<tta>.json beside the first run).
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// A run folder, or a weight file whose folder holds the run's config.json.
fn member(path: &Path, weights: Option<&Path>) -> Member {
    if path.is_file() {
        Member::Run {
            run: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            weights: Some(path.to_path_buf()),
        }
    } else {
        Member::Run {
            run: path.to_path_buf(),
            weights: weights.map(Path::to_path_buf),
        }
    }
}

/// The members `args` name: weight files of `--model`, or run folders (or weight files inside
/// them).
fn members(args: &EvalArgs, split: EvalSplit) -> Result<Vec<Member>, Box<dyn Error>> {
    if let (Some(model), Some(dataset)) = (&args.model, &args.dataset) {
        if split == EvalSplit::Valid {
            return Err(
                "--model evaluates --dataset's test split; --split valid needs the \
                        run folder that held the images back"
                    .into(),
            );
        }
        return Ok(args
            .weights
            .iter()
            .map(|weights| {
                Member::Weights(WeightsSpec {
                    augment: args.augment.clone(),
                    backend: args.backend,
                    ..WeightsSpec::new(model, weights, dataset, &args.data_dir)
                })
            })
            .collect());
    }
    match args.weights.as_slice() {
        [_, _, ..] => Err(
            "several --weights go with --model; for runs, name each member's \
                           weight file instead"
                .into(),
        ),
        [_] if args.runs.len() > 1 => {
            Err("--weights goes with one run; name each member's weight file instead".into())
        }
        weights => Ok(args
            .runs
            .iter()
            .map(|path| member(path, weights.first().map(PathBuf::as_path)))
            .collect()),
    }
}

pub fn run(args: EvalArgs) -> Result<(), Box<dyn Error>> {
    let split = match args.split {
        SplitArg::Test => EvalSplit::Test,
        SplitArg::Valid => EvalSplit::Valid,
    };
    let members = members(&args, split)?;
    let plain = members.len() == 1
        && args.tta == Views::Single
        && (args.resize, args.crop, args.pad) == (None, None, None);
    if plain {
        return plain_eval(&members[0], split, args.json);
    }
    let config = EnsembleConfig {
        members,
        views: args.tta,
        resize: args.resize,
        crop: args.crop,
        padding: args.pad,
        averaging: match args.average {
            AverageArg::Probabilities => Averaging::Probabilities,
            AverageArg::Logits => Averaging::Logits,
        },
        split,
        batch_size: args.batch_size,
        progress: !args.quiet,
    };
    let report = evaluate_ensemble(&config)?;
    print_ensemble(&report);
    let path = match (args.json, &config.members[0]) {
        (Some(path), _) => path,
        (None, Member::Run { run, .. }) => run
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("ensemble-{}.json", args.tta)),
        (None, Member::Weights(_)) => return Ok(()),
    };
    write_json(&report, &path)?;
    println!("report in {}", path.display());
    Ok(())
}

/// One member without test-time augmentation: its report, per class, written as JSON with the
/// confusion matrix drawn beside it (by default into the run's folder; for weights without a
/// run, only where --json says).
fn plain_eval(
    member: &Member,
    split: EvalSplit,
    json: Option<PathBuf>,
) -> Result<(), Box<dyn Error>> {
    let (report, path) = match member {
        Member::Run { run, weights } => {
            let report = evaluate_run(run, weights.as_deref(), split)?;
            (report, Some(json.unwrap_or_else(|| run.join("eval.json"))))
        }
        Member::Weights(spec) => (evaluate_weights(spec)?, json),
    };
    print_report(&report);
    let Some(path) = path else {
        return Ok(());
    };
    write_json(&report, &path)?;
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

fn print_ensemble(report: &EnsembleReport) {
    let percent = |x: f64| format!("{:6.2}%", 100.0 * x);
    println!(
        "{} images, test-time augmentation: {} ({} views), averaging {:?}",
        report.images,
        report.views,
        report.cost.forward_passes_per_image / report.members.len(),
        report.averaging
    );
    println!(
        "| member | top-1 centre crop | top-1 {} | top-5 |",
        report.views
    );
    println!("|---|---|---|---|");
    for member in &report.members {
        println!(
            "| {} | {} | {} | {} |",
            member.weights.display(),
            percent(member.top1_centre),
            percent(member.top1),
            percent(member.top5)
        );
    }
    println!(
        "| ensemble of {} | {} | {} | {} |",
        report.members.len(),
        percent(report.top1_centre),
        percent(report.top1),
        percent(report.top5)
    );
    println!(
        "gain: {:+.2} points over the mean member, {:+.2} over the best",
        100.0 * report.gain_over_mean_member,
        100.0 * report.gain_over_best_member
    );
    let cost = &report.cost;
    println!(
        "cost: {} forward passes per image, {:.1} images/s ({:.1} s), batches of {} images, peak memory {}",
        cost.forward_passes_per_image,
        cost.images_per_second,
        cost.seconds,
        cost.batch_size,
        cost.peak_memory_bytes.map_or("unknown".into(), |b| format!(
            "{:.0} MiB",
            b as f64 / 1048576.0
        ))
    );
}

/// Top-1, top-5 and per-class accuracy of one evaluation.
fn print_report(report: &EvalReport) {
    println!(
        "{}: {} images ('{}' preset), top-1 {:.2}%, top-5 {:.2}%",
        report.weights.display(),
        report.images,
        report.preset,
        100.0 * report.top1,
        100.0 * report.top5
    );
    for (class, accuracy) in report.classes.iter().zip(&report.per_class) {
        println!("  {class:<16} {:6.2}%", 100.0 * accuracy);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        eval: EvalArgs,
    }

    fn parse(line: &str) -> EvalArgs {
        Cli::try_parse_from(std::iter::once("eval").chain(line.split_whitespace()))
            .unwrap()
            .eval
    }

    fn weights_of(members: &[Member]) -> Vec<&Path> {
        members
            .iter()
            .map(|member| match member {
                Member::Weights(spec) => spec.weights.as_path(),
                Member::Run { .. } => panic!("a run member where weights were named"),
            })
            .collect()
    }

    #[test]
    fn repeated_weights_of_a_model_form_an_ensemble() {
        let args = parse(
            "--model cifar-resnet20 --dataset cifar10 --weights zoo:cifar-resnet20.cifar10 \
             --weights a/last.bpk --tta ten-crop",
        );
        let members = members(&args, EvalSplit::Test).unwrap();
        assert_eq!(
            weights_of(&members),
            [
                Path::new("zoo:cifar-resnet20.cifar10"),
                Path::new("a/last.bpk")
            ]
        );
    }

    #[test]
    fn runs_take_at_most_one_weights_file() {
        let one = parse("runs/a --weights runs/a/ema.bpk");
        match members(&one, EvalSplit::Test).unwrap().as_slice() {
            [Member::Run { run, weights }] => {
                assert_eq!(run, Path::new("runs/a"));
                assert_eq!(weights.as_deref(), Some(Path::new("runs/a/ema.bpk")));
            }
            _ => panic!("one run member expected"),
        }
        for line in [
            "runs/a --weights x.bpk --weights y.bpk",
            "runs/a runs/b --weights x.bpk",
        ] {
            let error = members(&parse(line), EvalSplit::Test)
                .err()
                .unwrap()
                .to_string();
            assert!(error.contains("name each member's weight file"), "{error}");
        }
    }
}
