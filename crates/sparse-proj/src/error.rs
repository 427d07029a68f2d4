//! Errors of the projection kernels and the constrained trainer.

/// Everything that can go wrong in sparse-proj.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The budget is below the energy that no choice of weights can avoid (the input side and
    /// output writes). Both figures are in the same unit: relative to the dense energy when they
    /// come from the trainer, absolute when they come from [`crate::project_layers`].
    #[error("energy budget {budget} is below the floor {floor} that no weight choice can reach")]
    BudgetInfeasible {
        /// The requested budget.
        budget: f64,
        /// The smallest reachable energy with every weight zero.
        floor: f64,
    },
    /// A knapsack capacity that is negative or not finite.
    #[error("projection capacity {capacity} must be finite and non-negative")]
    InvalidCapacity {
        /// The rejected capacity.
        capacity: f64,
    },
    /// A per-weight cost that is not finite and strictly positive.
    #[error("cost of entry {index} is {cost}; costs must be finite and positive")]
    InvalidCost {
        /// Position in the flattened vector.
        index: usize,
        /// The rejected cost.
        cost: f64,
    },
    /// Values and costs of different lengths.
    #[error("{values} values but {costs} costs")]
    LengthMismatch {
        /// Number of values.
        values: usize,
        /// Number of costs.
        costs: usize,
    },
    /// A weight or mask entry that is NaN or infinite.
    #[error("{what} holds a non-finite value at entry {index}")]
    NonFinite {
        /// The tensor (layer name or "weights").
        what: String,
        /// Position in that tensor.
        index: usize,
    },
    /// A configuration value outside its valid range.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A failure in tensor-core's vocabulary: a tensor or shape error, an energy-model failure,
    /// and the run-level outcomes a trainer shares with every method (a diverged loss
    /// [`tensor_core::Error::Diverged`], an observer's stop [`tensor_core::Error::Interrupted`],
    /// an empty validation set [`tensor_core::Error::EmptyEvaluation`]).
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
