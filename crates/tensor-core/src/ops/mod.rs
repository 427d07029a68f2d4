//! Fast CPU kernels for the layers that dominate CNN training, as candle custom ops with
//! hand-written backward passes.
//!
//! candle's stock CPU convolution differentiates its input through a direct transposed
//! convolution, gathers im2col columns with strided writes and allocates zero-filled buffers for
//! every op; batch norm in training mode is a dozen separate ops. The kernels are those of the
//! `cpu-kernels` crate, on plain slices: im2col/col2im around the `gemm` crate (the GEMM candle
//! itself uses), a fused batch norm (optionally with the ReLU that follows it), ReLU and
//! non-overlapping max pooling. This module hands them the data of candle's CPU storage and
//! wraps their results as tensors. Work is split over the batch with rayon, so
//! `RAYON_NUM_THREADS` (which candle honours too) sets the thread count; im2col scratch buffers
//! are thread-local and reused across steps.
//!
//! Every function takes an [`OpsBackend`]: [`OpsBackend::Fast`] runs these kernels on contiguous
//! f32 CPU tensors and falls back to candle's ops for anything else (CUDA, other dtypes);
//! [`OpsBackend::Candle`] always runs candle's stock ops, for comparison.
//!
//! ```
//! use tensor_core::ops::{self, OpsBackend};
//! use tensor_core::{ConvParams, Device, Tensor};
//!
//! let xs = Tensor::randn(0f32, 1., (2, 3, 8, 8), &Device::Cpu)?;
//! let w = Tensor::randn(0f32, 1., (4, 3, 3, 3), &Device::Cpu)?;
//! let p = ConvParams::square(3).padding(1);
//! let fast = ops::conv2d(&xs, &w, None, p, OpsBackend::Fast)?;
//! let stock = ops::conv2d(&xs, &w, None, p, OpsBackend::Candle)?;
//! let diff = (fast - stock)?.abs()?.max_all()?.to_scalar::<f32>()?;
//! assert!(diff < 1e-4);
//! # Ok::<(), tensor_core::Error>(())
//! ```

mod conv;
mod norm;
mod pointwise;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geometry::ConvParams;
use crate::tensor::{DType, Device, Tensor};
use conv::Sliding;

pub use norm::BatchNormStats;

/// Which implementation the layer ops run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpsBackend {
    /// This module's kernels on CPU f32 tensors; candle's ops elsewhere (the default).
    #[default]
    Fast,
    /// candle's stock ops everywhere.
    Candle,
}

impl OpsBackend {
    /// The backend as a lower-case name (`fast`, `candle`).
    pub fn name(self) -> &'static str {
        match self {
            OpsBackend::Fast => "fast",
            OpsBackend::Candle => "candle",
        }
    }

    /// Whether the fast kernels apply to `xs`: CPU, f32.
    fn fast_for(self, xs: &Tensor) -> bool {
        self == OpsBackend::Fast && matches!(xs.device(), Device::Cpu) && xs.dtype() == DType::F32
    }
}

impl std::fmt::Display for OpsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OpsBackend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fast" => Ok(OpsBackend::Fast),
            "candle" => Ok(OpsBackend::Candle),
            _ => Err(Error::Parse {
                what: "ops backend",
                input: s.to_string(),
                expected: "fast or candle",
            }),
        }
    }
}

/// 2-D convolution of `xs` `[b, c, h, w]` with `w` `[d, c/groups, kh, kw]` plus an optional
/// `bias` `[d]`, as PyTorch's `conv2d` (dilation 1).
///
/// With [`OpsBackend::Fast`] on the CPU, no input gradient is computed when `xs` is not part of
/// the graph (a network's input batch), which saves the first layer's col2im.
pub fn conv2d(
    xs: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    params: ConvParams,
    backend: OpsBackend,
) -> Result<Tensor> {
    let params = Sliding::of(params, w)?;
    if backend.fast_for(xs) {
        return conv::conv2d(xs, w, bias, params);
    }
    let ys = xs.conv2d(w, params.padding, params.stride, 1, params.groups)?;
    Ok(match bias {
        None => ys,
        Some(b) => ys.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
    })
}

/// Input and weight gradients of [`conv2d`] (without bias) for the output gradient `dy`,
/// computed directly rather than through autograd, each only when asked for: for custom
/// backward passes that differentiate a convolution of other operands than the forward's (the
/// predictive sign gradients of E2-Train). `xs` is read only for the weight gradient.
///
/// With [`OpsBackend::Candle`] (or off the fast path) it differentiates candle's own conv.
pub fn conv2d_backward(
    xs: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    params: ConvParams,
    need: (bool, bool),
    backend: OpsBackend,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let params = Sliding::of(params, w)?;
    if backend.fast_for(xs) && w.dtype() == DType::F32 && dy.dtype() == DType::F32 {
        return conv::conv2d_backward(xs, w, dy, params, need);
    }
    if params.groups == 1 {
        // candle's formulas, with the output padding its own conv backward lacks (rows or
        // columns that no window reaches).
        let (_, _, kh, kw) = w.dims4()?;
        let dx = if need.0 {
            // A transposed conv stops short of input rows and columns past the last window;
            // its output padding brings them back (the larger of the two dimensions' shortfalls,
            // then cut to the input size).
            let (h, w_in) = (xs.dim(2)?, xs.dim(3)?);
            let short = |size: usize, k: usize| {
                (size + 2 * params.padding).saturating_sub(k) % params.stride.max(1)
            };
            let extra = short(h, kh).max(short(w_in, kw));
            let dx = dy.conv_transpose2d(w, params.padding, extra, params.stride, 1)?;
            Some(dx.narrow(2, 0, h)?.narrow(3, 0, w_in)?.contiguous()?)
        } else {
            None
        };
        let dw = if need.1 {
            // Stride and dilation trade places in the weight gradient of a strided conv.
            let gw = xs
                .transpose(0, 1)?
                .conv2d(&dy.transpose(0, 1)?, params.padding, 1, params.stride, 1)?
                .transpose(0, 1)?;
            Some(gw.narrow(2, 0, kh)?.narrow(3, 0, kw)?.contiguous()?)
        } else {
            None
        };
        return Ok((dx, dw));
    }
    // Grouped: differentiate `sum(conv(x, w) * dy)` with respect to fresh copies of the operands.
    let x = crate::tensor::Var::from_tensor(&xs.detach())?;
    let wv = crate::tensor::Var::from_tensor(&w.detach())?;
    let ys = x.conv2d(&wv, params.padding, params.stride, 1, params.groups)?;
    let grads = (ys * dy.detach())?.sum_all()?.backward()?;
    let dx = if need.0 { grads.get(&x).cloned() } else { None };
    let dw = if need.1 {
        grads.get(&wv).cloned()
    } else {
        None
    };
    Ok((dx, dw))
}

/// Training-mode batch norm over `[b, c, h, w]` with batch statistics (biased variance for the
/// normalisation), affine `gamma`, `beta` `[c]`, optionally followed by a ReLU. Returns the
/// output and the batch statistics (mean and unbiased variance, for the running estimates).
///
/// With [`OpsBackend::Candle`] it is composed from candle ops.
pub fn batch_norm_train(
    xs: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
    backend: OpsBackend,
) -> Result<(Tensor, BatchNormStats)> {
    let dims = norm::affine_dims(xs, gamma, beta)?;
    if backend.fast_for(xs) {
        return norm::batch_norm_train(xs, dims, gamma, beta, eps, relu);
    }
    norm::batch_norm_train_candle(xs, gamma, beta, eps, relu)
}

/// Evaluation-mode batch norm over `[b, c, h, w]` with the running statistics `(mean, var)`
/// (treated as constants), affine `gamma`, `beta`, optionally followed by a ReLU.
pub fn batch_norm_eval(
    xs: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running: (&Tensor, &Tensor),
    eps: f64,
    relu: bool,
    backend: OpsBackend,
) -> Result<Tensor> {
    if backend.fast_for(xs) {
        return norm::batch_norm_eval(xs, gamma, beta, running, eps, relu);
    }
    let (running_mean, running_var) = running;
    let scale = (gamma / (running_var.detach() + eps)?.sqrt()?)?;
    let shift = (beta - (running_mean.detach() * &scale)?)?;
    let ys = xs
        .broadcast_mul(&scale.reshape((1, (), 1, 1))?)?
        .broadcast_add(&shift.reshape((1, (), 1, 1))?)?;
    Ok(if relu { ys.relu()? } else { ys })
}

/// `max(x, 0)`, differentiated through the output (one pass each way).
pub fn relu(xs: &Tensor, backend: OpsBackend) -> Result<Tensor> {
    if backend.fast_for(xs) {
        return pointwise::relu(xs);
    }
    Ok(xs.relu()?)
}

/// Non-overlapping max pooling (`kernel == stride`, no padding, floor mode) on `[b, c, h, w]`.
/// The gradient goes to the first maximum of each window (PyTorch's choice).
///
/// The `Candle` backend takes the maximum over a reshaped view rather than candle's
/// `max_pool2d`, whose backward pass scales the gradient by `1/kernel²`.
pub fn max_pool2d(xs: &Tensor, kernel: usize, backend: OpsBackend) -> Result<Tensor> {
    if kernel == 0 {
        return Err(Error::Geometry {
            reason: "max-pool with a zero kernel".into(),
        });
    }
    if backend.fast_for(xs) {
        return pointwise::max_pool2d(xs, kernel);
    }
    let (b, c, h, w) = xs.dims4()?;
    let (oh, ow) = (h / kernel, w / kernel);
    if oh == 0 || ow == 0 {
        return Err(Error::Geometry {
            reason: format!("max-pool kernel {kernel} larger than the {h}x{w} input"),
        });
    }
    Ok(xs
        .narrow(2, 0, oh * kernel)?
        .narrow(3, 0, ow * kernel)?
        .contiguous()?
        .reshape((b, c, oh, kernel, ow, kernel))?
        .max(5)?
        .max(3)?)
}

/// Runs `f` on the contiguous f32 data of a CPU tensor.
fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    use crate::tensor::candle::{CpuStorage, Storage};
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
        return Err(Error::Unsupported {
            what: format!("fast op on a {:?} {:?} tensor", t.device(), t.dtype()),
        });
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        return Err(Error::Unsupported {
            what: "fast op on a non-contiguous tensor".into(),
        });
    };
    Ok(f(&data[start..end]))
}

/// The contiguous f32 data of a CPU storage seen through `layout`, as candle hands it to a
/// custom op.
fn storage_slice<'a>(
    s: &'a crate::tensor::candle::CpuStorage,
    layout: &crate::tensor::candle::Layout,
) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("fast op: non-contiguous input"),
    }
}

#[cfg(test)]
mod tests;
