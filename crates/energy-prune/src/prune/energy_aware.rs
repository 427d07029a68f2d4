//! The energy-aware procedure (`docs/energy-aware-pruning.md` §2): layers in order of their
//! current energy, each pruned at the largest ρ its accuracy budget allows by removal,
//! restoration and a closed-form refit, then the global fine-tuning.

use rayon::prelude::*;
use tensor_core::{EvalStats, LayerInfo, Observer};

use super::calibration::{LocalData, calibration_images, local_data, measure};
use super::weights::{host, mask_of, snapshot, write};
use super::{
    LayerOutcome, Method, PruneOutcome, PruneRun, RatioTrial, evaluate, fine_tune, layer_energies,
};
use crate::config::{ActivationDensity, EnergyPruneConfig, RatioSearch};
use crate::error::{Error, Result};
use crate::restore::{RestoreRule, SolveOptions};
use crate::schedule::next_layer;

/// What the layer loop records about a processed layer.
#[derive(Clone)]
struct Processed {
    at_selection: f64,
    network_after: f64,
    allowed: f64,
    accuracy: f64,
    ratio: f64,
    restored: u64,
    trials: Vec<RatioTrial>,
}

/// Energy-aware pruning: the energy-ordered layer loop of spec §2 followed by global
/// fine-tuning with frozen masks.
pub fn prune_energy_aware(
    run: PruneRun<'_>,
    config: &EnergyPruneConfig,
    observer: &mut dyn Observer,
) -> Result<PruneOutcome> {
    let config = config.clone().validate()?;
    let net = run.network;
    let layers = net.layers();
    let cal = calibration_images(run.calibration, config.calibration_images)?;
    let original = snapshot(layers)?;
    let accuracy_original = evaluate(net, run.val)?.accuracy;
    let mut densities = measure(net, &cal, config.activation_density)?;
    let mut energies = layer_energies(run.model, net, densities.as_deref())?;
    let energy_before_layers = energies.clone();
    let dense_total: f64 = energies.iter().sum();
    let mut done = vec![false; layers.len()];
    let mut order = Vec::with_capacity(layers.len());
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
        let data = local_data(net, layer, &original, &cal, &config)?;
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
            let c = candidate(&data, layer, &w0, b0.as_deref(), ratio, &config, opts)?;
            write(layer, &c.weights, c.bias.as_deref())?;
            let acc = evaluate(net, run.val)?.accuracy;
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
        let val = evaluate(net, run.val)?;
        observer.on_eval(&EvalStats {
            epoch: step,
            split: format!("val after pruning {}", layer.name),
            accuracy,
            loss: val.loss,
            samples: val.samples,
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
        if config.activation_density == ActivationDensity::Measured {
            densities = measure(net, &cal, config.activation_density)?;
        }
        energies = layer_energies(run.model, net, densities.as_deref())?;
        per_layer[l] = Some(Processed {
            network_after: energies.iter().sum(),
            ..processed
        });
    }
    let accuracy_pruned = accuracy;
    let accuracy_final = fine_tune(
        net,
        &run.params,
        run.train,
        run.val,
        config.finetune,
        observer,
    )?;
    let energy_after = layer_energies(run.model, net, densities.as_deref())?;
    let mut outcomes = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let mut o = LayerOutcome {
            id: layer.id,
            name: layer.name.clone(),
            mask: mask_of(layer)?,
            ratio: 0.0,
            restored: 0,
            energy_before: energy_before_layers[i],
            energy_after: energy_after[i],
            energy_at_selection: None,
            network_energy_after: None,
            allowed_drop: None,
            accuracy_after: None,
            trials: Vec::new(),
        };
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
/// 2–4), in parallel over filters with results in filter order.
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
    let remove = ((ratio * w0.len() as f64).round() as usize).min(w0.len());
    let mut idx: Vec<usize> = (0..w0.len()).collect();
    idx.sort_by(|&a, &b| w0[a].abs().total_cmp(&w0[b].abs()).then(a.cmp(&b)));
    let mut support: Vec<bool> = w0.iter().map(|v| *v != 0.0).collect();
    for &i in &idx[..remove] {
        support[i] = false;
    }
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
