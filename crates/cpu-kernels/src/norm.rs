//! Batch norm fused into one forward and one backward pass (optionally with the ReLU that
//! follows it), in training mode (batch statistics, differentiated through) or evaluation mode
//! (running statistics, constants).
//!
//! Tensors are contiguous row-major `[b, c, h, w]` f32 slices; per-channel vectors are `[c]`.

use rayon::prelude::*;

use crate::error::{Error, Result, check_len};

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

/// Sizes of a `[b, c, h, w]` tensor as batch norm sees it: `b` images of `c` channel planes of
/// `hw` values each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchNormDims {
    /// Images.
    pub b: usize,
    /// Channels.
    pub c: usize,
    /// Values per channel plane (`h · w`).
    pub hw: usize,
}

impl BatchNormDims {
    /// The sizes of a `[b, c, h, w]` tensor.
    pub fn new(b: usize, c: usize, h: usize, w: usize) -> Self {
        Self { b, c, hw: h * w }
    }

    /// Values per channel over the batch (`b · h · w`).
    pub fn count(&self) -> usize {
        self.b * self.hw
    }

    /// Values of the whole tensor.
    pub fn len(&self) -> usize {
        self.b * self.c * self.hw
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `hw` run of channel `ch` in image `i`.
    fn run<'a>(&self, xs: &'a [f32], i: usize, ch: usize) -> &'a [f32] {
        &xs[(i * self.c + ch) * self.hw..][..self.hw]
    }
}

/// Per-channel statistics of one training batch, for the running estimates.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchStats {
    /// Batch mean `[c]`.
    pub mean: Vec<f32>,
    /// Unbiased batch variance `[c]` (PyTorch's running-variance convention).
    pub var: Vec<f32>,
}

/// Input, scale and shift gradients of a batch norm.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormGrads {
    /// Input gradient `[b, c, h, w]`.
    pub dx: Vec<f32>,
    /// Gradient of the scale `gamma` `[c]`.
    pub dgamma: Vec<f32>,
    /// Gradient of the shift `beta` `[c]`.
    pub dbeta: Vec<f32>,
}

/// One batch norm call: its sizes and the statistics it normalises with, `mean` and
/// `inv_std` = `1/√(var + eps)`, either of the batch (training, which the backward pass
/// differentiates through) or the running ones (evaluation, constants).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    dims: BatchNormDims,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    relu: bool,
    train: bool,
}

impl BatchNorm {
    /// Training mode: the statistics of the batch `x` (biased variance for the normalisation),
    /// followed by a ReLU when `relu`. Also returns the batch statistics for the running
    /// estimates.
    pub fn train(
        dims: BatchNormDims,
        x: &[f32],
        eps: f64,
        relu: bool,
    ) -> Result<(Self, BatchStats)> {
        check_dims(dims, true)?;
        check_len("batch-norm input", x, dims.len())?;
        let sizes = dims;
        let m = sizes.count();
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
        let (mean, var) = per_channel
            .into_iter()
            .unzip::<f64, f64, Vec<f64>, Vec<f64>>();
        let inv_std = var
            .iter()
            .map(|&v| (1.0 / (v + eps).sqrt()) as f32)
            .collect();
        let unbiased = m as f64 / (m.max(2) - 1) as f64;
        let mean: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
        let stats = BatchStats {
            mean: mean.clone(),
            var: var.iter().map(|&v| (v * unbiased) as f32).collect(),
        };
        let norm = Self {
            dims,
            mean,
            inv_std,
            relu,
            train: true,
        };
        Ok((norm, stats))
    }

    /// Evaluation mode: normalises with the running statistics `running_mean`, `running_var`
    /// (`[c]` each), followed by a ReLU when `relu`.
    pub fn eval(
        dims: BatchNormDims,
        running_mean: &[f32],
        running_var: &[f32],
        eps: f64,
        relu: bool,
    ) -> Result<Self> {
        check_dims(dims, false)?;
        check_len("batch-norm running mean", running_mean, dims.c)?;
        check_len("batch-norm running variance", running_var, dims.c)?;
        let inv_std = running_var
            .iter()
            .map(|&v| (1.0 / (f64::from(v) + eps).sqrt()) as f32)
            .collect();
        Ok(Self {
            dims,
            mean: running_mean.to_vec(),
            inv_std,
            relu,
            train: false,
        })
    }

    /// The sizes this batch norm was set up for.
    pub fn dims(&self) -> BatchNormDims {
        self.dims
    }

    /// `gamma·(x − mean)·inv_std + beta` per channel (then the ReLU, if fused), one pass.
    pub fn forward(&self, x: &[f32], gamma: &[f32], beta: &[f32]) -> Result<Vec<f32>> {
        self.check_operands(x, gamma)?;
        check_len("batch-norm bias", beta, self.dims.c)?;
        let BatchNormDims { c, hw, .. } = self.dims;
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
        Ok(y)
    }

    /// Gradients for the output gradient `dy`, given the input `x`, the scale `gamma` and the
    /// output `y` of [`BatchNorm::forward`] (which locates the fused ReLU's zeros).
    pub fn backward(
        &self,
        x: &[f32],
        gamma: &[f32],
        y: &[f32],
        dy: &[f32],
    ) -> Result<BatchNormGrads> {
        self.check_operands(x, gamma)?;
        check_len("batch-norm output", y, self.dims.len())?;
        check_len("batch-norm output gradient", dy, self.dims.len())?;
        let sizes = &self.dims;
        let BatchNormDims { c, hw, .. } = *sizes;
        let m = sizes.count() as f32;
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
        // Pass 2, per image: dx = γ·σ⁻¹·(dy − Σdy/m − x̂·Σdy·x̂/m) in training, γ·σ⁻¹·dy with
        // fixed statistics.
        let centre = if self.train { 1.0 / m } else { 0.0 };
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(c * hw).enumerate().for_each(|(i, dxi)| {
            for ch in 0..c {
                let (mu, is) = (self.mean[ch], self.inv_std[ch]);
                let k0 = gamma[ch] * is;
                let (sd, sdx) = (sums[ch].0 * centre, sums[ch].1 * centre);
                // dx = k0·dy − k0·sd − k0·sdx·σ⁻¹·(x − μ), centred before scaling: σ⁻¹ can be
                // large.
                let (e, a) = (k0 * sd, k0 * sdx * is);
                let out = &mut dxi[ch * hw..][..hw];
                let (xs, ys) = (sizes.run(x, i, ch), sizes.run(y, i, ch));
                let dys = sizes.run(dy, i, ch);
                for (((o, &v), &yv), &g) in out.iter_mut().zip(xs).zip(ys).zip(dys) {
                    // The ReLU passes gradient where its output is positive.
                    let g = if relu && yv <= 0.0 { 0.0 } else { g };
                    *o = k0 * g - e - a * (v - mu);
                }
            }
        });
        let dgamma = sums.iter().map(|s| s.1).collect();
        let dbeta = sums.iter().map(|s| s.0).collect();
        Ok(BatchNormGrads { dx, dgamma, dbeta })
    }

    fn check_operands(&self, x: &[f32], gamma: &[f32]) -> Result<()> {
        check_len("batch-norm input", x, self.dims.len())?;
        check_len("batch-norm weight", gamma, self.dims.c)
    }
}

/// The loops step over whole images of `c · hw` values, so both must be nonzero; training also
/// needs an image to take statistics from.
fn check_dims(dims: BatchNormDims, train: bool) -> Result<()> {
    let BatchNormDims { b, c, hw } = dims;
    if c * hw == 0 || (train && b == 0) {
        let images = if train {
            " from at least one image"
        } else {
            ""
        };
        return Err(Error::Geometry {
            reason: format!(
                "batch norm needs channels and planes{images}: got {b} images of {c} channels of {hw} values"
            ),
        });
    }
    Ok(())
}
