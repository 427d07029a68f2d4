//! The error type of the kernels: inputs whose sizes do not fit together.

/// Sizes that a kernel cannot work on; no kernel panics on them.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor had the wrong rank or dimensions.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// What was being checked.
        what: String,
        /// The expected dimensions.
        expected: Vec<usize>,
        /// The dimensions found.
        got: Vec<usize>,
    },

    /// A layer geometry that cannot exist (zero stride or kernel, kernel larger than the padded
    /// input, channels not divisible by the groups).
    #[error("invalid layer geometry: {reason}")]
    Geometry {
        /// Why the geometry is invalid.
        reason: String,
    },

    /// A slice whose length does not match the sizes it was described with.
    #[error("{what} has {got} elements, expected {expected}")]
    Length {
        /// Which operand.
        what: &'static str,
        /// The length its sizes imply.
        expected: usize,
        /// The length found.
        got: usize,
    },
}

/// Result alias with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Checks that `data` holds exactly `expected` elements.
pub(crate) fn check_len(what: &'static str, data: &[f32], expected: usize) -> Result<()> {
    if data.len() == expected {
        Ok(())
    } else {
        Err(Error::Length {
            what,
            expected,
            got: data.len(),
        })
    }
}
