//! The energy-aware pruning loop (`shared/spec/energy-aware-pruning.md` §2), the global
//! fine-tuning with frozen masks, and the magnitude-pruning baseline.
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

use std::ops::ControlFlow;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tensor_core::tensor::nn;
use tensor_core::tensor::{D, DType, Tensor, Var};
use tensor_core::{
    BatchStats, Bitmap, Density, EnergyModel, EnergyUnit, EvalStats, LayerId, LayerInfo, LayerKind,
    LayerSparsity, LayerWorkload, Mask, MomentumSgd, Network, Observer, Precision, RunStart,
    Support, Taps,
};

use crate::config::{ActivationDensity, EnergyPruneConfig, FineTuneConfig, RatioSearch};
use crate::error::{Error, Result};
use crate::restore::{LeastSquares, Matrix, RestoreRule, SolveOptions, Target};
use crate::schedule::{BudgetSplit, next_layer};

/// Batches of `(images, labels)` for one split; the source owns shuffling and must return the
/// same batch for the same `(epoch, index)` (seeded), so runs are reproducible.
pub trait BatchSource {
    /// Batches in one epoch.
    fn batches_per_epoch(&self) -> usize;
    /// Batch `index` of epoch `epoch`.
    fn batch(&mut self, epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)>;
}

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
    let accuracy_original = evaluate(net, run.val)?;
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
            let acc = evaluate(net, run.val)?;
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
        let (_, loss, samples) = evaluate_full(net, run.val)?;
        observer.on_eval(&EvalStats {
            epoch: step,
            split: format!("val after pruning {}", layer.name),
            accuracy,
            loss,
            samples,
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

/// Target densities of the magnitude baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "density")]
pub enum MagnitudeTarget {
    /// Fraction of weights kept in each layer (network order), each in [0, 1].
    PerLayer(Vec<f64>),
    /// Fraction of all weights kept, ranked across layers by magnitude, in [0, 1].
    Global(f64),
}

/// The magnitude-pruning baseline (Han et al., NIPS 2015): keep the largest weights at the
/// given densities (ties by index), then the same global fine-tuning with frozen masks. Energies
/// are priced with dense activations, like [`ActivationDensity::Dense`].
pub fn prune_magnitude(
    run: PruneRun<'_>,
    target: &MagnitudeTarget,
    finetune: FineTuneConfig,
    observer: &mut dyn Observer,
) -> Result<PruneOutcome> {
    let finetune = finetune.validate()?;
    let net = run.network;
    let layers = net.layers();
    let check = |d: f64| {
        if (0.0..=1.0).contains(&d) {
            Ok(())
        } else {
            Err(Error::Config {
                field: "magnitude density",
                reason: format!("{d} is not in [0, 1]"),
            })
        }
    };
    let accuracy_original = evaluate(net, run.val)?;
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
                .map(|(&d, w)| {
                    check(d)?;
                    let k = (d * w.len() as f64).round() as usize;
                    Ok(top_k(w.iter().map(|v| v.abs()), k, w.len()))
                })
                .collect::<Result<_>>()?
        }
        MagnitudeTarget::Global(d) => {
            check(*d)?;
            let total: usize = weights.iter().map(Vec::len).sum();
            let k = (d * total as f64).round() as usize;
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
    let accuracy_pruned = evaluate(net, run.val)?;
    let accuracy_final = fine_tune(net, &run.params, run.train, run.val, finetune, observer)?;
    let energy_after = layer_energies(run.model, net, None)?;
    let layer_outcomes = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, (layer, ratio))| {
            Ok(LayerOutcome {
                id: layer.id,
                name: layer.name.clone(),
                mask: mask_of(layer)?,
                ratio,
                restored: 0,
                energy_before: energy_before[i],
                energy_after: energy_after[i],
                energy_at_selection: None,
                network_energy_after: None,
                allowed_drop: None,
                accuracy_after: None,
                trials: Vec::new(),
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

/// Global fine-tuning (spec §2 "Global step"): momentum SGD on `params` over `train`, the
/// nonzero pattern of every prunable layer frozen by re-applying its [`Mask`] after each step,
/// so pruned weights stay exactly 0. Reports epochs, batches and evaluations to `observer` and
/// returns the final validation accuracy (the current one when `epochs` is 0).
pub fn fine_tune(
    net: &dyn Network,
    params: &[Var],
    train: &mut dyn BatchSource,
    val: &mut dyn BatchSource,
    config: FineTuneConfig,
    observer: &mut dyn Observer,
) -> Result<f64> {
    let config = config.validate()?;
    if config.epochs == 0 {
        return evaluate(net, val);
    }
    let masks = net
        .layers()
        .iter()
        .map(|l| Mask::nonzero_of(l.weight.as_tensor()))
        .collect::<tensor_core::Result<Vec<_>>>()?;
    let mut sgd = MomentumSgd::with_config(params.to_vec(), config.sgd)?;
    let per_epoch = train.batches_per_epoch();
    if per_epoch == 0 {
        return Err(Error::EmptyData {
            what: "training source",
        });
    }
    observer.on_run_start(&RunStart {
        name: "energy-prune fine-tuning".into(),
        epochs: config.epochs,
        batches_per_epoch: per_epoch,
    });
    let mut accuracy = 0.0;
    for epoch in 0..config.epochs {
        observer.on_epoch_start(epoch);
        for batch in 0..per_epoch {
            let (xs, ys) = train.batch(epoch, batch)?;
            let logits = net.forward_t(&xs, true)?;
            let loss = nn::loss::cross_entropy(&logits, &ys)?;
            let v = f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
            if !v.is_finite() {
                return Err(Error::DivergedLoss {
                    loss: v,
                    epoch,
                    batch,
                });
            }
            let grads = loss.backward()?;
            sgd.step_grads(&grads)?;
            for (l, m) in net.layers().iter().zip(&masks) {
                l.weight.set(&m.apply(l.weight.as_tensor())?)?;
            }
            let stats = BatchStats {
                epoch,
                batch,
                loss: v,
                lr: config.sgd.lr,
                samples: xs.dim(0)?,
            };
            if let ControlFlow::Break(()) = observer.on_batch_end(&stats) {
                return Err(Error::Interrupted { epoch });
            }
        }
        let (acc, val_loss, samples) = evaluate_full(net, val)?;
        accuracy = acc;
        observer.on_eval(&EvalStats {
            epoch,
            split: "val".into(),
            accuracy,
            loss: val_loss,
            samples,
        });
    }
    Ok(accuracy)
}

/// Top-1 accuracy of `net` over every batch of `val` (epoch 0), in inference mode.
pub fn evaluate(net: &dyn Network, val: &mut dyn BatchSource) -> Result<f64> {
    evaluate_full(net, val).map(|(accuracy, _, _)| accuracy)
}

/// Accuracy, mean cross-entropy and sample count over `val`.
fn evaluate_full(net: &dyn Network, val: &mut dyn BatchSource) -> Result<(f64, f64, usize)> {
    let (mut correct, mut total, mut loss_sum) = (0usize, 0usize, 0.0f64);
    for batch in 0..val.batches_per_epoch() {
        let (xs, ys) = val.batch(0, batch)?;
        let logits = net.forward_t(&xs, false)?;
        let ce = nn::loss::cross_entropy(&logits, &ys)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        loss_sum += ce * xs.dim(0)? as f64;
        let predicted = logits.argmax(D::Minus1)?;
        let hits = predicted
            .eq(&ys.to_dtype(predicted.dtype())?)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()?;
        correct += hits as usize;
        total += xs.dim(0)?;
    }
    if total == 0 {
        return Err(Error::EmptyData {
            what: "validation source",
        });
    }
    Ok((
        correct as f64 / total as f64,
        loss_sum / total as f64,
        total,
    ))
}

/// Per-layer energies of `net`'s current weights (exact bitmaps) under `model`, with the given
/// input densities (dense when `None`).
pub fn layer_energies(
    model: &dyn EnergyModel,
    net: &dyn Network,
    input_densities: Option<&[Density]>,
) -> Result<Vec<f64>> {
    let workloads = net
        .layers()
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
                    weights: Support::Bitmap(mask_of(l)?),
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

fn mask_of(l: &LayerInfo) -> Result<Bitmap> {
    let w = host(l.weight.as_tensor())?;
    Ok(Bitmap::from_values(l.weight.dims(), &w)?)
}

fn host(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

fn to_var(var: &Var, values: &[f64]) -> Result<()> {
    let t = Tensor::from_slice(values, var.dims(), &tensor_core::tensor::Device::Cpu)?
        .to_dtype(var.dtype())?
        .to_device(var.device())?;
    var.set(&t)?;
    Ok(())
}

fn write(layer: &LayerInfo, weights: &[f64], bias: Option<&[f64]>) -> Result<()> {
    to_var(&layer.weight, weights)?;
    if let (Some(var), Some(b)) = (&layer.bias, bias) {
        to_var(var, b)?;
    }
    Ok(())
}

pub(crate) type Snapshot = Vec<(Tensor, Option<Tensor>)>;

pub(crate) fn snapshot(layers: &[LayerInfo]) -> Result<Snapshot> {
    layers
        .iter()
        .map(|l| {
            Ok((
                l.weight.as_tensor().copy()?,
                l.bias.as_ref().map(|b| b.as_tensor().copy()).transpose()?,
            ))
        })
        .collect()
}

fn load(layers: &[LayerInfo], s: &Snapshot) -> Result<()> {
    for (l, (w, b)) in layers.iter().zip(s) {
        l.weight.set(w)?;
        if let (Some(var), Some(b)) = (&l.bias, b) {
            var.set(b)?;
        }
    }
    Ok(())
}

fn calibration_images(src: &mut dyn BatchSource, n: usize) -> Result<Vec<Tensor>> {
    let mut out = Vec::new();
    let mut have = 0;
    for i in 0..src.batches_per_epoch() {
        if have >= n {
            break;
        }
        let (xs, _) = src.batch(0, i)?;
        let b = xs.dim(0)?;
        let take = b.min(n - have);
        out.push(if take < b { xs.narrow(0, 0, take)? } else { xs });
        have += take;
    }
    if have == 0 {
        return Err(Error::EmptyData {
            what: "calibration source",
        });
    }
    Ok(out)
}

/// Fraction of nonzero inputs of every layer over the calibration images.
struct DensityTap {
    counts: Vec<(u64, u64)>,
}

impl Taps for DensityTap {
    fn post(&mut self, id: LayerId, input: &Tensor, _output: &Tensor) -> tensor_core::Result<()> {
        let nz = input
            .ne(0.0)?
            .to_dtype(DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?;
        if let Some(c) = self.counts.get_mut(id.0) {
            c.0 += nz as u64;
            c.1 += input.elem_count() as u64;
        }
        Ok(())
    }
}

fn measure(
    net: &dyn Network,
    cal: &[Tensor],
    mode: ActivationDensity,
) -> Result<Option<Vec<Density>>> {
    if mode == ActivationDensity::Dense {
        return Ok(None);
    }
    let mut tap = DensityTap {
        counts: vec![(0, 0); net.layers().len()],
    };
    for xs in cal {
        net.forward_tapped(xs, false, &mut tap)?;
    }
    let d = tap
        .counts
        .iter()
        .map(|&(nz, n)| {
            if n == 0 {
                Ok(Density::DENSE)
            } else {
                Density::from_counts(nz, n)
            }
        })
        .collect::<tensor_core::Result<Vec<_>>>()?;
    Ok(Some(d))
}

/// Local least-squares data of one layer: per group the system `X_g`, per filter its targets.
pub(crate) struct LocalData {
    pub(crate) rows: usize,
    pub(crate) groups: Vec<LeastSquares>,
    pub(crate) targets: Vec<Target>,
}

/// Captures one layer's im2col rows (from its input) or targets (from its output) at the
/// sampled positions.
struct LocalTap<'a> {
    layer: &'a LayerInfo,
    positions: &'a [Vec<usize>],
    capture_input: bool,
    seen: usize,
    /// Per group, row-major rows of `X_g`.
    xs: Vec<Vec<f64>>,
    /// Row-major `rows × d` targets.
    ys: Vec<f64>,
}

impl Taps for LocalTap<'_> {
    fn post(&mut self, id: LayerId, input: &Tensor, output: &Tensor) -> tensor_core::Result<()> {
        if id != self.layer.id {
            return Ok(());
        }
        let g = self.layer.geometry;
        let b = input.dim(0)?;
        // The im2col indexing below trusts these shapes, so they are checked, not assumed.
        let (in_expected, out_expected) = match self.layer.kind {
            LayerKind::Conv => (
                vec![b, g.in_channels, g.in_h, g.in_w],
                vec![b, g.out_channels, g.out_h(), g.out_w()],
            ),
            LayerKind::Fc => (vec![b, g.in_features()], vec![b, g.out_channels]),
        };
        let in_ok = match self.layer.kind {
            LayerKind::Conv => input.dims() == in_expected.as_slice(),
            LayerKind::Fc => input.elem_count() == b * g.in_features(),
        };
        for (what, ok, expected, got) in [
            ("tapped layer input", in_ok, in_expected, input.dims()),
            (
                "tapped layer output",
                output.dims() == out_expected.as_slice(),
                out_expected.clone(),
                output.dims(),
            ),
        ] {
            if !ok {
                return Err(tensor_core::Error::Shape {
                    what: format!("{what} of {}", self.layer.name),
                    expected,
                    got: got.to_vec(),
                });
            }
        }
        let start = self.seen;
        self.seen += b;
        if self.capture_input {
            let x = input
                .flatten_all()?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?;
            match self.layer.kind {
                LayerKind::Fc => self.xs[0].extend_from_slice(&x),
                LayerKind::Conv => {
                    let (c, h, w) = (g.in_channels, g.in_h, g.in_w);
                    let cg = g.channels_per_group();
                    let (kh, kw) = g.kernel;
                    let ow = g.out_w();
                    for i in 0..b {
                        let img = &x[i * c * h * w..(i + 1) * c * h * w];
                        for &p in &self.positions[start + i] {
                            let (oy, ox) = (p / ow, p % ow);
                            for (grp, rows) in self.xs.iter_mut().enumerate() {
                                for ci in grp * cg..(grp + 1) * cg {
                                    for ky in 0..kh {
                                        let iy =
                                            (oy * g.stride.0 + ky) as isize - g.padding.0 as isize;
                                        for kx in 0..kw {
                                            let ix = (ox * g.stride.1 + kx) as isize
                                                - g.padding.1 as isize;
                                            let inside = iy >= 0
                                                && ix >= 0
                                                && (iy as usize) < h
                                                && (ix as usize) < w;
                                            rows.push(if inside {
                                                img[ci * h * w + iy as usize * w + ix as usize]
                                            } else {
                                                0.0
                                            });
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        } else {
            let y = output
                .flatten_all()?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?;
            let d = g.out_channels;
            match self.layer.kind {
                LayerKind::Fc => self.ys.extend_from_slice(&y),
                LayerKind::Conv => {
                    let p = g.out_positions();
                    for i in 0..b {
                        for &pos in &self.positions[start + i] {
                            for m in 0..d {
                                self.ys.push(y[i * d * p + m * p + pos]);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Output positions sampled for every calibration image: all of them in order when the map
/// has at most `k`, else `k` distinct ones drawn from a stream named after the layer.
fn sample_positions(layer: &LayerInfo, images: usize, k: usize, seed: u64) -> Vec<Vec<usize>> {
    let p = match layer.kind {
        LayerKind::Fc => return vec![vec![0]; images],
        LayerKind::Conv => layer.geometry.out_positions(),
    };
    let mut rng = tensor_core::rng(seed, &format!("positions/{}", layer.name));
    (0..images)
        .map(|_| {
            if p <= k {
                (0..p).collect()
            } else {
                let mut s: Vec<usize> = tensor_core::seed::permutation(p, &mut rng)
                    .into_iter()
                    .take(k)
                    .collect();
                s.sort_unstable();
                s
            }
        })
        .collect()
}

/// Collects `X` from the current network and `Y` from the original weights (spec §2 step 1).
pub(crate) fn local_data(
    net: &dyn Network,
    layer: &LayerInfo,
    original: &Snapshot,
    cal: &[Tensor],
    config: &EnergyPruneConfig,
) -> Result<LocalData> {
    let images = cal
        .iter()
        .map(|t| t.dim(0))
        .sum::<std::result::Result<usize, _>>()?;
    let positions = sample_positions(layer, images, config.positions_per_image, config.seed);
    let groups = layer.geometry.groups;
    let mut tap = LocalTap {
        layer,
        positions: &positions,
        capture_input: true,
        seen: 0,
        xs: vec![Vec::new(); groups],
        ys: Vec::new(),
    };
    for xs in cal {
        net.forward_tapped(xs, false, &mut tap)?;
    }
    let current = snapshot(net.layers())?;
    load(net.layers(), original)?;
    tap.capture_input = false;
    tap.seen = 0;
    let collected = cal
        .iter()
        .try_for_each(|xs| net.forward_tapped(xs, false, &mut tap).map(|_| ()));
    // The current weights go back even when the original pass failed.
    load(net.layers(), &current)?;
    collected?;
    let d = layer.geometry.out_channels;
    let rows = tap.ys.len() / d;
    let fan = layer.geometry.weights() / d;
    if tap.xs.iter().any(|x| x.iter().any(|v| !v.is_finite())) {
        return Err(Error::NonFinite {
            layer: layer.id,
            what: "inputs",
        });
    }
    if tap.ys.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            layer: layer.id,
            what: "targets",
        });
    }
    let bias = layer.bias.is_some() && config.fit_bias;
    let systems = tap
        .xs
        .into_iter()
        .map(|x| Ok(LeastSquares::new(&Matrix::new(rows, fan, x)?, bias)))
        .collect::<Result<Vec<_>>>()?;
    // Without a refitted bias the current bias is subtracted from the targets and kept.
    let b0 = match (&layer.bias, config.fit_bias) {
        (Some(b), false) => Some(host(b.as_tensor())?),
        _ => None,
    };
    let per_group = d / groups;
    let targets = (0..d)
        .into_par_iter()
        .map(|m| {
            let shift = b0.as_ref().map_or(0.0, |b| b[m]);
            let y: Vec<f64> = (0..rows).map(|r| tap.ys[r * d + m] - shift).collect();
            systems[m / per_group].target(&y)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LocalData {
        rows,
        groups: systems,
        targets,
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
    let d = layer.geometry.out_channels;
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
    let per_group = d / layer.geometry.groups;
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
