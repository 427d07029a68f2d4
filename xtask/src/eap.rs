//! Energy-aware pruning runs (CVPR'17): energy-prune's energy-ordered layer loop against
//! magnitude pruning under the same accuracy budget and fine-tuning on LeNet-5 / MNIST, and
//! estimate-only rows for the ImageNet networks; every energy comes from energy-model's Eyeriss
//! row-stationary model with its preset and batch size named.

use std::path::Path;

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use datasets::DatasetId;
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_prune::{
    EnergyPruneConfig, FineTuneConfig, MagnitudeTarget, PruneOutcome, PruneRun, evaluate,
    layer_energies,
};
use serde::{Deserialize, Serialize};
use tensor_core::{
    DType, Density, Device, EnergyModel, LayerGeometry, LayerId, LayerSparsity, LayerWorkload,
    Level, Network, Precision, SeededInit, Support, Taps, Tensor, Var,
};

use crate::checkpoint::{self, CheckpointMeta};
use crate::data::{Split, SplitData, TensorBatches};
use crate::dense;
use crate::experiments::{Experiment, RunContext, RunKind, RunSpec};
use crate::flags::Profile;
use crate::paths::git_revision;
use crate::progress::Progress;
use crate::train::TrainSpec;

impl energy_prune::BatchSource for TensorBatches {
    fn batches_per_epoch(&self) -> usize {
        sparse_proj::BatchSource::batches_per_epoch(self)
    }

    fn batch(&mut self, epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)> {
        sparse_proj::BatchSource::batch(self, epoch, index)
    }
}

/// The Eyeriss configuration every number of a run is priced with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnergySetting {
    /// Hardware preset.
    pub preset: Preset,
    /// Batch size of the estimate (FC weight traffic per image falls like 1/N).
    pub batch: usize,
}

impl EnergySetting {
    /// The checked model.
    pub fn model(self) -> Result<Eyeriss> {
        Eyeriss::preset(self.preset, self.batch)
            .with_context(|| format!("invalid eyeriss setting {}", self.label()))
    }

    /// `eyeriss/chip, batch 16`: the label every reported energy carries.
    pub fn label(self) -> String {
        format!("eyeriss/{}, batch {}", self.preset, self.batch)
    }
}

/// How a LeNet-5 run prunes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum EapMethod {
    /// energy-prune's energy-aware procedure with this configuration.
    EnergyAware(EnergyPruneConfig),
    /// Global magnitude pruning, the sparsest density (bisection in log density) whose
    /// fine-tuned validation drop stays within `max_accuracy_drop`.
    Magnitude {
        /// Global fine-tuning after pruning (the energy-aware run's).
        finetune: FineTuneConfig,
        /// Allowed validation accuracy drop (the energy-aware run's δ).
        max_accuracy_drop: f64,
        /// Lower end of the search, assumed too sparse and never tried.
        min_density: f64,
        /// Densities tried.
        iterations: usize,
    },
}

/// One pruning run on a dense model from [`crate::dense`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EapSpec {
    /// Recipe of the dense starting model; its `train_limit` is the number of training records
    /// (fine-tuning and calibration use the same ones).
    pub dense: TrainSpec,
    /// Records right after the training ones, held out for the accept/reject decisions.
    pub val_records: usize,
    /// Batch size of the fine-tuning.
    pub batch: usize,
    /// The energy model.
    pub energy: EnergySetting,
    /// The procedure.
    pub method: EapMethod,
}

impl EapSpec {
    /// `energy-aware` or `magnitude`.
    pub fn method_name(&self) -> &'static str {
        match self.method {
            EapMethod::EnergyAware(_) => "energy-aware",
            EapMethod::Magnitude { .. } => "magnitude",
        }
    }
}

/// One layer of a pruned network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerRow {
    /// Layer name.
    pub name: String,
    /// Weights of the dense layer.
    pub weights: u64,
    /// Nonzero weights after pruning.
    pub nonzero_weights: u64,
    /// `nonzero_weights / weights`.
    pub density: f64,
    /// Energy of the dense layer, measured activation densities.
    pub energy_dense: f64,
    /// Energy of the pruned layer, measured activation densities.
    pub energy_pruned: f64,
}

/// One density tried by the magnitude search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Probe {
    /// Global density kept.
    pub density: f64,
    /// Nonzero weights.
    pub nonzero_weights: u64,
    /// Validation accuracy after fine-tuning.
    pub val_accuracy: f64,
    /// Whether the drop stayed within the budget.
    pub within_budget: bool,
    /// Energy before / after, measured activation densities.
    pub energy_reduction: f64,
}

/// Metrics of a LeNet-5 pruning run (the record's `metrics`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EapMetrics {
    /// `energy-aware` or `magnitude`.
    pub method: String,
    /// The energy model's own name (preset and batch included).
    pub energy_model: String,
    /// Preset and batch of every energy figure.
    pub energy: EnergySetting,
    /// Energy of the dense network, activation densities measured on the calibration images.
    pub energy_dense: f64,
    /// Energy of the pruned network, activation densities measured on the calibration images.
    pub energy_pruned: f64,
    /// `energy_dense / energy_pruned`.
    pub energy_reduction: f64,
    /// The same ratio with every activation priced dense (weight sparsity only).
    pub energy_reduction_dense_activations: f64,
    /// Nonzero weights after pruning.
    pub nonzero_weights: u64,
    /// Weights of the dense network.
    pub total_weights: u64,
    /// Test accuracy of the result (full test split).
    pub test_accuracy: f64,
    /// Test accuracy of the dense model.
    pub dense_test_accuracy: f64,
    /// Validation accuracy of the dense model.
    pub dense_val_accuracy: f64,
    /// Validation accuracy of the result.
    pub val_accuracy: f64,
    /// Per layer, in network order.
    pub layers: Vec<LayerRow>,
    /// Magnitude search: every density tried, in order (empty for energy-aware runs).
    pub probes: Vec<Probe>,
    /// energy-prune's own account (order, trials, per-layer energies under its activation
    /// convention: measured for energy-aware runs, dense for the magnitude baseline).
    pub outcome: PruneOutcome,
    /// Checkpoint of the result.
    pub checkpoint: String,
}

/// The data of a LeNet-5 run, as constrained.rs splits it.
struct Data {
    train: TensorBatches,
    val: TensorBatches,
    test: TensorBatches,
    calibration: TensorBatches,
    channels: usize,
}

fn load_data(spec: &EapSpec, calibration_images: usize, device: &Device) -> Result<Data> {
    let train_n = spec
        .dense
        .train_limit
        .context("the dense recipe must fix its number of training records")?;
    let mut full = spec.dense.clone();
    full.train_limit = None;
    let train_split = SplitData::load(&full, Split::Train)?;
    if train_split.len() < train_n + spec.val_records {
        bail!(
            "{} has {} training records; {} for training plus {} held out are needed",
            spec.dense.dataset,
            train_split.len(),
            train_n,
            spec.val_records
        );
    }
    let seed = spec.dense.seed;
    let train_idx: Vec<usize> = (0..train_n).collect();
    let val_idx: Vec<usize> = (train_n..train_n + spec.val_records).collect();
    let cal_idx: Vec<usize> = (0..calibration_images.min(train_n)).collect();
    let test_split = SplitData::load(&full, Split::Test)?;
    let test_idx: Vec<usize> = (0..test_split.len()).collect();
    Ok(Data {
        train: TensorBatches::new(&train_split, &train_idx, spec.batch, seed, true, device)?,
        val: TensorBatches::new(&train_split, &val_idx, 500, seed, false, device)?,
        calibration: TensorBatches::new(&train_split, &cal_idx, 128, seed, false, device)?,
        test: TensorBatches::new(&test_split, &test_idx, 500, seed, false, device)?,
        channels: train_split.sample_shape()[0],
    })
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

/// Per-layer energies of `net` with activation densities measured on `images`, and with dense
/// activations.
fn energies(model: &Eyeriss, net: &dyn Network, images: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut tap = InputDensity {
        counts: vec![(0, 0); net.layers().len()],
    };
    net.forward_tapped(images, false, &mut tap)?;
    let densities = tap
        .counts
        .iter()
        .map(|&(nz, n)| match n {
            0 => Ok(Density::DENSE),
            _ => Density::from_counts(nz, n),
        })
        .collect::<tensor_core::Result<Vec<_>>>()?;
    let measured = layer_energies(model, net, Some(&densities))?;
    let dense = layer_energies(model, net, None)?;
    Ok((measured, dense))
}

fn nonzero(net: &dyn Network) -> Result<Vec<u64>> {
    net.layers()
        .iter()
        .map(|l| {
            Ok(l.weight
                .as_tensor()
                .ne(0.0)?
                .to_dtype(DType::F64)?
                .sum_all()?
                .to_scalar::<f64>()? as u64)
        })
        .collect()
}

/// Energy, weights and accuracy of the current state of `net`.
struct Measured {
    measured: Vec<f64>,
    dense_activations: Vec<f64>,
    nonzero: Vec<u64>,
}

fn measure(model: &Eyeriss, net: &dyn Network, data: &Data) -> Result<Measured> {
    let (measured, dense_activations) = energies(model, net, data.calibration.all().0)?;
    Ok(Measured {
        measured,
        dense_activations,
        nonzero: nonzero(net)?,
    })
}

fn ratio(a: &[f64], b: &[f64]) -> f64 {
    a.iter().sum::<f64>() / b.iter().sum::<f64>()
}

/// Runs `spec`, writing the pruned model under `dir`.
pub fn run(
    spec: &EapSpec,
    out: &Path,
    dir: &Path,
    label: &str,
    progress: &Progress,
) -> Result<EapMetrics> {
    let dense = dense::ensure(out, &spec.dense, progress)?;
    let device = spec.dense.device.to_device()?;
    tensor_core::seed_device(&device, spec.dense.seed)?;
    let calibration_images = match &spec.method {
        EapMethod::EnergyAware(c) => c.calibration_images,
        // The magnitude baseline uses the calibration images for activation densities only.
        EapMethod::Magnitude { .. } => 512,
    };
    let mut data = load_data(spec, calibration_images, &device)?;
    let model = spec.energy.model()?;
    let mut obs = progress.run_observer(label.to_string());

    let start = dense::load(&spec.dense, data.channels, &dense.checkpoint)?;
    let before = measure(&model, start.net.as_ref(), &data)?;
    let dense_val_accuracy = evaluate(start.net.as_ref(), &mut data.val)?;
    drop(start);

    let (result, outcome, probes) = match &spec.method {
        EapMethod::EnergyAware(config) => {
            let loaded = dense::load(&spec.dense, data.channels, &dense.checkpoint)?;
            let outcome = energy_prune::prune_energy_aware(
                PruneRun {
                    network: loaded.net.as_ref(),
                    params: params(&loaded.vars),
                    model: &model,
                    calibration: &mut data.calibration,
                    val: &mut data.val,
                    train: &mut data.train,
                },
                config,
                &mut obs,
            )
            .with_context(|| format!("{label}: energy-aware pruning failed"))?;
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
                let loaded = dense::load(&spec.dense, data.channels, &dense.checkpoint)?;
                let outcome = magnitude(&loaded, &model, &mut data, density, *finetune, &mut obs)
                    .with_context(|| {
                    format!("{label}: magnitude pruning at {density} failed")
                })?;
                let ok =
                    outcome.accuracy_original - outcome.accuracy_final <= max_accuracy_drop + 1e-12;
                let m = measure(&model, loaded.net.as_ref(), &data)?;
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
                    let loaded = dense::load(&spec.dense, data.channels, &dense.checkpoint)?;
                    let none = FineTuneConfig {
                        epochs: 0,
                        ..*finetune
                    };
                    let outcome = magnitude(&loaded, &model, &mut data, 1.0, none, &mut obs)?;
                    (loaded, outcome)
                }
            };
            (loaded, outcome, probes)
        }
    };
    drop(obs);
    let net = result.net.as_ref();
    let after = measure(&model, net, &data)?;
    let test_accuracy = evaluate(net, &mut data.test)?;
    let val_accuracy = evaluate(net, &mut data.val)?;

    let path = dir.join("final.safetensors");
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
        test_accuracy,
        dense_test_accuracy: dense.test_accuracy,
        dense_val_accuracy,
        val_accuracy,
        layers,
        probes,
        outcome,
        checkpoint: path.display().to_string(),
    })
}

fn params(vars: &[(String, Var)]) -> Vec<Var> {
    vars.iter().map(|(_, v)| v.clone()).collect()
}

fn magnitude(
    loaded: &dense::Loaded,
    model: &Eyeriss,
    data: &mut Data,
    density: f64,
    finetune: FineTuneConfig,
    obs: &mut dyn tensor_core::Observer,
) -> Result<PruneOutcome> {
    Ok(energy_prune::prune_magnitude(
        PruneRun {
            network: loaded.net.as_ref(),
            params: params(&loaded.vars),
            model,
            calibration: &mut data.calibration,
            val: &mut data.val,
            train: &mut data.train,
        },
        &MagnitudeTarget::Global(density),
        finetune,
        obs,
    )?)
}

/// One line on a LeNet-5 run's record.
pub fn summary(m: &serde_json::Value) -> Option<String> {
    let m: EapMetrics = serde_json::from_value(m.clone()).ok()?;
    let kept = m
        .probes
        .iter()
        .filter(|p| p.within_budget)
        .map(|p| p.density)
        .fold(f64::INFINITY, f64::min);
    let matched = match (m.probes.is_empty(), kept.is_finite()) {
        (true, _) => String::new(),
        (false, true) => format!(
            ", global density {:.1}% (sparsest of {} tried within the budget)",
            100.0 * kept,
            m.probes.len()
        ),
        (false, false) => format!(
            ", none of {} densities tried fit the budget",
            m.probes.len()
        ),
    };
    let densities: Vec<String> = m
        .layers
        .iter()
        .map(|l| format!("{:.0}", 100.0 * l.density))
        .collect();
    Some(format!(
        "{}: energy {:.2}x lower (modelled on {}, measured activations; {:.2}x weights only), \
         {} of {} weights, layer densities [{}]%, test accuracy {:.2}% (dense {:.2}%), \
         val drop {:.2} points{matched}",
        m.method,
        m.energy_reduction,
        m.energy.label(),
        m.energy_reduction_dense_activations,
        thousands(m.nonzero_weights),
        thousands(m.total_weights),
        densities.join(", "),
        100.0 * m.test_accuracy,
        100.0 * m.dense_test_accuracy,
        100.0 * (m.dense_val_accuracy - m.val_accuracy),
    ))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Per-layer remaining densities of Han et al. (NIPS 2015) for AlexNet, from the
/// energy-aware-pruning spec §5 (unverified against the paper, so used as an input only).
pub const HAN_ALEXNET: [(&str, f64); 8] = [
    ("conv1", 0.84),
    ("conv2", 0.38),
    ("conv3", 0.35),
    ("conv4", 0.37),
    ("conv5", 0.37),
    ("fc6", 0.09),
    ("fc7", 0.09),
    ("fc8", 0.25),
];

/// Estimate-only rows: no data, no training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstimateSpec {
    /// The energy model.
    pub energy: EnergySetting,
}

/// One layer of an estimate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstimateLayer {
    /// Layer name.
    pub name: String,
    /// Weights (dense).
    pub weights: u64,
    /// Dense MACs of one image.
    pub macs: u64,
    /// Weight density priced.
    pub weight_density: f64,
    /// Energy of the batch.
    pub energy: f64,
    /// Compute share of the layer's energy.
    pub compute_share: f64,
    /// DRAM share of the layer's energy.
    pub dram_share: f64,
}

/// One network priced once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstimateRow {
    /// Model and variant, e.g. `alexnet-caffe (Han et al. densities)`.
    pub name: String,
    /// Nonzero weights priced (dense weights times density, rounded per layer).
    pub weights: u64,
    /// Dense MACs of one image.
    pub macs: u64,
    /// Energy of the batch, in units of one 16-bit MAC.
    pub energy: f64,
    /// Largest compute share of any layer (spec §6 claim 3: at most 0.2 when dense).
    pub max_compute_share: f64,
    /// Per layer.
    pub layers: Vec<EstimateLayer>,
}

/// Metrics of an estimate run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstimateMetrics {
    /// The energy model's own name.
    pub energy_model: String,
    /// Preset and batch of every energy figure.
    pub energy: EnergySetting,
    /// Activations are priced dense everywhere: no trained ImageNet model measures them here.
    pub activations: String,
    /// Dense AlexNet-caffe.
    pub alexnet: EstimateRow,
    /// AlexNet-caffe with Han et al.'s per-layer densities.
    pub alexnet_han: EstimateRow,
    /// Dense SqueezeNet 1.0.
    pub squeezenet: EstimateRow,
    /// Dense GoogLeNet.
    pub googlenet: EstimateRow,
    /// Dense / Han weights.
    pub han_weight_reduction: f64,
    /// Dense / Han energy.
    pub han_energy_reduction: f64,
    /// Spec §6 claim 5: Han et al.'s densities save less energy than weights.
    pub han_energy_below_weight_reduction: bool,
    /// SqueezeNet energy / AlexNet energy (claim 2).
    pub squeezenet_vs_alexnet_energy: f64,
    /// AlexNet weights / SqueezeNet weights (claim 2).
    pub alexnet_vs_squeezenet_weights: f64,
    /// GoogLeNet energy / AlexNet energy.
    pub googlenet_vs_alexnet_energy: f64,
    /// Dense AlexNet layers ranked by weights, by MACs and by energy, highest first (claim 1).
    pub alexnet_rank_by_weights: Vec<String>,
    /// By MACs.
    pub alexnet_rank_by_macs: Vec<String>,
    /// By energy.
    pub alexnet_rank_by_energy: Vec<String>,
    /// Share of the Han row's energy saving that comes from the FC layers (claim 4).
    pub han_saving_share_fc: f64,
}

fn geometry(arch: Arch) -> Result<Vec<(String, LayerGeometry)>> {
    let init = SeededInit::new(0);
    let vb = init.var_builder(DType::F32, &Device::Cpu);
    let [c, _, _] = arch.input_shape();
    let net = cnn_zoo::build(arch, arch.default_classes(), c, vb)
        .with_context(|| format!("cannot build {arch}"))?;
    Ok(net
        .layers()
        .iter()
        .map(|l| (l.name.clone(), l.geometry))
        .collect())
}

fn price(
    model: &Eyeriss,
    name: &str,
    layers: &[(String, LayerGeometry)],
    densities: &[f64],
) -> Result<EstimateRow> {
    let workloads = layers
        .iter()
        .zip(densities)
        .enumerate()
        .map(|(i, ((n, g), &d))| {
            let weights = if d >= 1.0 {
                Support::Dense
            } else {
                Support::Density(Density::new(d)?)
            };
            Ok(LayerWorkload {
                id: LayerId(i),
                name: n.clone(),
                geometry: *g,
                sparsity: LayerSparsity {
                    weights,
                    inputs: Support::Dense,
                    outputs: Support::Dense,
                },
                precision: Precision::default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let priced = model
        .network_energy(&workloads)
        .with_context(|| format!("cannot price {name} with {}", model.name()))?;
    let rows: Vec<EstimateLayer> = priced
        .layers
        .iter()
        .zip(layers.iter().zip(densities))
        .map(|((_, n, e), ((_, g), &d))| {
            let total = e.total();
            EstimateLayer {
                name: n.clone(),
                weights: g.weights() as u64,
                macs: g.macs() as u64,
                weight_density: d,
                energy: total,
                compute_share: e.compute / total,
                dram_share: e.by_level(Level::Dram) / total,
            }
        })
        .collect();
    Ok(EstimateRow {
        name: name.into(),
        weights: rows
            .iter()
            .map(|r| (r.weights as f64 * r.weight_density).round() as u64)
            .sum(),
        macs: rows.iter().map(|r| r.macs).sum(),
        energy: priced.total(),
        max_compute_share: rows.iter().map(|r| r.compute_share).fold(0.0, f64::max),
        layers: rows,
    })
}

fn dense_row(model: &Eyeriss, arch: Arch) -> Result<EstimateRow> {
    let layers = geometry(arch)?;
    price(model, arch.name(), &layers, &vec![1.0; layers.len()])
}

fn ranked(layers: &[EstimateLayer], key: impl Fn(&EstimateLayer) -> f64) -> Vec<String> {
    let mut v: Vec<&EstimateLayer> = layers.iter().collect();
    v.sort_by(|a, b| key(b).total_cmp(&key(a)));
    v.into_iter().map(|l| l.name.clone()).collect()
}

/// Prices the estimate-only rows.
pub fn estimate(spec: &EstimateSpec) -> Result<EstimateMetrics> {
    let model = spec.energy.model()?;
    let alex = geometry(Arch::AlexnetCaffe)?;
    let densities = alex
        .iter()
        .map(|(name, _)| {
            HAN_ALEXNET
                .iter()
                .find(|(n, _)| n == name)
                .map(|&(_, d)| d)
                .with_context(|| format!("no Han et al. density for AlexNet layer {name}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let alexnet = price(&model, "alexnet-caffe", &alex, &vec![1.0; alex.len()])?;
    let alexnet_han = price(
        &model,
        "alexnet-caffe (Han et al. densities)",
        &alex,
        &densities,
    )?;
    let squeezenet = dense_row(&model, Arch::Squeezenet1_0)?;
    let googlenet = dense_row(&model, Arch::Googlenet)?;
    let han_weight_reduction = alexnet.weights as f64 / alexnet_han.weights as f64;
    let han_energy_reduction = alexnet.energy / alexnet_han.energy;
    let saving = |fc: bool| -> f64 {
        alexnet
            .layers
            .iter()
            .zip(&alexnet_han.layers)
            .filter(|(d, _)| d.name.starts_with("fc") == fc)
            .map(|(d, p)| d.energy - p.energy)
            .sum()
    };
    let han_saving_share_fc = saving(true) / (saving(true) + saving(false));
    Ok(EstimateMetrics {
        energy_model: model.name(),
        energy: spec.energy,
        activations: "dense (no trained ImageNet model to measure them)".into(),
        han_weight_reduction,
        han_energy_reduction,
        han_energy_below_weight_reduction: han_energy_reduction < han_weight_reduction,
        squeezenet_vs_alexnet_energy: squeezenet.energy / alexnet.energy,
        alexnet_vs_squeezenet_weights: alexnet.weights as f64 / squeezenet.weights as f64,
        googlenet_vs_alexnet_energy: googlenet.energy / alexnet.energy,
        alexnet_rank_by_weights: ranked(&alexnet.layers, |l| l.weights as f64),
        alexnet_rank_by_macs: ranked(&alexnet.layers, |l| l.macs as f64),
        alexnet_rank_by_energy: ranked(&alexnet.layers, |l| l.energy),
        han_saving_share_fc,
        alexnet,
        alexnet_han,
        squeezenet,
        googlenet,
    })
}

/// One line on an estimate run's record.
pub fn estimate_summary(m: &serde_json::Value) -> Option<String> {
    let m: EstimateMetrics = serde_json::from_value(m.clone()).ok()?;
    Some(format!(
        "AlexNet with Han et al.'s densities: {:.1}x fewer weights, energy {:.2}x lower; dense \
         SqueezeNet 1.0 at {:.2}x and GoogLeNet at {:.2}x AlexNet's energy (modelled on {}, \
         dense activations)",
        m.han_weight_reduction,
        m.han_energy_reduction,
        m.squeezenet_vs_alexnet_energy,
        m.googlenet_vs_alexnet_energy,
        m.energy.label(),
    ))
}

/// The full-profile ImageNet runs: the datasets crate has no ImageNet loader, so they stop here
/// with an error instead of pretending.
pub fn imagenet(arch: Arch) -> Result<()> {
    bail!(
        "energy-aware pruning of {arch} needs ImageNet (training, calibration and validation \
         images), and ImageNet data is not supported yet: the datasets crate has no ImageNet \
         loader. The estimate-only rows are in eap-estimates."
    )
}

/// The eyeriss setting of the LeNet-5 runs: the fabricated chip at batch 16 (spec §8 leaves
/// EAP's batch open; ISCA'16 Fig. 10 uses 16).
pub const LENET5_ENERGY: EnergySetting = EnergySetting {
    preset: Preset::Chip,
    batch: 16,
};

/// The runs of the EAP experiments in a profile.
pub fn runs(experiment: Experiment, profile: Profile, ctx: &RunContext) -> Vec<RunSpec> {
    let run = |id: String, kind: RunKind| RunSpec {
        experiment,
        id,
        kind,
    };
    match (experiment, profile) {
        (Experiment::EapLenet5, _) => {
            // The same dense models as iclr19-lenet5. Quick: 9k embedded records, the last 1k
            // held out for the accept/reject decisions; full: 55k / 5k.
            let (train, val) = match profile {
                Profile::Quick => (9_000, 1_000),
                Profile::Full => (55_000, 5_000),
            };
            // Three seeds in the quick profile for the spread; one in the full profile.
            let seeds: &[u64] = match profile {
                Profile::Quick => &[1, 2, 3],
                Profile::Full => &[1],
            };
            let mut runs = Vec::new();
            for &seed in seeds {
                let mut dense = TrainSpec::recipe(Arch::Lenet5, DatasetId::Mnist);
                dense.seed = seed;
                dense.device = ctx.device;
                dense.train_limit = Some(train);
                if profile == Profile::Full {
                    dense.data = ctx.full_data();
                    dense.epochs = 15;
                }
                let mut config = EnergyPruneConfig::reconstruction_lenet5_mnist();
                config.seed = seed;
                let magnitude = EapMethod::Magnitude {
                    finetune: config.finetune,
                    max_accuracy_drop: config.max_accuracy_drop,
                    min_density: 0.02,
                    iterations: 4,
                };
                for (tag, method) in [("eap", EapMethod::EnergyAware(config)), ("mag", magnitude)] {
                    let spec = EapSpec {
                        dense: dense.clone(),
                        val_records: val,
                        batch: 64,
                        energy: LENET5_ENERGY,
                        method,
                    };
                    runs.push(run(
                        format!("seed{seed}-{tag}"),
                        RunKind::Eap(Box::new(spec)),
                    ));
                }
            }
            runs
        }
        (Experiment::EapEstimates, _) => [Preset::Isca16, Preset::Chip]
            .into_iter()
            .map(|preset| {
                let energy = EnergySetting { preset, batch: 16 };
                run(
                    format!("{preset}-b16"),
                    RunKind::EapEstimate(EstimateSpec { energy }),
                )
            })
            .collect(),
        (Experiment::EapAlexnet, Profile::Full) => vec![run(
            Arch::AlexnetCaffe.to_string(),
            RunKind::EapImagenet {
                arch: Arch::AlexnetCaffe,
            },
        )],
        (Experiment::EapGooglenet, Profile::Full) => vec![run(
            Arch::Googlenet.to_string(),
            RunKind::EapImagenet {
                arch: Arch::Googlenet,
            },
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
