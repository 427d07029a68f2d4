//! ReLU and non-overlapping max pooling as candle custom ops over cpu-kernels' loops.

use cpu_kernels::pointwise::{self as kernels, MaxPool2d};

use super::{storage_slice, with_slice};
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::candle::{CpuStorage, CustomOp1, Layout, Shape};

struct ReluOp;

impl CustomOp1 for ReluOp {
    fn name(&self) -> &'static str {
        "fast-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = kernels::relu(storage_slice(s, l)?);
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let run = || -> Result<Vec<f32>> {
            Ok(with_slice(res, |y| {
                with_slice(&grad, |dy| kernels::relu_backward(y, dy))
            })???)
        };
        let dx = run().map_err(candle_core::Error::wrap)?;
        Ok(Some(Tensor::from_vec(dx, res.shape(), res.device())?))
    }
}

pub(super) fn relu(xs: &Tensor) -> Result<Tensor> {
    Ok(xs.contiguous()?.apply_op1(ReluOp)?)
}

/// Pooling of the planes of `[b, c, h, w]`.
struct MaxPoolOp {
    pool: MaxPool2d,
}

impl CustomOp1 for MaxPoolOp {
    fn name(&self) -> &'static str {
        "fast-max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = storage_slice(s, l)?;
        let &[b, c, _, _] = l.dims() else {
            candle_core::bail!("max-pool input must be rank 4")
        };
        let (oh, ow) = self.pool.out();
        let y = self.pool.forward(x).map_err(candle_core::Error::wrap)?;
        Ok((CpuStorage::F32(y), Shape::from((b, c, oh, ow))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let run = || -> Result<Vec<f32>> {
            Ok(with_slice(arg, |x| {
                with_slice(&grad, |dy| self.pool.backward(x, dy))
            })???)
        };
        let dx = run().map_err(candle_core::Error::wrap)?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

pub(super) fn max_pool2d(xs: &Tensor, k: usize) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    let pool = MaxPool2d::new(k, h, w)?;
    Ok(xs.contiguous()?.apply_op1(MaxPoolOp { pool })?)
}
