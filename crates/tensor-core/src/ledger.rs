//! The training-work ledger: what a training run actually executed, recorded by the trainer and
//! priced by an energy model. It holds counts and widths only, never energies.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geometry::LayerId;

/// One GEMM class of a layer: MACs per sample and the widths of its two operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Gemm {
    /// Multiply-accumulates per sample.
    pub macs_per_sample: u64,
    /// Bits of the first operand.
    pub a_bits: u8,
    /// Bits of the second operand.
    pub b_bits: u8,
}

/// Work one layer did in one executed iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerWork {
    /// Which layer.
    pub layer: LayerId,
    /// Share of the batch's samples for which the layer ran, in `[0, 1]` (1 for always-on
    /// layers, 0 for a skipped block).
    pub executed_fraction: f64,
    /// Forward pass `y = W ∗ x`.
    pub forward: Gemm,
    /// Input gradient `g_x`; `None` where it is not computed (the first layer).
    pub input_grad: Option<Gemm>,
    /// Weight gradient `g_W` at full precision; `None` for frozen layers.
    pub weight_grad: Option<Gemm>,
    /// Low-precision weight-gradient predictor, for sign-predicted layers.
    pub predictor: Option<Gemm>,
    /// Share of weight-gradient entries recomputed at full precision after the predictor, in
    /// `[0, 1]` (meaningful only with a predictor).
    pub fallback_fraction: f64,
}

/// One iteration of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Iteration {
    /// Skipped entirely: no forward, no backward, no update.
    Dropped,
    /// Ran on a batch of `batch` samples.
    Executed {
        /// Samples in the batch.
        batch: usize,
        /// Work per layer.
        layers: Vec<LayerWork>,
    },
}

/// Record of the work done by a training run, iteration by iteration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkLedger {
    iterations: Vec<Iteration>,
}

impl WorkLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a dropped iteration.
    pub fn record_dropped(&mut self) {
        self.iterations.push(Iteration::Dropped);
    }

    /// Records an executed iteration; fractions must lie in `[0, 1]`.
    pub fn record_executed(&mut self, batch: usize, layers: Vec<LayerWork>) -> Result<()> {
        for l in &layers {
            for (what, v) in [
                ("executed fraction", l.executed_fraction),
                ("fallback fraction", l.fallback_fraction),
            ] {
                if !(0.0..=1.0).contains(&v) {
                    return Err(Error::OutOfRange {
                        what,
                        value: v,
                        expected: "a fraction in [0, 1]",
                    }
                    .in_layer(l.layer));
                }
            }
        }
        self.iterations.push(Iteration::Executed { batch, layers });
        Ok(())
    }

    /// All iterations in order.
    pub fn iterations(&self) -> &[Iteration] {
        &self.iterations
    }

    /// Number of executed iterations.
    pub fn executed(&self) -> u64 {
        self.iterations
            .iter()
            .filter(|i| matches!(i, Iteration::Executed { .. }))
            .count() as u64
    }

    /// Number of dropped iterations.
    pub fn dropped(&self) -> u64 {
        self.iterations.len() as u64 - self.executed()
    }
}
