//! # trainer
//!
//! Joins `model-zoo` and `data`: builds any zoo model on the device chosen at run time and
//! reports on it. `xtask` is a thin command line over this crate.

pub mod allocator;
pub mod atomic_file;
pub mod checkpoint;
pub mod config;
pub mod device;
mod distill;
pub mod ema;
pub mod ensemble;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod features;
pub mod hub;
pub mod manifest;
pub mod metrics;
mod optimizer;
pub mod parity;
pub mod plot;
pub mod precision;
pub mod recipe;
pub mod run_folder;
pub mod schedule;
pub mod setup;
pub mod sgd;
pub mod summary;
pub mod train;
pub mod transfer;

pub use data;
pub use device::{BackendKind, BackendUnavailable};
pub use model_zoo;
pub use precision::Precision;
