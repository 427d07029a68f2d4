//! One LeNet-5 pruning run: the data split as `iclr19-lenet5` splits it, energy-prune's
//! energy-aware procedure or the magnitude search, activation densities measured on the
//! calibration images, and the pruned checkpoint.

use anyhow::{Context, Result, bail};
use energy_model::eyeriss::Eyeriss;
use energy_model::iclr19::{Evaluator, Iclr19};
use energy_prune::{
    EnergyTarget, FineTuneConfig, MagnitudeTarget, PruneOutcome, PruneRun, layer_energies,
};
use tensor_core::{
    BatchSource, DType, Density, Device, EnergyModel, LayerId, Network, Observer, Taps, Tensor,
};

use super::{EapMethod, EapMetrics, EapSpec, LayerRow, Probe};
use crate::checkpoint::{self, CheckpointMeta};
use crate::data::{CompressionData, CompressionSplit, DataDir};
use crate::dense::{self, Loaded};
use crate::paths::git_revision;
use crate::pricing;
use crate::registry::RunEnv;

/// Calibration images of the magnitude baseline, which uses them for activation densities only.
const MAGNITUDE_CALIBRATION: usize = 512;

fn load_data(
    spec: &EapSpec,
    calibration_images: usize,
    data_dir: &DataDir,
    device: &Device,
) -> Result<CompressionData> {
    CompressionData::load(
        CompressionSplit {
            dense: &spec.dense,
            val_records: spec.val_records,
            batch: spec.batch,
            calibration_images,
            classes: spec.classes,
        },
        data_dir,
        device,
    )
}

/// Top-1 accuracy of `net` in evaluation mode over every batch of `data`.
fn accuracy(net: &dyn Network, data: &mut dyn BatchSource, what: &str) -> Result<f64> {
    Ok(tensor_core::evaluate(what, data, |xs| net.forward_t(xs, false))?.accuracy)
}

/// Fraction of nonzero inputs of every layer.
struct InputDensity {
    counts: Vec<(u64, u64)>,
}

impl Taps for InputDensity {
    fn post(&mut self, id: LayerId, input: &Tensor, _output: &Tensor) -> tensor_core::Result<()> {
        let nonzero = input
            .ne(0.0)?
            .to_dtype(DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?;
        if let Some(c) = self.counts.get_mut(id.0) {
            c.0 += nonzero as u64;
            c.1 += input.elem_count() as u64;
        }
        Ok(())
    }
}

/// Energy and weights of the current state of a network.
struct Measured {
    /// Per-layer energies with activation densities measured on the calibration images.
    measured: Vec<f64>,
    /// Per-layer energies with dense activations.
    dense_activations: Vec<f64>,
    /// Nonzero weights per layer.
    nonzero: Vec<u64>,
}

fn measure(model: &Eyeriss, net: &dyn Network, data: &mut CompressionData) -> Result<Measured> {
    let mut tap = InputDensity {
        counts: vec![(0, 0); net.layers().len()],
    };
    let probe = data
        .probe
        .as_deref_mut()
        .context("activation densities need calibration images")?;
    for index in 0..probe.batches_per_epoch() {
        let (xs, _) = probe.batch(0, index)?;
        net.forward_tapped(&xs, false, &mut tap)?;
    }
    let densities = tap
        .counts
        .iter()
        .map(|&(nz, n)| match n {
            0 => Ok(Density::DENSE),
            _ => Density::from_counts(nz, n),
        })
        .collect::<tensor_core::Result<Vec<_>>>()?;
    let nonzero = net
        .layers()
        .iter()
        .map(|l| {
            Ok(l.weight
                .as_tensor()
                .ne(0.0)?
                .to_dtype(DType::F64)?
                .sum_all()?
                .to_scalar::<f64>()? as u64)
        })
        .collect::<Result<Vec<u64>>>()?;
    Ok(Measured {
        measured: layer_energies(model, net, Some(&densities))?,
        dense_activations: layer_energies(model, net, None)?,
        nonzero,
    })
}

fn ratio(a: &[f64], b: &[f64]) -> f64 {
    a.iter().sum::<f64>() / b.iter().sum::<f64>()
}

/// Runs `spec`, writing the pruned model under the run's checkpoint directory.
pub fn run(spec: &EapSpec, env: &RunEnv<'_>) -> Result<EapMetrics> {
    let label = &env.label;
    let dense = dense::ensure(env, &spec.dense)?;
    let device = env.open(spec.dense.device)?;
    tensor_core::seed_device(&device, spec.dense.seed)?;
    let calibration_images = match &spec.method {
        EapMethod::EnergyAware(c) | EapMethod::ToEnergy { config: c, .. } => c.calibration_images,
        EapMethod::Magnitude { .. } => MAGNITUDE_CALIBRATION,
    };
    let mut data = load_data(spec, calibration_images, env.data, &device)?;
    let model = spec.energy.model()?;
    let mut obs = env.reporter.observer(label);
    let channels = data.channels;
    let classes = spec
        .classes
        .unwrap_or_else(|| spec.dense.dataset.num_classes());
    let load = || dense::load_classes(&spec.dense, channels, &dense.checkpoint, classes, &device);

    let start = load()?;
    let before = measure(&model, start.net.as_ref(), &mut data)?;
    let dense_val_accuracy = accuracy(start.net.as_ref(), data.val.as_mut(), "validation")?;
    // With fewer classes the dense reference is the narrowed network on their test records.
    let dense_test_accuracy = match spec.classes {
        Some(_) => accuracy(start.net.as_ref(), data.test.as_mut(), "the test split")?,
        None => dense.test_accuracy,
    };
    drop(start);

    let mut targeted = None;
    let (result, outcome, probes) = match &spec.method {
        EapMethod::EnergyAware(config) => {
            let loaded = load()?;
            let outcome = energy_prune::prune_energy_aware(
                prune_run(&loaded, &model, &mut data)?,
                config,
                obs.as_mut(),
            )
            .with_context(|| format!("{label}: energy-aware pruning failed"))?;
            (loaded, outcome, Vec::new())
        }
        EapMethod::ToEnergy {
            config,
            level,
            search,
        } => {
            let loaded = load()?;
            let measure = Iclr19::paper().with_evaluator(Evaluator::Relaxed);
            let target = EnergyTarget {
                model: &measure,
                level: *level,
                search: *search,
            };
            let found = energy_prune::prune_to_energy(
                prune_run(&loaded, &model, &mut data)?,
                config,
                &target,
                obs.as_mut(),
            )
            .with_context(|| format!("{label}: energy-aware pruning to energy {level} failed"))?;
            let outcome = found.outcome.clone();
            targeted = Some(Box::new(found));
            (loaded, outcome, Vec::new())
        }
        EapMethod::Magnitude {
            finetune,
            max_accuracy_drop,
            min_density,
            iterations,
        } => {
            if !(*min_density > 0.0 && *min_density < 1.0) {
                bail!("min_density {min_density} is not in (0, 1)");
            }
            let (mut lo, mut hi) = (*min_density, 1.0f64);
            let mut best = None;
            let mut probes = Vec::new();
            for _ in 0..*iterations {
                // Geometric midpoint: the interesting densities span orders of magnitude.
                let density = (lo * hi).sqrt();
                let loaded = load()?;
                let outcome =
                    magnitude(&loaded, &model, &mut data, density, *finetune, obs.as_mut())
                        .with_context(|| {
                            format!("{label}: magnitude pruning at {density} failed")
                        })?;
                let ok =
                    outcome.accuracy_original - outcome.accuracy_final <= max_accuracy_drop + 1e-12;
                let m = measure(&model, loaded.net.as_ref(), &mut data)?;
                probes.push(Probe {
                    density,
                    nonzero_weights: outcome.nonzero_weights(),
                    val_accuracy: outcome.accuracy_final,
                    within_budget: ok,
                    energy_reduction: ratio(&before.measured, &m.measured),
                });
                if ok {
                    hi = density;
                    best = Some((loaded, outcome));
                } else {
                    lo = density;
                }
            }
            let (loaded, outcome) = match best {
                Some(b) => b,
                None => {
                    // Nothing sparser fits the budget: the dense model is the answer.
                    let loaded = load()?;
                    let none = FineTuneConfig {
                        epochs: 0,
                        ..*finetune
                    };
                    let outcome = magnitude(&loaded, &model, &mut data, 1.0, none, obs.as_mut())?;
                    (loaded, outcome)
                }
            };
            (loaded, outcome, probes)
        }
    };
    drop(obs);
    let net = result.net.as_ref();
    let after = measure(&model, net, &mut data)?;
    let priced = pricing::price(net, None)?;
    let test = tensor_core::evaluate("the test split", data.test.as_mut(), |xs| {
        net.forward_t(xs, false)
    })?;
    let val_accuracy = accuracy(net, data.val.as_mut(), "validation")?;

    let path = env.checkpoints.join("final.safetensors");
    let mut extra = serde_json::Map::new();
    extra.insert("energy_model".into(), serde_json::json!(model.name()));
    extra.insert("method".into(), serde_json::json!(spec.method_name()));
    let meta = CheckpointMeta {
        arch: spec.dense.arch.to_string(),
        dataset: spec.dense.dataset.to_string(),
        epoch: 0,
        seed: spec.dense.seed,
        git_revision: git_revision(),
        spec: serde_json::to_value(spec)?,
        extra,
    };
    checkpoint::save(&path, &meta, &result.vars, &[])?;

    let layers = net
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let weights = l.weight.elem_count() as u64;
            LayerRow {
                name: l.name.clone(),
                weights,
                nonzero_weights: after.nonzero[i],
                density: after.nonzero[i] as f64 / weights.max(1) as f64,
                energy_dense: before.measured[i],
                energy_pruned: after.measured[i],
            }
        })
        .collect();
    Ok(EapMetrics {
        method: spec.method_name().into(),
        energy_model: model.name(),
        energy: spec.energy,
        energy_dense: before.measured.iter().sum(),
        energy_pruned: after.measured.iter().sum(),
        energy_reduction: ratio(&before.measured, &after.measured),
        energy_reduction_dense_activations: ratio(
            &before.dense_activations,
            &after.dense_activations,
        ),
        nonzero_weights: after.nonzero.iter().sum(),
        total_weights: net
            .layers()
            .iter()
            .map(|l| l.weight.elem_count() as u64)
            .sum(),
        test_accuracy: test.accuracy,
        test_top5: data.folder.then_some(test.top5),
        dense_test_accuracy,
        dense_val_accuracy,
        val_accuracy,
        layers,
        probes,
        outcome,
        checkpoint: path.display().to_string(),
        priced: Some(priced),
        targeted,
    })
}

fn prune_run<'a>(
    loaded: &'a Loaded,
    model: &'a Eyeriss,
    data: &'a mut CompressionData,
) -> Result<PruneRun<'a>> {
    Ok(PruneRun {
        network: loaded.net.as_ref(),
        params: loaded.params(),
        model,
        calibration: data
            .calibration
            .as_deref_mut()
            .context("pruning needs calibration images")?,
        val: data.val.as_mut(),
        train: data.train.as_mut(),
    })
}

fn magnitude(
    loaded: &Loaded,
    model: &Eyeriss,
    data: &mut CompressionData,
    density: f64,
    finetune: FineTuneConfig,
    obs: &mut dyn Observer,
) -> Result<PruneOutcome> {
    Ok(energy_prune::prune_magnitude(
        prune_run(loaded, model, data)?,
        &MagnitudeTarget::Global(Density::new(density)?),
        finetune,
        obs,
    )?)
}
