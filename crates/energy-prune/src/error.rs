//! Errors of the least-squares restoration, the layer loop and the fine-tuning.

use tensor_core::LayerId;

/// Everything that can go wrong in energy-prune.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filter's least-squares system is numerically singular: the condition number estimate of
    /// `[X_S; √λ·I]` exceeds the configured limit (or a pivot vanished, reported as infinity).
    #[error(
        "layer {layer}, filter {filter}: least-squares system is singular (condition {cond:e})"
    )]
    SingularSystem {
        /// The layer being pruned.
        layer: LayerId,
        /// The filter (output channel) within the layer.
        filter: usize,
        /// The condition estimate that failed the check.
        cond: f64,
    },
    /// A configuration value outside its valid range.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Matrix or vector sizes that do not fit together.
    #[error("dimension mismatch in {what}: expected {expected}, got {got}")]
    Dimension {
        /// What was being checked.
        what: &'static str,
        /// The expected size.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// A weight, activation or target that is NaN or infinite.
    #[error("non-finite value in {what} of layer {layer}")]
    NonFinite {
        /// The layer.
        layer: LayerId,
        /// Weights, inputs or targets.
        what: &'static str,
    },
    /// A calibration or training source without the samples a step needs (an empty validation
    /// source is [`tensor_core::Error::EmptyEvaluation`]).
    #[error("{what} has no samples")]
    EmptyData {
        /// Which source (calibration, training).
        what: &'static str,
    },
    /// An energy level below the measuring model's floor: the energy with every weight removed
    /// (all-zero bitmaps, dense inputs), relative to the starting network's
    /// (docs/energy-models.md A.5). No choice of weights reaches it, so no search ran.
    #[error(
        "energy level {level} is below the floor {floor} of {model}: even with every weight \
         removed the network keeps that share of its energy"
    )]
    TargetBelowFloor {
        /// The measuring model's name.
        model: String,
        /// The requested level.
        level: f64,
        /// The floor, relative to the starting network's energy.
        floor: f64,
    },
    /// The largest accuracy budget of the search did not bring the energy down to the level.
    #[error(
        "energy level {level} not reached under {model}: the largest accuracy budget {max_drop} \
         reaches {reached}; removing the ratio {max_ratio} from every layer, the most the ratio \
         search tries, would reach {ratio_floor}"
    )]
    TargetUnreached {
        /// The measuring model's name.
        model: String,
        /// The requested level.
        level: f64,
        /// The level the pruned network reached at δ = `max_drop` (before fine-tuning).
        reached: f64,
        /// δ_max of the search.
        max_drop: f64,
        /// The ratio search's largest ρ.
        max_ratio: f64,
        /// The level with `max_ratio` of every layer's weights removed by magnitude and none
        /// restored: the lowest the layer loop can reach whatever δ (short of a refit that
        /// lands exactly on zero).
        ratio_floor: f64,
    },
    /// A failure in tensor-core's vocabulary: tensors, shapes, the energy model, an empty
    /// validation source ([`tensor_core::Error::EmptyEvaluation`]), and the fine-tuning's stops:
    /// a NaN or infinite loss ([`tensor_core::Error::Diverged`]) and an observer's request
    /// ([`tensor_core::Error::Interrupted`]), each at a `fine-tuning` [`tensor_core::Step`].
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
