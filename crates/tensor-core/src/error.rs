//! The one structured error type of the workspace's shared vocabulary.

use crate::geometry::LayerId;

/// Errors raised by tensor-core and wrapped by every domain crate's own error type.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from the tensor backend (candle).
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

    /// A request this implementation does not support (an operation a model does not price, a
    /// device that was not compiled in).
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

    /// A failure specific to one implementation of a trait of this crate (an energy model whose
    /// input cache cannot hold a kernel, an infeasible mapping), carried through the trait's
    /// signature; downcast the source to the implementing crate's error for its typed payload.
    #[error(transparent)]
    Model(Box<dyn std::error::Error + Send + Sync + 'static>),

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

/// Result alias with tensor-core's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
