//! Typed configuration of the energy-constrained trainer, validated once before a run.

use serde::{Deserialize, Serialize};
use tensor_core::{Density, RelativeBudget, SgdConfig};

use crate::error::{Error, Result};
use crate::projection::GreedyVariant;
use crate::schedule::BudgetDecay;

/// How weights are projected after every `projection_interval` batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Projection {
    /// The paper's method: global ranking by `w²/κ` under the energy model's per-weight costs.
    Weighted {
        /// Greedy rule.
        variant: GreedyVariant,
    },
    /// The baseline: global top-k by `|w|` with the largest `k` whose relaxed energy fits the
    /// same budget (magnitude pruning at equal energy).
    Magnitude,
}

/// Input-mask settings (the M-phase).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskConfig {
    /// Mask density after the first M-phase. Default 0.9; in (0, 1] ([`Density`] checks
    /// `[0, 1]`, [`ConstrainedConfig::validate`] rejects 0).
    pub initial_density: Density,
    /// Density removed per outer round. Default 0.1; in (0, 1).
    pub density_step: f64,
    /// Adam learning rate on masks. Default 1e-4; > 0.
    pub lr: f64,
    /// Decoupled weight decay on masks (candle's AdamW). Default 1e-5; ≥ 0.
    pub weight_decay: f64,
    /// Most outer rounds. Default 8; ≥ 1.
    pub max_rounds: usize,
}

impl Default for MaskConfig {
    fn default() -> Self {
        Self {
            initial_density: Density::new(0.9).expect("0.9 is a density"),
            density_step: 0.1,
            lr: 1e-4,
            weight_decay: 1e-5,
            max_rounds: 8,
        }
    }
}

/// Parameters of [`crate::train_constrained`]. Defaults follow `docs/sparse-projection.md` §8
/// (the reference trainer's defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstrainedConfig {
    /// Target energy relative to the dense model (relaxed evaluator). Default 0.2.
    pub relative_budget: RelativeBudget,
    /// Epochs per phase. Default 30; ≥ 1.
    pub epochs: usize,
    /// Momentum SGD on everything but masks. Default lr 1e-3, momentum 0.9, weight decay 1e-4.
    pub sgd: SgdConfig,
    /// Batches between projections. Default 10; ≥ 1.
    pub projection_interval: usize,
    /// Weight λ of the logit-MSE distillation term (`λ·MSE + (1−λ)·CE`). Default 0.5; in [0, 1].
    /// Needs a teacher when > 0.
    pub distillation: f64,
    /// How the budget approaches the target. Default linear.
    pub decay: BudgetDecay,
    /// The projection. Default weighted, prefix rule.
    pub projection: Projection,
    /// Input masks; `None` (the default) trains weights only.
    pub masks: Option<MaskConfig>,
    /// Starts with an M-phase instead of a W-phase. Default false.
    pub skip_first_w_phase: bool,
    /// Share of the weight budget reserved equally across layers, against layer collapse: each
    /// of the `L` layers keeps its largest weights worth up to `share/L` of the budget left after
    /// the floor, and the global ranking spends the rest. Both projections get the same
    /// reservation. Default 0 (the paper's method); in [0, 1).
    #[serde(default)]
    pub reserved_share: f64,
    /// Epochs at the end of the first W-phase that project at the target itself: the budget
    /// descends over `epochs − settle_epochs` epochs and then holds, so the weights recover at
    /// the final budget before the phase ends. Default 0, the reference schedule (the target is
    /// reached in the final projections of the last epoch); less than `epochs`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub settle_epochs: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for ConstrainedConfig {
    fn default() -> Self {
        Self {
            relative_budget: RelativeBudget::new(0.2).expect("0.2 is a relative budget"),
            epochs: 30,
            sgd: SgdConfig {
                lr: 1e-3,
                momentum: 0.9,
                weight_decay: 1e-4,
            },
            projection_interval: 10,
            distillation: 0.5,
            decay: BudgetDecay::Linear,
            projection: Projection::Weighted {
                variant: GreedyVariant::Prefix,
            },
            masks: None,
            skip_first_w_phase: false,
            reserved_share: 0.0,
            settle_epochs: 0,
        }
    }
}

fn bad(field: &'static str, reason: String) -> Error {
    Error::Config { field, reason }
}

impl ConstrainedConfig {
    /// Checks every range the field types do not; only a validated config runs.
    pub fn validate(self) -> Result<Self> {
        if self.epochs == 0 {
            return Err(bad("epochs", "must be at least 1".into()));
        }
        if self.settle_epochs >= self.epochs {
            return Err(bad(
                "settle_epochs",
                format!(
                    "{} leaves no epoch of {} for the budget to descend",
                    self.settle_epochs, self.epochs
                ),
            ));
        }
        if self.projection_interval == 0 {
            return Err(bad("projection_interval", "must be at least 1".into()));
        }
        let l = self.distillation;
        if !(0.0..=1.0).contains(&l) {
            return Err(bad("distillation", format!("{l} is not in [0, 1]")));
        }
        let g = self.reserved_share;
        if !(0.0..1.0).contains(&g) {
            return Err(bad("reserved_share", format!("{g} is not in [0, 1)")));
        }
        self.sgd.validate()?;
        if let Some(m) = &self.masks {
            // An empty first mask would cut every conv input.
            if m.initial_density.get() <= 0.0 {
                return Err(bad(
                    "masks.initial_density",
                    format!("{} is not in (0, 1]", m.initial_density.get()),
                ));
            }
            if !(m.density_step > 0.0 && m.density_step < 1.0) {
                return Err(bad(
                    "masks.density_step",
                    format!("{} is not in (0, 1)", m.density_step),
                ));
            }
            if !(m.lr > 0.0 && m.lr.is_finite()) {
                return Err(bad("masks.lr", format!("{} must be positive", m.lr)));
            }
            if !(m.weight_decay >= 0.0 && m.weight_decay.is_finite()) {
                return Err(bad(
                    "masks.weight_decay",
                    format!("{} must be non-negative", m.weight_decay),
                ));
            }
            if m.max_rounds == 0 {
                return Err(bad("masks.max_rounds", "must be at least 1".into()));
            }
        } else if self.skip_first_w_phase {
            return Err(bad(
                "skip_first_w_phase",
                "needs input masks (there is no M-phase to start with)".into(),
            ));
        }
        Ok(self)
    }
}
