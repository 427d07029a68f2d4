//! 2-D convolution as im2col + GEMM per image and group, with its own backward pass (col2im for
//! the input gradient, a per-thread GEMM accumulation for the weight gradient).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::gemm::{Mat, gemm, gemm_strided};
use super::{scratch, storage_slice, with_slice};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::candle::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape};

/// Stride, padding (both symmetric) and groups of a convolution; dilation is 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conv2dParams {
    /// Stride along rows and columns, ≥ 1.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Groups, ≥ 1, dividing both channel counts (`groups == c` is depthwise).
    pub groups: usize,
}

/// Image chunks of the backward pass (see `Geom::backward`).
const WEIGHT_GRAD_CHUNKS: usize = 8;

/// Input, weight and bias gradients, each present when asked for.
type Grads = (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>);

/// Every size of one convolution call, checked once.
#[derive(Clone, Copy, Debug)]
struct Geom {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    d: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: usize,
    pad: usize,
    groups: usize,
}

impl Geom {
    fn new(xs: &[usize], ws: &[usize], p: Conv2dParams) -> Result<Self> {
        let (&[b, c, h, w], &[d, cg, kh, kw]) = (xs, ws) else {
            return Err(Error::Shape {
                what: "conv2d input and weight (rank 4)".into(),
                expected: vec![0, 0, 0, 0],
                got: if xs.len() != 4 { xs } else { ws }.to_vec(),
            });
        };
        let bad = |reason: String| Err(Error::Geometry { reason });
        if p.stride == 0 || p.groups == 0 || kh == 0 || kw == 0 {
            return bad(format!("conv2d with a zero stride, group or kernel: {p:?}"));
        }
        if c != cg * p.groups || !d.is_multiple_of(p.groups) {
            return bad(format!(
                "conv2d weight {ws:?} does not fit {c} input channels in {} groups",
                p.groups
            ));
        }
        if h + 2 * p.padding < kh || w + 2 * p.padding < kw {
            return bad(format!(
                "conv2d kernel {kh}x{kw} larger than the padded {h}x{w} input"
            ));
        }
        Ok(Self {
            b,
            c,
            h,
            w,
            d,
            kh,
            kw,
            oh: (h + 2 * p.padding - kh) / p.stride + 1,
            ow: (w + 2 * p.padding - kw) / p.stride + 1,
            stride: p.stride,
            pad: p.padding,
            groups: p.groups,
        })
    }

    fn cg(&self) -> usize {
        self.c / self.groups
    }

    fn dg(&self) -> usize {
        self.d / self.groups
    }

    /// Rows of a group's im2col matrix (= a filter's length).
    fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }

    /// Output pixels per image (= im2col columns).
    fn n(&self) -> usize {
        self.oh * self.ow
    }

    fn x_len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn y_len(&self) -> usize {
        self.d * self.n()
    }

    /// A 1×1, stride-1, unpadded convolution reads its input as the im2col matrix itself.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }

    /// Output columns `ox` whose input column `ox·stride + kj − pad` lies inside `0..w`.
    fn valid_cols(&self, kj: usize) -> (usize, usize) {
        let lo = self
            .pad
            .saturating_sub(kj)
            .div_ceil(self.stride)
            .min(self.ow);
        let hi = (self.w + self.pad)
            .saturating_sub(kj)
            .div_ceil(self.stride)
            .min(self.ow);
        (lo, hi.max(lo))
    }

    /// Fills `col` (`k × n`) with the patches of channels `c0..c0 + cg` of one image `x`.
    fn im2col(&self, x: &[f32], c0: usize, col: &mut [f32]) {
        let (n, s) = (self.n(), self.stride);
        for ci in 0..self.cg() {
            let plane = &x[(c0 + ci) * self.h * self.w..][..self.h * self.w];
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = &mut col[((ci * self.kh + ki) * self.kw + kj) * n..][..n];
                    let (lo, hi) = self.valid_cols(kj);
                    for oy in 0..self.oh {
                        let dst = &mut row[oy * self.ow..][..self.ow];
                        let iy = (oy * s + ki).wrapping_sub(self.pad);
                        if iy >= self.h {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy * self.w..][..self.w];
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        if lo == hi {
                            continue;
                        }
                        let x0 = lo * s + kj - self.pad;
                        if s == 1 {
                            // An inline loop: rows are 8-32 floats, too short for a memcpy call.
                            for (d, &v) in dst[lo..hi].iter_mut().zip(&src[x0..x0 + hi - lo]) {
                                *d = v;
                            }
                        } else {
                            for (o, v) in dst[lo..hi].iter_mut().enumerate() {
                                *v = src[x0 + o * s];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds `col` (`k × n`) back onto channels `c0..c0 + cg` of one image gradient `dx`.
    fn col2im(&self, col: &[f32], c0: usize, dx: &mut [f32]) {
        let (n, s) = (self.n(), self.stride);
        for ci in 0..self.cg() {
            let plane = &mut dx[(c0 + ci) * self.h * self.w..][..self.h * self.w];
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = &col[((ci * self.kh + ki) * self.kw + kj) * n..][..n];
                    let (lo, hi) = self.valid_cols(kj);
                    if lo == hi {
                        continue;
                    }
                    for oy in 0..self.oh {
                        let iy = (oy * s + ki).wrapping_sub(self.pad);
                        if iy >= self.h {
                            continue;
                        }
                        let src = &row[oy * self.ow..][lo..hi];
                        let dst = &mut plane[iy * self.w..][..self.w];
                        let x0 = lo * s + kj - self.pad;
                        if s == 1 {
                            for (d, v) in dst[x0..x0 + hi - lo].iter_mut().zip(src) {
                                *d += v;
                            }
                        } else {
                            for (o, v) in src.iter().enumerate() {
                                dst[x0 + o * s] += v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// One image's output `y` (`d × n`) from its input `x`.
    fn forward_image(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let (k, n, dg) = (self.k(), self.n(), self.dg());
        let run = |col: &[f32], y: &mut [f32]| {
            for g in 0..self.groups {
                let wg = &w[g * dg * k..][..dg * k];
                let yg = &mut y[g * dg * n..][..dg * n];
                if let Some(bias) = bias {
                    for (row, &bv) in yg.chunks_exact_mut(n).zip(&bias[g * dg..][..dg]) {
                        row.fill(bv);
                    }
                }
                let colg = Mat::rows(&col[g * k * n..][..k * n], n);
                gemm((dg, n, k), Mat::rows(wg, k), colg, yg, bias.is_some());
            }
        };
        if self.is_pointwise() {
            run(x, y);
        } else {
            scratch::with_cols(self.groups * k * n, |col| {
                for g in 0..self.groups {
                    self.im2col(x, g * self.cg(), &mut col[g * k * n..][..k * n]);
                }
                run(col, y);
            });
        }
    }

    /// One image's contribution to the gradients: adds `dy · colᵀ` to `dw_t` (each group's
    /// weight gradient transposed, `k × dg`) and the row sums of `dy` to `db`, and writes the
    /// input gradient into `dx` when asked.
    fn backward_image(
        &self,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        dx: Option<&mut [f32]>,
        dw: Option<&mut [f32]>,
        db: Option<&mut [f32]>,
    ) {
        let (k, n, dg) = (self.k(), self.n(), self.dg());
        if let Some(db) = db {
            for (acc, row) in db.iter_mut().zip(dy.chunks_exact(n)) {
                *acc += row.iter().sum::<f32>();
            }
        }
        if let Some(dw_t) = dw {
            let mut grad_w = |col: &[f32]| {
                for g in 0..self.groups {
                    gemm_strided(
                        (dg, k, n),
                        Mat::rows(&dy[g * dg * n..][..dg * n], n),
                        Mat::transposed(&col[g * k * n..][..k * n], n),
                        (&mut dw_t[g * dg * k..][..dg * k], 1, dg),
                        true,
                    );
                }
            };
            if self.is_pointwise() {
                grad_w(x);
            } else {
                scratch::with_cols(self.groups * k * n, |col| {
                    for g in 0..self.groups {
                        self.im2col(x, g * self.cg(), &mut col[g * k * n..][..k * n]);
                    }
                    grad_w(col);
                });
            }
        }
        if let Some(dx) = dx {
            for g in 0..self.groups {
                let wg = Mat::transposed(&w[g * dg * k..][..dg * k], k);
                let dyg = Mat::rows(&dy[g * dg * n..][..dg * n], n);
                if self.is_pointwise() {
                    gemm((k, n, dg), wg, dyg, &mut dx[g * k * n..][..k * n], false);
                } else {
                    // `dx` arrives zeroed: col2im only adds.
                    scratch::with_cols(k * n, |dcol| {
                        gemm((k, n, dg), wg, dyg, dcol, false);
                        self.col2im(dcol, g * self.cg(), dx);
                    });
                }
            }
        }
    }

    fn forward(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let mut y = vec![0f32; self.b * self.y_len()];
        y.par_chunks_mut(self.y_len())
            .zip(x.par_chunks(self.x_len()))
            .for_each(|(y, x)| self.forward_image(x, w, bias, y));
        y
    }

    /// Input, weight and bias gradients (each only when asked for).
    fn backward(
        &self,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        (need_dx, need_dw, need_db): (bool, bool, bool),
    ) -> Grads {
        let (x_len, y_len, w_len) = (self.x_len(), self.y_len(), self.d * self.k());
        // A fixed number of image chunks, each accumulating its own weight gradient: several
        // per thread, so that work rebalances when a core is busy elsewhere, and independent of
        // the thread count, so that the summation order (and the result, bit for bit) is too.
        let per = self.b.div_ceil(WEIGHT_GRAD_CHUNKS).max(1);
        let chunks = self.b.div_ceil(per);
        let mut dx = need_dx.then(|| vec![0f32; self.b * x_len]);
        let dx_chunks: Vec<Option<&mut [f32]>> = match dx.as_mut() {
            Some(dx) => dx.chunks_mut(per * x_len).map(Some).collect(),
            None => (0..chunks).map(|_| None).collect(),
        };
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx_chunks
            .into_par_iter()
            .enumerate()
            .map(|(t, mut dx_chunk)| {
                let mut dw = vec![0f32; if need_dw { w_len } else { 0 }];
                let mut db = vec![0f32; if need_db { self.d } else { 0 }];
                let first = t * per;
                for i in first..(first + per).min(self.b) {
                    let dxi = dx_chunk
                        .as_deref_mut()
                        .map(|dx| &mut dx[(i - first) * x_len..][..x_len]);
                    self.backward_image(
                        &x[i * x_len..][..x_len],
                        w,
                        &dy[i * y_len..][..y_len],
                        dxi,
                        need_dw.then_some(&mut dw[..]),
                        need_db.then_some(&mut db[..]),
                    );
                }
                (dw, db)
            })
            .collect();
        let sum = |parts: Vec<Vec<f32>>| {
            let mut parts = parts.into_iter();
            let mut acc = parts.next().unwrap_or_default();
            for p in parts {
                for (a, v) in acc.iter_mut().zip(&p) {
                    *a += v;
                }
            }
            acc
        };
        let (dws, dbs): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
        let dw = need_dw.then(|| {
            // Back from each group's `k × dg` to the weight's `dg × k`.
            let dw_t = sum(dws);
            let (k, dg) = (self.k(), self.dg());
            let mut dw = vec![0f32; w_len];
            for g in 0..self.groups {
                let (src, dst) = (
                    &dw_t[g * dg * k..][..dg * k],
                    &mut dw[g * dg * k..][..dg * k],
                );
                for d in 0..dg {
                    for kk in 0..k {
                        dst[d * k + kk] = src[kk * dg + d];
                    }
                }
            }
            dw
        });
        let db = need_db.then(|| sum(dbs));
        (dx, dw, db)
    }
}

impl Geom {
    /// [`Geom::backward`] on contiguous f32 CPU tensors, with the gradients as tensors shaped
    /// like the input, the weight and the bias.
    fn gradients(
        &self,
        x: &Tensor,
        w: &Tensor,
        dy: &Tensor,
        needs: (bool, bool, bool),
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = with_slice(x, |xs| {
            with_slice(w, |ws| {
                with_slice(dy, |dys| self.backward(xs, ws, dys, needs))
            })
        })???;
        let dev = x.device();
        let dx = dx
            .map(|v| Tensor::from_vec(v, (self.b, self.c, self.h, self.w), dev))
            .transpose()?;
        let dw = dw
            .map(|v| Tensor::from_vec(v, w.shape(), dev))
            .transpose()?;
        let db = db.map(|v| Tensor::from_vec(v, self.d, dev)).transpose()?;
        Ok((dx, dw, db))
    }
}

/// The custom op: inputs `(x, w)` or `(x, w, bias)`.
struct Conv2dOp {
    geom: Geom,
}

impl Conv2dOp {
    fn name(&self) -> &'static str {
        "fast-conv2d"
    }

    fn out_shape(&self) -> Shape {
        let g = &self.geom;
        Shape::from((g.b, g.d, g.oh, g.ow))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.geom;
        let grad = grad.contiguous()?;
        // A batch that is not part of the graph (the network input) needs no gradient.
        let needs = (
            x.track_op(),
            w.track_op(),
            bias.is_some_and(Tensor::track_op),
        );
        g.gradients(x, w, &grad, needs)
            .map_err(candle_core::Error::wrap)
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        Conv2dOp::name(self)
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (storage_slice(s1, l1)?, storage_slice(s2, l2)?);
        let y = self.geom.forward(x, w, None);
        Ok((CpuStorage::F32(y), self.out_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = Conv2dOp::bwd(self, x, w, None, grad)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        Conv2dOp::name(self)
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
        let (x, w) = (storage_slice(s1, l1)?, storage_slice(s2, l2)?);
        let bias = storage_slice(s3, l3)?;
        let y = self.geom.forward(x, w, Some(bias));
        Ok((CpuStorage::F32(y), self.out_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        Conv2dOp::bwd(self, x, w, Some(bias), grad)
    }
}

pub(super) fn conv2d(
    xs: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    params: Conv2dParams,
) -> Result<Tensor> {
    let geom = Geom::new(xs.dims(), w.dims(), params)?;
    let (xs, w) = (xs.contiguous()?, w.contiguous()?);
    let op = Conv2dOp { geom };
    Ok(match bias {
        None => xs.apply_op2(&w, op)?,
        Some(b) => {
            if b.dims() != [geom.d] {
                return Err(Error::Shape {
                    what: "conv2d bias".into(),
                    expected: vec![geom.d],
                    got: b.dims().to_vec(),
                });
            }
            xs.apply_op3(&w, &b.contiguous()?, op)?
        }
    })
}

/// Input and weight gradients of `conv2d(xs, w)` for the output gradient `dy`, outside autograd
/// (each only when asked for; `xs` is read only for the weight gradient).
pub(super) fn conv2d_backward(
    xs: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    params: Conv2dParams,
    (need_dx, need_dw): (bool, bool),
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let g = Geom::new(xs.dims(), w.dims(), params)?;
    if dy.dims() != [g.b, g.d, g.oh, g.ow] {
        return Err(Error::Shape {
            what: "conv2d output gradient".into(),
            expected: vec![g.b, g.d, g.oh, g.ow],
            got: dy.dims().to_vec(),
        });
    }
    let (xs, w, dy) = (xs.contiguous()?, w.contiguous()?, dy.contiguous()?);
    let (dx, dw, _) = g.gradients(&xs, &w, &dy, (need_dx, need_dw, false))?;
    Ok((dx, dw))
}
