//! The energy-aware procedure (`docs/energy-aware-pruning.md` §2): layers in order of their
//! current energy, each pruned at the largest ρ its accuracy budget allows by removal,
//! restoration and a closed-form refit, then the global fine-tuning.
//!
//! The procedure is split in three so that [`prune_energy_aware`] and the energy-targeted
//! search ([`crate::prune_to_energy`]) share it: [`start`] measures the unpruned network once,
//! [`layer_loop`] runs the energy-ordered loop of spec §2 at the δ of the config it is given,
//! and [`finish`] fine-tunes and assembles the [`PruneOutcome`].

use rayon::prelude::*;
use tensor_core::tensor::Tensor;
use tensor_core::{
    BatchSource, Density, EnergyModel, EvalStats, LayerId, LayerInfo, Network, Observer,
};

use super::calibration::{LocalData, calibration_images, local_data, measure};
use super::weights::{Snapshot, host, snapshot, write};
use super::{
    LayerOutcome, Method, PruneOutcome, PruneRun, RatioTrial, evaluate, fine_tune, layer_energies,
};
use crate::config::{ActivationDensity, EnergyPruneConfig, RatioSearch};
use crate::error::{Error, Result};
use crate::restore::{RestoreRule, SolveOptions};
use crate::schedule::next_layer;

/// What the layer loop records about a processed layer.
#[derive(Clone)]
pub(super) struct Processed {
    at_selection: f64,
    network_after: f64,
    allowed: f64,
    accuracy: f64,
    pub(super) ratio: f64,
    restored: u64,
    trials: Vec<RatioTrial>,
}

/// Everything measured on the unpruned network before the layer loop.
pub(super) struct Start {
    /// The calibration images.
    pub(super) cal: Vec<Tensor>,
    /// The original weights and biases (the targets' source, and what a rerun restores).
    pub(super) original: Snapshot,
    /// Validation accuracy of the original network.
    pub(super) accuracy_original: f64,
    /// Input densities of the original network (`None` when priced dense).
    pub(super) densities: Option<Vec<Density>>,
    /// Per-layer energies of the original network under the ordering model.
    pub(super) energies: Vec<f64>,
}

/// What one pass of the layer loop leaves besides the pruned weights in the network.
pub(super) struct Pruned {
    /// Layers in the order they were processed.
    pub(super) order: Vec<LayerId>,
    /// Their indices in the network's layer list, in the same order.
    pub(super) indices: Vec<usize>,
    /// Per layer in network order; `None` for a layer the loop never reached.
    pub(super) per_layer: Vec<Option<Processed>>,
    /// Validation accuracy after the last accepted layer.
    pub(super) accuracy: f64,
    /// Input densities after the last layer (`None` when priced dense).
    pub(super) densities: Option<Vec<Density>>,
}

/// Energy-aware pruning: the energy-ordered layer loop of spec §2 followed by global
/// fine-tuning with frozen masks.
pub fn prune_energy_aware(
    mut run: PruneRun<'_>,
    config: &EnergyPruneConfig,
    observer: &mut dyn Observer,
) -> Result<PruneOutcome> {
    let config = config.clone().validate()?;
    let start = start(&mut run, &config)?;
    let pruned = layer_loop(run.network, run.model, run.val, &start, &config, observer)?;
    finish(&mut run, &start, pruned, &config, observer)
}

/// Reads the calibration images, snapshots the original weights, evaluates the original
/// network and prices it under the run's model with the configured input densities.
pub(super) fn start(run: &mut PruneRun<'_>, config: &EnergyPruneConfig) -> Result<Start> {
    let net = run.network;
    let cal = calibration_images(run.calibration, config.calibration_images)?;
    let original = snapshot(net.layers())?;
    let accuracy_original = evaluate(net, run.val)?.accuracy;
    let densities = measure(net, &cal, config.activation_density)?;
    let energies = layer_energies(run.model, net, densities.as_deref())?;
    Ok(Start {
        cal,
        original,
        accuracy_original,
        densities,
        energies,
    })
}

/// The layer loop of spec §2 on the network as `start` measured it, at the budget δ
/// `config.max_accuracy_drop`: the unprocessed layer of highest current energy under `model`
/// is pruned at the largest ρ its share of δ allows, until every layer is done. No
/// fine-tuning.
pub(super) fn layer_loop(
    net: &dyn Network,
    model: &dyn EnergyModel,
    val: &mut dyn BatchSource,
    start: &Start,
    config: &EnergyPruneConfig,
    observer: &mut dyn Observer,
) -> Result<Pruned> {
    let layers = net.layers();
    let cal = &start.cal;
    let original = &start.original;
    let accuracy_original = start.accuracy_original;
    let mut densities = start.densities.clone();
    let mut energies = start.energies.clone();
    let energy_before_layers = &start.energies;
    let dense_total: f64 = energies.iter().sum();
    let mut done = vec![false; layers.len()];
    let mut order = Vec::with_capacity(layers.len());
    let mut indices = Vec::with_capacity(layers.len());
    let mut per_layer: Vec<Option<Processed>> = vec![None; layers.len()];
    let mut accuracy = accuracy_original;
    let solve = |rows: usize| SolveOptions {
        lambda: config.ridge_lambda * rows as f64,
        max_condition: config.max_condition,
    };
    for step in 0..layers.len() {
        let Some(l) = next_layer(&energies, &done) else {
            break;
        };
        let layer = &layers[l];
        let at_selection = energies[l];
        let allowed = config.budget_split.allowed_total_drop(
            config.max_accuracy_drop,
            step + 1,
            layers.len(),
            accuracy_original - accuracy,
            if dense_total > 0.0 {
                energy_before_layers[l] / dense_total
            } else {
                0.0
            },
        );
        let data = local_data(net, layer, original, cal, config)?;
        let w0 = host(layer.weight.as_tensor())?;
        let b0 = layer
            .bias
            .as_ref()
            .map(|b| host(b.as_tensor()))
            .transpose()?;
        let opts = solve(data.rows);
        let mut trials = Vec::new();
        let mut best: Option<(f64, Candidate, f64)> = None;
        let mut try_ratio = |ratio: f64, trials: &mut Vec<RatioTrial>| -> Result<bool> {
            let c = candidate(&data, layer, &w0, b0.as_deref(), ratio, config, opts)?;
            write(layer, &c.weights, c.bias.as_deref())?;
            let acc = evaluate(net, val)?.accuracy;
            let ok = accuracy_original - acc <= allowed + 1e-12;
            trials.push(RatioTrial {
                ratio,
                restored: c.restored,
                nonzero_weights: c.weights.iter().filter(|v| **v != 0.0).count() as u64,
                accuracy: acc,
                within_budget: ok,
            });
            if ok && best.as_ref().is_none_or(|(r, _, _)| ratio > *r) {
                best = Some((ratio, c, acc));
            }
            Ok(ok)
        };
        match config.ratio_search {
            RatioSearch::Step { step, max_ratio } => {
                let mut k = 1usize;
                loop {
                    // Rounded so that recorded ratios read 0.3, not 0.30000000000000004.
                    let ratio = ((k as f64 * step * 1e9).round() / 1e9).min(max_ratio);
                    if !try_ratio(ratio, &mut trials)? || ratio >= max_ratio {
                        break;
                    }
                    k += 1;
                }
            }
            RatioSearch::Bisection {
                max_ratio,
                iterations,
            } => {
                if !try_ratio(max_ratio, &mut trials)? {
                    let (mut lo, mut hi) = (0.0, max_ratio);
                    for _ in 0..iterations {
                        let mid = 0.5 * (lo + hi);
                        if try_ratio(mid, &mut trials)? {
                            lo = mid;
                        } else {
                            hi = mid;
                        }
                    }
                }
            }
        }
        let (ratio, restored) = match best {
            Some((ratio, c, acc)) => {
                write(layer, &c.weights, c.bias.as_deref())?;
                accuracy = acc;
                (ratio, c.restored)
            }
            None => {
                write(layer, &w0, b0.as_deref())?;
                (0.0, 0)
            }
        };
        let eval = evaluate(net, val)?;
        observer.on_eval(&EvalStats {
            epoch: step,
            split: format!("val after pruning {}", layer.name),
            accuracy,
            loss: eval.loss,
            samples: eval.samples,
        });
        let processed = Processed {
            at_selection,
            network_after: 0.0,
            allowed,
            accuracy,
            ratio,
            restored,
            trials,
        };
        done[l] = true;
        order.push(layer.id);
        indices.push(l);
        if config.activation_density == ActivationDensity::Measured {
            densities = measure(net, cal, config.activation_density)?;
        }
        energies = layer_energies(model, net, densities.as_deref())?;
        per_layer[l] = Some(Processed {
            network_after: energies.iter().sum(),
            ..processed
        });
    }
    Ok(Pruned {
        order,
        indices,
        per_layer,
        accuracy,
        densities,
    })
}

/// The global fine-tuning of the network the layer loop left (spec §2 "Global step"), then the
/// outcome under the run's model, at the δ of `config`.
pub(super) fn finish(
    run: &mut PruneRun<'_>,
    start: &Start,
    pruned: Pruned,
    config: &EnergyPruneConfig,
    observer: &mut dyn Observer,
) -> Result<PruneOutcome> {
    let net = run.network;
    let layers = net.layers();
    let Pruned {
        order,
        mut per_layer,
        accuracy,
        densities,
        ..
    } = pruned;
    let accuracy_original = start.accuracy_original;
    let energy_before_layers = &start.energies;
    let dense_total: f64 = energy_before_layers.iter().sum();
    let accuracy_pruned = accuracy;
    let accuracy_final = fine_tune(
        net,
        &run.params,
        &mut *run.train,
        &mut *run.val,
        config.finetune,
        observer,
    )?;
    let energy_after = layer_energies(run.model, net, densities.as_deref())?;
    let mut outcomes = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let mut o = LayerOutcome::unsearched(layer, energy_before_layers[i], energy_after[i])?;
        if let Some(p) = per_layer[i].take() {
            o.energy_at_selection = Some(p.at_selection);
            o.network_energy_after = Some(p.network_after);
            o.allowed_drop = Some(p.allowed);
            o.accuracy_after = Some(p.accuracy);
            o.ratio = p.ratio;
            o.restored = p.restored;
            o.trials = p.trials;
        }
        outcomes.push(o);
    }
    Ok(PruneOutcome {
        method: Method::EnergyAware,
        energy_model: run.model.name(),
        unit: run.model.unit(),
        layers: outcomes,
        order,
        energy_before: dense_total,
        energy_after: energy_after.iter().sum(),
        accuracy_original,
        accuracy_pruned,
        accuracy_final,
        max_accuracy_drop: Some(config.max_accuracy_drop),
        budget_split: Some(config.budget_split),
        within_budget: accuracy_original - accuracy_final <= config.max_accuracy_drop + 1e-12,
    })
}

/// One candidate for a layer at ratio ρ.
pub(crate) struct Candidate {
    pub(crate) weights: Vec<f64>,
    pub(crate) bias: Option<Vec<f64>>,
    pub(crate) restored: u64,
}

/// Remove (magnitude, ratio ρ), restore, and fit every filter in closed form (spec §2 steps
/// 2–4), in parallel over filters with results (and the first error) in filter order.
pub(crate) fn candidate(
    data: &LocalData,
    layer: &LayerInfo,
    w0: &[f64],
    b0: Option<&[f64]>,
    ratio: f64,
    config: &EnergyPruneConfig,
    opts: SolveOptions,
) -> Result<Candidate> {
    let d = layer.geometry.out_channels();
    let fan = w0.len() / d;
    if w0.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            layer: layer.id,
            what: "weights",
        });
    }
    let support = removal_support(w0, ratio);
    let per_group = d / layer.geometry.groups();
    let fits = (0..d)
        .into_par_iter()
        .map(|m| {
            let range = m * fan..(m + 1) * fan;
            let mut s = support[range.clone()].to_vec();
            let candidates: Vec<usize> = (0..fan)
                .filter(|&j| !s[j] && w0[m * fan + j] != 0.0)
                .collect();
            let rule = RestoreRule {
                threshold: config.restore.threshold,
                max_count: (config.restore.max_fraction * candidates.len() as f64).floor() as usize,
            };
            data.groups[m / per_group]
                .restore(&data.targets[m], &mut s, &candidates, opts, rule)
                .map_err(|e| Error::SingularSystem {
                    layer: layer.id,
                    filter: m,
                    cond: e.cond,
                })
        })
        // Every filter is solved before the first failure is taken, so a layer with several
        // singular filters always names the lowest one, whatever order the threads ran in.
        .collect::<Vec<Result<_>>>()
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let mut weights = Vec::with_capacity(w0.len());
    let mut restored = 0u64;
    let refit_bias = config.fit_bias && b0.is_some();
    let mut bias = b0.map(<[f64]>::to_vec);
    for (m, (fit, r)) in fits.into_iter().enumerate() {
        weights.extend_from_slice(&fit.weights);
        restored += r.len() as u64;
        if refit_bias && let Some(b) = bias.as_mut() {
            b[m] = fit.bias;
        }
    }
    Ok(Candidate {
        weights,
        bias,
        restored,
    })
}

/// The support left after removing the fraction `ratio` of a layer's weights by magnitude (spec
/// §2 step 2; ties to the lower index), before restoration: the nonzero weights minus the
/// `round(ratio·n)` smallest.
pub(super) fn removal_support(w0: &[f64], ratio: f64) -> Vec<bool> {
    let remove = ((ratio * w0.len() as f64).round() as usize).min(w0.len());
    let mut idx: Vec<usize> = (0..w0.len()).collect();
    idx.sort_by(|&a, &b| w0[a].abs().total_cmp(&w0[b].abs()).then(a.cmp(&b)));
    let mut support: Vec<bool> = w0.iter().map(|v| *v != 0.0).collect();
    for &i in &idx[..remove] {
        support[i] = false;
    }
    support
}
