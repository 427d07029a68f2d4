//! The energy-model capabilities and their report types. energy-model implements them;
//! sparse-proj and energy-prune consume them through trait objects.
//!
//! Each capability is a trait of its own, so a signature states what it needs:
//! [`EnergyModel`] prices layers, [`WeightCostModel`] adds the linearised per-weight costs the
//! energy-constrained projection works with, and [`TrainingEnergyModel`] prices the work a
//! training run recorded. Handing a model without per-weight costs to the projection does not
//! compile.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::geometry::{LayerGeometry, LayerId};
use crate::ledger::WorkLedger;
use crate::sparsity::{LayerSparsity, Precision, Support};

/// Unit an energy figure is expressed in. Figures in different units are never comparable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnergyUnit {
    /// Multiples of one register-file access (the ICLR'19 systolic-array model).
    RfAccess,
    /// Multiples of one 16-bit MAC (the Eyeriss row-stationary model and training energy).
    Mac16,
}

impl std::fmt::Display for EnergyUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnergyUnit::RfAccess => "RF-access units",
            EnergyUnit::Mac16 => "16-bit-MAC units",
        })
    }
}

/// Memory level a data access is booked at, outermost first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Off-chip memory.
    Dram,
    /// Global buffer (cache).
    Buffer,
    /// Inter-PE network of the array.
    Array,
    /// Per-PE register file.
    Rf,
}

impl Level {
    /// All levels in table order.
    pub const ALL: [Level; 4] = [Level::Dram, Level::Buffer, Level::Array, Level::Rf];
}

/// Data type of an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operand {
    /// Weights.
    Weight,
    /// Input activations.
    Input,
    /// Output activations and partial sums.
    Output,
}

impl Operand {
    /// All operands in table order.
    pub const ALL: [Operand; 3] = [Operand::Weight, Operand::Input, Operand::Output];
}

/// Energy of one layer: computation plus data movement split by level and operand.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerEnergy {
    /// Energy of the arithmetic (MACs).
    pub compute: f64,
    /// Data-movement energy, `data[level][operand]`, indexed like [`Level::ALL`] × [`Operand::ALL`].
    pub data: [[f64; 3]; 4],
    /// Nonzero weights the estimate assumed.
    pub nonzero_weights: u64,
    /// MACs actually performed (after zero skipping).
    pub effective_macs: f64,
}

impl LayerEnergy {
    /// Data energy at one level for one operand.
    pub fn get(&self, level: Level, operand: Operand) -> f64 {
        self.data[level as usize][operand as usize]
    }

    /// Adds to the data energy at one level for one operand.
    pub fn add(&mut self, level: Level, operand: Operand, energy: f64) {
        self.data[level as usize][operand as usize] += energy;
    }

    /// Total data-movement energy.
    pub fn data_total(&self) -> f64 {
        self.data.iter().flatten().sum()
    }

    /// Data energy at one level, all operands.
    pub fn by_level(&self, level: Level) -> f64 {
        self.data[level as usize].iter().sum()
    }

    /// Data energy of one operand, all levels.
    pub fn by_operand(&self, operand: Operand) -> f64 {
        self.data.iter().map(|row| row[operand as usize]).sum()
    }

    /// Compute plus data.
    pub fn total(&self) -> f64 {
        self.compute + self.data_total()
    }

    /// Element-wise sum, for network totals.
    pub fn accumulate(&mut self, other: &LayerEnergy) {
        self.compute += other.compute;
        for (row, orow) in self.data.iter_mut().zip(&other.data) {
            for (v, o) in row.iter_mut().zip(orow) {
                *v += o;
            }
        }
        self.nonzero_weights += other.nonzero_weights;
        self.effective_macs += other.effective_macs;
    }
}

/// One layer as an energy model sees it: geometry, sparsity and precision, plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerWorkload {
    /// Position in the network's ordered layer list.
    pub id: LayerId,
    /// The layer's name (the weight's key without `.weight`).
    pub name: String,
    /// Geometry for batch 1.
    pub geometry: LayerGeometry,
    /// Nonzero patterns.
    pub sparsity: LayerSparsity,
    /// Operand widths.
    pub precision: Precision,
}

impl LayerWorkload {
    /// A dense 16-bit workload.
    pub fn dense(id: LayerId, name: impl Into<String>, geometry: LayerGeometry) -> Self {
        Self {
            id,
            name: name.into(),
            geometry,
            sparsity: LayerSparsity::dense(),
            precision: Precision::default(),
        }
    }
}

/// Energy of a whole network, per layer, labelled with the model that priced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkEnergy {
    /// The model and preset, e.g. `eyeriss/isca16 batch 16`.
    pub model: String,
    /// Unit of every figure.
    pub unit: EnergyUnit,
    /// Per-layer energies in network order.
    pub layers: Vec<(LayerId, String, LayerEnergy)>,
}

impl NetworkEnergy {
    /// Sum over layers.
    pub fn totals(&self) -> LayerEnergy {
        let mut t = LayerEnergy::default();
        for (_, _, e) in &self.layers {
            t.accumulate(e);
        }
        t
    }

    /// Total energy.
    pub fn total(&self) -> f64 {
        self.layers.iter().map(|(_, _, e)| e.total()).sum()
    }
}

/// Linearised per-weight cost of one layer under an energy model, for the weighted projection:
/// with inputs fixed, the layer costs `fixed + Σ_j κ_j·[W_j ≠ 0]`, where the `cached` highest-value
/// weights pay `kappa_in` and the rest pay `kappa_out ≥ kappa_in`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightCosts {
    /// Energy independent of the weights (input side and output write).
    pub fixed: f64,
    /// Cost of a weight that sits in the weight cache.
    pub kappa_in: f64,
    /// Cost of a weight beyond the cache.
    pub kappa_out: f64,
    /// Number of weights the cache holds.
    pub cached: usize,
}

/// Energy of a training run priced from its [`WorkLedger`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingEnergy {
    /// The pricing model, e.g. `training/bit-product-proxy`; proxies say so here.
    pub model: String,
    /// Whether the per-op energies are a stand-in rather than measured values; [`Display`]
    /// and every report say so.
    ///
    /// [`Display`]: std::fmt::Display
    #[serde(default)]
    pub proxy: bool,
    /// Unit of every figure.
    pub unit: EnergyUnit,
    /// Forward GEMMs.
    pub forward: f64,
    /// Input-gradient GEMMs.
    pub input_grad: f64,
    /// Weight-gradient GEMMs (predictor and fallback included).
    pub weight_grad: f64,
    /// Iterations that ran.
    pub executed_iterations: u64,
    /// Iterations that were dropped (priced 0).
    pub dropped_iterations: u64,
}

impl TrainingEnergy {
    /// Sum of the three GEMM classes.
    pub fn total(&self) -> f64 {
        self.forward + self.input_grad + self.weight_grad
    }
}

impl std::fmt::Display for TrainingEnergy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training energy priced by {}{}: total {:.6e} {} (forward {:.6e}, input gradient \
             {:.6e}, weight gradient {:.6e}) over {} executed and {} dropped iterations",
            self.model,
            if self.proxy {
                " (a proxy, not measured per-op energies)"
            } else {
                ""
            },
            self.total(),
            self.unit,
            self.forward,
            self.input_grad,
            self.weight_grad,
            self.executed_iterations,
            self.dropped_iterations
        )
    }
}

/// A hardware energy model: prices layers for inference.
///
/// Object safe, so consumers hold `&dyn EnergyModel` and never name an implementation.
pub trait EnergyModel: Send + Sync {
    /// The model and preset, e.g. `iclr19` or `eyeriss/isca16 batch 16`; every printed number
    /// carries it.
    fn name(&self) -> String;

    /// Unit of the figures this model returns.
    fn unit(&self) -> EnergyUnit;

    /// Energy of one layer.
    fn layer_energy(
        &self,
        geometry: &LayerGeometry,
        sparsity: &LayerSparsity,
        precision: Precision,
    ) -> Result<LayerEnergy>;

    /// Energy of a network: by default the sum of independent layers.
    fn network_energy(&self, layers: &[LayerWorkload]) -> Result<NetworkEnergy> {
        let priced = layers
            .iter()
            .map(|l| {
                self.layer_energy(&l.geometry, &l.sparsity, l.precision)
                    .map(|e| (l.id, l.name.clone(), e))
                    .map_err(|e| e.in_layer(l.id))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(NetworkEnergy {
            model: self.name(),
            unit: self.unit(),
            layers: priced,
        })
    }
}

/// An energy model whose layer energy, with the inputs fixed, is linear in which weights are
/// nonzero: what the energy-constrained projection needs.
pub trait WeightCostModel: EnergyModel {
    /// Linearised per-weight costs of a layer with the given input support.
    fn weight_costs(&self, geometry: &LayerGeometry, inputs: &Support) -> Result<WeightCosts>;
}

/// An energy model that prices the work a training run recorded.
pub trait TrainingEnergyModel: EnergyModel {
    /// Energy of recorded training work.
    fn price_work(&self, ledger: &WorkLedger) -> Result<TrainingEnergy>;
}
