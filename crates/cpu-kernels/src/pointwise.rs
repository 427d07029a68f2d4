//! ReLU and non-overlapping max pooling, each one pass forward and one pass backward.

use rayon::prelude::*;

use crate::error::{Error, Result, check_len};

/// Elements per rayon task for element-wise loops: large enough to amortise scheduling.
const GRAIN: usize = 1 << 14;

/// `max(x, 0)` element-wise.
pub fn relu(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(GRAIN)
        .zip(x.par_chunks(GRAIN))
        .for_each(|(y, x)| {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = v.max(0.0);
            }
        });
    y
}

/// The input gradient of [`relu`] from its output `y` and the output gradient `dy`: `dy` where
/// `y > 0`, else 0.
pub fn relu_backward(y: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
    check_len("relu output gradient", dy, y.len())?;
    let mut dx = vec![0f32; y.len()];
    dx.par_chunks_mut(GRAIN)
        .zip(y.par_chunks(GRAIN).zip(dy.par_chunks(GRAIN)))
        .for_each(|(dx, (y, dy))| {
            for ((o, &v), &g) in dx.iter_mut().zip(y).zip(dy) {
                *o = if v > 0.0 { g } else { 0.0 };
            }
        });
    Ok(dx)
}

/// `k × k` windows with stride `k` over planes of `h × w` (rows and columns beyond the last full
/// window are dropped, as in floor mode). The gradient goes to the first maximum of each window
/// (PyTorch's choice); a NaN counts as the maximum, so that it propagates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    k: usize,
    h: usize,
    w: usize,
}

/// Whether `v` replaces `best` as a window's maximum: `>` keeps the first maximum (so of equal
/// values, and of -0 and +0, the earlier one), and a NaN wins so that it propagates.
#[inline]
fn beats(v: f32, best: f32) -> bool {
    v > best || (v.is_nan() && !best.is_nan())
}

impl MaxPool2d {
    /// Pooling with kernel and stride `k` over `h × w` planes; at least one window must fit.
    pub fn new(k: usize, h: usize, w: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::Geometry {
                reason: "max-pool with a zero kernel".into(),
            });
        }
        if h < k || w < k {
            return Err(Error::Geometry {
                reason: format!("max-pool kernel {k} larger than the {h}x{w} input"),
            });
        }
        Ok(Self { k, h, w })
    }

    /// Output rows and columns per plane.
    pub fn out(&self) -> (usize, usize) {
        (self.h / self.k, self.w / self.k)
    }

    /// Index (within the plane) of the first maximum of output cell `(oy, ox)`.
    fn argmax(&self, plane: &[f32], oy: usize, ox: usize) -> usize {
        let mut best = (oy * self.k) * self.w + ox * self.k;
        for i in 0..self.k {
            let row = (oy * self.k + i) * self.w + ox * self.k;
            for j in 0..self.k {
                if beats(plane[row + j], plane[best]) {
                    best = row + j;
                }
            }
        }
        best
    }

    /// Calls `f(output index, input index of the first maximum)` for every window of a 2 × 2
    /// pooling of `plane`, in output order. The same comparisons as [`Self::argmax`] in the same
    /// order, on row slices: without per-element index arithmetic and bounds checks the pooling
    /// of LeNet-sized planes no longer costs as much as their convolutions.
    fn each_max_2x2(&self, plane: &[f32], mut f: impl FnMut(usize, usize)) {
        let (oh, ow) = self.out();
        let w = self.w;
        for oy in 0..oh {
            let top = 2 * oy * w;
            let r0 = &plane[top..top + 2 * ow];
            let r1 = &plane[top + w..top + w + 2 * ow];
            for (ox, (a, b)) in r0.chunks_exact(2).zip(r1.chunks_exact(2)).enumerate() {
                let (mut v, mut at) = (a[0], 0);
                for (u, off) in [(a[1], 1), (b[0], w), (b[1], w + 1)] {
                    if beats(u, v) {
                        (v, at) = (u, off);
                    }
                }
                f(oy * ow + ox, top + 2 * ox + at);
            }
        }
    }

    /// Planes in `x`, which must hold whole planes.
    fn planes(&self, x: &[f32]) -> Result<usize> {
        let planes = x.len() / (self.h * self.w);
        check_len("max-pool input", x, planes * self.h * self.w)?;
        Ok(planes)
    }

    /// The pooled planes (`oh × ow` each) of the `h × w` planes in `x`.
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>> {
        let planes = self.planes(x)?;
        let (oh, ow) = self.out();
        let mut y = vec![0f32; planes * oh * ow];
        y.par_chunks_mut(oh * ow)
            .zip(x.par_chunks(self.h * self.w))
            .for_each(|(y, plane)| {
                if self.k == 2 {
                    self.each_max_2x2(plane, |o, best| y[o] = plane[best]);
                    return;
                }
                for oy in 0..oh {
                    for ox in 0..ow {
                        y[oy * ow + ox] = plane[self.argmax(plane, oy, ox)];
                    }
                }
            });
        Ok(y)
    }

    /// The input gradient for the input `x` and the output gradient `dy`.
    pub fn backward(&self, x: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
        let planes = self.planes(x)?;
        let (oh, ow) = self.out();
        check_len("max-pool output gradient", dy, planes * oh * ow)?;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(self.h * self.w)
            .zip(x.par_chunks(self.h * self.w).zip(dy.par_chunks(oh * ow)))
            .for_each(|(dx, (plane, dy))| {
                if self.k == 2 {
                    self.each_max_2x2(plane, |o, best| dx[best] += dy[o]);
                    return;
                }
                for oy in 0..oh {
                    for ox in 0..ow {
                        dx[self.argmax(plane, oy, ox)] += dy[oy * ow + ox];
                    }
                }
            });
        Ok(dx)
    }
}

#[cfg(test)]
impl MaxPool2d {
    /// Forward and input gradient through the general window loop, whatever the kernel: the
    /// reference of the 2 × 2 path.
    pub(crate) fn general(&self, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (oh, ow) = self.out();
        let (mut y, mut dx) = (Vec::new(), vec![0f32; x.len()]);
        for (p, plane) in x.chunks_exact(self.h * self.w).enumerate() {
            for oy in 0..oh {
                for ox in 0..ow {
                    let best = self.argmax(plane, oy, ox);
                    y.push(plane[best]);
                    dx[p * self.h * self.w + best] += dy[(p * oh + oy) * ow + ox];
                }
            }
        }
        (y, dx)
    }
}
