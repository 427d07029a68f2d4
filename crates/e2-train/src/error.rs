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
    /// Tensor, shape or ledger failure from tensor-core, and the training contract's stops:
    /// [`tensor_core::Error::Diverged`] when the loss becomes NaN or infinite,
    /// [`tensor_core::Error::Interrupted`] when the observer breaks, and
    /// [`tensor_core::Error::EmptyEvaluation`] for an evaluation source without samples.
    #[error(transparent)]
    Core(#[from] tensor_core::Error),
}

impl From<tensor_core::tensor::candle::Error> for Error {
    fn from(e: tensor_core::tensor::candle::Error) -> Self {
        Error::Core(e.into())
    }
}

/// Through a trait of tensor-core (a [`tensor_core::Network`] forward pass, the logits of
/// [`tensor_core::evaluate`]): tensor-core's own errors as they are, the others as
/// [`tensor_core::Error::Model`].
impl From<Error> for tensor_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(e) => e,
            other => tensor_core::Error::Model(Box::new(other)),
        }
    }
}

/// Back from tensor-core: an error of this crate that crossed a tensor-core trait as
/// [`tensor_core::Error::Model`] is unwrapped again, so callers match on its typed payload.
pub(crate) fn from_core(e: tensor_core::Error) -> Error {
    match e {
        tensor_core::Error::Model(source) => match source.downcast::<Error>() {
            Ok(own) => *own,
            Err(source) => Error::Core(tensor_core::Error::Model(source)),
        },
        other => Error::Core(other),
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
