//! Transfer learning, the chapter's recipe: start from someone else's weights, replace the
//! softmax layer, and freeze what the data cannot support — everything but the head with little
//! data, up to a middle stage with more, nothing with a lot.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::prelude::*;
use model_zoo::{Classifier, ModelInfo, ModelOptions, ZooModel};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Which parameters training leaves alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum FreezePolicy {
    /// Train everything (fine-tuning).
    None,
    /// Train only the new softmax layer(s), the ones `with_num_classes` replaces.
    AllButHead,
    /// Freeze every parameter up to and including the module at this path (`layer3`,
    /// `features.16`), in forward order.
    Until(String),
}

impl fmt::Display for FreezePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::AllButHead => f.write_str("all-but-head"),
            Self::Until(path) => write!(f, "until:{path}"),
        }
    }
}

impl FromStr for FreezePolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(Self::None),
            "all-but-head" => Ok(Self::AllButHead),
            _ => match text.strip_prefix("until:") {
                Some(path) if !path.is_empty() => Ok(Self::Until(path.to_string())),
                _ => Err(format!(
                    "unknown freeze policy '{text}' (expected none, all-but-head or \
                     until:<module path>, e.g. until:layer3)"
                )),
            },
        }
    }
}

impl From<FreezePolicy> for String {
    fn from(policy: FreezePolicy) -> Self {
        policy.to_string()
    }
}

impl TryFrom<String> for FreezePolicy {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

/// Every tensor parameter and module flag (BatchNorm's and dropout's training switches) with its
/// path, in the order the module declares them, which is the order of the forward pass.
#[derive(Default)]
struct Paths {
    stack: Vec<String>,
    entries: Vec<(ParamId, String)>,
}

impl Paths {
    fn of(model: &ZooModel) -> Vec<(ParamId, String)> {
        let mut paths = Paths::default();
        model.visit(&mut paths);
        paths.entries
    }

    fn here(&self) -> String {
        self.stack.join(".")
    }
}

impl ModuleVisitor for Paths {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.here();
        self.entries.push((param.id, path));
    }

    fn visit_flag(&mut self, flag: &Param<burn::module::Flag>) {
        let path = self.here();
        self.entries.push((flag.id, path));
    }
}

/// The torchvision-style path: enum variants (`ResNet`, `Conv`, `Basic`), the only segments
/// that start with a capital, are left out.
fn normalise(path: &str) -> String {
    path.split('.')
        .filter(|part| !part.is_empty() && !part.starts_with(|c: char| c.is_ascii_uppercase()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Parameters and flags, each with its path.
type Entries = Vec<(ParamId, String)>;

/// The entries of `model` outside its head and those of the head (what `with_num_classes`
/// builds anew: the entries whose ids change).
fn backbone_and_head(model: &ZooModel, device: &Device) -> (Entries, Entries) {
    let renewed = Paths::of(&model.clone().with_num_classes(model.num_classes(), device));
    let (backbone, head): (Vec<_>, Vec<_>) = Paths::of(model)
        .into_iter()
        .zip(renewed)
        .partition(|((old, _), (new, _))| old == new);
    let entries = |pairs: Vec<(_, _)>| pairs.into_iter().map(|(entry, _)| entry).collect();
    (entries(backbone), entries(head))
}

/// Every parameter and flag of `model` outside its head, with its path.
pub(crate) fn backbone_parameters(model: &ZooModel, device: &Device) -> Entries {
    backbone_and_head(model, device).0
}

/// How many classes the head in the zoo weights file `path` (a `.bpk`) has: the length of the
/// head's bias; `None` when the file has no such tensor.
fn classes_in_burnpack(
    model: &ZooModel,
    path: &Path,
    device: &Device,
) -> Result<Option<usize>, TrainError> {
    let head: Vec<String> = backbone_and_head(model, device)
        .1
        .iter()
        .map(|(_, path)| normalise(path))
        .collect();
    let tensors = burn_pack::Reader::from_file(path)
        .and_then(burn_pack::Reader::into_tensors)
        .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
    Ok(tensors
        .iter()
        .find(|tensor| tensor.shape.len() == 1 && head.contains(&normalise(&tensor.name)))
        .map(|tensor| tensor.shape[0]))
}

/// The ids `policy` freezes in `model`.
fn frozen_ids(
    model: &ZooModel,
    policy: &FreezePolicy,
    device: &Device,
) -> Result<Vec<ParamId>, TrainError> {
    let entries = Paths::of(model);
    match policy {
        FreezePolicy::None => Ok(Vec::new()),
        FreezePolicy::AllButHead => Ok(backbone_parameters(model, device)
            .into_iter()
            .map(|(id, _)| id)
            .collect()),
        FreezePolicy::Until(prefix) => {
            let inside = |path: &str| {
                let path = normalise(path);
                path == *prefix || path.starts_with(&format!("{prefix}."))
            };
            let Some(last) = entries.iter().rposition(|(_, path)| inside(path)) else {
                let mut top: Vec<String> = entries
                    .iter()
                    .filter_map(|(_, path)| normalise(path).split('.').next().map(str::to_string))
                    .collect();
                top.dedup();
                return Err(TrainError::Config(format!(
                    "--freeze until:{prefix}: the model has no module '{prefix}' (its top-level \
                     modules: {})",
                    top.join(", ")
                )));
            };
            Ok(entries[..=last].iter().map(|(id, _)| *id).collect())
        }
    }
}

/// Freezes what `policy` names with Burn's `freeze_group`: no gradients, and BatchNorm and
/// dropout inside stay in evaluation mode, so frozen running statistics do not move. Returns
/// the model and (trainable, total) parameter counts.
pub fn freeze(
    model: ZooModel,
    policy: &FreezePolicy,
    device: &Device,
) -> Result<(ZooModel, usize, usize), TrainError> {
    let total = model_zoo::count_parameters(&model);
    let ids = frozen_ids(&model, policy, device)?;
    let model = if ids.is_empty() {
        model
    } else {
        model.freeze_group(ParamGroup::from_ids(ids))
    };
    let trainable = trainable_parameters(&model);
    Ok((model, trainable, total))
}

/// Parameters that still require gradients.
fn trainable_parameters(model: &ZooModel) -> usize {
    #[derive(Default)]
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            if value.is_require_grad() {
                self.0 += value.shape().num_elements();
            }
        }
    }
    let mut count = Count::default();
    model.visit(&mut count);
    count.0
}

/// `info`'s model with the weights of `path` (torchvision `.pth`/`.safetensors`, the zoo's
/// `.bpk`, whose head may have any number of classes, or published weights by name,
/// `tv:resnet50`, fetched into the cache by [`crate::hub`]) under its original head, then a new
/// head for `num_classes` when that differs.
pub fn pretrained(
    info: &ModelInfo,
    options: &ModelOptions,
    path: &Path,
    num_classes: usize,
    device: &Device,
) -> Result<ZooModel, TrainError> {
    let model = with_own_head(info, options, path, device)?;
    Ok(if model.num_classes() == num_classes {
        model
    } else {
        model.with_num_classes(num_classes, device)
    })
}

/// `info`'s model with the weights of `path` (any form [`pretrained`] takes) under the head they
/// were trained with.
pub fn with_own_head(
    info: &ModelInfo,
    options: &ModelOptions,
    path: &Path,
    device: &Device,
) -> Result<ZooModel, TrainError> {
    let (path, published) = crate::hub::resolve(path)?;
    let path = path.as_path();
    crate::manifest::verify(path)?;
    let mut options = options.clone().with_num_classes(None);
    if let Some(weights) = published {
        if weights.model() != info.name {
            return Err(TrainError::Config(format!(
                "{} holds {}'s weights, not {}'s",
                weights.name(),
                weights.model(),
                info.name
            )));
        }
        options = options.with_transform_input(weights.transform_input());
    }
    let base = info.build(&options, device);
    let model = if path.extension().is_some_and(|e| e == "bpk") {
        // A zoo run's weights keep the head of the task they were trained on.
        let base = match classes_in_burnpack(&base, path, device)? {
            Some(classes) if classes != base.num_classes() => {
                base.with_num_classes(classes, device)
            }
            _ => base,
        };
        base.try_load_file(path).map_err(|e| {
            TrainError::Config(format!(
                "{}: cannot load weights for {}: {e:?}",
                path.display(),
                info.name
            ))
        })?
    } else {
        model_zoo::weights::load_weights(base, info.name, path, device)
            .map_err(|e| TrainError::Config(e.to_string()))?
    };
    Ok(model)
}
