//! The one structured error type of the workspace's shared vocabulary, and [`Step`], the place in
//! a training run that the stop and divergence errors name.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::geometry::LayerId;

/// Errors raised by tensor-core and wrapped by every domain crate's own error type.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from the tensor backend (candle).
    #[cfg(feature = "candle")]
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),

    /// A tensor or layer had the wrong shape.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// What was being checked (a tensor or layer name).
        what: String,
        /// The expected dimensions.
        expected: Vec<usize>,
        /// The dimensions found.
        got: Vec<usize>,
    },

    /// An error attributed to one layer of a network.
    #[error("in layer {id}")]
    Layer {
        /// The layer the error belongs to.
        id: LayerId,
        /// What went wrong there.
        #[source]
        source: Box<Error>,
    },

    /// A request this build cannot serve (a device that was not compiled in, a fast kernel
    /// handed a tensor it does not take).
    #[error("unsupported: {what}")]
    Unsupported {
        /// What was asked for.
        what: String,
    },

    /// A numeric parameter outside its valid range.
    #[error("{what} = {value} is out of range: expected {expected}")]
    OutOfRange {
        /// The parameter's name.
        what: &'static str,
        /// The offending value.
        value: f64,
        /// The valid range, in words.
        expected: &'static str,
    },

    /// A layer geometry that cannot exist (zero sizes, kernel larger than the padded input,
    /// channels not divisible by the groups).
    #[error("invalid layer geometry: {reason}")]
    Geometry {
        /// Why the geometry is invalid.
        reason: String,
    },

    /// A value that should be finite was NaN or infinite.
    #[error("non-finite value in {what}")]
    NonFinite {
        /// Where the value was found.
        what: String,
    },

    /// The training loss became NaN or infinite; the run stops there.
    #[error("the training loss became {loss} in {at}")]
    Diverged {
        /// The loss value.
        loss: f64,
        /// Where.
        at: Step,
    },

    /// An observer asked the run to stop ([`Observer::on_batch_end`] returned `Break`); the
    /// run's state after `at` is what the caller holds.
    ///
    /// [`Observer::on_batch_end`]: crate::Observer::on_batch_end
    #[error("interrupted after {at}")]
    Interrupted {
        /// The last step that completed.
        at: Step,
    },

    /// An evaluation over a split with no samples: its accuracy and loss are undefined.
    #[error("nothing to evaluate: {what} has no samples")]
    EmptyEvaluation {
        /// The split.
        what: String,
    },

    /// A failure specific to one implementation of a trait of this crate (an energy model whose
    /// input cache cannot hold a kernel, an infeasible mapping), carried through the trait's
    /// signature; downcast the source to the implementing crate's error for its typed payload.
    #[error(transparent)]
    Model(Box<dyn std::error::Error + Send + Sync + 'static>),

    /// A weight file (a PyTorch `state_dict` as safetensors or `.pth`) that cannot be read.
    #[error("cannot read weights from {}: {reason}", .file.display())]
    WeightFile {
        /// The file.
        file: PathBuf,
        /// What went wrong, naming the tensor where one is to blame.
        reason: String,
    },

    /// A weight file lacks a tensor the model has.
    #[error(
        "{} has no tensor `{tensor}`, which the model needs (weights of another architecture?)",
        .file.display()
    )]
    MissingTensor {
        /// The file.
        file: PathBuf,
        /// The model's name for the tensor.
        tensor: String,
    },

    /// A weight file holds a tensor the model does not have.
    #[error(
        "{} holds tensor `{tensor}`, which the model does not have (weights of another \
         architecture?)",
        .file.display()
    )]
    UnexpectedTensor {
        /// The file.
        file: PathBuf,
        /// The file's name for the tensor.
        tensor: String,
    },

    /// A tensor of a weight file whose shape differs from the model's.
    #[error(
        "{}: tensor `{tensor}` has shape {got:?}, the model expects {expected:?}",
        .file.display()
    )]
    TensorShape {
        /// The file.
        file: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        got: Vec<usize>,
    },

    /// A string that should name something (a device, a preset) did not.
    #[error("cannot parse {what} from {input:?}: expected {expected}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// The input as given.
        input: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

impl Error {
    /// Attributes this error to a layer.
    pub fn in_layer(self, id: LayerId) -> Self {
        Error::Layer {
            id,
            source: Box::new(self),
        }
    }
}

#[cfg(feature = "candle")]
impl From<cpu_kernels::Error> for Error {
    /// The kernels' size errors become the variants the same checks raised on tensors.
    fn from(e: cpu_kernels::Error) -> Self {
        match e {
            cpu_kernels::Error::Shape {
                what,
                expected,
                got,
            } => Error::Shape {
                what,
                expected,
                got,
            },
            cpu_kernels::Error::Geometry { reason } => Error::Geometry { reason },
            cpu_kernels::Error::Length {
                what,
                expected,
                got,
            } => Error::Shape {
                what: what.into(),
                expected: vec![expected],
                got: vec![got],
            },
            // A kind added to the kernels later keeps its typed payload.
            other => Error::Model(Box::new(other)),
        }
    }
}

/// Result alias with tensor-core's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A place in a training run: the phase, the epoch and the batch within it (both 0-based;
/// displayed 1-based).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Step {
    /// What was running (`training`, `W-phase of round 2`, `fine-tuning`).
    pub phase: String,
    /// Epoch, 0-based.
    pub epoch: usize,
    /// Batch within the epoch, 0-based.
    pub batch: usize,
}

impl Step {
    /// Step `batch` of `epoch` in `phase`.
    pub fn new(phase: impl Into<String>, epoch: usize, batch: usize) -> Self {
        Self {
            phase: phase.into(),
            epoch,
            batch,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}, epoch {} batch {}",
            self.phase,
            self.epoch + 1,
            self.batch + 1
        )
    }
}

/// The value of a training loss, or [`Error::Diverged`] at `at` when it is NaN or infinite.
pub fn finite_loss(loss: f64, at: impl FnOnce() -> Step) -> Result<f64> {
    if loss.is_finite() {
        Ok(loss)
    } else {
        Err(Error::Diverged { loss, at: at() })
    }
}
