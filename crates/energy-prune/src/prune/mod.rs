//! The energy-aware pruning procedure (`docs/energy-aware-pruning.md` §2), the global
//! fine-tuning with frozen masks, and the magnitude-pruning baseline, with the outcome they
//! record.
//!
//! - [`prune_energy_aware`] (`energy_aware`): the energy-ordered layer loop and each layer's
//!   remove / restore / refit step;
//! - [`prune_to_energy`] (`targeted`): the same loop driven to an energy level under a second,
//!   measuring model by a bisection on the accuracy budget δ;
//! - [`prune_magnitude`] (`magnitude`): the magnitude baseline at given densities;
//! - [`fine_tune`] (`finetune`): momentum SGD with the masks re-applied after every step;
//! - `calibration`: the tap-based data collection (least-squares systems, activation
//!   densities);
//! - `weights`: moving a layer's weights between the network and host vectors.
//!
//! Decisions, each a reconstruction choice recorded in the outcome or the config:
//! - The original weights are snapshotted once; targets `Y` come from running the calibration
//!   images with the snapshot swapped in, inputs `X` from the current, partly pruned weights, so
//!   the fit also compensates earlier layers' error (spec §2 step 1). Only the prunable layers'
//!   weights and biases change during the layer loop, so one network suffices.
//! - Removal ranks a layer's weights by magnitude (ties by index); ρ is the fraction of the
//!   layer's weights removed before restoration.
//! - Restoration candidates are the weights removed in the same step that were nonzero before.
//! - A layer whose smallest tried ρ already breaks its budget keeps its weights unchanged.

mod calibration;
mod energy_aware;
mod finetune;
mod magnitude;
mod targeted;
mod weights;

use serde::{Deserialize, Serialize};
use tensor_core::tensor::Var;
use tensor_core::{
    BatchSource, Bitmap, Density, EnergyModel, EnergyUnit, Evaluation, LayerId, LayerInfo,
    LayerSparsity, LayerWorkload, Network, Precision, Support,
};

use crate::error::{Error, Result};
use crate::schedule::BudgetSplit;

#[cfg(test)]
pub(crate) use calibration::local_data;
#[cfg(test)]
pub(crate) use energy_aware::candidate;
pub use energy_aware::prune_energy_aware;
pub use finetune::fine_tune;
pub use magnitude::{MagnitudeTarget, prune_magnitude};
pub use targeted::{
    EnergyTarget, ProcessedLayer, SearchStep, TargetLayerEnergy, TargetedOutcome, prune_to_energy,
    weight_floor,
};
#[cfg(test)]
pub(crate) use weights::snapshot;

/// What a pruning run works on.
pub struct PruneRun<'a> {
    /// The trained network; pruned in place.
    pub network: &'a dyn Network,
    /// Every trainable variable of the network, for the global fine-tuning.
    pub params: Vec<Var>,
    /// The energy model (preset and batch size fixed by whoever built it); its `name()` is
    /// recorded in the outcome.
    pub model: &'a dyn EnergyModel,
    /// Calibration images (labels unused); only epoch 0 is read.
    pub calibration: &'a mut dyn BatchSource,
    /// Held-out accuracy set.
    pub val: &'a mut dyn BatchSource,
    /// Training set for the global fine-tuning.
    pub train: &'a mut dyn BatchSource,
}

/// Which procedure produced an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Energy-ordered layer loop with restoration and local least squares.
    EnergyAware,
    /// Magnitude pruning at given densities (Han et al.).
    Magnitude,
}

/// One ρ tried on a layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioTrial {
    /// Fraction of the layer's weights removed before restoration.
    pub ratio: f64,
    /// Weights re-admitted by restoration.
    pub restored: u64,
    /// Nonzero weights after the local fit.
    pub nonzero_weights: u64,
    /// Validation accuracy with this candidate.
    pub accuracy: f64,
    /// Whether the total drop stayed within the layer's allowance.
    pub within_budget: bool,
}

/// What happened to one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerOutcome {
    /// The layer.
    pub id: LayerId,
    /// Its name.
    pub name: String,
    /// Nonzero pattern of the final weights (`[d, c/g, r_h, r_w]` or `[d, in]`).
    pub mask: Bitmap,
    /// Accepted ρ (0 when nothing was accepted; the magnitude baseline's removed fraction).
    pub ratio: f64,
    /// Weights re-admitted at the accepted ρ.
    pub restored: u64,
    /// Energy before pruning, under the run's model.
    pub energy_before: f64,
    /// Energy of the final network.
    pub energy_after: f64,
    /// Energy when the layer was picked (energy-aware runs).
    pub energy_at_selection: Option<f64>,
    /// Network energy right after this layer was accepted (energy-aware runs); with dense
    /// activation densities it never increases along [`PruneOutcome::order`].
    pub network_energy_after: Option<f64>,
    /// Total accuracy drop allowed after this layer (energy-aware runs).
    pub allowed_drop: Option<f64>,
    /// Validation accuracy after this layer was accepted (energy-aware runs).
    pub accuracy_after: Option<f64>,
    /// Every ρ tried, in order.
    pub trials: Vec<RatioTrial>,
}

impl LayerOutcome {
    /// `layer`'s outcome with the mask of its current weights and the given energies, before
    /// any search records a ratio, restoration or trial.
    fn unsearched(layer: &LayerInfo, energy_before: f64, energy_after: f64) -> Result<Self> {
        Ok(LayerOutcome {
            id: layer.id,
            name: layer.name.clone(),
            mask: weights::mask_of(layer)?,
            ratio: 0.0,
            restored: 0,
            energy_before,
            energy_after,
            energy_at_selection: None,
            network_energy_after: None,
            allowed_drop: None,
            accuracy_after: None,
            trials: Vec::new(),
        })
    }
}

/// Result of [`prune_energy_aware`] or [`prune_magnitude`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PruneOutcome {
    /// The procedure.
    pub method: Method,
    /// The energy model's name (preset and batch included).
    pub energy_model: String,
    /// Unit of every energy figure.
    pub unit: EnergyUnit,
    /// Per layer, in network order.
    pub layers: Vec<LayerOutcome>,
    /// Order the layers were processed in (network order for the baseline).
    pub order: Vec<LayerId>,
    /// Network energy before pruning.
    pub energy_before: f64,
    /// Network energy at the end (fine-tuning keeps the masks, so also after the layer loop).
    pub energy_after: f64,
    /// Validation accuracy of the original network.
    pub accuracy_original: f64,
    /// Validation accuracy before global fine-tuning.
    pub accuracy_pruned: f64,
    /// Validation accuracy at the end.
    pub accuracy_final: f64,
    /// The drop budget δ (energy-aware runs).
    pub max_accuracy_drop: Option<f64>,
    /// The budget split (energy-aware runs).
    pub budget_split: Option<BudgetSplit>,
    /// Whether `accuracy_original − accuracy_final ≤ δ` (always true for the baseline).
    pub within_budget: bool,
}

impl PruneOutcome {
    /// Nonzero weights of the final network.
    pub fn nonzero_weights(&self) -> u64 {
        self.layers.iter().map(|l| l.mask.count_ones()).sum()
    }

    /// `energy_before / energy_after`.
    pub fn energy_reduction(&self) -> f64 {
        self.energy_before / self.energy_after
    }
}

/// Per-layer energies of `net`'s current weights (exact bitmaps) under `model`, with the given
/// input densities, one per layer in network order (dense when `None`; another count is
/// [`Error::Dimension`]).
pub fn layer_energies(
    model: &dyn EnergyModel,
    net: &dyn Network,
    input_densities: Option<&[Density]>,
) -> Result<Vec<f64>> {
    price(model, net, input_densities, |_, l| weights::mask_of(l))
}

/// Per-layer energies under `model` of `net`'s layers with the weight bitmaps `weights` gives
/// (by layer index) and the given input densities: the workloads of [`layer_energies`].
fn price(
    model: &dyn EnergyModel,
    net: &dyn Network,
    input_densities: Option<&[Density]>,
    weights: impl Fn(usize, &LayerInfo) -> Result<Bitmap>,
) -> Result<Vec<f64>> {
    let layers = net.layers();
    if let Some(d) = input_densities
        && d.len() != layers.len()
    {
        return Err(Error::Dimension {
            what: "input densities",
            expected: layers.len(),
            got: d.len(),
        });
    }
    let workloads = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let inputs = match input_densities {
                Some(d) => Support::Density(d[i]),
                None => Support::Dense,
            };
            Ok(LayerWorkload {
                id: l.id,
                name: l.name.clone(),
                geometry: l.geometry,
                sparsity: LayerSparsity {
                    weights: Support::Bitmap(weights(i, l)?),
                    inputs,
                    outputs: Support::Dense,
                },
                precision: Precision::default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let priced = model.network_energy(&workloads)?;
    Ok(priced.layers.iter().map(|(_, _, e)| e.total()).collect())
}

/// The validation evaluation of every step: [`tensor_core::evaluate`] with the network's
/// evaluation-mode forward pass; an empty source is [`tensor_core::Error::EmptyEvaluation`].
fn evaluate(net: &dyn Network, val: &mut dyn BatchSource) -> Result<Evaluation> {
    Ok(tensor_core::evaluate("validation source", val, |xs| {
        net.forward_t(xs, false)
    })?)
}
