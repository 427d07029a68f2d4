//! Fake quantisation (quantise, then dequantise) after Banner et al. 2018, and the
//! most-significant-bit (MSB) parts that PSG's predictor works on (docs/e2-train.md §3).
//!
//! A `b`-bit grid over `[min, s]` has step `Δ = (s − min)/2^b`, codes
//! `round(clamp((x − min)/Δ, 0, 2^b − 1))` (clamp before round, ties to even as the reference's
//! `torch.round`) and values `code·Δ + min`. The top code is `2^b − 1`, so values near `s` are
//! clamped to `s − Δ`. A zero scale (an all-zero tensor) has `Δ = 0` and maps everything to `min`.
//!
//! The scalar functions ([`QuantGrid`]) are the reference; the tensor functions compute the same
//! values with candle ops.

use tensor_core::tensor::{D, Tensor};

use crate::error::{Result, bad};

/// One uniform quantisation grid: `bits` wide over `[min, scale]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantGrid {
    /// Code width, 1..=31.
    pub bits: u8,
    /// Lowest representable value (`0` unsigned, `−scale` signed).
    pub min: f32,
    /// Grid step `Δ`.
    pub delta: f32,
}

impl QuantGrid {
    /// The grid for a scale `s = max|x|`; signed grids cover `[−s, s]`, unsigned `[0, s]`.
    pub fn new(bits: u8, scale: f32, signed: bool) -> Result<Self> {
        if !(1..=31).contains(&bits) {
            return Err(bad("bits", format!("{bits} is not in 1..=31")));
        }
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(bad("scale", format!("{scale} must be finite and >= 0")));
        }
        let min = if signed { -scale } else { 0.0 };
        Ok(Self {
            bits,
            min,
            delta: (scale - min) / levels(bits),
        })
    }

    /// Largest code `2^b − 1`.
    pub fn top_code(&self) -> f32 {
        levels(self.bits) - 1.0
    }

    /// Integer code of `x` (as a float).
    pub fn code(&self, x: f32) -> f32 {
        if self.delta == 0.0 {
            return 0.0;
        }
        round_code(
            ((x - self.min) / self.delta).clamp(0.0, self.top_code()),
            self.bits,
        )
    }

    /// Value of a code.
    pub fn dequantize(&self, code: f32) -> f32 {
        code * self.delta + self.min
    }

    /// Fake-quantised `x`.
    pub fn quantize(&self, x: f32) -> f32 {
        self.dequantize(self.code(x))
    }

    /// The `msb_bits` most significant bits of a code: `clamp(round(code/2^{b−m})·2^{b−m}, 0,
    /// 2^b − 1)`, rounding (not truncation) and keeping the clamp to the top code (decision 10:
    /// 17 levels at b = 8, m = 4, as in the reference).
    pub fn msb_code(&self, code: f32, msb_bits: u8) -> f32 {
        let step = msb_step(self.bits, msb_bits);
        (round_code(code / step, self.bits) * step).clamp(0.0, self.top_code())
    }

    /// Fake-quantised MSB part of `x`.
    pub fn msb(&self, x: f32, msb_bits: u8) -> f32 {
        self.dequantize(self.msb_code(self.code(x), msb_bits))
    }

    /// [`Self::quantize`] of every element, in place. The zero-step and width branches are taken
    /// once per slice instead of once per element, so the loop vectorises; the arithmetic is the
    /// per-element function's, operation for operation, so the values are identical.
    pub fn quantize_slice(&self, xs: &mut [f32]) {
        if self.delta == 0.0 || self.bits > 23 {
            xs.iter_mut().for_each(|v| *v = self.quantize(*v));
            return;
        }
        let top = self.top_code();
        for v in xs {
            *v = self.dequantize(self.narrow_code(*v, top));
        }
    }

    /// [`Self::msb`] of every element, in place; `msb_bits >= bits` gives
    /// [`Self::quantize_slice`]. Identical values, vectorised as that one.
    pub fn msb_slice(&self, xs: &mut [f32], msb_bits: u8) {
        if msb_bits >= self.bits {
            return self.quantize_slice(xs);
        }
        if self.delta == 0.0 || self.bits > 23 {
            xs.iter_mut().for_each(|v| *v = self.msb(*v, msb_bits));
            return;
        }
        let (top, step) = (self.top_code(), msb_step(self.bits, msb_bits));
        for v in xs {
            let code = self.narrow_code(*v, top);
            *v = self.dequantize(clamp_nan(round_shift(code / step) * step, top));
        }
    }

    /// [`Self::code`] for a nonzero step and at most 23 bits, branch-free for the slice loops.
    #[inline]
    fn narrow_code(&self, x: f32, top: f32) -> f32 {
        round_shift(clamp_nan((x - self.min) / self.delta, top))
    }
}

/// `x.clamp(0, top)` (NaN stays NaN) without `f32::clamp`'s bounds assertion in the loop.
#[inline]
fn clamp_nan(x: f32, top: f32) -> f32 {
    if x < 0.0 {
        0.0
    } else if x > top {
        top
    } else {
        x
    }
}

/// [`round_code`]'s exact rounding for codes below 2^23.
#[inline]
fn round_shift(v: f32) -> f32 {
    (v + ROUND_SHIFT) - ROUND_SHIFT
}

const ROUND_SHIFT: f32 = 8_388_608.0;

// Powers of two by shifting: exact like `powi`, without a libm call in every element's loop.
fn levels(bits: u8) -> f32 {
    (1u64 << bits.min(63)) as f32
}

fn msb_step(bits: u8, msb_bits: u8) -> f32 {
    (1u64 << bits.saturating_sub(msb_bits).min(63)) as f32
}

/// Rounds a code `v ∈ [0, 2^bits − 1]` (or NaN) half to even. Below 2^23 adding and removing
/// 2^23 rounds exactly so in the default rounding mode: the same values as `round_ties_even`
/// without its libm call, so the quantisation loops vectorise.
#[inline]
pub(crate) fn round_code(v: f32, bits: u8) -> f32 {
    if bits <= 23 {
        round_shift(v)
    } else {
        v.round_ties_even()
    }
}

/// Rounds half to even, elementwise (candle's `round` rounds half away from zero).
pub fn round_ties_even(xs: &Tensor) -> Result<Tensor> {
    let nearest = xs.round()?;
    let tie = (xs - xs.floor()?)?.eq(0.5)?;
    let even = (xs * 0.5)?.round()?.affine(2.0, 0.0)?;
    Ok(tie.where_cond(&even, &nearest)?)
}

/// A grid over tensors: `min` and `Δ` broadcast against the quantised tensor (a scalar, one
/// value per sample or one per output channel).
#[derive(Clone, Debug)]
pub struct TensorGrid {
    /// Code width.
    pub bits: u8,
    /// Lowest value, broadcastable.
    pub min: Tensor,
    /// Step, broadcastable.
    pub delta: Tensor,
}

impl TensorGrid {
    /// The grid for `scale = max|x|` (broadcastable against the data).
    pub fn new(bits: u8, scale: &Tensor, signed: bool) -> Result<Self> {
        if !(1..=31).contains(&bits) {
            return Err(bad("bits", format!("{bits} is not in 1..=31")));
        }
        let scale = scale.detach();
        let min = if signed {
            scale.neg()?
        } else {
            scale.zeros_like()?
        };
        let delta = ((&scale - &min)? / f64::from(levels(bits)))?;
        Ok(Self { bits, min, delta })
    }

    /// Codes of `xs` (no gradient flows through codes).
    pub fn codes(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = xs.detach();
        // Δ = 0 (an all-zero tensor): divide by 1 instead and force code 0 afterwards.
        let zero = self.delta.eq(0.0)?;
        let safe = zero.where_cond(&self.delta.ones_like()?, &self.delta)?;
        let raw = xs.broadcast_sub(&self.min)?.broadcast_div(&safe)?;
        let top = f64::from(levels(self.bits) - 1.0);
        let c = round_ties_even(&raw.clamp(0.0, top)?)?;
        let zero = zero.broadcast_as(c.shape())?;
        Ok(zero.where_cond(&c.zeros_like()?, &c)?)
    }

    /// Values of codes.
    pub fn dequantize(&self, codes: &Tensor) -> Result<Tensor> {
        Ok(codes.broadcast_mul(&self.delta)?.broadcast_add(&self.min)?)
    }

    /// Fake-quantised values of `xs` (detached).
    pub fn quantize(&self, xs: &Tensor) -> Result<Tensor> {
        if let Some(q) = self.on_host(xs, QuantGrid::quantize_slice)? {
            return Ok(q);
        }
        self.dequantize(&self.codes(xs)?)
    }

    /// Fake-quantised MSB parts of `xs` (detached); `msb_bits >= bits` gives [`Self::quantize`].
    pub fn msb(&self, xs: &Tensor, msb_bits: u8) -> Result<Tensor> {
        if let Some(q) = self.on_host(xs, |g, row| g.msb_slice(row, msb_bits))? {
            return Ok(q);
        }
        let c = self.codes(xs)?;
        if msb_bits >= self.bits {
            return self.dequantize(&c);
        }
        let step = f64::from(msb_step(self.bits, msb_bits));
        let top = f64::from(levels(self.bits) - 1.0);
        let m = round_ties_even(&(c / step)?)?
            .affine(step, 0.0)?
            .clamp(0.0, top)?;
        self.dequantize(&m)
    }
}

impl TensorGrid {
    /// Applies `f` with each element's scalar grid in one pass over host memory, for CPU f32
    /// data whose grid is a scalar or varies along the first dimension only (every grid this
    /// crate builds): the candle composition above takes about fifteen passes and as many
    /// allocations. The same f32 operations in the same order, so the values are identical.
    /// `None` where the fast path does not apply.
    fn on_host(&self, xs: &Tensor, f: impl Fn(&QuantGrid, &mut [f32])) -> Result<Option<Tensor>> {
        let lead_only = |t: &Tensor| t.dims().iter().skip(1).all(|&d| d == 1);
        if !matches!(xs.device(), tensor_core::Device::Cpu)
            || xs.dtype() != tensor_core::DType::F32
            || self.min.dtype() != tensor_core::DType::F32
            || self.delta.dtype() != tensor_core::DType::F32
            || !lead_only(&self.min)
            || !lead_only(&self.delta)
            || xs.rank() == 0
        {
            return Ok(None);
        }
        let mins = self.min.flatten_all()?.to_vec1::<f32>()?;
        let deltas = self.delta.flatten_all()?.to_vec1::<f32>()?;
        let lead = xs.dim(0)?;
        let groups = mins.len().max(deltas.len());
        if mins.len() != deltas.len() || !(groups == 1 || groups == lead) {
            return Ok(None);
        }
        let mut data = xs.detach().flatten_all()?.to_vec1::<f32>()?;
        let per = data.len() / lead.max(1);
        for (i, row) in data.chunks_mut(per.max(1)).enumerate() {
            let j = if groups == 1 { 0 } else { i };
            let grid = QuantGrid {
                bits: self.bits,
                min: mins[j],
                delta: deltas[j],
            };
            f(&grid, row);
        }
        Ok(Some(Tensor::from_vec(data, xs.shape(), xs.device())?))
    }
}

/// Straight-through estimator: the value of `q`, the gradient of `xs` (`xs + (q − xs).detach()`).
pub fn straight_through(xs: &Tensor, q: &Tensor) -> Result<Tensor> {
    Ok((xs + (q - xs)?.detach())?)
}

/// Per-sample `max|x|` over all but the first dimension, shaped `[b, 1, ..., 1]`.
pub fn per_sample_max_abs(xs: &Tensor) -> Result<Tensor> {
    let b = xs.dim(0)?;
    let m = xs.abs()?.flatten_from(1)?.max_keepdim(D::Minus1)?;
    let mut shape = vec![1; xs.rank()];
    shape[0] = b;
    Ok(m.reshape(shape)?)
}

/// Activation scale in training: the batch mean of per-sample `max|x|` (a scalar tensor).
pub fn activation_scale(xs: &Tensor) -> Result<f32> {
    let m = per_sample_max_abs(&xs.detach())?.mean_all()?;
    Ok(m.to_dtype(tensor_core::DType::F32)?.to_scalar::<f32>()?)
}

/// Fake-quantises weights on a signed grid with one scale per output channel (dimension 0).
pub fn quantize_weights(ws: &Tensor, bits: u8) -> Result<Tensor> {
    let grid = TensorGrid::new(bits, &per_sample_max_abs(ws)?, true)?;
    grid.quantize(ws)
}

/// Fake-quantises a gradient on a signed grid with scale `max` over samples of per-sample
/// `max|g|` (deterministic rounding); `bits >= 32` returns it unchanged.
pub fn quantize_gradient(gs: &Tensor, bits: u8) -> Result<Tensor> {
    if bits >= 32 {
        return Ok(gs.detach());
    }
    let scale = gs.detach().abs()?.flatten_all()?.max(0)?;
    TensorGrid::new(bits, &scale, true)?.quantize(gs)
}
