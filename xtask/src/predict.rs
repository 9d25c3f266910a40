//! `cargo xtask predict <run> <image>… [--weights FILE] [--json]` and
//! `cargo xtask predict --model <name> --weights <file> <image>… [--classes FILE]
//! [--transform-input] [--json]`.

use std::error::Error;
use std::path::PathBuf;

use clap::Args;
use trainer::BackendKind;
use trainer::eval::{predict_images, predict_with_weights};
use trainer::model_zoo::pretrained;

#[derive(Args)]
pub struct PredictArgs {
    /// A training run's folder (holding config.json), then image files; with --model, only
    /// image files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// A registry model to run with --weights (torchvision .pth/.pt, .safetensors or .bpk)
    /// instead of a training run (without --weights: the project's shipped weights for it,
    /// `zoo:<model>.<dataset>`); images get the weights' preprocessing. Named weights
    /// (`--weights tv:resnet50`, `zoo:lenet5.mnist`) name their model themselves.
    #[arg(long)]
    model: Option<String>,
    /// Weights to use (default: the run's best.bpk), or published weights by name
    /// (`tv:resnet50`, `cargo xtask weights list`), downloaded once into the cache; those
    /// bring their preprocessing and ImageNet's class names.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// With --model: a text file naming the classes, one per line (default: their indices).
    #[arg(long, requires = "model")]
    classes: Option<PathBuf>,
    /// With --model googlenet and torchvision's pretrained file: re-normalise inputs inside
    /// the network, as torchvision does for those weights (`transform_input=True`).
    #[arg(long, requires = "model")]
    transform_input: bool,
    /// With --model: the backend.
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Print JSON: per image the top-5 and the full logits vector.
    #[arg(long)]
    json: bool,
}

pub fn run(args: PredictArgs) -> Result<(), Box<dyn Error>> {
    // Named weights name their model; a model without weights takes the project's shipped ones.
    let named_model = match args
        .weights
        .as_ref()
        .map(|w| w.to_string_lossy().into_owned())
    {
        Some(name) if name.starts_with("zoo:") => Some(pretrained::find_shipped(&name)?.model),
        Some(name) if pretrained::is_published_name(&name) => Some(pretrained::find(&name)?.model),
        _ => None,
    };
    let model = args.model.clone().or(named_model.map(str::to_string));
    let weights = match (&model, &args.weights) {
        (Some(model), None) => {
            let shipped = pretrained::shipped_for(model).ok_or_else(|| {
                format!("{model}: the project ships no weights for it; pass --weights")
            })?;
            eprintln!(
                "using the shipped weights {} ({:.2} % test top-1 on {})",
                shipped.name(),
                shipped.top1,
                shipped.dataset
            );
            Some(PathBuf::from(shipped.name()))
        }
        (_, weights) => weights.clone(),
    };
    let predictions = match (&model, &weights) {
        (Some(model), Some(weights)) => {
            let classes = match &args.classes {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?
                        .lines()
                        .map(str::to_string)
                        .collect(),
                ),
                None => None,
            };
            let options =
                trainer::model_zoo::ModelOptions::new().with_transform_input(args.transform_input);
            predict_with_weights(model, &options, weights, &args.paths, classes, args.backend)?
        }
        _ => {
            let [run, images @ ..] = &args.paths[..] else {
                return Err("predict needs a run folder and image files".into());
            };
            if images.is_empty() {
                return Err(format!("no image files after the run {}", run.display()).into());
            }
            predict_images(run, args.weights.as_deref(), images)?
        }
    };
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
