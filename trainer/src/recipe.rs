//! Recipes: a training setup kept as a file, `recipes/<name>.toml`, whose keys are `train`'s
//! options as the command line spells them (`batch-size = 128`), plus the `model` it trains and
//! a `description`. Options given on the command line win over the recipe's, as with timm's
//! `--config` files; a run records the recipe it came from in its `config.json`.
//!
//! ```
//! use trainer::config::TrainConfig;
//! use trainer::recipe::Recipe;
//!
//! let recipe = Recipe::find("cifar-resnet20")?;
//! assert_eq!(recipe.model.as_deref(), Some("cifar-resnet20"));
//! // Nothing given on the command line: the recipe's options, over the defaults.
//! let config = recipe.apply(TrainConfig::new("cifar-resnet20"), |_| false)?;
//! assert_eq!((config.batch_size, config.lr_milestones), (128, vec![32_000, 48_000]));
//! // --batch-size given: it wins.
//! let given = TrainConfig { batch_size: 64, ..TrainConfig::new("cifar-resnet20") };
//! assert_eq!(recipe.apply(given, |id| id == "batch_size")?.batch_size, 64);
//! # Ok::<(), trainer::error::TrainError>(())
//! ```

use std::path::Path;

use clap::{ArgAction, CommandFactory, Parser};

use crate::config::{Defaults, TrainConfig};
use crate::error::TrainError;

/// The recipes that ship with the trainer, by name (the files in `recipes/`).
pub const BUILT_IN: [(&str, &str); 6] = [
    (
        "cifar-resnet20",
        include_str!("../../recipes/cifar-resnet20.toml"),
    ),
    (
        "cifar-resnet20-fast",
        include_str!("../../recipes/cifar-resnet20-fast.toml"),
    ),
    (
        "cifar-resnet20-strong",
        include_str!("../../recipes/cifar-resnet20-strong.toml"),
    ),
    (
        "cifar-resnet20-distilled",
        include_str!("../../recipes/cifar-resnet20-distilled.toml"),
    ),
    (
        "cifar-resnet20-distilled-2",
        include_str!("../../recipes/cifar-resnet20-distilled-2.toml"),
    ),
    (
        "lenet5-mnist",
        include_str!("../../recipes/lenet5-mnist.toml"),
    ),
];

/// A recipe file is a few dozen lines; anything far larger is not one.
const LARGEST_RECIPE_BYTES: u64 = 1 << 20;

/// A training setup read from a recipe file.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// The built-in name or the file it was read from.
    pub source: String,
    /// What it reproduces, in a line.
    pub description: Option<String>,
    /// The zoo model it trains (the command line's model wins).
    pub model: Option<String>,
    /// `--option=value` for each of its options, in the file's key order.
    arguments: Vec<String>,
    /// The `TrainConfig` field of each option.
    fields: Vec<String>,
}

impl Recipe {
    /// A built-in recipe by name, or a recipe file by path.
    pub fn find(name_or_path: &str) -> Result<Self, TrainError> {
        if let Some((name, text)) = BUILT_IN.iter().find(|(name, _)| *name == name_or_path) {
            return Self::parse(text, name);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            let names: Vec<&str> = BUILT_IN.iter().map(|(name, _)| *name).collect();
            return Err(TrainError::Config(format!(
                "no recipe '{name_or_path}': the built-in recipes are {}, or name a .toml file",
                names.join(", ")
            )));
        }
        let source = path.display().to_string();
        let problem = |problem: String| TrainError::Config(format!("{source}: {problem}"));
        let size = std::fs::metadata(path)
            .map_err(|e| problem(e.to_string()))?
            .len();
        if size > LARGEST_RECIPE_BYTES {
            return Err(problem(format!(
                "{size} bytes is too large for a recipe (at most {LARGEST_RECIPE_BYTES})"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
        Self::parse(&text, &source)
    }

    /// Reads a recipe's text; `source` names it in errors. Every option is checked as the
    /// command line checks it, so a bad value is refused here, not when the run starts.
    pub fn parse(text: &str, source: &str) -> Result<Self, TrainError> {
        let problem = |problem: String| TrainError::Config(format!("{source}: {problem}"));
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| problem(e.message().to_string()))?;
        let command = Defaults::command();
        let mut recipe = Self {
            source: source.to_string(),
            description: None,
            model: None,
            arguments: Vec::new(),
            fields: Vec::new(),
        };
        for (key, value) in &table {
            let text_value = |value: &toml::Value| match value {
                toml::Value::String(text) => Ok(text.clone()),
                other => Err(problem(format!("'{key}' must be a string, not {other}"))),
            };
            match key.as_str() {
                "description" => recipe.description = Some(text_value(value)?),
                "model" => recipe.model = Some(text_value(value)?),
                _ => {
                    let long = key.replace('_', "-");
                    let Some(arg) = command
                        .get_arguments()
                        .find(|a| a.get_long() == Some(&long))
                    else {
                        let options: Vec<&str> = command
                            .get_arguments()
                            .filter_map(|a| a.get_long())
                            .collect();
                        return Err(problem(format!(
                            "unknown option '{key}' (a recipe sets model, description and \
                             `train`'s options: {})",
                            options.join(", ")
                        )));
                    };
                    let flag = matches!(arg.get_action(), ArgAction::SetTrue);
                    let argument = match (value, flag) {
                        (toml::Value::Boolean(true), true) => Some(format!("--{long}")),
                        (toml::Value::Boolean(false), true) => None,
                        (_, true) => {
                            return Err(problem(format!("'{key}' is true or false, not {value}")));
                        }
                        (toml::Value::Array(items), false) => {
                            let items: Result<Vec<String>, _> = items.iter().map(scalar).collect();
                            let items = items.map_err(|e| problem(format!("'{key}': {e}")))?;
                            Some(format!("--{long}={}", items.join(",")))
                        }
                        (value, false) => {
                            let value =
                                scalar(value).map_err(|e| problem(format!("'{key}': {e}")))?;
                            Some(format!("--{long}={value}"))
                        }
                    };
                    recipe.arguments.extend(argument);
                    recipe.fields.push(arg.get_id().to_string());
                }
            }
        }
        recipe.options()?;
        Ok(recipe)
    }

    /// The defaults with this recipe's options.
    fn options(&self) -> Result<TrainConfig, TrainError> {
        let arguments = std::iter::once("recipe").chain(self.arguments.iter().map(String::as_str));
        Defaults::try_parse_from(arguments)
            .map(|parsed| parsed.config)
            .map_err(|e| {
                let rendered = e.to_string();
                let first = rendered.lines().next().unwrap_or_default();
                TrainError::Config(format!(
                    "{}: {}",
                    self.source,
                    first.trim_start_matches("error: ")
                ))
            })
    }

    /// `given` (the command line's configuration) with the recipe's options wherever the
    /// command line did not set one: `explicit(field)` says whether it did, by `TrainConfig`
    /// field name. The model is the recipe's when `given` names none.
    pub fn apply(
        &self,
        given: TrainConfig,
        explicit: impl Fn(&str) -> bool,
    ) -> Result<TrainConfig, TrainError> {
        let recipe = serde_json::to_value(self.options()?).expect("the config serialises");
        let mut merged = serde_json::to_value(&given).expect("the config serialises");
        for field in self.fields.iter().filter(|field| !explicit(field)) {
            merged[field.as_str()] = recipe[field.as_str()].clone();
        }
        let merged: TrainConfig =
            serde_json::from_value(merged).expect("a config's own fields deserialise");
        let model = match (given.model.is_empty(), &self.model) {
            (true, Some(model)) => model.clone(),
            _ => given.model,
        };
        Ok(TrainConfig {
            model,
            recipe: Some(self.source.clone()),
            ..merged
        })
    }
}

/// A TOML number or string as the command line would write it.
fn scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        toml::Value::Float(number) => Ok(number.to_string()),
        other => Err(format!("expected a number or a string, not {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn every_built_in_recipe_reads_and_names_a_zoo_model() {
        for (name, _) in BUILT_IN {
            let recipe = Recipe::find(name).unwrap();
            let model = recipe
                .model
                .clone()
                .expect("built-in recipes name their model");
            model_zoo::info(&model).unwrap();
            let config = recipe.apply(TrainConfig::new(""), |_| false).unwrap();
            config.check().unwrap();
            assert_eq!(config.recipe.as_deref(), Some(name));
        }
    }

    #[test]
    fn he_et_al_schedule_is_64k_iterations_cut_at_32k_and_48k() {
        let config = Recipe::find("cifar-resnet20")
            .unwrap()
            .apply(TrainConfig::new(""), |_| false)
            .unwrap();
        // All 50,000 training images in batches of 128: 391 iterations an epoch.
        let iterations = 50_000usize.div_ceil(config.batch_size) * config.epochs;
        assert!((64_000..64_000 + 391).contains(&iterations), "{iterations}");
        assert_eq!(config.lr_milestones, [32_000, 48_000]);
        assert_eq!(
            (config.lr, config.momentum, config.weight_decay),
            (0.1, 0.9, 1e-4)
        );
        assert_eq!(config.validation, Some(0));
    }

    #[test]
    fn the_command_line_wins_and_flags_and_lists_are_read() {
        let recipe = Recipe::parse(
            "model = \"lenet5\"\nnesterov = true\nlr_milestones = [3, 6]\nlr = 0.2\nepochs = 9\n\
             teacher = [\"a.bpk\", \"zoo:lenet5\"]\n",
            "test.toml",
        )
        .unwrap();
        let given = TrainConfig {
            lr: 0.01,
            epochs: 4,
            ..TrainConfig::new("")
        };
        let config = recipe.apply(given, |field| field == "lr").unwrap();
        assert_eq!(config.model, "lenet5");
        assert!(config.nesterov);
        assert_eq!(config.lr_milestones, [3, 6]);
        assert_eq!(
            config.teachers,
            [PathBuf::from("a.bpk"), PathBuf::from("zoo:lenet5")]
        );
        assert_eq!(config.lr, 0.01, "given on the command line");
        assert_eq!(config.epochs, 9, "not given: the recipe's");
        let named = recipe
            .apply(TrainConfig::new("alexnet"), |_| false)
            .unwrap();
        assert_eq!(named.model, "alexnet", "the command line's model wins");
    }

    #[test]
    fn bad_recipes_are_refused_with_the_file_and_the_key() {
        for (text, expected) in [
            ("batch-size = 0x", "test.toml"),
            ("learning-rate = 0.1", "unknown option 'learning-rate'"),
            ("lr = \"fast\"", "fast"),
            ("nesterov = 1", "'nesterov' is true or false"),
            ("model = 3", "'model' must be a string"),
            ("optimizer = \"rmsprop\"", "rmsprop"),
            ("lr-milestones = [[1]]", "'lr-milestones'"),
            ("out = \"x\"", "unknown option 'out'"),
        ] {
            let error = Recipe::parse(text, "test.toml").unwrap_err().to_string();
            assert!(error.starts_with("test.toml: "), "{error}");
            assert!(error.contains(expected), "{text}: {error}");
        }
        let missing = Recipe::find("no-such-recipe").unwrap_err().to_string();
        assert!(missing.contains("cifar-resnet20"), "{missing}");
    }
}
