//! Training energy (docs/energy-models.md part C): prices the work a training run recorded in a
//! [`WorkLedger`] with a per-MAC energy keyed by the two operand widths.
//!
//! Wang et al., "E2-Train: Training State-of-the-art CNNs with Over 80% Less Energy", NeurIPS
//! 2019. The paper priced operations with energies measured on an FPGA board that are not
//! available; the default table here is the **bit-product proxy** `e(a, b) = a·b/256` (MAC16
//! units, so `e(16, 16) = 1`), which is *not* the paper's model. Every result priced with it
//! carries `proxy = true` and says so when displayed. Measured tables can be loaded from JSON,
//! each entry citing its source. Data movement is not priced; data loading never is.
//!
//! For one executed iteration of batch `B`, each layer `l` run on a fraction `f_l` of the
//! samples costs `f_l·B·[E_fwd + E_gx + E_gW]` with each GEMM's MACs per sample times
//! `e(a_bits, b_bits)`. With a sign predictor, `E_gW = predictor + ρ_l·full` (the predictor runs
//! on every entry, the full-precision fallback on the fraction `ρ_l`; reusing the predictor's
//! partial products is not credited). Dropped iterations cost nothing.
//!
//! [`dataflow`] prices the same ledger with data movement: every GEMM as the convolution it is,
//! mapped by the Eyeriss model, plus the weight-update DRAM traffic
//! (docs/training-energy-dataflow.md). Its figures sit next to this module's, never mixed.

use serde::{Deserialize, Serialize};
use tensor_core::{
    EnergyModel, EnergyUnit, Gemm, Iteration, LayerEnergy, LayerGeometry, LayerId, LayerSparsity,
    LayerWork, Operand, Precision, TrainingEnergy, TrainingEnergyModel, WorkLedger,
};

use crate::error::{Error, Result};

pub mod dataflow;

const MODEL: &str = "training";

/// Operand widths of a MAC (`a` the weight's, `b` the input's): at least 1 bit each.
fn check_widths(a_bits: u8, b_bits: u8) -> Result<()> {
    for (operand, bits) in [(Operand::Weight, a_bits), (Operand::Input, b_bits)] {
        if bits == 0 {
            return Err(Error::BitWidth {
                model: MODEL,
                operand,
                bits,
                expected: "at least 1 bit",
            });
        }
    }
    Ok(())
}

/// One measured per-MAC energy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpEnergyEntry {
    /// Width of one operand.
    pub a_bits: u8,
    /// Width of the other operand (the table is symmetric).
    pub b_bits: u8,
    /// Energy of one MAC in MAC16 units.
    pub energy: f64,
    /// Where the value comes from (paper, table, board).
    pub source: String,
}

/// A table of measured per-MAC energies, looked up symmetrically in the two widths.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuredTable {
    /// The table's name, shown in every report priced with it.
    pub name: String,
    /// The entries; `(a, b)` also answers `(b, a)`.
    pub entries: Vec<OpEnergyEntry>,
}

impl MeasuredTable {
    /// Parses a table from JSON (`{"name": .., "entries": [{"a_bits", "b_bits", "energy",
    /// "source"}, ..]}`) and checks it.
    pub fn from_json(text: &str) -> Result<Self> {
        let table: MeasuredTable = serde_json::from_str(text).map_err(|e| Error::Config {
            field: "op-energy table",
            reason: e.to_string(),
        })?;
        table.validate()?;
        Ok(table)
    }

    /// Every width at least 1 bit, every energy finite and non-negative, every source named, no
    /// pair given twice with different energies.
    pub fn validate(&self) -> Result<()> {
        for (i, e) in self.entries.iter().enumerate() {
            check_widths(e.a_bits, e.b_bits)?;
            if !e.energy.is_finite() || e.energy < 0.0 {
                return Err(Error::Config {
                    field: "op-energy table",
                    reason: format!("entry {i} has energy {}", e.energy),
                });
            }
            if e.source.trim().is_empty() {
                return Err(Error::Config {
                    field: "op-energy table",
                    reason: format!("entry {i} does not cite its source"),
                });
            }
            let clash = self.entries[..i].iter().any(|o| {
                let same = (o.a_bits, o.b_bits) == (e.a_bits, e.b_bits)
                    || (o.a_bits, o.b_bits) == (e.b_bits, e.a_bits);
                same && o.energy != e.energy
            });
            if clash {
                return Err(Error::Config {
                    field: "op-energy table",
                    reason: format!(
                        "{}x{} bits is given twice with different energies",
                        e.a_bits, e.b_bits
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Per-MAC energy as a function of the two operand widths (docs/energy-models.md C.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpEnergyTable {
    /// `e(a, b) = a·b/256`: a stand-in, not the paper's measured energies.
    BitProductProxy,
    /// Measured values.
    Measured(MeasuredTable),
}

impl OpEnergyTable {
    /// Energy of one MAC of an `a`-bit by a `b`-bit operand, in MAC16 units. A zero width is an
    /// error; so is a pair a measured table lacks.
    pub fn energy(&self, a_bits: u8, b_bits: u8) -> Result<f64> {
        check_widths(a_bits, b_bits)?;
        match self {
            OpEnergyTable::BitProductProxy => Ok(f64::from(a_bits) * f64::from(b_bits) / 256.0),
            OpEnergyTable::Measured(t) => t
                .entries
                .iter()
                .find(|e| {
                    (e.a_bits, e.b_bits) == (a_bits, b_bits)
                        || (e.a_bits, e.b_bits) == (b_bits, a_bits)
                })
                .map(|e| e.energy)
                .ok_or_else(|| Error::MissingOpEnergy {
                    table: t.name.clone(),
                    a_bits,
                    b_bits,
                }),
        }
    }

    /// Whether the energies are a stand-in rather than measured.
    pub fn is_proxy(&self) -> bool {
        matches!(self, OpEnergyTable::BitProductProxy)
    }

    /// `training/bit-product-proxy` or `training/measured:<table name>`.
    pub fn name(&self) -> String {
        match self {
            OpEnergyTable::BitProductProxy => format!("{MODEL}/bit-product-proxy"),
            OpEnergyTable::Measured(t) => format!("{MODEL}/measured:{}", t.name),
        }
    }
}

/// Energy of the three GEMM classes, for one layer or a whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GemmEnergy {
    /// Forward pass.
    pub forward: f64,
    /// Input gradient.
    pub input_grad: f64,
    /// Weight gradient (predictor and fallback included).
    pub weight_grad: f64,
}

impl GemmEnergy {
    /// Sum of the three classes.
    pub fn total(&self) -> f64 {
        self.forward + self.input_grad + self.weight_grad
    }

    fn accumulate(&mut self, o: &GemmEnergy) {
        self.forward += o.forward;
        self.input_grad += o.input_grad;
        self.weight_grad += o.weight_grad;
    }
}

/// A priced ledger: the totals plus the energy of every layer over the whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingReport {
    /// Run totals; `energy.proxy` says whether the per-op energies are a stand-in.
    pub energy: TrainingEnergy,
    /// Per layer, in order of first appearance in the ledger.
    pub layers: Vec<(LayerId, GemmEnergy)>,
}

impl std::fmt::Display for TrainingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.energy)?;
        for (id, e) in &self.layers {
            writeln!(
                f,
                "  layer {id}: forward {:.6e}, input gradient {:.6e}, weight gradient {:.6e}",
                e.forward, e.input_grad, e.weight_grad
            )?;
        }
        Ok(())
    }
}

/// Prices training work with an [`OpEnergyTable`].
///
/// ```
/// use energy_model::training::TrainingModel;
/// use tensor_core::{Gemm, LayerId, LayerWork, WorkLedger};
///
/// let q = |a_bits, b_bits| Gemm { macs_per_sample: 1_000, a_bits, b_bits };
/// let mut ledger = WorkLedger::new();
/// ledger.record_dropped();
/// ledger.record_executed(4, vec![LayerWork {
///     layer: LayerId(0),
///     executed_fraction: 1.0,
///     forward: q(8, 8),
///     input_grad: None,
///     weight_grad: Some(q(8, 32)),
///     predictor: None,
///     fallback_fraction: 0.0,
/// }])?;
/// let report = TrainingModel::bit_product_proxy().price(&ledger)?;
/// // 4 samples × 1,000 MACs × (0.25 + 1.0); the dropped iteration is free.
/// assert_eq!(report.energy.total(), 5_000.0);
/// assert!(report.energy.proxy);
/// assert!(report.to_string().contains("proxy"));
/// # Ok::<(), energy_model::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingModel {
    table: OpEnergyTable,
}

impl TrainingModel {
    /// The bit-product proxy `e(a, b) = a·b/256` (not the paper's model).
    pub fn bit_product_proxy() -> Self {
        Self {
            table: OpEnergyTable::BitProductProxy,
        }
    }

    /// Measured per-op energies.
    pub fn measured(table: MeasuredTable) -> Result<Self> {
        table.validate()?;
        Ok(Self {
            table: OpEnergyTable::Measured(table),
        })
    }

    /// The per-op table.
    pub fn table(&self) -> &OpEnergyTable {
        &self.table
    }

    fn gemm(&self, g: &Gemm) -> Result<f64> {
        Ok(g.macs_per_sample as f64 * self.table.energy(g.a_bits, g.b_bits)?)
    }

    /// Energy of one layer's work in one iteration of `batch` samples.
    pub fn layer_work(&self, batch: usize, work: &LayerWork) -> Result<GemmEnergy> {
        check_fractions(work)?;
        let scale = work.executed_fraction * batch as f64;
        let opt = |g: &Option<Gemm>| g.as_ref().map_or(Ok(0.0), |g| self.gemm(g));
        let weight_grad = match &work.predictor {
            Some(p) => self.gemm(p)? + work.fallback_fraction * opt(&work.weight_grad)?,
            None => opt(&work.weight_grad)?,
        };
        Ok(GemmEnergy {
            forward: scale * self.gemm(&work.forward)?,
            input_grad: scale * opt(&work.input_grad)?,
            weight_grad: scale * weight_grad,
        })
    }

    /// Prices every executed iteration of `ledger`; dropped iterations add nothing.
    pub fn price(&self, ledger: &WorkLedger) -> Result<TrainingReport> {
        let mut layers: Vec<(LayerId, GemmEnergy)> = Vec::new();
        let mut total = GemmEnergy::default();
        for it in ledger.iterations() {
            let Iteration::Executed {
                batch,
                layers: work,
            } = it
            else {
                continue;
            };
            for w in work {
                let e = self.layer_work(*batch, w)?;
                total.accumulate(&e);
                match layers.iter_mut().find(|(id, _)| *id == w.layer) {
                    Some((_, acc)) => acc.accumulate(&e),
                    None => layers.push((w.layer, e)),
                }
            }
        }
        Ok(TrainingReport {
            energy: TrainingEnergy {
                model: self.table.name(),
                proxy: self.table.is_proxy(),
                unit: EnergyUnit::Mac16,
                forward: total.forward,
                input_grad: total.input_grad,
                weight_grad: total.weight_grad,
                executed_iterations: ledger.executed(),
                dropped_iterations: ledger.dropped(),
            },
            layers,
        })
    }
}

/// Relative saving `1 − E_run / E_base` of a run against its baseline, both priced by the same
/// model (docs/energy-models.md C.3). Different models or units, or a baseline of zero energy, are
/// errors.
pub fn savings(run: &TrainingEnergy, base: &TrainingEnergy) -> Result<f64> {
    if run.model != base.model || run.unit != base.unit {
        return Err(Error::Config {
            field: "baseline",
            reason: format!(
                "priced by {} ({}) but the run by {} ({})",
                base.model, base.unit, run.model, run.unit
            ),
        });
    }
    let b = base.total();
    if !(b.is_finite() && b > 0.0) {
        return Err(Error::Config {
            field: "baseline",
            reason: format!("baseline energy {b} is not positive"),
        });
    }
    Ok(1.0 - run.total() / b)
}

impl EnergyModel for TrainingModel {
    fn name(&self) -> String {
        if self.table.is_proxy() {
            format!("{} (proxy)", self.table.name())
        } else {
            self.table.name()
        }
    }

    fn unit(&self) -> EnergyUnit {
        EnergyUnit::Mac16
    }

    /// Compute energy of one forward pass of one sample: dense MACs scaled by the weight and
    /// input densities, priced at `e(weight_bits, input_bits)`. Data movement is not priced.
    fn layer_energy(
        &self,
        geometry: &LayerGeometry,
        sparsity: &LayerSparsity,
        precision: Precision,
    ) -> tensor_core::Result<LayerEnergy> {
        let dw = sparsity.weights.density()?.get();
        let di = sparsity.inputs.density()?.get();
        let macs = geometry.macs() as f64 * dw * di;
        let e = self
            .table
            .energy(precision.weight_bits, precision.input_bits)?;
        Ok(LayerEnergy {
            compute: macs * e,
            nonzero_weights: sparsity.weights.nonzeros(geometry.weights())?,
            effective_macs: macs,
            ..LayerEnergy::default()
        })
    }
}

impl TrainingEnergyModel for TrainingModel {
    fn price_work(&self, ledger: &WorkLedger) -> tensor_core::Result<TrainingEnergy> {
        Ok(self.price(ledger)?.energy)
    }
}

/// The executed and fallback fractions of a layer's work are fractions, or an error naming the
/// layer: both pricers read them.
pub(crate) fn check_fractions(work: &LayerWork) -> Result<()> {
    for (what, v) in [
        ("executed fraction", work.executed_fraction),
        ("fallback fraction", work.fallback_fraction),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(tensor_core::Error::OutOfRange {
                what,
                value: v,
                expected: "a fraction in [0, 1]",
            }
            .in_layer(work.layer)
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
