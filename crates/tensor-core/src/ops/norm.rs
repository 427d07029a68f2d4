//! Batch norm (optionally fused with the ReLU that follows it) as one candle custom op over
//! cpu-kernels' fused kernel, instead of candle-nn's dozen ops with a transposed copy in each
//! direction; and the training-mode computation from candle ops, for the `Candle` backend (the
//! evaluation-mode one is a few candle ops in the dispatcher).

use cpu_kernels::norm::{BatchNorm, BatchNormDims, BatchNormGrads};

use super::{storage_slice, with_slice};
use crate::error::{Error, Result};
use crate::tensor::candle::{CpuStorage, CustomOp3, Layout, Shape};
use crate::tensor::{D, Tensor};

/// Per-channel statistics of one training batch, for the running estimates.
#[derive(Clone, Debug)]
pub struct BatchNormStats {
    /// Batch mean `[c]`.
    pub mean: Tensor,
    /// Unbiased batch variance `[c]` (PyTorch's running-variance convention).
    pub var: Tensor,
}

/// The sizes of `xs` `[b, c, h, w]`, checked against the affine parameters' `[c]`.
pub(super) fn affine_dims(xs: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<BatchNormDims> {
    let (b, c, h, w) = xs.dims4()?;
    let dims = BatchNormDims::new(b, c, h, w);
    check_affine(&dims, gamma, beta)?;
    Ok(dims)
}

/// The fused op: inputs `(x, gamma, beta)`.
struct BatchNormOp {
    kernel: BatchNorm,
}

impl CustomOp3 for BatchNormOp {
    fn name(&self) -> &'static str {
        "fast-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = storage_slice(s1, l1)?;
        let (gamma, beta) = (storage_slice(s2, l2)?, storage_slice(s3, l3)?);
        let y = self
            .kernel
            .forward(x, gamma, beta)
            .map_err(candle_core::Error::wrap)?;
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let run = || -> Result<BatchNormGrads> {
            Ok(with_slice(x, |x| {
                with_slice(gamma, |gamma| {
                    with_slice(res, |y| {
                        with_slice(&grad, |dy| self.kernel.backward(x, gamma, y, dy))
                    })
                })
            })?????)
        };
        let BatchNormGrads { dx, dgamma, dbeta } = run().map_err(candle_core::Error::wrap)?;
        let (dev, c) = (x.device(), self.kernel.dims().c);
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dgamma, c, dev)?),
            Some(Tensor::from_vec(dbeta, c, dev)?),
        ))
    }
}

/// Training-mode batch norm on the fused kernel; `dims` are `xs`'s, checked by [`affine_dims`].
pub(super) fn batch_norm_train(
    xs: &Tensor,
    dims: BatchNormDims,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, BatchNormStats)> {
    let xs = xs.contiguous()?;
    let (kernel, batch) = with_slice(&xs, |x| BatchNorm::train(dims, x, eps, relu))??;
    let dev = xs.device();
    let stats = BatchNormStats {
        mean: Tensor::from_vec(batch.mean, dims.c, dev)?,
        var: Tensor::from_vec(batch.var, dims.c, dev)?,
    };
    let op = BatchNormOp { kernel };
    let ys = xs.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    Ok((ys, stats))
}

/// Evaluation-mode batch norm (running statistics), one fused pass.
pub(super) fn batch_norm_eval(
    xs: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    (running_mean, running_var): (&Tensor, &Tensor),
    eps: f64,
    relu: bool,
) -> Result<Tensor> {
    let dims = affine_dims(xs, gamma, beta)?;
    check_affine(&dims, running_mean, running_var)?;
    let (mean, var) = (
        running_mean.to_vec1::<f32>()?,
        running_var.to_vec1::<f32>()?,
    );
    let kernel = BatchNorm::eval(dims, &mean, &var, eps, relu)?;
    Ok(xs.contiguous()?.apply_op3(
        &gamma.contiguous()?,
        &beta.contiguous()?,
        BatchNormOp { kernel },
    )?)
}

/// The same computation from candle ops (the reference and the `Candle` backend); shapes checked
/// by [`affine_dims`].
pub(super) fn batch_norm_train_candle(
    xs: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, BatchNormStats)> {
    let (b, c, h, w) = xs.dims4()?;
    let m = b * h * w;
    let flat = xs.transpose(0, 1)?.flatten_from(1)?.contiguous()?;
    let mean = flat.mean_keepdim(D::Minus1)?;
    let centred = flat.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(&var + eps)?.sqrt()?)?;
    let ys = normed
        .broadcast_mul(&gamma.reshape(((), 1))?)?
        .broadcast_add(&beta.reshape(((), 1))?)?;
    let ys = ys.reshape((c, b, h, w))?.transpose(0, 1)?;
    let ys = if relu { ys.relu()? } else { ys };
    let unbiased = m as f64 / (m.max(2) - 1) as f64;
    let stats = BatchNormStats {
        mean: mean.flatten_all()?.detach(),
        var: (var.flatten_all()? * unbiased)?.detach(),
    };
    Ok((ys, stats))
}

fn check_affine(sizes: &BatchNormDims, gamma: &Tensor, beta: &Tensor) -> Result<()> {
    for (what, t) in [("batch-norm weight", gamma), ("batch-norm bias", beta)] {
        if t.dims() != [sizes.c] {
            return Err(Error::Shape {
                what: what.into(),
                expected: vec![sizes.c],
                got: t.dims().to_vec(),
            });
        }
    }
    Ok(())
}
