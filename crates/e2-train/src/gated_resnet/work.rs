//! What the gated ResNet records in the training ledger: each layer's forward, input-gradient and
//! weight-gradient GEMMs with operand widths, executed fractions and PSG fallback fractions.

use std::sync::PoisonError;

use tensor_core::{Gemm, LayerId, LayerWork, Network};

use super::{ConvMode, GatedResnet, Role};
use crate::error::Result;
use crate::selective_update::RecurrentGate;

impl GatedResnet {
    /// Work of every layer in one executed iteration of batch `batch`, for the ledger: backbone
    /// layers (a block's residual branch at its block's executed fraction, shortcuts on every
    /// sample), and with `gated` the gate embeddings and the recurrent gate as always-on layers.
    /// Reads (and clears) the PSG fallback fractions of the last backward pass.
    pub fn layer_work(&self, executed: &[f64], gated: bool) -> Result<Vec<LayerWork>> {
        if executed.len() != self.num_blocks() {
            return Err(tensor_core::Error::Shape {
                what: "executed fractions".into(),
                expected: vec![self.num_blocks()],
                got: vec![executed.len()],
            }
            .into());
        }
        let mut work = Vec::new();
        for (i, info) in self.layers().iter().enumerate() {
            let macs = info.geometry.macs() as u64;
            let w = match &self.convs[i] {
                Some(c) => conv_work(info.id, macs, &self.config.conv, c.take_fallback()),
                None => dense_work(info.id, macs, 32, 32),
            };
            let rho = match self.roles[i] {
                Role::Residual(block) => executed[block],
                _ => 1.0,
            };
            work.push(LayerWork {
                executed_fraction: rho,
                input_grad: if i == 0 { None } else { w.input_grad },
                ..w
            });
        }
        if gated && self.has_gates() {
            for (e, info) in self.embeds.iter().zip(&self.gate_layers) {
                let macs = info.geometry.macs() as u64;
                work.push(conv_work(
                    info.id,
                    macs,
                    &self.config.conv,
                    e.take_fallback(),
                ));
            }
            let macs = RecurrentGate::macs_per_step() * self.embeds.len() as u64;
            work.push(dense_work(self.control_layer_id(), macs, 32, 32));
        } else {
            for e in &self.embeds {
                e.take_fallback();
            }
        }
        Ok(work)
    }

    /// Work of one iteration of standard training of this backbone (every block executed, no
    /// gates, no predictor) with convs computing as `conv` says (a PSG mode counts as its
    /// quantised forward with ordinary gradients): the baseline savings are measured against.
    pub fn standard_work(&self, conv: ConvMode) -> Vec<LayerWork> {
        let conv = match conv {
            ConvMode::Psg(c) => ConvMode::Quantized {
                act_bits: c.act_bits,
                weight_bits: c.weight_bits,
            },
            other => other,
        };
        self.layers()
            .iter()
            .zip(&self.convs)
            .enumerate()
            .map(|(i, (info, qconv))| {
                let macs = info.geometry.macs() as u64;
                let w = match qconv {
                    Some(_) => conv_work(info.id, macs, &conv, None),
                    None => dense_work(info.id, macs, 32, 32),
                };
                LayerWork {
                    input_grad: if i == 0 { None } else { w.input_grad },
                    ..w
                }
            })
            .collect()
    }

    /// The PSG fallback fractions of the last backward pass, backbone convs first (without
    /// clearing them); `None` where a conv did not run backward.
    pub fn fallback_fractions(&self) -> Vec<Option<f64>> {
        self.convs
            .iter()
            .flatten()
            .chain(&self.embeds)
            .map(|c| *c.cell.lock().unwrap_or_else(PoisonError::into_inner))
            .collect()
    }
}

fn conv_work(id: LayerId, macs: u64, mode: &ConvMode, rho: Option<f64>) -> LayerWork {
    let (a, w) = mode.forward_bits();
    let mut work = dense_work(id, macs, a, w);
    if let ConvMode::Psg(c) = mode {
        work.weight_grad = Some(gemm(macs, a, c.grad_bits.min(32)));
        work.predictor = Some(gemm(macs, c.msb_act_bits, c.msb_grad_bits.min(32)));
        work.fallback_fraction = rho.unwrap_or(0.0).clamp(0.0, 1.0);
    }
    work
}

fn gemm(macs: u64, a: u8, b: u8) -> Gemm {
    Gemm {
        macs_per_sample: macs,
        a_bits: a,
        b_bits: b,
    }
}

fn dense_work(id: LayerId, macs: u64, a: u8, w: u8) -> LayerWork {
    LayerWork {
        layer: id,
        executed_fraction: 1.0,
        forward: gemm(macs, a, w),
        input_grad: Some(gemm(macs, 32, w)),
        weight_grad: Some(gemm(macs, a, 32)),
        predictor: None,
        fallback_fraction: 0.0,
    }
}
