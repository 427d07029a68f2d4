//! [`QConv`]: a convolution of the gated ResNet (no bias, one group, the same stride and padding
//! in both directions), fake-quantised and sign-predicting as the network's [`ConvMode`] says. The
//! backbone's convs keep their weights in the backbone (a [`QConv`] computes them in their
//! place through [`Taps::substitute`](tensor_core::Taps::substitute)); the gate embeddings own
//! theirs.

use std::sync::{Arc, Mutex, PoisonError};

use tensor_core::tensor::nn::Init;
use tensor_core::tensor::{Tensor, VarBuilder};
use tensor_core::{ConvParams, LayerId, LayerInfo, LayerKind};

use super::ConvMode;
use crate::error::{Result, bad};
use crate::quantize::{TensorGrid, activation_scale, quantize_weights, straight_through};
use crate::sign_gradient::{FallbackCell, PsgOperands, psg_conv2d};

/// A conv (no bias, one group) that quantises and predicts as its mode says.
#[derive(Debug)]
pub(super) struct QConv {
    pub(super) id: LayerId,
    pub(super) weight: Tensor,
    params: ConvParams,
    signed: bool,
    running_scale: Mutex<Option<f32>>,
    pub(super) cell: FallbackCell,
}

impl QConv {
    /// Computes the backbone conv `layer` (whose weight stays the backbone's variable);
    /// `signed` quantises activations that may be negative (decision 8).
    pub(super) fn for_layer(layer: &LayerInfo, signed: bool) -> Result<Self> {
        let params = layer.geometry.conv_params();
        match params.symmetric() {
            Some(_) if layer.kind == LayerKind::Conv && params.groups == 1 => {}
            _ => {
                return Err(bad(
                    "backbone",
                    format!(
                        "layer {} ({}) is not a one-group conv with the same stride and padding \
                         in both directions, which the quantised convolution needs",
                        layer.id, layer.name
                    ),
                ));
            }
        };
        Ok(Self::new(
            layer.id,
            layer.weight.as_tensor().clone(),
            params,
            signed,
        ))
    }

    /// A gate embedding: a 1×1 conv from `c_in` to `c_out` channels with its own weight, drawn
    /// as the reference draws convs, `N(0, 2/(k²·C_out))`.
    pub(super) fn embedding(
        id: LayerId,
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
    ) -> Result<Self> {
        let kernel = 1;
        let std = (2.0 / (kernel * kernel * c_out) as f64).sqrt();
        let weight = vb.get_with_hints(
            (c_out, c_in, kernel, kernel),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        )?;
        Ok(Self::new(id, weight, ConvParams::square(kernel), true))
    }

    fn new(id: LayerId, weight: Tensor, params: ConvParams, signed: bool) -> Self {
        Self {
            id,
            weight,
            params,
            signed,
            running_scale: Mutex::new(None),
            cell: Arc::new(Mutex::new(None)),
        }
    }

    /// The running activation scale (`None` before the first training pass).
    pub(super) fn running_scale(&self) -> Option<f32> {
        *self
            .running_scale
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn set_running_scale(&self, scale: Option<f32>) {
        *self
            .running_scale
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = scale;
    }

    /// Activation scale: the batch mean of per-sample `max|x|` in training (also folded into the
    /// running value), the running value in evaluation (the batch's before any training).
    fn scale(&self, xs: &Tensor, train: bool) -> Result<f32> {
        let mut running = self
            .running_scale
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if train || running.is_none() {
            let s = activation_scale(xs)?;
            if train {
                // Decision 7: the reference's reversed momentum (0.9 on the new value).
                *running = Some(running.map_or(s, |r| 0.1 * r + 0.9 * s));
            }
            return Ok(s);
        }
        Ok(running.unwrap_or(0.0))
    }

    pub(super) fn forward(&self, xs: &Tensor, train: bool, mode: &ConvMode) -> Result<Tensor> {
        let p = self.params;
        let (act_bits, weight_bits) = match *mode {
            ConvMode::Float => return Ok(fast_conv(xs, &self.weight, p)?),
            _ => mode.forward_bits(),
        };
        let scale = Tensor::new(self.scale(xs, train)?, xs.device())?.to_dtype(xs.dtype())?;
        let grid = TensorGrid::new(act_bits, &scale, self.signed)?;
        let xq = grid.quantize(xs)?;
        let wq = quantize_weights(&self.weight, weight_bits)?;
        match mode {
            // Evaluation is never differentiated: the forward value of the PSG op is this
            // product, and the predictor's MSB operand would only serve its backward pass.
            ConvMode::Psg(_) if !train => Ok(fast_conv(&xq.detach(), &wq.detach(), p)?),
            ConvMode::Psg(c) => {
                let xm = grid.msb(xs, c.msb_act_bits)?;
                let operands = PsgOperands { xq, xm, wq };
                psg_conv2d(xs, &self.weight, operands, p, c, &self.cell)
            }
            _ => {
                let xq = straight_through(xs, &xq)?;
                let wq = straight_through(&self.weight, &wq)?;
                Ok(fast_conv(&xq, &wq, p)?)
            }
        }
    }

    pub(super) fn take_fallback(&self) -> Option<f64> {
        self.cell
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// tensor-core's CPU convolution (candle's own elsewhere): same numbers, several times faster
/// forward and backward on the CPU.
fn fast_conv(xs: &Tensor, w: &Tensor, params: ConvParams) -> tensor_core::Result<Tensor> {
    tensor_core::ops::conv2d(xs, w, None, params, tensor_core::ops::OpsBackend::Fast)
}

#[cfg(test)]
mod tests {
    use tensor_core::ConvParams;
    use tensor_core::tensor::Var;
    use tensor_core::testing::{host, random};

    use super::QConv;
    use crate::gated_resnet::ConvMode;
    use crate::sign_gradient::PsgConfig;

    #[test]
    fn psg_evaluation_is_the_training_forward_value_without_a_graph() -> crate::Result<()> {
        let w = Var::from_tensor(&random(&[4, 3, 3, 3], 3, 0.5)).expect("w");
        let conv = QConv::new(
            tensor_core::LayerId(0),
            w.as_tensor().clone(),
            ConvParams::square(3).padding(1),
            true,
        );
        let xs = random(&[2, 3, 6, 6], 4, 1.0);
        let mode = ConvMode::Psg(PsgConfig::reference());
        // The first training pass sets the running scale to this batch's, so both passes
        // quantise alike.
        let trained = conv.forward(&xs, true, &mode)?;
        let evaluated = conv.forward(&xs, false, &mode)?;
        assert_eq!(host(&trained), host(&evaluated));
        assert!(trained.track_op());
        assert!(!evaluated.track_op());
        Ok(())
    }
}
