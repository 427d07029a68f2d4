//! The magnitude-pruning baseline (Han et al., NIPS 2015; `docs/energy-aware-pruning.md` §5):
//! keep the largest weights at given densities, then the same fine-tuning.

use serde::{Deserialize, Serialize};
use tensor_core::{Density, Observer};

use super::weights::{host, write};
use super::{LayerOutcome, Method, PruneOutcome, PruneRun, evaluate, fine_tune, layer_energies};
use crate::config::FineTuneConfig;
use crate::error::{Error, Result};

/// Target densities of the magnitude baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "density")]
pub enum MagnitudeTarget {
    /// Fraction of weights kept in each layer (network order).
    PerLayer(Vec<Density>),
    /// Fraction of all weights kept, ranked across layers by magnitude.
    Global(Density),
}

/// The magnitude-pruning baseline (Han et al., NIPS 2015): keep the largest weights at the
/// given densities (ties by index), then the same global fine-tuning with frozen masks. Energies
/// are priced with dense activations, like [`ActivationDensity::Dense`].
///
/// [`ActivationDensity::Dense`]: crate::ActivationDensity::Dense
pub fn prune_magnitude(
    run: PruneRun<'_>,
    target: &MagnitudeTarget,
    finetune: FineTuneConfig,
    observer: &mut dyn Observer,
) -> Result<PruneOutcome> {
    let finetune = finetune.validate()?;
    let net = run.network;
    let layers = net.layers();
    let accuracy_original = evaluate(net, run.val)?.accuracy;
    let energy_before = layer_energies(run.model, net, None)?;
    let weights = layers
        .iter()
        .map(|l| host(l.weight.as_tensor()))
        .collect::<Result<Vec<_>>>()?;
    let keep: Vec<Vec<bool>> = match target {
        MagnitudeTarget::PerLayer(d) => {
            if d.len() != layers.len() {
                return Err(Error::Dimension {
                    what: "per-layer densities",
                    expected: layers.len(),
                    got: d.len(),
                });
            }
            d.iter()
                .zip(&weights)
                .map(|(d, w)| {
                    let k = (d.get() * w.len() as f64).round() as usize;
                    top_k(w.iter().map(|v| v.abs()), k, w.len())
                })
                .collect()
        }
        MagnitudeTarget::Global(d) => {
            let total: usize = weights.iter().map(Vec::len).sum();
            let k = (d.get() * total as f64).round() as usize;
            let flat = top_k(weights.iter().flatten().map(|v| v.abs()), k, total);
            let mut out = Vec::new();
            let mut at = 0;
            for w in &weights {
                out.push(flat[at..at + w.len()].to_vec());
                at += w.len();
            }
            out
        }
    };
    let mut outcomes = Vec::new();
    for ((layer, w), k) in layers.iter().zip(&weights).zip(&keep) {
        let pruned: Vec<f64> = w
            .iter()
            .zip(k)
            .map(|(&v, &k)| if k { v } else { 0.0 })
            .collect();
        write(layer, &pruned, None)?;
        let removed = k.iter().filter(|k| !**k).count();
        outcomes.push((layer, removed as f64 / w.len().max(1) as f64));
    }
    let accuracy_pruned = evaluate(net, run.val)?.accuracy;
    let accuracy_final = fine_tune(net, &run.params, run.train, run.val, finetune, observer)?;
    let energy_after = layer_energies(run.model, net, None)?;
    let layer_outcomes = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, (layer, ratio))| {
            Ok(LayerOutcome {
                ratio,
                ..LayerOutcome::unsearched(layer, energy_before[i], energy_after[i])?
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PruneOutcome {
        method: Method::Magnitude,
        energy_model: run.model.name(),
        unit: run.model.unit(),
        layers: layer_outcomes,
        order: layers.iter().map(|l| l.id).collect(),
        energy_before: energy_before.iter().sum(),
        energy_after: energy_after.iter().sum(),
        accuracy_original,
        accuracy_pruned,
        accuracy_final,
        max_accuracy_drop: None,
        budget_split: None,
        within_budget: true,
    })
}

/// Keeps the `k` largest scores (ties to the lower index).
fn top_k(scores: impl Iterator<Item = f64>, k: usize, n: usize) -> Vec<bool> {
    let s: Vec<f64> = scores.collect();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
    let mut keep = vec![false; n];
    for &i in idx.iter().take(k) {
        keep[i] = true;
    }
    keep
}
