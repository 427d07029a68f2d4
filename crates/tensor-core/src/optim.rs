//! [`MomentumSgd`]: SGD with momentum and L2 weight decay, PyTorch semantics (candle-nn's SGD has
//! neither).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::{GradStore, Optimizer, Tensor, Var};

/// Hyper-parameters of [`MomentumSgd`].
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

/// SGD with momentum and weight decay: `d = g + wd·w`; `buf = d` on a parameter's first step,
/// then `buf = μ·buf + d`; `w ← w − lr·buf`.
///
/// It steps from a [`GradStore`], so gradient rewrites (sign gradients, masks) happen before the
/// step. Parameters without a gradient in the store are left untouched, momentum included.
#[derive(Debug)]
pub struct MomentumSgd {
    vars: Vec<Var>,
    buffers: Vec<Option<Tensor>>,
    config: SgdConfig,
}

impl MomentumSgd {
    /// An optimiser over `vars` (their order fixes the order of [`MomentumSgd::buffers`]).
    pub fn with_config(vars: Vec<Var>, config: SgdConfig) -> Result<Self> {
        let config = config.validate()?;
        let buffers = vec![None; vars.len()];
        Ok(Self {
            vars,
            buffers,
            config,
        })
    }

    /// The current configuration.
    pub fn config(&self) -> SgdConfig {
        self.config
    }

    /// Momentum buffers in variable order (`None` before a variable's first step).
    pub fn buffers(&self) -> &[Option<Tensor>] {
        &self.buffers
    }

    /// Restores momentum buffers (from a checkpoint); shapes must match the variables.
    pub fn set_buffers(&mut self, buffers: Vec<Option<Tensor>>) -> Result<()> {
        if buffers.len() != self.vars.len() {
            return Err(Error::Shape {
                what: "momentum buffers".into(),
                expected: vec![self.vars.len()],
                got: vec![buffers.len()],
            });
        }
        for (var, buf) in self.vars.iter().zip(&buffers) {
            if let Some(b) = buf
                && b.dims() != var.dims()
            {
                return Err(Error::Shape {
                    what: "momentum buffer".into(),
                    expected: var.dims().to_vec(),
                    got: b.dims().to_vec(),
                });
            }
        }
        self.buffers = buffers;
        Ok(())
    }

    /// One update from the gradients in `grads`.
    pub fn step_grads(&mut self, grads: &GradStore) -> Result<()> {
        let SgdConfig {
            lr,
            momentum,
            weight_decay,
        } = self.config;
        for (var, buf) in self.vars.iter().zip(self.buffers.iter_mut()) {
            let Some(g) = grads.get(var) else { continue };
            let d = if weight_decay != 0.0 {
                (g + (var.as_tensor() * weight_decay)?)?
            } else {
                g.clone()
            };
            let d = match buf.take() {
                Some(b) if momentum != 0.0 => ((b * momentum)? + d)?,
                _ => d,
            };
            var.set(&(var.as_tensor() - (&d * lr)?)?)?;
            if momentum != 0.0 {
                *buf = Some(d);
            }
        }
        Ok(())
    }
}

impl Optimizer for MomentumSgd {
    type Config = SgdConfig;

    fn new(vars: Vec<Var>, config: SgdConfig) -> candle_core::Result<Self> {
        Self::with_config(vars, config).map_err(candle_core::Error::wrap)
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step_grads(grads).map_err(candle_core::Error::wrap)
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}
