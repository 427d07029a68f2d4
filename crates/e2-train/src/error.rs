//! Errors of the E2-Train mechanisms and trainer.

/// Everything that can go wrong in e2-train.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value outside its valid range.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The training loss became NaN or infinite.
    #[error("training loss became {loss} at iteration {iteration}")]
    DivergedLoss {
        /// The loss value.
        loss: f64,
        /// Global iteration index.
        iteration: usize,
    },
    /// A batch whose images or labels do not fit the network.
    #[error("batch {what}: expected {expected:?}, got {got:?}")]
    BadBatch {
        /// Images or labels.
        what: &'static str,
        /// Expected dimensions (0 = any).
        expected: Vec<usize>,
        /// Dimensions found.
        got: Vec<usize>,
    },
    /// Tensor, shape or ledger failure from tensor-core.
    #[error(transparent)]
    Core(#[from] tensor_core::Error),
}

impl From<tensor_core::tensor::candle::Error> for Error {
    fn from(e: tensor_core::tensor::candle::Error) -> Self {
        Error::Core(e.into())
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn bad(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Config {
        field,
        reason: reason.into(),
    }
}
