//! 2-D convolution as im2col + GEMM per image and group, with its own backward pass (col2im for
//! the input gradient, a per-thread GEMM accumulation for the weight gradient).
//!
//! Tensors are contiguous row-major f32 slices: the input `[b, c, h, w]`, the weight
//! `[d, c/groups, kh, kw]`, the output `[b, d, oh, ow]`. Images are split over rayon's pool.

use rayon::prelude::*;

use crate::error::{Error, Result, check_len};
use crate::gemm::{Mat, gemm, gemm_strided};
use crate::scratch;

/// Stride, padding (both symmetric) and groups of a convolution; dilation is 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Stride along rows and columns, ≥ 1.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Groups, ≥ 1, dividing both channel counts (`groups == c` is depthwise).
    pub groups: usize,
}

/// Image chunks of the backward pass (see [`Conv2dGeom::backward`]).
const WEIGHT_GRAD_CHUNKS: usize = 8;

/// Input, weight and bias gradients of a convolution, each present when asked for; shaped like
/// the input, the weight and the bias.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvGrads {
    /// Input gradient `[b, c, h, w]`.
    pub dx: Option<Vec<f32>>,
    /// Weight gradient `[d, c/groups, kh, kw]`.
    pub dw: Option<Vec<f32>>,
    /// Bias gradient `[d]`.
    pub db: Option<Vec<f32>>,
}

/// Every size of one convolution call, checked once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeom {
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

impl Conv2dGeom {
    /// The geometry of convolving an input of dimensions `xs` (`[b, c, h, w]`) with a weight of
    /// dimensions `ws` (`[d, c/groups, kh, kw]`).
    pub fn new(xs: &[usize], ws: &[usize], p: Conv2dParams) -> Result<Self> {
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
        // The loops step over whole images and output planes.
        if c * h * w == 0 || d == 0 {
            return bad(format!(
                "conv2d with an empty image or no filters: input {xs:?}, weight {ws:?}"
            ));
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

    /// Input dimensions `[b, c, h, w]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.b, self.c, self.h, self.w]
    }

    /// Weight dimensions `[d, c/groups, kh, kw]`.
    pub fn weight_dims(&self) -> [usize; 4] {
        [self.d, self.cg(), self.kh, self.kw]
    }

    /// Output dimensions `[b, d, oh, ow]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.b, self.d, self.oh, self.ow]
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
    pub(crate) fn im2col(&self, x: &[f32], c0: usize, col: &mut [f32]) {
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
    pub(crate) fn col2im(&self, col: &[f32], c0: usize, dx: &mut [f32]) {
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

    /// The output `[b, d, oh, ow]` of input `x` and weight `w`, plus `bias` `[d]` when given.
    pub fn forward(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Result<Vec<f32>> {
        self.check_operands(x, w)?;
        if let Some(bias) = bias {
            check_len("conv2d bias", bias, self.d)?;
        }
        let mut y = vec![0f32; self.b * self.y_len()];
        y.par_chunks_mut(self.y_len())
            .zip(x.par_chunks(self.x_len()))
            .for_each(|(y, x)| self.forward_image(x, w, bias, y));
        Ok(y)
    }

    /// Input, weight and bias gradients for the output gradient `dy` (each only when asked
    /// for). `x` is read only for the weight gradient, `w` only for the input gradient.
    ///
    /// The batch is cut into a fixed number of chunks whatever the thread count, so the result
    /// is the same, bit for bit, on any pool.
    pub fn backward(
        &self,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        (need_dx, need_dw, need_db): (bool, bool, bool),
    ) -> Result<ConvGrads> {
        self.check_operands(x, w)?;
        check_len("conv2d output gradient", dy, self.b * self.y_len())?;
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
        Ok(ConvGrads { dx, dw, db })
    }

    fn check_operands(&self, x: &[f32], w: &[f32]) -> Result<()> {
        check_len("conv2d input", x, self.b * self.x_len())?;
        check_len("conv2d weight", w, self.d * self.k())
    }
}
