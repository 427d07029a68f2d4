//! CPU kernels of the layers that dominate CNN training, on plain f32 slices.
//!
//! - [`conv`]: 2-D convolution (groups, depthwise, stride, padding, optional bias) as im2col +
//!   GEMM per image and group, around the `gemm` crate; its backward pass scatters the input
//!   gradient with col2im and accumulates the weight gradient per chunk of images.
//! - [`norm`]: batch norm fused into one pass each way, in training mode (batch statistics) or
//!   evaluation mode (running statistics), optionally with the ReLU that follows it.
//! - [`pointwise`]: ReLU and non-overlapping max pooling with their backward passes.
//! - [`sgd`]: the in-place passes of momentum SGD.
//!
//! Tensors are contiguous row-major slices with their sizes passed alongside; sizes that do not
//! fit together are an [`Error`]. Work is split over the batch (or over chunks of elements) with
//! rayon, so `RAYON_NUM_THREADS` sets the thread count; the GEMMs themselves run single-threaded
//! on each image's small matrices, and im2col columns live in thread-local buffers reused across
//! calls. Results do not depend on the thread count: every reduction runs in a fixed order.
//!
//! The crate knows no tensor library; tensor-core wraps these kernels as candle ops.
//!
//! ```
//! use cpu_kernels::conv::{Conv2dGeom, Conv2dParams};
//!
//! // One 3×3 image convolved with a 2×2 kernel that sums each window's diagonal.
//! let x = [1., 2., 3., 4., 5., 6., 7., 8., 9.];
//! let w = [1., 0., 0., 1.];
//! let p = Conv2dParams { stride: 1, padding: 0, groups: 1 };
//! let geom = Conv2dGeom::new(&[1, 1, 3, 3], &[1, 1, 2, 2], p)?;
//! assert_eq!(geom.output_dims(), [1, 1, 2, 2]);
//! assert_eq!(geom.forward(&x, &w, None)?, [1. + 5., 2. + 6., 4. + 8., 5. + 9.]);
//!
//! // Gradients of the sum of the outputs: each weight sees the sum of the pixels it touches,
//! // each pixel the weights that touch it.
//! let grads = geom.backward(&x, &w, &[1.; 4], (true, true, true))?;
//! assert_eq!(grads.dw.unwrap(), [12., 16., 24., 28.]);
//! assert_eq!(grads.dx.unwrap(), [1., 1., 0., 1., 2., 1., 0., 1., 1.]);
//! assert_eq!(grads.db.unwrap(), [4.]);
//! # Ok::<(), cpu_kernels::Error>(())
//! ```
#![warn(missing_docs)]

pub mod conv;
pub mod error;
mod gemm;
pub mod norm;
pub mod pointwise;
mod scratch;
pub mod sgd;

pub use conv::{Conv2dGeom, Conv2dParams, ConvGrads};
pub use error::{Error, Result};
pub use norm::{BatchNorm, BatchNormDims, BatchNormGrads, BatchStats};
pub use pointwise::MaxPool2d;

#[cfg(test)]
mod tests;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
