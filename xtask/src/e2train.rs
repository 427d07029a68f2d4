//! E2-Train runs (e2-train.md §6): a gated ResNet trained by e2-train's trainer with one
//! technique or the combination enabled, against standard training of the same backbone on the
//! same nominal schedule. Training energy is priced by energy-model's training model; the default
//! table is the bit-product proxy, not the paper's measured energies, and every number says so.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use datasets::DatasetId;
use e2_train::{
    BatchSource, E2TrainConfig, EvalLog, GatedResnet, SkipExecution, StochasticDepthConfig,
    TrainRun,
};
use energy_model::training::{TrainingModel, savings};
use serde::{Deserialize, Serialize};
use tensor_core::{
    DType, Device, DeviceSpec, Iteration, SeededInit, Tensor, TrainingEnergy, WorkLedger,
};

use crate::data::{DataSource, Split, SplitData};
use crate::experiments::{Experiment, RunContext, RunKind, RunSpec};
use crate::flags::Profile;
use crate::progress::Progress;
use crate::train::TrainSpec;

/// Which techniques a run enables on top of standard training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum E2Method {
    /// Standard training: every batch, every block, ordinary gradients (8-bit forward as PSG's).
    Baseline,
    /// The stochastic-depth baseline (Huang et al., final survival 0.5).
    StochasticDepth,
    /// Stochastic mini-batch dropping alone.
    Smd,
    /// Selective layer update alone.
    Slu,
    /// Mini-batch dropping and selective layer update.
    SmdSlu,
    /// All three (the paper's E2-Train).
    SmdSluPsg,
    /// Predictive sign gradients alone.
    Psg,
}

impl E2Method {
    /// Every method, baseline first.
    #[cfg(test)]
    pub const ALL: [E2Method; 7] = [
        E2Method::Baseline,
        E2Method::StochasticDepth,
        E2Method::Smd,
        E2Method::Slu,
        E2Method::SmdSlu,
        E2Method::SmdSluPsg,
        E2Method::Psg,
    ];

    /// Short name, used in run ids.
    pub fn name(self) -> &'static str {
        match self {
            E2Method::Baseline => "baseline",
            E2Method::StochasticDepth => "stochastic-depth",
            E2Method::Smd => "smd",
            E2Method::Slu => "slu",
            E2Method::SmdSlu => "smd-slu",
            E2Method::SmdSluPsg => "smd-slu-psg",
            E2Method::Psg => "psg",
        }
    }

    /// The run's configuration derived from `full`, a preset with all three techniques on:
    /// standard training is `full.baseline()`, each method adds its parts back.
    pub fn config(self, full: &E2TrainConfig) -> E2TrainConfig {
        let base = full.baseline();
        let (smd, slu, psg) = match self {
            E2Method::Baseline | E2Method::StochasticDepth => (false, false, false),
            E2Method::Smd => (true, false, false),
            E2Method::Slu => (false, true, false),
            E2Method::SmdSlu => (true, true, false),
            E2Method::SmdSluPsg => (true, true, true),
            E2Method::Psg => (false, false, true),
        };
        let mut c = E2TrainConfig {
            smd: if smd { full.smd } else { None },
            slu: if slu { full.slu } else { None },
            ..base
        };
        c.model.gates = slu;
        if psg {
            c.model.conv = full.model.conv;
        }
        if self == E2Method::Slu {
            // SLU alone is the wall-clock row: blocks run only on the samples whose gate is on,
            // and from the first iteration (a warm-up would run every block, which is the
            // baseline's work).
            c.skip = SkipExecution::Gather;
            if let Some(s) = c.slu.as_mut() {
                s.warmup = 0;
            }
        }
        if self == E2Method::StochasticDepth {
            c.stochastic_depth = Some(StochasticDepthConfig {
                final_survival: 0.5,
            });
            // Whole blocks are dropped per batch, so gathering skips them for real at no cost
            // to the gradients (there are no gates to train).
            c.skip = SkipExecution::Gather;
        }
        c
    }
}

/// One E2-Train run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct E2TrainSpec {
    /// The techniques enabled.
    pub method: E2Method,
    /// Dataset (its class count must match `config.model.num_classes`).
    pub dataset: DatasetId,
    /// Where the data comes from.
    pub data: DataSource,
    /// The first records of the training split used for training.
    pub train_records: usize,
    /// The records right after them, held out for validation.
    pub val_records: usize,
    /// Batch size of training.
    pub batch: usize,
    /// The trainer's configuration (model, schedule, techniques, seed).
    pub config: E2TrainConfig,
    /// Device.
    pub device: DeviceSpec,
}

impl E2TrainSpec {
    /// Method as displayed, with how gated blocks execute where it matters.
    pub fn label(&self) -> String {
        let name = self.method.name();
        match (self.config.slu.is_some(), self.config.skip) {
            (true, SkipExecution::Gather) => format!("{name} (real skipping)"),
            (true, SkipExecution::Masked) => format!("{name} (masked)"),
            _ => name.to_string(),
        }
    }
}

/// One row of an E2-Train experiment: a run id without the `-seedN` suffix and its method.
struct Variant {
    id: &'static str,
    method: E2Method,
}

const fn variant(id: &'static str, method: E2Method) -> Variant {
    Variant { id, method }
}

/// Every row in table order: the comparison of the paper (standard training, stochastic depth,
/// SMD, SMD + SLU, all three), which is the full profile's, then SLU alone (real skipping: the
/// wall-clock saving), which the quick profile adds; both run every row on every seed. PSG alone
/// is not among them: its runs cost twice the baseline's CPU time, more than the 30-minute
/// budget of the quick profile leaves.
const ROWS: [Variant; 6] = [
    variant("baseline", E2Method::Baseline),
    variant("stochastic-depth", E2Method::StochasticDepth),
    variant("smd", E2Method::Smd),
    variant("smd-slu", E2Method::SmdSlu),
    variant("smd-slu-psg", E2Method::SmdSluPsg),
    variant("slu", E2Method::Slu),
];

/// The rows of the paper's comparison (the full profile's).
const PAPER_ROWS: usize = 5;

/// Run ids of the rows in table order (without the `-seedN` suffix), every profile's.
pub fn variant_ids() -> impl Iterator<Item = &'static str> {
    ROWS.iter().map(|v| v.id)
}

/// Batch of the quick profile. On a CPU core a batch of 16 trains a ResNet-20 faster per image
/// than one of 32 (its activations stay in cache), and gives twice the updates per image.
const QUICK_BATCH: usize = 16;
/// Evaluation batch. The network's weights are variables, so even an evaluation forward keeps
/// every intermediate tensor alive until its logits are dropped: 3 GB at batch 500 for a
/// ResNet-20, which the allocator handed back to the kernel and faulted in again every batch.
const EVAL_BATCH: usize = 100;

/// The runs of an E2-Train experiment, every variant of a seed on the same iterations.
/// `e2train-mnist` (quick profile): e2-train's CPU ResNet-20 preset on the embedded MNIST padded
/// to 32x32 (9k records for training, 1k held out, the 10k test set), batch [`QUICK_BATCH`],
/// seeds 1 to 3. `e2train-cifar10-resnet74` and `e2train-cifar100-resnet110` (full profile):
/// the paper's presets on the downloaded CIFAR (45k/5k split, batch 128), seed 1.
pub fn runs(experiment: Experiment, profile: Profile, ctx: &RunContext) -> Vec<RunSpec> {
    let paper = |config, dataset| {
        let (rows, seeds): (&[Variant], &[u64]) = (&ROWS[..PAPER_ROWS], &[1]);
        (
            config,
            dataset,
            ctx.full_data(),
            45_000,
            5_000,
            128,
            rows,
            seeds,
        )
    };
    let (full, dataset, data, train_records, val_records, batch, variants, seeds) =
        match (experiment, profile) {
            (Experiment::E2trainMnist, Profile::Quick) => {
                let mut c = E2TrainConfig::quick_cpu_resnet20();
                c.model.in_channels = 1;
                // Evaluation runs after training, so the timed part is training alone.
                c.eval_every = 0;
                (
                    c,
                    DatasetId::Mnist,
                    DataSource::Embedded,
                    9_000,
                    1_000,
                    QUICK_BATCH,
                    &ROWS[..],
                    &[1u64, 2, 3][..],
                )
            }
            (Experiment::E2trainCifar10Resnet74, Profile::Full) => paper(
                E2TrainConfig::paper_cifar10_resnet74(PAPER_SLU_TARGET),
                DatasetId::Cifar10,
            ),
            (Experiment::E2trainCifar100Resnet110, Profile::Full) => paper(
                E2TrainConfig::paper_cifar100_resnet110(PAPER_SLU_TARGET),
                DatasetId::Cifar100,
            ),
            _ => return Vec::new(),
        };
    let spec = |v: &Variant, seed: u64| {
        let mut config = v.method.config(&full);
        config.seed = seed;
        E2TrainSpec {
            method: v.method,
            dataset,
            data: data.clone(),
            train_records,
            val_records,
            batch,
            config,
            device: ctx.device,
        }
    };
    // The seed drives the initial weights, the data order, the drops and the gates.
    seeds
        .iter()
        .flat_map(|&seed| {
            variants.iter().map(move |v| RunSpec {
                experiment,
                id: format!("{}-seed{seed}", v.id),
                kind: RunKind::E2Train(Box::new(spec(v, seed))),
            })
        })
        .collect()
}

/// SLU target of the full-profile presets: the executed percentage the gates are pushed toward
/// (decision 1: the paper's per-run values are unverified).
const PAPER_SLU_TARGET: f64 = 50.0;

/// Metrics of a finished run (the record's `metrics`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct E2TrainMetrics {
    /// Method as displayed.
    pub method: String,
    /// Network, e.g. `gated-resnet8`.
    pub arch: String,
    /// Dataset.
    pub dataset: String,
    /// What priced the energies, e.g. `training energy (bit-product proxy)`.
    pub energy_label: String,
    /// Energy model name (`training/bit-product-proxy` for the default table).
    pub energy_model: String,
    /// Whether the per-MAC energies are a stand-in rather than measured.
    pub energy_proxy: bool,
    /// Training energy of the run, MAC16 units, with its breakdown.
    pub training_energy: TrainingEnergy,
    /// Training energy of standard training on the same nominal schedule, same model.
    pub baseline_energy: TrainingEnergy,
    /// `1 − E_run / E_base` (energy-models.md C.3).
    pub saving_vs_baseline: f64,
    /// MACs the run executed (operand widths ignored).
    pub training_macs: f64,
    /// MACs of the baseline.
    pub baseline_macs: f64,
    /// Iterations of the schedule, dropped ones included.
    pub iterations: usize,
    /// Iterations that updated the model.
    pub executed_iterations: u64,
    /// Iterations dropped by SMD.
    pub dropped_iterations: u64,
    /// Mean executed percentage of gated (block, sample) pairs over executed iterations (100
    /// without gating; stochastic depth counts a dropped block as not executed).
    pub train_executed_percentage: f64,
    /// Mean PSG fallback fraction `ρ` over the predicted layers and executed iterations.
    pub mean_fallback_fraction: Option<f64>,
    /// Mean training loss over the last 20 executed iterations.
    pub final_train_loss: Option<f64>,
    /// How gated blocks executed in training.
    pub skip: SkipExecution,
    /// Wall-clock seconds of `train` (data batches included; evaluation only if periodic).
    pub train_seconds: f64,
    /// CPU seconds of the whole process over the same span (all threads; Linux only). Only
    /// attributable to this run when runs execute one at a time (`--jobs 1`).
    pub train_process_cpu_seconds: Option<f64>,
    /// Test top-1 accuracy (evaluation gating, real skipping).
    pub test_accuracy: f64,
    /// Test cross-entropy.
    pub test_loss: f64,
    /// Test images.
    pub test_samples: usize,
    /// Executed percentage of gated blocks at test time.
    pub test_executed_percentage: f64,
    /// Validation top-1 accuracy at the end.
    pub val_accuracy: f64,
    /// Every evaluation (periodic ones and the final validation).
    pub evals: Vec<EvalLog>,
    /// Cumulative training energy after each iteration, `(iterations done, energy)`, priced
    /// like the totals (the baseline's curve is the straight line to its total).
    #[serde(default)]
    pub energy_curve: Vec<(usize, f64)>,
}

/// Training or held-out records of one split, served as `e2_train` batches: shuffled per epoch
/// and augmented (when the pipeline augments) from the seed when training, in order otherwise.
struct Records<'a> {
    data: &'a SplitData,
    indices: Vec<usize>,
    batch: usize,
    seed: u64,
    train: bool,
    device: Device,
    order: Option<(usize, Vec<usize>)>,
}

impl<'a> Records<'a> {
    fn new(
        data: &'a SplitData,
        indices: Vec<usize>,
        batch: usize,
        seed: u64,
        train: bool,
        device: &Device,
    ) -> Self {
        Self {
            data,
            indices,
            batch: batch.max(1),
            seed,
            train,
            device: device.clone(),
            order: None,
        }
    }

    /// Size of batch `index` of an epoch (the last one may be short).
    fn batch_len(&self, index: usize) -> usize {
        self.batch
            .min(self.indices.len().saturating_sub(index * self.batch))
    }
}

impl BatchSource for Records<'_> {
    fn batches_per_epoch(&self) -> usize {
        self.indices.len().div_ceil(self.batch)
    }

    fn batch(&mut self, epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)> {
        if self.train && self.order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut rng = tensor_core::rng(self.seed, &format!("batches/{epoch}"));
            let perm = tensor_core::seed::permutation(self.indices.len(), &mut rng)
                .into_iter()
                .map(|i| self.indices[i])
                .collect();
            self.order = Some((epoch, perm));
        }
        let order: &[usize] = match (&self.order, self.train) {
            (Some((_, perm)), true) => perm,
            _ => &self.indices,
        };
        let start = (index * self.batch).min(order.len());
        let chunk = &order[start..start + self.batch_len(index)];
        // Augmentation draws per batch, so a batch does not depend on which others were pulled.
        let mut rng = tensor_core::rng(self.seed, &format!("augment/{epoch}/{index}"));
        self.data
            .batch(chunk, self.train.then_some(&mut rng), &self.device)
            .map_err(|e| tensor_core::Error::Model(e.into()))
    }
}

/// Standard training's ledger on the run's nominal schedule and batch sizes (the last batch of
/// an epoch may be short), priced like the run.
fn baseline_energy(
    model: &TrainingModel,
    net: &GatedResnet,
    config: &E2TrainConfig,
    source: &Records<'_>,
) -> Result<(TrainingEnergy, f64)> {
    let work = net.standard_work(config.baseline().model.conv);
    let per_epoch = source.batches_per_epoch();
    let mut ledger = tensor_core::WorkLedger::new();
    for i in 0..config.iterations {
        ledger.record_executed(source.batch_len(i % per_epoch), work.clone())?;
    }
    let report = model.price(&ledger)?;
    Ok((report.energy, e2_train::executed_macs(&ledger)))
}

/// The zoo's plain ResNet of the same depth, whose input pipeline the gated one shares.
fn zoo_arch(depth: usize) -> Result<Arch> {
    Arch::ALL
        .into_iter()
        .find(|a| a.resnet_depth() == Some(depth))
        .with_context(|| format!("no CIFAR ResNet of depth {depth} in the zoo"))
}

/// Runs `spec`.
pub fn run(spec: &E2TrainSpec, label: &str, progress: &Progress) -> Result<E2TrainMetrics> {
    let config = spec.config.clone();
    if config.model.num_classes != spec.dataset.num_classes() {
        bail!(
            "{label}: the model has {} classes, {} has {}",
            config.model.num_classes,
            spec.dataset,
            spec.dataset.num_classes()
        );
    }
    let device = spec.device.to_device()?;
    tensor_core::seed_device(&device, config.seed)?;
    let mut recipe = TrainSpec::recipe(zoo_arch(config.model.depth)?, spec.dataset);
    recipe.data = spec.data.clone();
    let train_split = SplitData::load(&recipe, Split::Train)?;
    let (n, v) = (spec.train_records, spec.val_records);
    if train_split.len() < n + v {
        bail!(
            "{} has {} training records; {n} for training plus {v} held out are needed",
            spec.dataset,
            train_split.len(),
        );
    }
    let [c, h, w] = train_split.sample_shape();
    if [c, h, w] != [config.model.in_channels, 32, 32] {
        bail!(
            "{label}: the pipeline gives {c}x{h}x{w} images, the model takes {}x32x32",
            config.model.in_channels
        );
    }
    let test_split = SplitData::load(&recipe, Split::Test)?;
    let seed = config.seed;
    let mut train = Records::new(
        &train_split,
        (0..n).collect(),
        spec.batch,
        seed,
        true,
        &device,
    );
    let mut val = Records::new(
        &train_split,
        (n..n + v).collect(),
        EVAL_BATCH,
        seed,
        false,
        &device,
    );
    let mut test = Records::new(
        &test_split,
        (0..test_split.len()).collect(),
        EVAL_BATCH,
        seed,
        false,
        &device,
    );

    let init = SeededInit::new(seed);
    let net = e2_train::gated_resnet(config.model, init.var_builder(DType::F32, &device))
        .with_context(|| format!("{label}: cannot build the gated ResNet"))?;
    let params = init.named_vars().into_iter().map(|(_, v)| v).collect();
    let mut obs = progress.run_observer(label.to_string());
    let started = Instant::now();
    let cpu_started = process_cpu_seconds();
    let outcome = e2_train::train(
        TrainRun {
            net: &net,
            params,
            train: &mut train,
            // Periodic evaluation only when asked for, so the timing is training's.
            eval: (config.eval_every > 0).then_some(&mut val as &mut dyn BatchSource),
        },
        &config,
        &mut obs,
    )
    .with_context(|| format!("{label}: E2-Train training failed"))?;
    let train_seconds = started.elapsed().as_secs_f64();
    let train_process_cpu_seconds = process_cpu_seconds()
        .zip(cpu_started)
        .map(|(end, start)| end - start);
    drop(obs);
    if outcome.stopped_early {
        bail!(
            "{label}: interrupted after {} of {} iterations",
            outcome.history.len(),
            config.iterations
        );
    }
    let mut evals = outcome.evals.clone();
    let iterations = config.iterations;
    if config.eval_every == 0 {
        evals.push(e2_train::evaluate(&net, &config, &mut val, iterations)?);
    }
    let val_accuracy = evals.last().map_or(0.0, |e| e.accuracy);
    let test_log = e2_train::evaluate(&net, &config, &mut test, iterations)
        .with_context(|| format!("{label}: test evaluation failed"))?;

    let model = TrainingModel::bit_product_proxy();
    let report = model.price(&outcome.ledger)?;
    let (base, baseline_macs) = baseline_energy(&model, &net, &config, &train)?;
    let saving = savings(&report.energy, &base)?;
    let energy_curve = cumulative_energy(&model, &outcome.ledger)?;
    let executed: Vec<f64> = outcome
        .history
        .iter()
        .filter_map(|h| h.executed_percentage)
        .collect();
    let fallbacks: Vec<f64> = outcome
        .ledger
        .iterations()
        .iter()
        .flat_map(|it| match it {
            Iteration::Executed { layers, .. } => layers.as_slice(),
            Iteration::Dropped => &[],
        })
        .filter(|l| l.predictor.is_some())
        .map(|l| l.fallback_fraction)
        .collect();
    let losses: Vec<f64> = outcome.history.iter().filter_map(|h| h.loss).collect();
    let tail = &losses[losses.len().saturating_sub(20)..];
    let energy_label = if report.energy.proxy {
        "training energy (bit-product proxy)".to_string()
    } else {
        format!("training energy ({})", report.energy.model)
    };
    Ok(E2TrainMetrics {
        method: spec.label(),
        arch: tensor_core::Network::arch(&net).to_string(),
        dataset: spec.dataset.to_string(),
        energy_label,
        energy_model: report.energy.model.clone(),
        energy_proxy: report.energy.proxy,
        training_macs: e2_train::executed_macs(&outcome.ledger),
        baseline_macs,
        saving_vs_baseline: saving,
        iterations,
        executed_iterations: outcome.ledger.executed(),
        dropped_iterations: outcome.ledger.dropped(),
        train_executed_percentage: mean(&executed).unwrap_or(100.0),
        mean_fallback_fraction: mean(&fallbacks),
        final_train_loss: mean(tail),
        skip: config.skip,
        train_seconds,
        train_process_cpu_seconds,
        test_accuracy: test_log.accuracy,
        test_loss: test_log.loss,
        test_samples: test_log.samples,
        test_executed_percentage: test_log.executed_percentage,
        val_accuracy,
        evals,
        energy_curve,
        training_energy: report.energy,
        baseline_energy: base,
    })
}

/// Energy after each iteration of `ledger`, each iteration priced on its own (dropped ones add
/// nothing).
fn cumulative_energy(model: &TrainingModel, ledger: &WorkLedger) -> Result<Vec<(usize, f64)>> {
    let mut total = 0.0;
    let mut curve = Vec::with_capacity(ledger.iterations().len());
    for (i, it) in ledger.iterations().iter().enumerate() {
        if let Iteration::Executed { batch, layers } = it {
            let mut one = WorkLedger::new();
            one.record_executed(*batch, layers.clone())?;
            total += model.price(&one)?.energy.total();
        }
        curve.push((i + 1, total));
    }
    Ok(curve)
}

/// User plus system CPU time of this process from `/proc/self/stat`, in seconds (clock ticks
/// taken as 100 Hz, the Linux default); `None` where unavailable.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

#[cfg(test)]
mod tests;
