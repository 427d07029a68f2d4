//! The budget schedule of the W-phase: from the model's current energy down to the target, so the
//! projection tightens gradually and reaches the target for the final projections
//! (`docs/sparse-projection.md` §7).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the budget shrinks between projections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetDecay {
    /// Subtract a fixed step, `⌈(E − T)/K⌉`, after each projection.
    #[default]
    Linear,
    /// Multiply by `(T/E)^(1/K)` after each projection.
    Exponential,
}

/// When the trainer projects: every `interval` batches, at batch 0 only when `interval == 1`, and
/// always at the last batch of an epoch.
pub fn projects_at(batch: usize, last_batch: usize, interval: usize) -> bool {
    interval == 1 || (batch > 0 && batch.is_multiple_of(interval)) || batch == last_batch
}

/// The current absolute budget `C` and how it moves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetSchedule {
    target: f64,
    current: f64,
    decay: BudgetDecay,
    step: f64,
    factor: f64,
    interval: usize,
}

impl BudgetSchedule {
    /// A schedule from `start` (the model's relaxed energy) down to `target` over `epochs` epochs
    /// of `batches` batches, projecting every `interval` batches.
    ///
    /// `K = batches·epochs/interval` (real division) projections share the descent. The step and
    /// the factor are both sized with the relaxed evaluator, the one that also sets the target
    /// (the reference sizes them with the exact one; a deliberate difference, §7).
    pub fn new(
        start: f64,
        target: f64,
        decay: BudgetDecay,
        epochs: usize,
        batches: usize,
        interval: usize,
    ) -> Result<Self> {
        if !(target.is_finite() && target > 0.0 && start.is_finite()) {
            return Err(Error::Config {
                field: "budget",
                reason: format!("target {target} and start {start} must be finite, target > 0"),
            });
        }
        if epochs == 0 || batches == 0 || interval == 0 {
            return Err(Error::Config {
                field: "schedule",
                reason: format!(
                    "epochs ({epochs}), batches ({batches}) and projection interval ({interval}) \
                     must be positive"
                ),
            });
        }
        let k = (batches * epochs) as f64 / interval as f64;
        let step = ((start - target).max(0.0) / k).ceil();
        let factor = (target / start).min(1.0).powf(1.0 / k);
        Ok(Self {
            target,
            current: start.max(target),
            decay,
            step,
            factor,
            interval,
        })
    }

    /// The budget to project onto now.
    pub fn current(&self) -> f64 {
        self.current
    }

    /// The target `T`.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// Moves the budget after a projection at `batch` (of `last_batch`) in the last epoch or not.
    /// In the final `interval` batches of the last epoch the budget is the target itself.
    pub fn after_projection(&mut self, last_epoch: bool, batch: usize, last_batch: usize) {
        if last_epoch && batch + self.interval >= last_batch {
            self.current = self.target;
            return;
        }
        self.current = match self.decay {
            BudgetDecay::Linear => (self.current - self.step).max(self.target),
            BudgetDecay::Exponential => (self.current * self.factor).max(self.target),
        };
    }

    /// Holds the budget at the target from now on (later W-phases of a masked run).
    pub fn hold_at_target(&mut self) {
        self.current = self.target;
    }
}
