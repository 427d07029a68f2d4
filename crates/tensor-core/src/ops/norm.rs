//! Training-mode batch norm fused into one forward and one backward op (optionally with the ReLU
//! that follows it), instead of candle-nn's dozen ops with a transposed copy in each direction.

use rayon::prelude::*;

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

/// Sums of `x − shift` and `(x − shift)²` over one contiguous run, in eight independent lanes so
/// that the loop vectorises. The shift (a sample of the channel) keeps the one-pass variance
/// free of cancellation when the mean is large against the spread.
fn sum_sq(xs: &[f32], shift: f32) -> (f64, f64) {
    let mut s = [0f32; 8];
    let mut q = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            let v = c[i] - shift;
            s[i] += v;
            q[i] += v * v;
        }
    }
    let mut sum: f64 = s.iter().map(|&v| f64::from(v)).sum();
    let mut sq: f64 = q.iter().map(|&v| f64::from(v)).sum();
    for &v in rest {
        let v = f64::from(v - shift);
        sum += v;
        sq += v * v;
    }
    (sum, sq)
}

/// `(Σ g, Σ g·(x − μ))` over one run, `g` the output gradient masked by the ReLU where fused;
/// eight independent lanes so that the loop vectorises.
fn grad_sums(xs: &[f32], ys: &[f32], dys: &[f32], mu: f32, relu: bool) -> (f32, f32) {
    let mut a = [0f32; 8];
    let mut b = [0f32; 8];
    let (xc, yc, gc) = (xs.chunks_exact(8), ys.chunks_exact(8), dys.chunks_exact(8));
    let rest = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .zip(gc.remainder());
    for ((x, y), g) in xc.zip(yc).zip(gc) {
        for l in 0..8 {
            let g = if relu && y[l] <= 0.0 { 0.0 } else { g[l] };
            a[l] += g;
            b[l] += g * (x[l] - mu);
        }
    }
    let (mut sa, mut sb): (f32, f32) = (a.iter().sum(), b.iter().sum());
    for ((&x, &y), &g) in rest {
        let g = if relu && y <= 0.0 { 0.0 } else { g };
        sa += g;
        sb += g * (x - mu);
    }
    (sa, sb)
}

struct Sizes {
    b: usize,
    c: usize,
    hw: usize,
}

impl Sizes {
    fn of(xs: &Tensor) -> Result<Self> {
        let (b, c, h, w) = xs.dims4()?;
        Ok(Self { b, c, hw: h * w })
    }

    fn count(&self) -> usize {
        self.b * self.hw
    }

    /// The `hw` run of channel `ch` in image `i`.
    fn run<'a>(&self, xs: &'a [f32], i: usize, ch: usize) -> &'a [f32] {
        &xs[(i * self.c + ch) * self.hw..][..self.hw]
    }
}

/// The fused op: inputs `(x, gamma, beta)`; `mean` and `inv_std` are the batch statistics
/// (`train`, which the backward pass differentiates through) or the running ones (constants).
struct BatchNormOp {
    sizes: Sizes,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    relu: bool,
    train: bool,
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
        let Sizes { c, hw, .. } = self.sizes;
        let scale: Vec<f32> = (0..c).map(|ch| gamma[ch] * self.inv_std[ch]).collect();
        let shift: Vec<f32> = (0..c)
            .map(|ch| beta[ch] - self.mean[ch] * scale[ch])
            .collect();
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(c * hw)
            .zip(x.par_chunks(c * hw))
            .for_each(|(y, x)| {
                for ch in 0..c {
                    let (a, s) = (scale[ch], shift[ch]);
                    let ys = &mut y[ch * hw..][..hw];
                    let xs = &x[ch * hw..][..hw];
                    if self.relu {
                        for (o, &v) in ys.iter_mut().zip(xs) {
                            *o = (v * a + s).max(0.0);
                        }
                    } else {
                        for (o, &v) in ys.iter_mut().zip(xs) {
                            *o = v * a + s;
                        }
                    }
                }
            });
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
        let sizes = &self.sizes;
        let Sizes { c, hw, .. } = *sizes;
        let m = sizes.count() as f32;
        let run = || -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
            with_slice(x, |x| {
                with_slice(gamma, |gamma| {
                    with_slice(res, |y| {
                        with_slice(&grad, |dy| {
                            let relu = self.relu;
                            // Pass 1, per channel: Σdy and Σdy·x̂.
                            let sums: Vec<(f32, f32)> = (0..c)
                                .into_par_iter()
                                .map(|ch| {
                                    let (mu, is) = (self.mean[ch], self.inv_std[ch]);
                                    let (mut sd, mut sdx) = (0f64, 0f64);
                                    for i in 0..sizes.b {
                                        let (a, b) = grad_sums(
                                            sizes.run(x, i, ch),
                                            sizes.run(y, i, ch),
                                            sizes.run(dy, i, ch),
                                            mu,
                                            relu,
                                        );
                                        sd += f64::from(a);
                                        sdx += f64::from(b * is);
                                    }
                                    (sd as f32, sdx as f32)
                                })
                                .collect();
                            // Pass 2, per image: dx = γ·σ⁻¹·(dy − Σdy/m − x̂·Σdy·x̂/m) in
                            // training, γ·σ⁻¹·dy with fixed statistics.
                            let centre = if self.train { 1.0 / m } else { 0.0 };
                            let mut dx = vec![0f32; x.len()];
                            dx.par_chunks_mut(c * hw).enumerate().for_each(|(i, dxi)| {
                                for ch in 0..c {
                                    let (mu, is) = (self.mean[ch], self.inv_std[ch]);
                                    let k0 = gamma[ch] * is;
                                    let (sd, sdx) = (sums[ch].0 * centre, sums[ch].1 * centre);
                                    // dx = k0·dy − k0·sd − k0·sdx·σ⁻¹·(x − μ), centred before
                                    // scaling: σ⁻¹ can be large.
                                    let (e, a) = (k0 * sd, k0 * sdx * is);
                                    let out = &mut dxi[ch * hw..][..hw];
                                    let (xs, ys) = (sizes.run(x, i, ch), sizes.run(y, i, ch));
                                    let dys = sizes.run(dy, i, ch);
                                    for (((o, &v), &yv), &g) in
                                        out.iter_mut().zip(xs).zip(ys).zip(dys)
                                    {
                                        // The ReLU passes gradient where its output is positive.
                                        let g = if relu && yv <= 0.0 { 0.0 } else { g };
                                        *o = k0 * g - e - a * (v - mu);
                                    }
                                }
                            });
                            let dgamma = sums.iter().map(|s| s.1).collect();
                            let dbeta = sums.iter().map(|s| s.0).collect();
                            (dx, dgamma, dbeta)
                        })
                    })
                })
            })
            .and_then(|r| r)
            .and_then(|r| r)
            .and_then(|r| r)
        };
        let (dx, dgamma, dbeta) = run().map_err(candle_core::Error::wrap)?;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dgamma, c, dev)?),
            Some(Tensor::from_vec(dbeta, c, dev)?),
        ))
    }
}

pub(super) fn batch_norm_train(
    xs: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, BatchNormStats)> {
    let sizes = Sizes::of(xs)?;
    check_affine(&sizes, gamma, beta)?;
    let xs = xs.contiguous()?;
    let m = sizes.count();
    let (mean, var) = with_slice(&xs, |x| {
        let per_channel: Vec<(f64, f64)> = (0..sizes.c)
            .into_par_iter()
            .map(|ch| {
                let shift = sizes.run(x, 0, ch).first().copied().unwrap_or(0.0);
                let (s, q) = (0..sizes.b)
                    .map(|i| sum_sq(sizes.run(x, i, ch), shift))
                    .fold((0.0, 0.0), |(s, q), (a, b)| (s + a, q + b));
                let d = s / m as f64;
                (f64::from(shift) + d, (q / m as f64 - d * d).max(0.0))
            })
            .collect();
        per_channel
            .into_iter()
            .unzip::<f64, f64, Vec<f64>, Vec<f64>>()
    })?;
    let inv_std = var
        .iter()
        .map(|&v| (1.0 / (v + eps).sqrt()) as f32)
        .collect();
    let unbiased = m as f64 / (m.max(2) - 1) as f64;
    let dev = xs.device();
    let stats = BatchNormStats {
        mean: Tensor::from_vec(mean.iter().map(|&v| v as f32).collect(), sizes.c, dev)?,
        var: Tensor::from_vec(
            var.iter().map(|&v| (v * unbiased) as f32).collect(),
            sizes.c,
            dev,
        )?,
    };
    let op = BatchNormOp {
        mean: mean.iter().map(|&v| v as f32).collect(),
        inv_std,
        sizes,
        relu,
        train: true,
    };
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
    let sizes = Sizes::of(xs)?;
    check_affine(&sizes, gamma, beta)?;
    check_affine(&sizes, running_mean, running_var)?;
    let mean = running_mean.to_vec1::<f32>()?;
    let inv_std = running_var
        .to_vec1::<f32>()?
        .iter()
        .map(|&v| (1.0 / (f64::from(v) + eps).sqrt()) as f32)
        .collect();
    let op = BatchNormOp {
        sizes,
        mean,
        inv_std,
        relu,
        train: false,
    };
    Ok(xs
        .contiguous()?
        .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?)
}

/// Evaluation-mode batch norm from candle ops.
pub(super) fn batch_norm_eval_candle(
    xs: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    (running_mean, running_var): (&Tensor, &Tensor),
    eps: f64,
    relu: bool,
) -> Result<Tensor> {
    let scale = (gamma / (running_var.detach() + eps)?.sqrt()?)?;
    let shift = (beta - (running_mean.detach() * &scale)?)?;
    let ys = xs
        .broadcast_mul(&scale.reshape((1, (), 1, 1))?)?
        .broadcast_add(&shift.reshape((1, (), 1, 1))?)?;
    Ok(if relu { ys.relu()? } else { ys })
}

/// The same computation from candle ops (the reference and the `Candle` backend).
pub(super) fn batch_norm_train_candle(
    xs: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, BatchNormStats)> {
    let sizes = Sizes::of(xs)?;
    check_affine(&sizes, gamma, beta)?;
    let m = sizes.count();
    let flat = xs.transpose(0, 1)?.flatten_from(1)?.contiguous()?;
    let mean = flat.mean_keepdim(D::Minus1)?;
    let centred = flat.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(&var + eps)?.sqrt()?)?;
    let ys = normed
        .broadcast_mul(&gamma.reshape(((), 1))?)?
        .broadcast_add(&beta.reshape(((), 1))?)?;
    let (b, c, h, w) = xs.dims4()?;
    let ys = ys.reshape((c, b, h, w))?.transpose(0, 1)?;
    let ys = if relu { ys.relu()? } else { ys };
    let unbiased = m as f64 / (m.max(2) - 1) as f64;
    let stats = BatchNormStats {
        mean: mean.flatten_all()?.detach(),
        var: (var.flatten_all()? * unbiased)?.detach(),
    };
    Ok((ys, stats))
}

fn check_affine(sizes: &Sizes, gamma: &Tensor, beta: &Tensor) -> Result<()> {
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
