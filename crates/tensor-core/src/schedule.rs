//! [`LrSchedule`]: the one learning-rate schedule of the workspace, on a run's global iteration
//! index (dropped iterations included, so a schedule is a function of time, not of updates).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the rate falls from the optimiser's base rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum LrDecay {
    /// The base rate throughout.
    Constant,
    /// Cosine decay from the base rate to 0 at the last iteration.
    Cosine,
    /// `base·γ^k` after the `k`-th milestone.
    Step {
        /// Iterations at which the rate is multiplied by `gamma`, strictly increasing.
        milestones: Vec<usize>,
        /// Factor per milestone, in (0, 1].
        gamma: f64,
    },
}

/// A constant rate for the first iterations (ResNet-110's trick: 400 iterations at 0.01).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    /// Iterations at the warm-up rate.
    pub iterations: usize,
    /// The warm-up rate, > 0.
    pub lr: f64,
}

/// A learning-rate schedule: a decay of the optimiser's base rate and an optional constant
/// warm-up, evaluated at a global iteration index.
///
/// ```
/// use tensor_core::{LrDecay, LrSchedule};
/// let s = LrSchedule::new(LrDecay::Step { milestones: vec![100, 150], gamma: 0.1 });
/// assert_eq!(s.at(0.1, 99, 200), 0.1);
/// assert!((s.at(0.1, 100, 200) - 0.01).abs() < 1e-15);
/// let c = LrSchedule::new(LrDecay::Cosine);
/// assert!((c.at(0.1, 50, 100) - 0.05).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// The decay.
    pub decay: LrDecay,
    /// An optional warm-up before it.
    #[serde(default)]
    pub warmup: Option<Warmup>,
}

impl LrSchedule {
    /// A schedule without warm-up.
    pub fn new(decay: LrDecay) -> Self {
        Self {
            decay,
            warmup: None,
        }
    }

    /// The same with a warm-up of `iterations` at `lr`.
    pub fn with_warmup(self, iterations: usize, lr: f64) -> Self {
        Self {
            warmup: Some(Warmup { iterations, lr }),
            ..self
        }
    }

    /// Checks ranges and ordering.
    pub fn validate(self) -> Result<Self> {
        if let LrDecay::Step { milestones, gamma } = &self.decay {
            if !(*gamma > 0.0 && *gamma <= 1.0) {
                return Err(Error::OutOfRange {
                    what: "learning-rate decay factor",
                    value: *gamma,
                    expected: "a factor in (0, 1]",
                });
            }
            if let Some(w) = milestones.windows(2).find(|w| w[0] >= w[1]) {
                return Err(Error::OutOfRange {
                    what: "learning-rate milestone",
                    value: w[1] as f64,
                    expected: "strictly increasing milestones",
                });
            }
        }
        if let Some(w) = self.warmup
            && !(w.lr.is_finite() && w.lr > 0.0)
        {
            return Err(Error::OutOfRange {
                what: "warm-up learning rate",
                value: w.lr,
                expected: "a finite rate > 0",
            });
        }
        Ok(self)
    }

    /// The rate at global iteration `iteration` (0-based) of `total`, from the base rate `base`.
    pub fn at(&self, base: f64, iteration: usize, total: usize) -> f64 {
        if let Some(w) = self.warmup
            && iteration < w.iterations
        {
            return w.lr;
        }
        match &self.decay {
            LrDecay::Constant => base,
            LrDecay::Cosine => {
                let t = iteration as f64 / total.max(1) as f64;
                0.5 * base * (1.0 + (std::f64::consts::PI * t).cos())
            }
            LrDecay::Step { milestones, gamma } => {
                let k = milestones.iter().filter(|&&m| iteration >= m).count();
                base * gamma.powi(k as i32)
            }
        }
    }
}
