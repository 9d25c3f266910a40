//! `cargo xtask summary <model> [--input C,H,W] [--num-classes N] [--json]`.

use std::error::Error;

use clap::Args;
use trainer::BackendKind;
use trainer::summary::{SummaryRequest, summarize};

#[derive(Args)]
pub struct SummaryArgs {
    /// Registry name (`cargo xtask summary --list` shows them all).
    #[arg(required_unless_present = "list")]
    model: Option<String>,
    /// Input shape of one image as C,H,W (default: the model's own).
    #[arg(long, value_parser = parse_input)]
    input: Option<[usize; 3]>,
    /// Number of classes (default: the model's own).
    #[arg(long)]
    num_classes: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// List the registry's models.
    #[arg(long)]
    list: bool,
}

fn parse_input(text: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let dims: Vec<usize> = parts
        .iter()
        .map(|part| part.parse::<usize>().ok().filter(|&d| d > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("'{text}' is not C,H,W with three positive integers"))?;
    <[usize; 3]>::try_from(dims).map_err(|_| format!("'{text}' is not C,H,W: expected 3 numbers"))
}

pub fn run(args: SummaryArgs) -> Result<(), Box<dyn Error>> {
    let Some(model) = args.model.filter(|_| !args.list) else {
        for info in trainer::model_zoo::MODELS.iter() {
            println!(
                "{:<22} {:<26} input {:?}",
                info.name, info.paper, info.input
            );
        }
        return Ok(());
    };
    let request = SummaryRequest {
        model,
        input: args.input,
        num_classes: args.num_classes,
    };
    let summary = summarize(&request, &BackendKind::Flex.device())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_input;

    #[test]
    fn input_shapes_parse_or_explain() {
        assert_eq!(parse_input("3,224,224"), Ok([3, 224, 224]));
        assert_eq!(parse_input("1, 32, 32"), Ok([1, 32, 32]));
        assert!(
            parse_input("3,224")
                .unwrap_err()
                .contains("expected 3 numbers")
        );
        assert!(
            parse_input("3,x,2")
                .unwrap_err()
                .contains("three positive integers")
        );
        assert!(parse_input("0,2,2").is_err());
    }
}
