//! Pooling and dropout with PyTorch semantics where candle's own ops differ (padding, ceil mode,
//! adaptive pooling).

use tensor_core::tensor::nn;
use tensor_core::{Error, Result, Tensor};

/// PyTorch's `MaxPool2d(kernel, stride, padding, ceil_mode)` on `[b, c, h, w]`.
///
/// Padding and the extra ceil-mode border are filled with −∞, so they never win a window and
/// never receive gradient. As in PyTorch, a ceil-mode window must start inside the input or its
/// left padding. candle's own max-pool has a backward pass only for `kernel == stride`, so
/// overlapping windows are computed as a separable maximum of strided views (rows, then
/// columns), which autograd differentiates; ties share the gradient, as in candle's max-pool.
pub(crate) fn max_pool2d(
    xs: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
    ceil_mode: bool,
) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    let out_len = |len: usize| {
        let span = len + 2 * padding - kernel;
        let mut out = if ceil_mode {
            span.div_ceil(stride) + 1
        } else {
            span / stride + 1
        };
        if ceil_mode && (out - 1) * stride >= len + padding {
            out -= 1;
        }
        out
    };
    let (out_h, out_w) = (out_len(h), out_len(w));
    // Rows and columns the windows reach beyond the input and its padding (ceil mode only).
    let extra =
        |len: usize, out: usize| ((out - 1) * stride + kernel).saturating_sub(len + 2 * padding);
    let xs = pad_neg_inf(xs, 2, padding, padding + extra(h, out_h))?;
    let xs = pad_neg_inf(&xs, 3, padding, padding + extra(w, out_w))?;
    if kernel == stride {
        return Ok(xs.max_pool2d_with_stride(kernel, stride)?);
    }
    let mut views = window_views(&xs, (kernel, kernel), stride, (out_h, out_w))?.into_iter();
    let first = views.next().ok_or_else(|| Error::Geometry {
        reason: "max-pool with an empty kernel".into(),
    })?;
    views.try_fold(first, |acc, v| Ok(acc.maximum(&v)?))
}

/// The `kh·kw` strided views of a (padded) `[b, c, h, w]` input that a `kh×kw` window with
/// `stride` reads, each `[b, c, out_h, out_w]`, in row-major kernel order: view `(i, j)` holds
/// `xs[.., i + stride·y, j + stride·x]`.
///
/// The input is split once into its `stride²` phases (`xs[.., p::stride, q::stride]`), so every
/// view is a plain narrow of one phase and autograd only sees reshapes, narrows and one copy.
pub(crate) fn window_views(
    xs: &Tensor,
    (kh, kw): (usize, usize),
    stride: usize,
    (out_h, out_w): (usize, usize),
) -> Result<Vec<Tensor>> {
    let (b, c, h, w) = xs.dims4()?;
    let (hs, ws) = (h.div_ceil(stride), w.div_ceil(stride));
    let phases = if stride == 1 {
        xs.unsqueeze(2)?.unsqueeze(2)?
    } else {
        xs.pad_with_zeros(2, 0, hs * stride - h)?
            .pad_with_zeros(3, 0, ws * stride - w)?
            .reshape((b, c, hs, stride, ws, stride))?
            .permute((0, 1, 3, 5, 2, 4))?
            .contiguous()?
    };
    let mut views = Vec::with_capacity(kh * kw);
    for i in 0..kh {
        for j in 0..kw {
            let phase = phases
                .narrow(2, i % stride, 1)?
                .narrow(3, j % stride, 1)?
                .squeeze(3)?
                .squeeze(2)?;
            views.push(
                phase
                    .narrow(2, i / stride, out_h)?
                    .narrow(3, j / stride, out_w)?,
            );
        }
    }
    Ok(views)
}

/// Pads dimension `dim` with −∞ (`before` and `after` entries).
fn pad_neg_inf(xs: &Tensor, dim: usize, before: usize, after: usize) -> Result<Tensor> {
    if before == 0 && after == 0 {
        return Ok(xs.clone());
    }
    let fill = |n: usize| -> Result<Tensor> {
        let mut dims = xs.dims().to_vec();
        dims[dim] = n;
        Ok(Tensor::full(f32::NEG_INFINITY, dims, xs.device())?.to_dtype(xs.dtype())?)
    };
    let mut parts = Vec::with_capacity(3);
    if before > 0 {
        parts.push(fill(before)?);
    }
    parts.push(xs.clone());
    if after > 0 {
        parts.push(fill(after)?);
    }
    Ok(Tensor::cat(&parts, dim)?)
}

/// Global average pooling `[b, c, h, w] → [b, c, 1, 1]`.
pub(crate) fn global_avg_pool(xs: &Tensor) -> Result<Tensor> {
    Ok(xs.mean_keepdim(3)?.mean_keepdim(2)?)
}

/// PyTorch's `AdaptiveAvgPool2d((out_h, out_w))`: bin `i` of `n` over a length `len` spans
/// `⌊i·len/n⌋ .. ⌈(i+1)·len/n⌉`. The identity when the input already has the output size.
pub(crate) fn adaptive_avg_pool2d(xs: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    if (h, w) == (out_h, out_w) {
        return Ok(xs.clone());
    }
    let bins = |len: usize, n: usize| -> Vec<(usize, usize)> {
        (0..n)
            .map(|i| {
                let start = i * len / n;
                let end = ((i + 1) * len).div_ceil(n);
                (start, end - start)
            })
            .collect()
    };
    let rows = bins(h, out_h)
        .into_iter()
        .map(|(r0, rn)| {
            let band = xs.narrow(2, r0, rn)?;
            let cells = bins(w, out_w)
                .into_iter()
                .map(|(c0, cn)| Ok(band.narrow(3, c0, cn)?.mean_keepdim(3)?.mean_keepdim(2)?))
                .collect::<Result<Vec<_>>>()?;
            Ok(Tensor::cat(&cells, 3)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&rows, 2)?)
}

/// Inverted dropout with probability `p` in training, the identity in evaluation.
///
/// The mask comes from the device's generator (candle's `rand`), which is seeded on CUDA by
/// `tensor_core::seed_device` but cannot be seeded on the CPU.
pub(crate) fn dropout(xs: &Tensor, p: f32, train: bool) -> Result<Tensor> {
    if train && p > 0.0 {
        Ok(nn::ops::dropout(xs, p)?)
    } else {
        Ok(xs.clone())
    }
}
