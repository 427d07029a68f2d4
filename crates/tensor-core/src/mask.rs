//! [`Mask`]: a same-shape tensor of keep factors applied by elementwise multiplication.

use crate::error::{Error, Result};
use crate::sparsity::Density;
use crate::tensor::{DType, Tensor};

/// A mask over a weight or input tensor. Entries are usually in `{0, 1}` (pruning masks) or
/// `[0, 1]` (trainable input masks); nonzero entries count as kept.
#[derive(Clone, Debug)]
pub struct Mask(Tensor);

impl Mask {
    /// Wraps a tensor as a mask.
    pub fn new(tensor: Tensor) -> Self {
        Self(tensor)
    }

    /// A mask keeping everything, shaped like `like`.
    pub fn ones_like(like: &Tensor) -> Result<Self> {
        Ok(Self(like.ones_like()?))
    }

    /// The mask keeping exactly the nonzero entries of `values` (a `{0, 1}` mask of `values`'s
    /// dtype).
    pub fn nonzero_of(values: &Tensor) -> Result<Self> {
        let keep = values.ne(0.0)?.to_dtype(values.dtype())?;
        Ok(Self(keep))
    }

    /// The underlying tensor.
    pub fn as_tensor(&self) -> &Tensor {
        &self.0
    }

    /// `xs ⊙ mask`, broadcasting the mask over leading dimensions (a `[c, h, w]` mask over a
    /// `[b, c, h, w]` batch).
    pub fn apply(&self, xs: &Tensor) -> Result<Tensor> {
        let (mdims, xdims) = (self.0.dims(), xs.dims());
        if xdims.len() < mdims.len() || xdims[xdims.len() - mdims.len()..] != *mdims {
            return Err(Error::Shape {
                what: "masked tensor".into(),
                expected: mdims.to_vec(),
                got: xdims.to_vec(),
            });
        }
        Ok(xs.broadcast_mul(&self.0.to_dtype(xs.dtype())?)?)
    }

    /// Number of nonzero (kept) entries.
    pub fn nonzero_count(&self) -> Result<usize> {
        let n = self
            .0
            .ne(0.0)?
            .to_dtype(DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?;
        Ok(n as usize)
    }

    /// Fraction of kept entries.
    pub fn density(&self) -> Result<Density> {
        Density::from_counts(self.nonzero_count()? as u64, self.0.elem_count() as u64)
    }
}
