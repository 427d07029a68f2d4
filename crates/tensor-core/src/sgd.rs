//! [`SgdConfig`]: the hyper-parameters of momentum SGD, plain data (the optimiser itself,
//! [`MomentumSgd`](crate::MomentumSgd), needs the `candle` feature).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Hyper-parameters of momentum SGD (PyTorch semantics).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Learning rate, > 0.
    pub lr: f64,
    /// Momentum μ in `[0, 1)`; 0 is plain SGD.
    pub momentum: f64,
    /// L2 weight decay added to the gradient, ≥ 0.
    pub weight_decay: f64,
}

impl SgdConfig {
    /// Checks the ranges documented on each field.
    pub fn validate(self) -> Result<Self> {
        let check = |what, value: f64, ok: bool, expected| {
            if ok {
                Ok(())
            } else {
                Err(Error::OutOfRange {
                    what,
                    value,
                    expected,
                })
            }
        };
        check(
            "lr",
            self.lr,
            self.lr.is_finite() && self.lr > 0.0,
            "a finite value > 0",
        )?;
        check(
            "momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "a value in [0, 1)",
        )?;
        check(
            "weight_decay",
            self.weight_decay,
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "a finite value >= 0",
        )?;
        Ok(self)
    }
}
