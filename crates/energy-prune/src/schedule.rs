//! The energy-ordered layer schedule and the split of the accuracy budget across layers
//! (`docs/energy-aware-pruning.md` §1.2 and §2 "Order", "Accuracy budget split").

use serde::{Deserialize, Serialize};

/// How the total accuracy-drop budget δ is shared by the `L` layers (the paper leaves this
/// open; every option is a reconstruction choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetSplit {
    /// Each layer may add at most δ/L to the drop.
    Uniform,
    /// After the `l`-th processed layer (1-based) the total drop may be at most δ·l/L, so
    /// budget a layer leaves unused passes to the next ones. The default of the reconstruction.
    Cumulative,
    /// Each layer may add at most δ times its share of the dense network's energy.
    EnergyWeighted,
}

impl std::fmt::Display for BudgetSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BudgetSplit::Uniform => "uniform",
            BudgetSplit::Cumulative => "cumulative",
            BudgetSplit::EnergyWeighted => "energy-weighted",
        })
    }
}

impl BudgetSplit {
    /// The largest total accuracy drop (original minus current accuracy) allowed once the
    /// `processed`-th layer (1-based) of `layers` is accepted.
    ///
    /// `drop_before` is the total drop before this layer and `energy_share` the layer's share
    /// of the dense energy (used by [`BudgetSplit::EnergyWeighted`] only).
    pub fn allowed_total_drop(
        self,
        delta: f64,
        processed: usize,
        layers: usize,
        drop_before: f64,
        energy_share: f64,
    ) -> f64 {
        let l = layers.max(1) as f64;
        match self {
            BudgetSplit::Uniform => drop_before + delta / l,
            BudgetSplit::Cumulative => delta * processed.min(layers) as f64 / l,
            BudgetSplit::EnergyWeighted => drop_before + delta * energy_share,
        }
    }
}

/// The next layer to prune: the unprocessed layer of highest current energy, ties going to the
/// lower index (spec §7 R5). `None` once every layer is done. NaN energies rank lowest.
pub fn next_layer(energies: &[f64], done: &[bool]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &e) in energies.iter().enumerate() {
        if done.get(i).copied().unwrap_or(false) || e.is_nan() {
            continue;
        }
        if best.is_none_or(|b| e > energies[b]) {
            best = Some(i);
        }
    }
    best.or_else(|| (0..energies.len()).find(|&i| !done.get(i).copied().unwrap_or(false)))
}

/// The order a fixed energy vector implies (no re-estimation): highest first, ties by index.
pub fn energy_order(energies: &[f64]) -> Vec<usize> {
    let mut done = vec![false; energies.len()];
    let mut order = Vec::with_capacity(energies.len());
    while let Some(i) = next_layer(energies, &done) {
        done[i] = true;
        order.push(i);
    }
    order
}
