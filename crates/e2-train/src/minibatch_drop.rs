//! Stochastic mini-batch dropping (docs/e2-train.md §1): every iteration is skipped with probability
//! `p`, drawn from the run's seeded generator; the learning-rate schedule (a
//! [`tensor_core::LrSchedule`]) runs on the global iteration index, skipped iterations included,
//! and [`paper_smd_schedule`] is the paper's, stretched so both decays fire.

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tensor_core::{LrDecay, LrSchedule, Rng};

use crate::error::{Result, bad};

/// Settings of stochastic mini-batch dropping.
#[doc(alias = "SMD")]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SmdConfig {
    /// Probability of skipping an iteration. Paper: 0.5; in `[0, 1]`.
    pub p: f64,
}

impl SmdConfig {
    /// Checks the range of `p`.
    pub fn validate(self) -> Result<Self> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(bad("smd.p", format!("{} is not in [0, 1]", self.p)));
        }
        Ok(self)
    }
}

/// The drop decisions of one run: i.i.d. Bernoulli(`p`) indicators from a seeded generator,
/// independent of the batches.
#[doc(alias = "SMD")]
#[derive(Clone, Debug)]
pub struct MinibatchDrop {
    p: f64,
    rng: Rng,
}

impl MinibatchDrop {
    /// Decisions for a validated configuration, drawn from `rng`.
    pub fn new(config: SmdConfig, rng: Rng) -> Result<Self> {
        let config = config.validate()?;
        Ok(Self { p: config.p, rng })
    }

    /// Whether the next iteration is dropped. One uniform draw per call, so the sequence depends
    /// only on the seed; `p = 0` never drops and `p = 1` always does.
    pub fn next_dropped(&mut self) -> bool {
        let u: f64 = self.rng.random();
        u < self.p
    }

    /// The generator's word position: a generator from the same seed set to it continues the
    /// same sequence (checkpoints).
    pub fn position(&self) -> u128 {
        self.rng.get_word_pos()
    }
}

/// The first learning-rate decay of the paper schedule: the reference's 32,000 stretched by 4/3.
pub const PAPER_SMD_FIRST_DECAY: usize = 42_666;

/// The second learning-rate decay of the paper schedule: the reference's 48,000 stretched by 4/3.
pub const PAPER_SMD_SECOND_DECAY: usize = 64_000;

/// The reference schedule stretched by 4/3 for SMD (docs/e2-train.md §1): the optimiser's base rate
/// (0.1 in the paper presets), then ×0.1 at 42,666 and 64,000, evaluated on the global iteration
/// index as `schedule.at(sgd.lr, i, iterations)`.
///
/// ```
/// let s = e2_train::paper_smd_schedule();
/// assert_eq!(s.at(0.1, 42_665, 85_333), 0.1);
/// assert!((s.at(0.1, 42_666, 85_333) - 0.01).abs() < 1e-15);
/// assert!((s.at(0.1, 64_000, 85_333) - 0.001).abs() < 1e-15);
/// ```
pub fn paper_smd_schedule() -> LrSchedule {
    LrSchedule::new(LrDecay::Step {
        milestones: vec![PAPER_SMD_FIRST_DECAY, PAPER_SMD_SECOND_DECAY],
        gamma: 0.1,
    })
}
