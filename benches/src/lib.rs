//! # benches
//!
//! Benchmarks run by `cargo xtask bench …`: each measures the project beside PyTorch doing the
//! same work on the same machine in the same run, and reports ratios.

pub mod data_pipeline;
pub mod models;
