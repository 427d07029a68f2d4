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
    /// The training loss became NaN or infinite.
    #[error("training loss became {loss} in round {round}, {phase} epoch {epoch}, batch {batch}")]
    DivergedLoss {
        /// The loss value.
        loss: f64,
        /// Outer round.
        round: usize,
        /// `W-phase` or `M-phase`.
        phase: &'static str,
        /// Epoch within the phase.
        epoch: usize,
        /// Batch within the epoch.
        batch: usize,
    },
    /// The observer asked to stop.
    #[error("stopped by the observer in round {round}, {phase} epoch {epoch}")]
    Interrupted {
        /// Outer round.
        round: usize,
        /// `W-phase` or `M-phase`.
        phase: &'static str,
        /// Epoch within the phase.
        epoch: usize,
    },
    /// Tensor, shape or energy-model failure from tensor-core.
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
