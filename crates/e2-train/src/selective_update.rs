//! Selective layer update (docs/e2-train.md §2): per-sample, per-block gates from a recurrent gate
//! shared across blocks, trained with a straight-through estimator and a compute regulariser;
//! plus the stochastic-depth baseline (Huang et al. 2016).

use serde::{Deserialize, Serialize};
use tensor_core::tensor::nn::{self, Init};
use tensor_core::tensor::{D, Module, Tensor, VarBuilder};

use crate::error::{Result, bad};

/// Settings of selective layer update.
#[doc(alias = "SLU")]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SluConfig {
    /// Target executed percentage of (gate, sample) pairs (the reference's `minimum`). No
    /// default (decision 1: the reference's 100 disables any saving); in `[0, 100]`.
    pub target: f64,
    /// Regulariser strength β. Reference: 1e-5; finite, ≥ 0 (0 turns the regulariser off).
    pub beta: f64,
    /// Global iterations, dropped ones included, before the gates engage (decision 16): until
    /// then every block runs for every sample, the gates are neither computed nor trained and the
    /// regulariser is off, and the ledger records exactly that. Reference: 0 (gates from the
    /// first iteration).
    #[serde(default)]
    pub warmup: usize,
}

impl SluConfig {
    /// The reference's regulariser strength with the given target.
    pub fn with_target(target: f64) -> Self {
        Self {
            target,
            beta: 1e-5,
            warmup: 0,
        }
    }

    /// Checks ranges.
    pub fn validate(self) -> Result<Self> {
        if !(0.0..=100.0).contains(&self.target) {
            return Err(bad(
                "slu.target",
                format!("{} is not in [0, 100]", self.target),
            ));
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(bad(
                "slu.beta",
                format!("{} must be finite and >= 0", self.beta),
            ));
        }
        Ok(self)
    }
}

/// How gate probabilities become decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateMode {
    /// `m = 1[π > u]`, `u ~ U(0, 1)` per sample (training).
    Stochastic,
    /// `m = 1[π > 0.5]` (evaluation, as in SkipNet; decision 6).
    Deterministic,
    /// Every block runs (`π ≡ 1`): the plain ResNet.
    AllOn,
}

/// Hard gate with a straight-through gradient: the forward value is `1[π > u]`, the gradient is
/// that of `π` (`m = π + (hard − π).detach()`).
pub fn straight_through_gate(pi: &Tensor, u: &Tensor) -> Result<Tensor> {
    let hard = pi.gt(u)?.to_dtype(pi.dtype())?;
    Ok((pi + (hard - pi)?.detach())?)
}

/// Executed percentage `cp = 100·Σ m / (L_g·B)` of hard masks, one slice per gate; 100 when there
/// are no gates.
pub fn executed_percentage(masks: &[Vec<f32>]) -> f64 {
    let n: usize = masks.iter().map(Vec::len).sum();
    if n == 0 {
        return 100.0;
    }
    let on: f64 = masks.iter().flatten().map(|&m| f64::from(m)).sum();
    100.0 * on / n as f64
}

/// The regulariser's sign: `+1` iff `cp > target` (push toward fewer blocks), else `−1`.
pub fn regulariser_sign(cp: f64, target: f64) -> f64 {
    if cp > target { 1.0 } else { -1.0 }
}

/// The compute term `reg·β·Σ_g w_g·Σ_i m_{g,i}` with uniform `w_g = 1`, a sum over samples as in
/// the reference (decision 5: its strength grows with the batch). `None` when β = 0 or there are
/// no gates, so the loss is then exactly the cross-entropy.
pub fn compute_regulariser(
    masks: &[Tensor],
    cp: f64,
    config: &SluConfig,
) -> Result<Option<Tensor>> {
    if config.beta == 0.0 || masks.is_empty() {
        return Ok(None);
    }
    let total = Tensor::stack(masks, 0)?.sum_all()?;
    let scale = regulariser_sign(cp, config.target) * config.beta;
    Ok(Some(total.affine(scale, 0.0)?))
}

/// Width of the gate embedding and of the LSTM state (reference: 10).
pub const GATE_DIM: usize = 10;

/// The recurrent gate shared by all blocks: one LSTM layer (PyTorch layout and gate order
/// i, f, g, o; names `control.rnn.*_l0`) and a projection to one logit, followed by a sigmoid.
#[derive(Clone, Debug)]
pub struct RecurrentGate {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    proj: nn::Linear,
}

/// LSTM state `(h, c)`, each `[b, GATE_DIM]`.
pub type GateState = (Tensor, Tensor);

impl RecurrentGate {
    /// Builds the gate under `vb` (`control`), PyTorch's LSTM init `U(−1/√h, 1/√h)`; the
    /// projection as the reference initialises linear layers.
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let h = GATE_DIM;
        let k = 1.0 / (h as f64).sqrt();
        let u = Init::Uniform { lo: -k, up: k };
        let rnn = vb.pp("rnn");
        let w_ih = rnn.get_with_hints((4 * h, GATE_DIM), "weight_ih_l0", u)?;
        let w_hh = rnn.get_with_hints((4 * h, h), "weight_hh_l0", u)?;
        let b_ih = rnn.get_with_hints(4 * h, "bias_ih_l0", u)?;
        let b_hh = rnn.get_with_hints(4 * h, "bias_hh_l0", u)?;
        let pv = vb.pp("proj");
        let std = (2.0 / h as f64).sqrt();
        let w = pv.get_with_hints(
            (1, h),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        )?;
        let b = pv.get_with_hints(1, "bias", Init::Uniform { lo: -k, up: k })?;
        Ok(Self {
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            proj: nn::Linear::new(w, Some(b)),
        })
    }

    /// A zero state for `b` samples.
    pub fn zero_state(&self, b: usize) -> Result<GateState> {
        let z = Tensor::zeros((b, GATE_DIM), self.w_ih.dtype(), self.w_ih.device())?;
        Ok((z.clone(), z))
    }

    /// One time step: embedding `[b, GATE_DIM]` → gate probability `π` `[b]` and the new state.
    pub fn step(&self, xs: &Tensor, (h, c): &GateState) -> Result<(Tensor, GateState)> {
        let gates = xs
            .matmul(&self.w_ih.t()?)?
            .broadcast_add(&self.b_ih)?
            .add(&h.matmul(&self.w_hh.t()?)?.broadcast_add(&self.b_hh)?)?;
        let chunks = gates.chunk(4, D::Minus1)?;
        let i = nn::ops::sigmoid(&chunks[0])?;
        let f = nn::ops::sigmoid(&chunks[1])?;
        let g = chunks[2].tanh()?;
        let o = nn::ops::sigmoid(&chunks[3])?;
        let c = ((f * c)? + (i * g)?)?;
        let h = (o * c.tanh()?)?;
        let pi = nn::ops::sigmoid(&Module::forward(&self.proj, &h)?)?.squeeze(1)?;
        Ok((pi, (h, c)))
    }

    /// MACs per sample of one step (LSTM and projection).
    pub fn macs_per_step() -> u64 {
        (4 * GATE_DIM * (GATE_DIM + GATE_DIM) + GATE_DIM) as u64
    }
}

/// The stochastic-depth baseline: whole gated blocks dropped per mini-batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StochasticDepthConfig {
    /// Survival probability `p_L` of the last gated block. Huang et al.: 0.5; in (0, 1].
    pub final_survival: f64,
}

impl StochasticDepthConfig {
    /// Checks the range.
    pub fn validate(self) -> Result<Self> {
        let p = self.final_survival;
        if !(p > 0.0 && p <= 1.0) {
            return Err(bad(
                "stochastic_depth.final_survival",
                format!("{p} is not in (0, 1]"),
            ));
        }
        Ok(self)
    }

    /// Survival probability of gated block `l` of `L` (1-based): `1 − (l/L)(1 − p_L)`, linearly
    /// decaying. The always-on first block is not counted.
    pub fn survival(&self, l: usize, gated_blocks: usize) -> f64 {
        if gated_blocks == 0 {
            return 1.0;
        }
        1.0 - (l as f64 / gated_blocks as f64) * (1.0 - self.final_survival)
    }
}
