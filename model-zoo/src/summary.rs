//! Keras-style model summaries from a real forward pass: per layer its path in the module tree,
//! kind, output shape, parameters and MACs, plus totals.
//!
//! MACs follow the convention behind torchvision's "GFLOPS" figures: a convolution costs its
//! output elements × k_h·k_w·C_in/groups, a linear layer in × out; pooling, normalisation and
//! activations cost nothing. Parameters are counted as PyTorch's `parameters()` does: trainable
//! tensors only, not batch-norm running statistics.

use std::collections::HashMap;
use std::fmt;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::models::Classifier;
use crate::trace::{self, LayerRecord};

/// One row of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSummary {
    /// Module path for layers with parameters (`layer1.0.conv1`); `kind_N` for the others.
    pub name: String,
    /// Layer kind (`Conv2d`, `Linear`, `BatchNorm`, `MaxPool2d`, `Add`, `Concat`, …).
    pub kind: String,
    /// Output shape of one sample.
    pub output_shape: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
    /// Multiply-accumulates for one sample.
    pub macs: u64,
}

/// A model's layers, parameters and cost for one input shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Model name.
    pub model: String,
    /// Input shape of one sample, `[C, H, W]`.
    pub input: Vec<usize>,
    /// Logits shape of one sample.
    pub output_shape: Vec<usize>,
    /// Trainable parameters of the whole model, auxiliary heads included.
    pub params: usize,
    /// Multiply-accumulates of one inference forward pass.
    pub macs: u64,
    /// Layers in execution order.
    pub layers: Vec<LayerSummary>,
}

/// Walks the module tree, noting each parameter's path and counting trainable parameters.
#[derive(Default)]
struct ParameterWalk {
    stack: Vec<String>,
    paths: HashMap<ParamId, String>,
    trainable: usize,
}

impl ModuleVisitor for ParameterWalk {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let is_buffer = self
            .stack
            .last()
            .is_some_and(|name| name.starts_with("running_"));
        if !is_buffer {
            self.trainable += param.lazy_shape().num_elements();
        }
        // Enum variants (`ResNet`, `Basic`, `Conv`, …) are capitalised; torchvision's paths
        // have none of them, so they are left out of the layer's path.
        let module_path: Vec<&str> = self.stack[..self.stack.len().saturating_sub(1)]
            .iter()
            .map(String::as_str)
            .filter(|segment| !segment.starts_with(|c: char| c.is_ascii_uppercase()))
            .collect();
        self.paths.insert(param.id, module_path.join("."));
    }
}

/// Trainable parameters of any module, counted as PyTorch's `parameters()` does.
pub fn count_parameters<M: Module>(module: &M) -> usize {
    let mut walk = ParameterWalk::default();
    module.visit(&mut walk);
    walk.trainable
}

/// One map of [`crate::Classifier::forward_intermediates`] (timm's `feature_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeatureInfo {
    /// Its index in the list.
    pub index: usize,
    /// Its channels.
    pub channels: usize,
    /// The input's side over its side (2 for a map half the input's size), rounded.
    pub reduction: usize,
}

/// The channels and reductions of `model`'s intermediate maps for `input` (`[C, H, W]`), from
/// one pass over a zero image.
pub fn feature_info<M: Classifier>(
    model: &M,
    input: [usize; 3],
    device: &Device,
) -> Vec<FeatureInfo> {
    let [channels, height, width] = input;
    model
        .forward_intermediates(Tensor::zeros([1, channels, height, width], device))
        .iter()
        .enumerate()
        .map(|(index, map)| {
            let [_, channels, map_height, _] = map.dims();
            FeatureInfo {
                index,
                channels,
                reduction: (height as f64 / map_height as f64).round() as usize,
            }
        })
        .collect()
}

/// Runs `model` on one zero image of shape `input` (`[C, H, W]`) and summarises every layer.
pub fn summarize<M: Module + Classifier>(
    model: &M,
    name: &str,
    input: [usize; 3],
    device: &Device,
) -> Summary {
    let mut walk = ParameterWalk::default();
    model.visit(&mut walk);
    let [channels, height, width] = input;
    let (logits, records) = trace::record_forward(|| {
        model.forward(Tensor::zeros([1, channels, height, width], device))
    });
    let mut counters: HashMap<&'static str, usize> = HashMap::new();
    let layers: Vec<LayerSummary> = records
        .into_iter()
        .map(|record| {
            let path = record.param_id.and_then(|id| walk.paths.get(&id)).cloned();
            let mut layer = unnamed(record, &mut counters);
            if let Some(path) = path {
                layer.name = path;
            }
            layer
        })
        .collect();
    Summary {
        model: name.to_string(),
        input: input.to_vec(),
        output_shape: logits.dims()[1..].to_vec(),
        params: walk.trainable,
        macs: layers.iter().map(|layer| layer.macs).sum(),
        layers,
    }
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn shape(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name_width = self
            .layers
            .iter()
            .map(|layer| layer.name.len())
            .chain([5])
            .max()
            .unwrap_or(5);
        let rule = "─".repeat(name_width + 70);
        writeln!(f, "Model: {}    input: {}", self.model, shape(&self.input))?;
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "{:<name_width$}  {:<18} {:<17} {:>13} {:>16}",
            "Layer", "Kind", "Output shape", "Params", "MACs"
        )?;
        writeln!(f, "{rule}")?;
        for layer in &self.layers {
            writeln!(
                f,
                "{:<name_width$}  {:<18} {:<17} {:>13} {:>16}",
                layer.name,
                layer.kind,
                shape(&layer.output_shape),
                thousands(layer.params as u64),
                thousands(layer.macs)
            )?;
        }
        writeln!(f, "{rule}")?;
        writeln!(f, "Output: {}", shape(&self.output_shape))?;
        writeln!(f, "Trainable params: {}", thousands(self.params as u64))?;
        writeln!(
            f,
            "MACs: {} ({:.2} G)",
            thousands(self.macs),
            self.macs as f64 / 1e9
        )
    }
}

/// Runs `forward` and returns its result with the cost of every layer it ran — for blocks and
/// hand-built networks that are not [`Classifier`]s. Layers are named `kind_N`.
pub fn layer_costs<T>(forward: impl FnOnce() -> T) -> (T, Vec<LayerSummary>) {
    let (output, records) = trace::record_forward(forward);
    let mut counters: HashMap<&'static str, usize> = HashMap::new();
    let layers = records
        .into_iter()
        .map(|record| unnamed(record, &mut counters))
        .collect();
    (output, layers)
}

fn unnamed(record: LayerRecord, counters: &mut HashMap<&'static str, usize>) -> LayerSummary {
    let count = counters.entry(record.kind).or_default();
    *count += 1;
    LayerSummary {
        name: format!("{}_{count}", record.kind.to_lowercase()),
        kind: record.kind.to_string(),
        output_shape: record.output_shape,
        params: record.params,
        macs: record.macs,
    }
}
