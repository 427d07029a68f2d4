//! Stochastic mini-batch dropping (e2-train.md §1): every iteration is skipped with probability
//! `p`, drawn from the run's seeded generator; the learning-rate schedule runs on the global
//! iteration index, skipped iterations included.

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tensor_core::Rng;

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
}

/// A step learning-rate schedule on the global iteration index: `base·γ^k` after the `k`-th
/// milestone, with an optional constant warm-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Learning rate before the first milestone, > 0.
    pub base: f64,
    /// Iterations at which the rate is multiplied by `gamma`, increasing.
    pub milestones: Vec<usize>,
    /// Decay factor per milestone, in (0, 1].
    pub gamma: f64,
    /// `(iterations, lr)` of a constant warm-up (the ResNet-110 trick: 400 iterations at 0.01).
    pub warmup: Option<(usize, f64)>,
}

impl LrSchedule {
    /// The reference schedule stretched by 4/3 for SMD (e2-train.md §1): 0.1, then ×0.1 at
    /// 42,666 and 64,000.
    pub fn paper_smd() -> Self {
        Self {
            base: 0.1,
            milestones: vec![42_666, 64_000],
            gamma: 0.1,
            warmup: None,
        }
    }

    /// Checks ranges and ordering.
    pub fn validate(self) -> Result<Self> {
        if !(self.base.is_finite() && self.base > 0.0) {
            return Err(bad("lr.base", format!("{} must be > 0", self.base)));
        }
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            return Err(bad("lr.gamma", format!("{} is not in (0, 1]", self.gamma)));
        }
        if self.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("lr.milestones", "must be strictly increasing"));
        }
        if let Some((_, lr)) = self.warmup
            && !(lr.is_finite() && lr > 0.0)
        {
            return Err(bad("lr.warmup", format!("{lr} must be > 0")));
        }
        Ok(self)
    }

    /// Learning rate at global iteration `i`.
    pub fn lr(&self, i: usize) -> f64 {
        if let Some((n, lr)) = self.warmup
            && i < n
        {
            return lr;
        }
        let k = self.milestones.iter().filter(|&&m| i >= m).count();
        self.base * self.gamma.powi(k as i32)
    }
}
