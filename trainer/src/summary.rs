//! `cargo xtask summary`: a Keras-style summary of any zoo model.

use burn::prelude::*;
use model_zoo::{ModelOptions, Summary, UnknownModel};

/// What to summarise.
#[derive(Debug, Clone)]
pub struct SummaryRequest {
    /// Registry name.
    pub model: String,
    /// Input `[C, H, W]`; the entry's default when `None`.
    pub input: Option<[usize; 3]>,
    /// Number of classes; the entry's default when `None`.
    pub num_classes: Option<usize>,
}

/// Builds the model on `device` and runs one forward pass to summarise it.
///
/// The input's channels become the model's input channels, and its side sizes the fixed-size
/// networks (LeNet-5, the course and paper AlexNets).
pub fn summarize(request: &SummaryRequest, device: &Device) -> Result<Summary, UnknownModel> {
    let info = model_zoo::info(&request.model)?;
    let input = request.input.unwrap_or(info.input);
    let options = ModelOptions::new()
        .with_num_classes(request.num_classes)
        .with_in_channels(Some(input[0]))
        .with_input_size(Some(input[1]));
    let model = info.build(&options, device);
    Ok(model_zoo::summarize(&model, info.name, input, device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_follows_the_requested_input_and_classes() {
        let request = SummaryRequest {
            model: "lenet5".into(),
            input: Some([3, 28, 28]),
            num_classes: Some(4),
        };
        let summary = summarize(&request, &Device::flex()).unwrap();
        assert_eq!(summary.input, [3, 28, 28]);
        assert_eq!(summary.output_shape, [4]);
        // 28 → 24 → 12 → 8 → 4: the first FC sees 16·4·4 inputs.
        let fc1 = summary
            .layers
            .iter()
            .find(|layer| layer.name == "fc1")
            .unwrap();
        assert_eq!(fc1.params, 16 * 4 * 4 * 120 + 120);
    }
}
