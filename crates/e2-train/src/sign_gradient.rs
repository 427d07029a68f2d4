//! Predictive sign gradients (docs/e2-train.md §3): the sign of a conv's (or linear layer's) weight
//! gradient is predicted from the MSB parts of its input and a low-precision output gradient; the
//! accurate gradient is used where the prediction is small. Implemented as candle custom ops
//! whose backward computes the input gradient exactly as the plain (8-bit) op would, and replaces
//! only the weight gradient.
//!
//! The op takes the raw input and weight (so gradients reach them, straight through the 8-bit
//! fake quantisers) plus the precomputed forward output; its forward pass copies that output.

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tensor_core::tensor::Tensor;
use tensor_core::tensor::candle::{
    self, CpuStorage, CudaStorage, CustomOp3, Layout, MetalStorage, Shape, backend::BackendStorage,
};
use tensor_core::{ConvParams, ops};

use crate::error::{Result, bad};
use crate::quantize::quantize_gradient;

/// Where the accurate gradient replaces the prediction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Threshold {
    /// `τ` itself (the reference CLI: 5e-5). Not scale invariant.
    Absolute(f64),
    /// `τ_eff = r·max|G_m|` per layer and step (the reference's negative τ). Scale invariant.
    Relative(f64),
}

/// Settings of predictive sign gradients. Defaults ([`PsgConfig::reference`]) are the reference
/// code's.
#[doc(alias = "PSG")]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PsgConfig {
    /// Forward activation bits. Default 8; 2..=16.
    pub act_bits: u8,
    /// Forward weight bits (per output channel). Default 8; 2..=16.
    pub weight_bits: u8,
    /// Bits of the output gradient in the accurate weight gradient; ≥ 32 is unquantised.
    /// Default 32; 2..=32.
    pub grad_bits: u8,
    /// MSB bits of activations in the predictor. Default 4; 1..=`act_bits`.
    pub msb_act_bits: u8,
    /// Bits of the output gradient in the predictor. Default 16; 2..=32.
    pub msb_grad_bits: u8,
    /// Selection threshold. Default absolute 5e-5; values ≥ 0.
    pub threshold: Threshold,
    /// Update with `sign(G)`. Default true.
    pub sign: bool,
    /// Zero the gradient where the prediction is small instead of falling back. Default false.
    pub sparsify: bool,
}

impl PsgConfig {
    /// The reference code's defaults (docs/e2-train.md §3).
    pub fn reference() -> Self {
        Self {
            act_bits: 8,
            weight_bits: 8,
            grad_bits: 32,
            msb_act_bits: 4,
            msb_grad_bits: 16,
            threshold: Threshold::Absolute(5e-5),
            sign: true,
            sparsify: false,
        }
    }

    /// Checks ranges.
    pub fn validate(self) -> Result<Self> {
        let in_range = |field, v: u8, lo: u8, hi: u8| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(bad(field, format!("{v} is not in {lo}..={hi}")))
            }
        };
        in_range("psg.act_bits", self.act_bits, 2, 16)?;
        in_range("psg.weight_bits", self.weight_bits, 2, 16)?;
        in_range("psg.grad_bits", self.grad_bits, 2, 32)?;
        in_range("psg.msb_act_bits", self.msb_act_bits, 1, self.act_bits)?;
        in_range("psg.msb_grad_bits", self.msb_grad_bits, 2, 32)?;
        let t = match self.threshold {
            Threshold::Absolute(t) | Threshold::Relative(t) => t,
        };
        if t.is_nan() || t < 0.0 {
            return Err(bad("psg.threshold", format!("{t} must be >= 0")));
        }
        Ok(self)
    }
}

/// Combines the accurate gradient `G_q` and the prediction `G_m`: `G_m` where `|G_m| ≥ τ`
/// (decision 9: `≥`, as the code path the reference runs), else `G_q` (or 0 with `sparsify`),
/// then the sign. Returns the result and the fallback fraction `ρ` (share with `|G_m| < τ`).
pub fn select_gradient(g_q: &Tensor, g_m: &Tensor, config: &PsgConfig) -> Result<(Tensor, f64)> {
    let abs = g_m.abs()?;
    let tau = match config.threshold {
        Threshold::Absolute(t) => t,
        Threshold::Relative(r) => {
            let m = abs
                .flatten_all()?
                .max(0)?
                .to_dtype(tensor_core::DType::F64)?;
            r * m.to_scalar::<f64>()?
        }
    };
    // A threshold of +∞ means "always fall back"; compare in the tensor's dtype otherwise.
    let keep = if tau.is_infinite() {
        abs.zeros_like()?.to_dtype(tensor_core::DType::U8)?
    } else {
        abs.ge(tau)?
    };
    let fallback = if config.sparsify {
        g_q.zeros_like()?
    } else {
        g_q.clone()
    };
    let g = keep.where_cond(g_m, &fallback)?;
    let kept = keep
        .to_dtype(tensor_core::DType::F64)?
        .mean_all()?
        .to_scalar::<f64>()?;
    let g = if config.sign { g.sign()? } else { g };
    Ok((g, 1.0 - kept))
}

/// Where a PSG op leaves its last fallback fraction (written during the backward pass).
pub type FallbackCell = Arc<Mutex<Option<f64>>>;

fn record(cell: &FallbackCell, rho: f64) {
    *cell.lock().unwrap_or_else(PoisonError::into_inner) = Some(rho);
}

/// What a PSG op needs in its backward pass, computed in the forward pass.
#[derive(Clone, Debug)]
pub struct PsgOperands {
    /// `Q_b(x)`, the forward activation.
    pub xq: Tensor,
    /// `MSB_m(x)`, the predictor's activation.
    pub xm: Tensor,
    /// `Q_b(W)`, the forward weight.
    pub wq: Tensor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Conv { params: ConvParams },
    Linear,
}

struct PsgOp {
    kind: Kind,
    operands: PsgOperands,
    config: PsgConfig,
    input_grad: bool,
    cell: FallbackCell,
}

fn copy_forward<S: BackendStorage>(s: &S, l: &Layout) -> candle::Result<(S, Shape)> {
    if !l.is_contiguous() || l.start_offset() != 0 {
        candle::bail!("psg: the precomputed output must be contiguous")
    }
    Ok((s.try_clone(l)?, l.shape().clone()))
}

impl CustomOp3 for PsgOp {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Conv { .. } => "psg-conv2d",
            Kind::Linear => "psg-linear",
        }
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle::Result<(CpuStorage, Shape)> {
        copy_forward(s3, l3)
    }

    fn cuda_fwd(
        &self,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> candle::Result<(CudaStorage, Shape)> {
        copy_forward(s3, l3)
    }

    fn metal_fwd(
        &self,
        _: &MetalStorage,
        _: &Layout,
        _: &MetalStorage,
        _: &Layout,
        s3: &MetalStorage,
        l3: &Layout,
    ) -> candle::Result<(MetalStorage, Shape)> {
        copy_forward(s3, l3)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _: &Tensor,
        _: &Tensor,
        g: &Tensor,
    ) -> candle::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.backward(x, w, g)
            .map_err(|e| candle::Error::Msg(format!("psg backward: {e}")))
    }
}

impl PsgOp {
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let PsgOperands { xq, xm, wq } = &self.operands;
        let g = g.detach();
        let g_acc = quantize_gradient(&g, self.config.grad_bits)?;
        let g_pred = quantize_gradient(&g, self.config.msb_grad_bits)?;
        let (gx, g_q, g_m) = match self.kind {
            Kind::Conv { params: p } => {
                let fast = ops::OpsBackend::Fast;
                let (gx, _) = ops::conv2d_backward(x, wq, &g, p, (self.input_grad, false), fast)?;
                let weight_grad = |xs: &Tensor, gs: &Tensor| -> Result<Tensor> {
                    let (_, gw) = ops::conv2d_backward(xs, w, gs, p, (false, true), fast)?;
                    gw.ok_or_else(|| {
                        tensor_core::Error::Unsupported {
                            what: "a conv backward pass without the weight gradient asked for"
                                .into(),
                        }
                        .into()
                    })
                };
                (gx, weight_grad(xq, &g_acc)?, weight_grad(xm, &g_pred)?)
            }
            Kind::Linear => {
                let gx = if self.input_grad {
                    Some(g.matmul(wq)?)
                } else {
                    None
                };
                (gx, g_acc.t()?.matmul(xq)?, g_pred.t()?.matmul(xm)?)
            }
        };
        let (gw, rho) = select_gradient(&g_q, &g_m, &self.config)?;
        record(&self.cell, rho);
        Ok((gx, Some(gw), None))
    }
}

/// A PSG convolution (no bias, one group; stride and padding as the fast ops take them): the
/// forward value
/// `conv(Q(x), Q(W))` from `operands`; in the backward pass `x` gets the plain 8-bit op's input
/// gradient and `w` the predicted (sign) gradient. The fallback fraction goes to `cell`.
pub fn psg_conv2d(
    xs: &Tensor,
    w: &Tensor,
    operands: PsgOperands,
    params: ConvParams,
    config: &PsgConfig,
    cell: &FallbackCell,
) -> Result<Tensor> {
    let ys = ops::conv2d(
        &operands.xq.detach(),
        &operands.wq.detach(),
        None,
        params,
        ops::OpsBackend::Fast,
    )?;
    let op = PsgOp {
        kind: Kind::Conv { params },
        operands,
        config: *config,
        input_grad: xs.track_op(),
        cell: cell.clone(),
    };
    Ok(xs.apply_op3(w, &ys, op)?)
}

/// A PSG linear layer `y = Q(x)·Q(W)ᵀ` (`x: [b, in]`, `w: [out, in]`, no bias); gradients as
/// [`psg_conv2d`].
pub fn psg_linear(
    xs: &Tensor,
    w: &Tensor,
    operands: PsgOperands,
    config: &PsgConfig,
    cell: &FallbackCell,
) -> Result<Tensor> {
    let ys = operands
        .xq
        .detach()
        .matmul(&operands.wq.detach().t()?)?
        .contiguous()?;
    let op = PsgOp {
        kind: Kind::Linear,
        operands,
        config: *config,
        input_grad: xs.track_op(),
        cell: cell.clone(),
    };
    Ok(xs.apply_op3(w, &ys, op)?)
}
