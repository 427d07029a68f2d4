//! ReLU and non-overlapping max pooling, each one pass forward and one pass backward.

use rayon::prelude::*;

use super::{storage_slice, with_slice};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::candle::{CpuStorage, CustomOp1, Layout, Shape};

/// Elements per rayon task for element-wise loops: large enough to amortise scheduling.
const GRAIN: usize = 1 << 14;

struct ReluOp;

impl CustomOp1 for ReluOp {
    fn name(&self) -> &'static str {
        "fast-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = storage_slice(s, l)?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(GRAIN)
            .zip(x.par_chunks(GRAIN))
            .for_each(|(y, x)| {
                for (o, &v) in y.iter_mut().zip(x) {
                    *o = v.max(0.0);
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let dx = with_slice(res, |y| {
            with_slice(&grad, |dy| {
                let mut dx = vec![0f32; y.len()];
                dx.par_chunks_mut(GRAIN)
                    .zip(y.par_chunks(GRAIN).zip(dy.par_chunks(GRAIN)))
                    .for_each(|(dx, (y, dy))| {
                        for ((o, &v), &g) in dx.iter_mut().zip(y).zip(dy) {
                            *o = if v > 0.0 { g } else { 0.0 };
                        }
                    });
                dx
            })
        })
        .and_then(|r| r)
        .map_err(candle_core::Error::wrap)?;
        Ok(Some(Tensor::from_vec(dx, res.shape(), res.device())?))
    }
}

pub(super) fn relu(xs: &Tensor) -> Result<Tensor> {
    Ok(xs.contiguous()?.apply_op1(ReluOp)?)
}

/// `k × k` windows with stride `k` over `[b, c, h, w]` (rows and columns beyond the last full
/// window are dropped, as in floor mode).
struct MaxPoolOp {
    k: usize,
    h: usize,
    w: usize,
}

impl MaxPoolOp {
    fn out(&self) -> (usize, usize) {
        (self.h / self.k, self.w / self.k)
    }

    /// Index (within the plane) of the first maximum of output cell `(oy, ox)`.
    fn argmax(&self, plane: &[f32], oy: usize, ox: usize) -> usize {
        let mut best = (oy * self.k) * self.w + ox * self.k;
        for i in 0..self.k {
            let row = (oy * self.k + i) * self.w + ox * self.k;
            for j in 0..self.k {
                // `>` keeps the first maximum; a NaN wins so that it propagates.
                let v = plane[row + j];
                if v > plane[best] || (v.is_nan() && !plane[best].is_nan()) {
                    best = row + j;
                }
            }
        }
        best
    }
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
        let (oh, ow) = self.out();
        let mut y = vec![0f32; b * c * oh * ow];
        y.par_chunks_mut(oh * ow)
            .zip(x.par_chunks(self.h * self.w))
            .for_each(|(y, plane)| {
                for oy in 0..oh {
                    for ox in 0..ow {
                        y[oy * ow + ox] = plane[self.argmax(plane, oy, ox)];
                    }
                }
            });
        Ok((CpuStorage::F32(y), Shape::from((b, c, oh, ow))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let (oh, ow) = self.out();
        let dx = with_slice(arg, |x| {
            with_slice(&grad, |dy| {
                let mut dx = vec![0f32; x.len()];
                dx.par_chunks_mut(self.h * self.w)
                    .zip(x.par_chunks(self.h * self.w).zip(dy.par_chunks(oh * ow)))
                    .for_each(|(dx, (plane, dy))| {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                dx[self.argmax(plane, oy, ox)] += dy[oy * ow + ox];
                            }
                        }
                    });
                dx
            })
        })
        .and_then(|r| r)
        .map_err(candle_core::Error::wrap)?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

pub(super) fn max_pool2d(xs: &Tensor, k: usize) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    if h < k || w < k {
        return Err(Error::Geometry {
            reason: format!("max-pool kernel {k} larger than the {h}x{w} input"),
        });
    }
    Ok(xs.contiguous()?.apply_op1(MaxPoolOp { k, h, w })?)
}
