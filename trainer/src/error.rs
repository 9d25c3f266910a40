//! Why a run stops.

use std::fmt;

use data::DataError;
use model_zoo::UnknownModel;

use crate::BackendUnavailable;
use crate::atomic_file::WriteError;

/// Why a run stopped.
#[derive(Debug)]
pub enum TrainError {
    /// Bad configuration.
    Config(String),
    /// The model name.
    Model(UnknownModel),
    /// Reading data.
    Data(DataError),
    /// Writing the run's files.
    Write(WriteError),
    /// The backend could not start on this machine.
    Backend(BackendUnavailable),
    /// The loss stopped being finite; the last good checkpoint is kept.
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// The loss.
        loss: f32,
    },
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(problem) => f.write_str(problem),
            Self::Model(error) => error.fmt(f),
            Self::Data(error) => error.fmt(f),
            Self::Write(error) => error.fmt(f),
            Self::Backend(error) => error.fmt(f),
            Self::Diverged { epoch, step, loss } => write!(
                f,
                "the loss became {loss} at epoch {epoch}, step {step}: stopped; the last good \
                 checkpoint is kept (try a lower --lr)"
            ),
        }
    }
}

impl std::error::Error for TrainError {}

impl From<BackendUnavailable> for TrainError {
    fn from(error: BackendUnavailable) -> Self {
        Self::Backend(error)
    }
}

impl From<DataError> for TrainError {
    fn from(error: DataError) -> Self {
        Self::Data(error)
    }
}

impl From<WriteError> for TrainError {
    fn from(error: WriteError) -> Self {
        Self::Write(error)
    }
}
