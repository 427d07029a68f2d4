//! The ICLR'19 systolic-array inference model (docs/energy-models.md part A).
//!
//! Yang, Zhu, Liu, "Energy-Constrained Compression for Deep Neural Networks via Weighted Sparse
//! Projection and Layer Input Masking", ICLR 2019. A layer costs
//!
//! - input energy `E_X`: every unfolded input read from the cache once per group of `n` output
//!   channels and from the RF once per output channel, the map read from DRAM once plus the rows
//!   two cache batches share ([`overlap`](crate::overlap)), and the outputs written to DRAM once;
//! - weight energy `E_W`: the first `s2` nonzero weights stay in the weight cache, the rest are
//!   re-fetched from DRAM for every group of `m` output positions;
//! - compute energy `E_C = e_mac · N_MAC`, with `N_MAC` either the exact count of nonzero pairs
//!   ([`Evaluator::Exact`]) or the upper bound `P·‖W‖₀` the paper constrains
//!   ([`Evaluator::Relaxed`]).
//!
//! Energies are in multiples of one register-file access ([`EnergyUnit::RfAccess`]); the model
//! prices one sample of 16-bit values. Zero weights and masked inputs cost nothing; ReLU zeros are
//! not modelled: inputs are dense or masked by a `c × h × w` bitmap (a fractional density says
//! nothing about positions and is refused), and output supports are ignored (every output is
//! written once). Unlike the reference implementation, a budget below the floor is an error
//! ([`Normalization::absolute_budget`]), never silently raised.

use serde::{Deserialize, Serialize};
use tensor_core::{
    EnergyModel, EnergyUnit, LayerEnergy, LayerGeometry, LayerKind, LayerSparsity, Level, Operand,
    Precision, Support, WeightCostModel, WeightCosts,
};

use crate::error::{Error, Result};
use crate::hardware::SystolicArray;
use crate::overlap::row_overlap;
use crate::sparsity::{InputSupport, exact_conv_macs, unfolded_nonzeros};

const MODEL: &str = "iclr19";

/// Which MAC count prices the compute energy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Evaluator {
    /// `N_MAC = P·‖W‖₀` for conv layers: an upper bound, linear in the nonzero weights; what the
    /// budget, the normaliser and the projection use.
    #[default]
    Relaxed,
    /// `N_MAC` = the (nonzero weight, real unmasked input) pairs that meet; needs a weight bitmap.
    Exact,
}

impl Evaluator {
    /// `relaxed` or `exact`.
    pub fn name(self) -> &'static str {
        match self {
            Evaluator::Relaxed => "relaxed",
            Evaluator::Exact => "exact",
        }
    }
}

/// Input-side energy `E_X` of one layer (independent of the weights).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InputEnergy {
    /// Cache reads of unfolded inputs.
    pub cache: f64,
    /// RF reads of unfolded inputs.
    pub rf: f64,
    /// DRAM reads of the input map, row overlap included.
    pub dram_reads: f64,
    /// DRAM writes of the outputs.
    pub output_write: f64,
    /// Nonzero input positions `‖X‖₀`.
    pub nonzero_inputs: u64,
    /// Unfolded-input nonzeros `U` (conv; `‖X‖₀` for FC).
    pub unfolded: u64,
    /// Inputs fetched twice because cache batches overlap (conv), or FC inputs beyond the cache.
    pub overlap: u64,
}

impl InputEnergy {
    /// `E_X`.
    pub fn total(&self) -> f64 {
        self.cache + self.rf + self.dram_reads + self.output_write
    }
}

/// Weight energy `E_W` of one layer by level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightEnergy {
    /// DRAM fetches.
    pub dram: f64,
    /// Cache reads.
    pub cache: f64,
    /// RF reads.
    pub rf: f64,
}

impl WeightEnergy {
    /// `E_W`.
    pub fn total(&self) -> f64 {
        self.dram + self.cache + self.rf
    }
}

/// One layer priced by the ICLR'19 model, with the intermediate counts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Iclr19Layer {
    /// `E_X`.
    pub input: InputEnergy,
    /// `E_W`.
    pub weight: WeightEnergy,
    /// `E_C`.
    pub compute: f64,
    /// `‖W‖₀`.
    pub nonzero_weights: u64,
    /// `N_MAC` under the evaluator.
    pub macs: u64,
}

impl Iclr19Layer {
    /// `E_X + E_W + E_C`.
    pub fn total(&self) -> f64 {
        self.input.total() + self.weight.total() + self.compute
    }

    /// The level × operand breakdown of docs/energy-models.md A.5.
    pub fn to_layer_energy(&self) -> LayerEnergy {
        let mut e = LayerEnergy {
            compute: self.compute,
            nonzero_weights: self.nonzero_weights,
            effective_macs: self.macs as f64,
            ..LayerEnergy::default()
        };
        e.add(Level::Buffer, Operand::Input, self.input.cache);
        e.add(Level::Rf, Operand::Input, self.input.rf);
        e.add(Level::Dram, Operand::Input, self.input.dram_reads);
        e.add(Level::Dram, Operand::Output, self.input.output_write);
        e.add(Level::Dram, Operand::Weight, self.weight.dram);
        e.add(Level::Buffer, Operand::Weight, self.weight.cache);
        e.add(Level::Rf, Operand::Weight, self.weight.rf);
        e
    }
}

/// The ICLR'19 model: a validated [`SystolicArray`] and an [`Evaluator`].
///
/// ```
/// use energy_model::iclr19::Iclr19;
/// use tensor_core::{ConvParams, EnergyModel, LayerGeometry, LayerSparsity, Precision};
///
/// // docs/energy-models.md A.7, tiny layer with p = 0: E_X 5,088 + E_W 3,780 + E_C 216.
/// let g = LayerGeometry::conv([1, 4, 4], 2, ConvParams::square(3))?;
/// let e = Iclr19::paper().layer_energy(&g, &LayerSparsity::dense(), Precision::default())?;
/// assert_eq!(e.total(), 9_084.0);
/// # Ok::<(), tensor_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Iclr19 {
    hardware: SystolicArray,
    evaluator: Evaluator,
}

impl Iclr19 {
    /// The paper's array with the relaxed evaluator.
    pub fn paper() -> Self {
        Self::new(SystolicArray::iclr19(), Evaluator::Relaxed)
    }

    /// A model on the given hardware.
    pub fn new(hardware: SystolicArray, evaluator: Evaluator) -> Self {
        Self {
            hardware,
            evaluator,
        }
    }

    /// The same hardware with another evaluator.
    pub fn with_evaluator(self, evaluator: Evaluator) -> Self {
        Self { evaluator, ..self }
    }

    /// The hardware parameters.
    pub fn hardware(&self) -> &SystolicArray {
        &self.hardware
    }

    /// The evaluator.
    pub fn evaluator(&self) -> Evaluator {
        self.evaluator
    }

    /// Input energy `E_X` (A.3 conv, A.4 FC) for the given input support.
    pub fn input_energy(&self, geometry: &LayerGeometry, inputs: &Support) -> Result<InputEnergy> {
        let hw = &self.hardware;
        let g = geometry;
        let d = g.out_channels() as u64;
        match g.kind() {
            LayerKind::Conv => {
                let x = InputSupport::of(MODEL, g, inputs)?;
                let nonzero_inputs = x.nonzeros(g);
                let unfolded = unfolded_nonzeros(g, x);
                let overlap = row_overlap(
                    &x.row_counts(g),
                    g.padding().0,
                    g.kernel().0,
                    g.stride().0,
                    hw.input_cache,
                )?;
                let dpg = d / g.groups() as u64;
                let p = g.out_positions() as u64;
                Ok(InputEnergy {
                    cache: (unfolded * dpg.div_ceil(hw.cols as u64)) as f64 * hw.e_cache,
                    rf: (unfolded * dpg) as f64 * hw.e_rf,
                    dram_reads: (nonzero_inputs + overlap) as f64 * hw.e_mem,
                    output_write: (d * p) as f64 * hw.e_mem,
                    nonzero_inputs,
                    unfolded,
                    overlap,
                })
            }
            LayerKind::Fc => {
                if !matches!(inputs, Support::Dense)
                    && !matches!(inputs, Support::Density(x) if x.get() == 1.0)
                {
                    return Err(Error::Support {
                        model: MODEL,
                        kind: g.kind(),
                        operand: Operand::Input,
                        given: support_name(inputs),
                        reason: "FC layers are never masked in this model",
                    });
                }
                let x = g.in_features() as u64;
                let s1 = hw.input_cache as u64;
                let groups = d.div_ceil(hw.cols as u64);
                // Inputs beyond the cache are re-read once per group of n output neurons.
                let beyond = x.saturating_sub(s1);
                Ok(InputEnergy {
                    cache: (groups * x) as f64 * hw.e_cache,
                    rf: (d * x) as f64 * hw.e_rf,
                    dram_reads: (x.min(s1) + groups * beyond) as f64 * hw.e_mem,
                    output_write: d as f64 * hw.e_mem,
                    nonzero_inputs: x,
                    unfolded: x,
                    overlap: (groups - 1) * beyond,
                })
            }
        }
    }

    /// Weight energy `E_W` of `nonzero` weights: piecewise linear, `β_in` per weight up to the
    /// weight cache, `β_out` beyond it (conv); `β_fc` per weight (FC).
    pub fn weight_energy(&self, geometry: &LayerGeometry, nonzero: u64) -> WeightEnergy {
        let hw = &self.hardware;
        match geometry.kind() {
            LayerKind::Conv => {
                let p = geometry.out_positions() as u64;
                let groups = p.div_ceil(hw.rows as u64);
                let cached = nonzero.min(hw.weight_cache as u64);
                let tail = nonzero - cached;
                WeightEnergy {
                    dram: (cached + groups * tail) as f64 * hw.e_mem,
                    cache: (groups * nonzero) as f64 * hw.e_cache,
                    rf: (p * nonzero) as f64 * hw.e_rf,
                }
            }
            LayerKind::Fc => WeightEnergy {
                dram: nonzero as f64 * hw.e_mem,
                cache: nonzero as f64 * hw.e_cache,
                rf: nonzero as f64 * hw.e_rf,
            },
        }
    }

    /// `N_MAC` under this model's evaluator.
    pub fn macs(&self, geometry: &LayerGeometry, sparsity: &LayerSparsity) -> Result<u64> {
        let nonzero = sparsity.weights.nonzeros(geometry.weights())?;
        match (geometry.kind(), self.evaluator) {
            (LayerKind::Fc, _) => Ok(nonzero),
            (LayerKind::Conv, Evaluator::Relaxed) => Ok(geometry.out_positions() as u64 * nonzero),
            (LayerKind::Conv, Evaluator::Exact) => {
                let x = InputSupport::of(MODEL, geometry, &sparsity.inputs)?;
                exact_conv_macs(MODEL, geometry, &sparsity.weights, x)
            }
        }
    }

    /// One layer with every intermediate count. Only 16-bit operands are priced: the model has
    /// no notion of width.
    pub fn layer(&self, geometry: &LayerGeometry, sparsity: &LayerSparsity) -> Result<Iclr19Layer> {
        let input = self.input_energy(geometry, &sparsity.inputs)?;
        let nonzero_weights = sparsity.weights.nonzeros(geometry.weights())?;
        let weight = self.weight_energy(geometry, nonzero_weights);
        let macs = self.macs(geometry, sparsity)?;
        Ok(Iclr19Layer {
            input,
            weight,
            compute: macs as f64 * self.hardware.e_mac,
            nonzero_weights,
            macs,
        })
    }

    /// Linearised per-weight costs (A.6) with the inputs fixed: `fixed = E_X`, `κ_in = β_in +
    /// e_mac·P`, `κ_out = κ_in + (⌈P/m⌉ − 1)·e_mem` (conv), `κ = β_fc + e_mac` (FC). Always the
    /// relaxed energy, whatever the evaluator, because only it is linear in the weights.
    pub fn costs(&self, geometry: &LayerGeometry, inputs: &Support) -> Result<WeightCosts> {
        let fixed = self.input_energy(geometry, inputs)?.total();
        let hw = &self.hardware;
        let (kappa_in, kappa_out) = match geometry.kind() {
            LayerKind::Conv => {
                let p = geometry.out_positions() as f64;
                let groups = geometry.out_positions().div_ceil(hw.rows) as f64;
                let beta_in = hw.e_mem + groups * hw.e_cache + p * hw.e_rf;
                let kin = beta_in + hw.e_mac * p;
                (kin, kin + (groups - 1.0) * hw.e_mem)
            }
            LayerKind::Fc => {
                let k = hw.e_mem + hw.e_cache + hw.e_rf + hw.e_mac;
                (k, k)
            }
        };
        Ok(WeightCosts {
            fixed,
            kappa_in,
            kappa_out,
            cached: hw.weight_cache,
        })
    }

    /// Dense energy and floor of a network (A.5): every weight nonzero and no input mask, then
    /// every weight zero. Fix it once at the start of a run.
    pub fn normalization(&self, geometries: &[LayerGeometry]) -> Result<Normalization> {
        let relaxed = self.with_evaluator(Evaluator::Relaxed);
        let (mut dense, mut floor) = (0.0, 0.0);
        for g in geometries {
            let l = relaxed.layer(g, &LayerSparsity::dense())?;
            dense += l.total();
            floor += l.input.total();
        }
        Ok(Normalization {
            dense,
            floor_energy: floor,
        })
    }
}

fn support_name(s: &Support) -> &'static str {
    match s {
        Support::Dense => "dense",
        Support::Density(_) => "density",
        Support::Bitmap(_) => "bitmap",
    }
}

fn check_precision(precision: Precision) -> Result<()> {
    for (operand, bits) in [
        (Operand::Weight, precision.weight_bits),
        (Operand::Input, precision.input_bits),
        (Operand::Output, precision.output_bits),
    ] {
        if bits != 16 {
            return Err(Error::BitWidth {
                model: MODEL,
                operand,
                bits,
                expected: "16 (the model prices 16-bit values only)",
            });
        }
    }
    Ok(())
}

/// The dense energy `E_dense` and the weight-independent energy `Σ E_X` of a network, for
/// normalised energies and budgets (docs/energy-models.md A.5).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// `E_dense`: relaxed energy with every weight nonzero and no mask.
    pub dense: f64,
    /// `Σ E_X` without masks: the energy with every weight zero.
    pub floor_energy: f64,
}

impl Normalization {
    /// Floor `Σ E_X / E_dense`: the smallest reachable relative energy.
    pub fn floor(&self) -> f64 {
        self.floor_energy / self.dense
    }

    /// `energy / E_dense`.
    pub fn relative(&self, energy: f64) -> f64 {
        energy / self.dense
    }

    /// Absolute budget for a relative one. A budget below the floor is
    /// [`Error::BudgetInfeasible`] (the reference code raises it to the floor silently); a budget
    /// that is not finite and positive is [`Error::Config`].
    pub fn absolute_budget(&self, relative: f64) -> Result<f64> {
        if !relative.is_finite() || relative <= 0.0 {
            return Err(Error::Config {
                field: "relative budget",
                reason: format!("{relative} is not a finite positive fraction"),
            });
        }
        if relative < self.floor() {
            return Err(Error::BudgetInfeasible {
                budget: relative,
                floor: self.floor(),
            });
        }
        Ok(relative * self.dense)
    }
}

impl EnergyModel for Iclr19 {
    fn name(&self) -> String {
        format!("{MODEL}/{} batch 1", self.evaluator.name())
    }

    fn unit(&self) -> EnergyUnit {
        EnergyUnit::RfAccess
    }

    fn layer_energy(
        &self,
        geometry: &LayerGeometry,
        sparsity: &LayerSparsity,
        precision: Precision,
    ) -> tensor_core::Result<LayerEnergy> {
        check_precision(precision)?;
        Ok(self.layer(geometry, sparsity)?.to_layer_energy())
    }
}

impl WeightCostModel for Iclr19 {
    fn weight_costs(
        &self,
        geometry: &LayerGeometry,
        inputs: &Support,
    ) -> tensor_core::Result<WeightCosts> {
        Ok(self.costs(geometry, inputs)?)
    }
}

#[cfg(test)]
mod tests;
