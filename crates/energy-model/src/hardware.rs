//! Hardware parameters of the ICLR'19 systolic-array model (docs/energy-models.md A.1): array shape,
//! cache capacities and unit energies, as checked data.
//!
//! Yang, Zhu, Liu, "Energy-Constrained Compression for Deep Neural Networks via Weighted Sparse
//! Projection and Layer Input Masking", ICLR 2019, Section 3 and Appendix; the constants are
//! the Eyeriss-derived ones of the paper's reference implementation.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Parameters of the systolic array the ICLR'19 model prices.
///
/// | field | paper | valid range |
/// |---|---|---|
/// | `rows` (m) | 12 | ≥ 1; output positions are spread over the rows |
/// | `cols` (n) | 14 | ≥ 1; output channels are spread over the columns |
/// | `input_cache` (s1) | 51,200 values (100 kB of 16-bit values) | ≥ 1 |
/// | `weight_cache` (s2) | 4,096 values (8 kB of 16-bit values) | ≥ 0 |
/// | `e_mem` | 200 | finite, ≥ 0 |
/// | `e_cache` | 6 | finite, ≥ 0 |
/// | `e_rf` | 1 (the unit) | finite, ≥ 0 |
/// | `e_mac` | 3 (one MAC plus the RF read and write of its partial sum) | finite, ≥ 0 |
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystolicArrayConfig {
    /// PE rows `m`.
    pub rows: usize,
    /// PE columns `n`.
    pub cols: usize,
    /// Input-cache capacity `s1`, in values.
    pub input_cache: usize,
    /// Weight-cache capacity `s2`, in values.
    pub weight_cache: usize,
    /// Energy of one DRAM access.
    pub e_mem: f64,
    /// Energy of one global-buffer (cache) access.
    pub e_cache: f64,
    /// Energy of one register-file access.
    pub e_rf: f64,
    /// Energy of one MAC including the RF traffic of its partial sum.
    pub e_mac: f64,
}

impl SystolicArrayConfig {
    /// The paper's array: 12 × 14 PEs, 51,200 + 4,096 cached values, unit energies 200/6/1/3.
    pub const ICLR19: SystolicArrayConfig = SystolicArrayConfig {
        rows: 12,
        cols: 14,
        input_cache: 51_200,
        weight_cache: 4_096,
        e_mem: 200.0,
        e_cache: 6.0,
        e_rf: 1.0,
        e_mac: 3.0,
    };

    /// Checks every field against the ranges of the table above.
    pub fn validate(self) -> Result<SystolicArray> {
        for (field, v) in [
            ("rows", self.rows),
            ("cols", self.cols),
            ("input_cache", self.input_cache),
        ] {
            if v == 0 {
                return Err(Error::Config {
                    field,
                    reason: "must be at least 1".into(),
                });
            }
        }
        for (field, v) in [
            ("e_mem", self.e_mem),
            ("e_cache", self.e_cache),
            ("e_rf", self.e_rf),
            ("e_mac", self.e_mac),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Config {
                    field,
                    reason: format!("{v} is not a finite non-negative energy"),
                });
            }
        }
        Ok(SystolicArray(self))
    }

    /// Every unit energy multiplied by `factor` (cache sizes and array shape unchanged).
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            e_mem: self.e_mem * factor,
            e_cache: self.e_cache * factor,
            e_rf: self.e_rf * factor,
            e_mac: self.e_mac * factor,
            ..self
        }
    }
}

/// A validated [`SystolicArrayConfig`]; only this form prices layers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SystolicArray(SystolicArrayConfig);

impl SystolicArray {
    /// The paper's array ([`SystolicArrayConfig::ICLR19`]).
    pub fn iclr19() -> Self {
        SystolicArray(SystolicArrayConfig::ICLR19)
    }

    /// The checked parameters.
    pub fn config(&self) -> &SystolicArrayConfig {
        &self.0
    }
}

impl std::ops::Deref for SystolicArray {
    type Target = SystolicArrayConfig;
    fn deref(&self) -> &SystolicArrayConfig {
        &self.0
    }
}
