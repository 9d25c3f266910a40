//! `cargo xtask experiment bottleneck`: the chapter's Inception example. A 5×5 "same"
//! convolution with 32 filters on a 28×28×192 volume costs 120,422,400 multiplications; a 1×1
//! bottleneck to 16 channels first brings that to 12,443,648, about a tenth, with a tenth of the
//! parameters. This experiment counts both from a real forward pass and times them on each
//! backend, to see how much of the tenfold saving the hardware turns into speed.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use model_zoo::blocks::{ConvUnit, ConvUnitConfig};
use model_zoo::count_parameters;
use model_zoo::summary::layer_costs;
use serde::Serialize;

use crate::BackendKind;
use crate::error::TrainError;
use crate::experiment::{start, write_results};
use crate::plot::{Bar, write_bars};

/// What to time.
#[derive(Debug, Clone, Serialize)]
pub struct BottleneckExperiment {
    /// Backends to time on.
    pub backends: Vec<BackendKind>,
    /// Volumes per forward pass.
    pub batch_size: usize,
    /// Untimed passes first (kernel compilation and autotuning on a GPU).
    pub warmup: usize,
    /// Timed passes; the median is reported.
    pub steps: usize,
    /// Where everything is written.
    pub out: std::path::PathBuf,
}

/// The 5×5 branch of an Inception module on 28×28×192, with or without the 1×1 bottleneck.
struct Branch {
    bottleneck: Option<ConvUnit>,
    five_by_five: ConvUnit,
}

impl Branch {
    fn new(bottleneck: bool, device: &Device) -> Self {
        let width = if bottleneck { 16 } else { 192 };
        Self {
            bottleneck: bottleneck.then(|| ConvUnitConfig::pointwise(192, 16).init(device)),
            five_by_five: ConvUnitConfig::new([width, 32], 5)
                .with_padding(2)
                .with_batch_norm(false)
                .init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.bottleneck {
            Some(shrink) => shrink.forward(x),
            None => x,
        };
        self.five_by_five.forward(x)
    }

    fn parameters(&self) -> usize {
        self.bottleneck.as_ref().map_or(0, count_parameters) + count_parameters(&self.five_by_five)
    }
}

/// One branch timed on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct BottleneckRow {
    /// `5×5` or `1×1 → 5×5`.
    pub branch: String,
    /// Backend.
    pub backend: BackendKind,
    /// Trainable parameters.
    pub params: usize,
    /// Multiply-accumulates per volume, counted from the forward pass.
    pub macs: u64,
    /// Median wall time of a forward pass of the batch, read back to the host.
    pub median_ms: f64,
    /// Volumes per second.
    pub volumes_per_second: f64,
    /// Achieved multiply-accumulates per second, in G.
    pub gmacs_per_second: f64,
}

/// What the experiment found.
#[derive(Debug, Clone, Serialize)]
pub struct BottleneckReport {
    /// The experiment's settings.
    pub experiment: BottleneckExperiment,
    /// Two rows per backend: without, then with the bottleneck.
    pub rows: Vec<BottleneckRow>,
    /// Wall time.
    pub wall_seconds: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn time(branch: &Branch, input: &Tensor<4>, warmup: usize, steps: usize) -> f64 {
    let run = || {
        // Reading the output back waits for the device to finish.
        let _ = branch.forward(input.clone()).into_data();
    };
    for _ in 0..warmup {
        run();
    }
    let samples = (0..steps.max(1))
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(samples)
}

/// The rows as a markdown table, with the measured speed-up beside the MAC ratio.
pub fn table(report: &BottleneckReport) -> String {
    let mut out = format!(
        "| backend | branch | parameters | MACs per volume | ms per batch of {} | volumes/s | GMAC/s |\n\
         |---|---|---|---|---|---|---|\n",
        report.experiment.batch_size
    );
    for row in &report.rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.1} | {:.1} |\n",
            row.backend,
            row.branch,
            row.params,
            row.macs,
            row.median_ms,
            row.volumes_per_second,
            row.gmacs_per_second
        ));
    }
    for pair in report.rows.chunks(2) {
        if let [naive, bottleneck] = pair {
            out.push_str(&format!(
                "\n{}: the bottleneck needs {:.2}× fewer MACs and runs {:.2}× faster.",
                naive.backend,
                naive.macs as f64 / bottleneck.macs as f64,
                naive.median_ms / bottleneck.median_ms
            ));
        }
    }
    out.push('\n');
    out
}

/// Counts and times both branches on every backend; writes `experiment.json`, `results.json`,
/// `table.md` and `bottleneck.png`.
pub fn run(experiment: &BottleneckExperiment) -> Result<BottleneckReport, TrainError> {
    if experiment.batch_size == 0 || experiment.backends.is_empty() {
        return Err(TrainError::Config(
            "the bottleneck experiment needs a positive --batch-size and a backend".into(),
        ));
    }
    let started = Instant::now();
    start(&experiment.out, experiment)?;
    let mut rows = Vec::new();
    for &backend in &experiment.backends {
        let device = backend.open()?;
        device.seed(0);
        let input = Tensor::<4>::random(
            [experiment.batch_size, 192, 28, 28],
            Distribution::Uniform(0.0, 1.0),
            &device,
        );
        for (name, bottleneck) in [("5×5", false), ("1×1 → 5×5", true)] {
            let branch = Branch::new(bottleneck, &device);
            let one = input.clone().narrow(0, 0, 1);
            let (_, layers) = layer_costs(|| branch.forward(one));
            let macs = layers.iter().map(|layer| layer.macs).sum::<u64>();
            let median_ms = time(&branch, &input, experiment.warmup, experiment.steps);
            let volumes_per_second = experiment.batch_size as f64 / (median_ms / 1e3);
            rows.push(BottleneckRow {
                branch: name.into(),
                backend,
                params: branch.parameters(),
                macs,
                median_ms,
                volumes_per_second,
                gmacs_per_second: volumes_per_second * macs as f64 / 1e9,
            });
        }
    }
    let report = BottleneckReport {
        experiment: experiment.clone(),
        rows,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_results(&experiment.out, &report, &table(&report))?;
    let bars: Vec<Bar> = report
        .rows
        .iter()
        .enumerate()
        .map(|(index, row)| Bar {
            label: format!("{}: {}", row.backend, row.branch),
            value: row.median_ms,
            color: index % 2,
        })
        .collect();
    write_bars(
        &experiment.out.join("bottleneck.png"),
        &format!(
            "Inception 5×5 branch on 28×28×192, batch of {}",
            experiment.batch_size
        ),
        "ms per forward pass (median)",
        &bars,
    )?;
    Ok(report)
}
