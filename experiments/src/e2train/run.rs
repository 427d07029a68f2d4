//! One E2-Train run: data, the gated ResNet, e2-train's trainer, the final validation and test
//! evaluations, and the training energy against standard training's, priced by energy-model's
//! training model. The run leaves a checkpoint after every epoch (`last.safetensors` in its
//! checkpoint directory) and `--resume` continues from it bit for bit.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cnn_zoo::{Arch, ResnetInit, ResnetOptions};
use e2_train::{
    Checkpoint, Checkpointing, E2TrainConfig, GatedResnet, GatedResnetConfig, TrainRun, TrainState,
};
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_model::training::dataflow::DataflowTraining;
use energy_model::training::{TrainingModel, savings};
use tensor_core::{
    BatchSource, DType, Device, Iteration, OpsBackend, SeededInit, Tensor, Var, WorkLedger,
};

use super::{DataflowMeasure, E2TrainMetrics, E2TrainSpec};
use crate::checkpoint::{self, CheckpointMeta};
use crate::data::{Split, SplitBatches, SplitData};
use crate::paths::git_revision;
use crate::registry::RunEnv;
use crate::train::TrainSpec;

/// Evaluation batch. The network's weights are variables, so even an evaluation forward keeps
/// every intermediate tensor alive until its logits are dropped: 3 GB at batch 500 for a
/// ResNet-20, which the allocator handed back to the kernel and faulted in again every batch.
const EVAL_BATCH: usize = 100;

/// Runs `spec`.
pub fn run(spec: &E2TrainSpec, env: &RunEnv<'_>) -> Result<E2TrainMetrics> {
    let label = &env.label;
    let config = spec.config.clone();
    if config.model.num_classes != spec.dataset.num_classes() {
        bail!(
            "{label}: the model has {} classes, {} has {}",
            config.model.num_classes,
            spec.dataset,
            spec.dataset.num_classes()
        );
    }
    let device = env.open(spec.device)?;
    tensor_core::seed_device(&device, config.seed)?;
    let mut recipe = TrainSpec::recipe(zoo_arch(config.model.depth)?, spec.dataset);
    recipe.data = spec.data;
    let train_split = SplitData::load(&recipe, Split::Train, env.data)?;
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
    let test_split = SplitData::load(&recipe, Split::Test, env.data)?;
    let seed = config.seed;
    let mut train = SplitBatches::new(
        &train_split,
        (0..n).collect(),
        spec.batch,
        seed,
        true,
        &device,
    );
    let mut val = SplitBatches::new(
        &train_split,
        (n..n + v).collect(),
        EVAL_BATCH,
        seed,
        false,
        &device,
    );
    let mut test = SplitBatches::new(
        &test_split,
        (0..test_split.len()).collect(),
        EVAL_BATCH,
        seed,
        false,
        &device,
    );

    let init = SeededInit::new(seed);
    let net = gated(config.model, &init, &device)
        .with_context(|| format!("{label}: cannot build the gated ResNet"))?;
    let named = init.named_vars();
    let params = named.iter().map(|(_, v)| v.clone()).collect();
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let ckpt_path = env.checkpoints.join("last.safetensors");
    let spec_json = serde_json::to_value(spec)?;
    let (resume, before) = if env.resume && ckpt_path.exists() {
        let (c, before) = load_checkpoint(&ckpt_path, &spec_json, &named, &device)?;
        (Some(c), before)
    } else {
        (None, Timing::default())
    };
    let mut obs = env.reporter.observer(label);
    let started = Instant::now();
    let cpu_started = process_cpu_seconds();
    let timing = || Timing {
        seconds: before.seconds + started.elapsed().as_secs_f64(),
        cpu_seconds: before
            .cpu_seconds
            .zip(process_cpu_seconds().zip(cpu_started))
            .map(|(b, (end, start))| b + end - start),
    };
    let per_epoch = train.batches_per_epoch();
    let mut save = |c: &Checkpoint| -> e2_train::Result<()> {
        let meta = CheckpointMeta {
            arch: tensor_core::Network::arch(&net).to_string(),
            dataset: spec.dataset.to_string(),
            epoch: c.state.done / per_epoch.max(1),
            seed,
            git_revision: git_revision(),
            spec: spec_json.clone(),
            extra: checkpoint_extra(&c.state, timing()),
        };
        save_checkpoint(&ckpt_path, &meta, &names, c)
            .map_err(|e| tensor_core::Error::Model(e.into()).into())
    };
    let outcome = ahead(&mut train, &device, |train| {
        e2_train::train_resumable(
            TrainRun {
                net: &net,
                params,
                train,
                // Periodic evaluation only when asked for, so the timing is training's.
                eval: (config.eval_every > 0).then_some(&mut val as &mut dyn BatchSource),
            },
            &config,
            obs.as_mut(),
            resume,
            Some(Checkpointing {
                every: per_epoch,
                save: &mut save,
            }),
        )
    })
    .with_context(|| format!("{label}: E2-Train training failed"))?;
    let Timing {
        seconds: train_seconds,
        cpu_seconds: train_process_cpu_seconds,
    } = timing();
    drop(obs);
    let mut evals = outcome.evals.clone();
    let iterations = config.iterations;
    if config.eval_every == 0 {
        evals.push(e2_train::evaluate(&net, &config, &mut val, iterations)?);
    }
    let val_accuracy = evals.last().map_or(0.0, |e| e.accuracy);
    let test_log = ahead(&mut test, &device, |test| {
        e2_train::evaluate(&net, &config, test, iterations)
    })
    .with_context(|| format!("{label}: test evaluation failed"))?;

    let model = TrainingModel::bit_product_proxy();
    let report = model.price(&outcome.ledger)?;
    let base_ledger = baseline_ledger(&net, &config, &train)?;
    let base = model.price(&base_ledger)?.energy;
    let baseline_macs = e2_train::executed_macs(&base_ledger);
    let saving = savings(&report.energy, &base)?;
    let dataflow = dataflow(&net, spec.batch, &outcome.ledger, &base_ledger)
        .with_context(|| format!("{label}: cannot price the training with data movement"))?;
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
        dataflow: Some(dataflow),
    })
}

/// Training time spent so far, across resumes.
#[derive(Clone, Copy, Debug, Default)]
struct Timing {
    seconds: f64,
    /// `None` where the process CPU time cannot be read.
    cpu_seconds: Option<f64>,
}

const STATE_KEY: &str = "e2_state";
const SECONDS_KEY: &str = "train_seconds";
const CPU_SECONDS_KEY: &str = "train_process_cpu_seconds";

fn checkpoint_extra(state: &TrainState, t: Timing) -> serde_json::Map<String, serde_json::Value> {
    let mut extra = serde_json::Map::new();
    // A state that does not serialise cannot be resumed from; the run itself goes on.
    extra.insert(
        STATE_KEY.into(),
        serde_json::to_value(state).unwrap_or(serde_json::Value::Null),
    );
    extra.insert(SECONDS_KEY.into(), t.seconds.into());
    extra.insert(CPU_SECONDS_KEY.into(), t.cpu_seconds.into());
    extra
}

/// Writes `c` to `path` atomically: parameters under their variable names, momentum buffers as
/// `momentum.<name>`, the plain state and the timing in the metadata.
fn save_checkpoint(
    path: &Path,
    meta: &CheckpointMeta,
    names: &[String],
    c: &Checkpoint,
) -> Result<()> {
    let model: Vec<(String, Var)> = names
        .iter()
        .zip(&c.params)
        .map(|(n, t)| Ok((n.clone(), Var::from_tensor(t)?)))
        .collect::<Result<_>>()?;
    let momentum: Vec<(String, Tensor)> = names
        .iter()
        .zip(&c.momentum)
        .filter_map(|(n, b)| b.clone().map(|b| (format!("momentum.{n}"), b)))
        .collect();
    checkpoint::save(path, meta, &model, &momentum)
}

/// The checkpoint at `path`, which must belong to `spec`, as the trainer's [`Checkpoint`] over
/// the named variables `vars`, and the training time it had taken.
fn load_checkpoint(
    path: &Path,
    spec: &serde_json::Value,
    vars: &[(String, Var)],
    device: &Device,
) -> Result<(Checkpoint, Timing)> {
    let ckpt = checkpoint::load(path, device)?;
    if &ckpt.meta.spec != spec {
        bail!(
            "{} belongs to a different run spec; remove it or drop --resume",
            path.display()
        );
    }
    let field = |key: &str| {
        ckpt.meta
            .extra
            .get(key)
            .cloned()
            .with_context(|| format!("{} has no `{key}`", path.display()))
    };
    let state: TrainState = serde_json::from_value(field(STATE_KEY)?)
        .with_context(|| format!("{} has a malformed training state", path.display()))?;
    let timing = Timing {
        seconds: field(SECONDS_KEY)?.as_f64().unwrap_or(0.0),
        cpu_seconds: field(CPU_SECONDS_KEY)?.as_f64(),
    };
    // The one check of a checkpoint's tensors against the network's variables (names, shapes,
    // finite values); the trainer then takes the restored values as the run's parameters.
    checkpoint::restore_vars(path, &ckpt, vars)?;
    let params = vars
        .iter()
        .map(|(_, v)| v.as_tensor().copy())
        .collect::<std::result::Result<_, _>>()?;
    let momentum = vars
        .iter()
        .map(|(n, _)| ckpt.optimizer.get(&format!("momentum.{n}")).cloned())
        .collect();
    Ok((
        Checkpoint {
            state,
            params,
            momentum,
        },
        timing,
    ))
}

/// Standard training's work on the run's nominal schedule.
fn baseline_ledger(
    net: &GatedResnet,
    config: &E2TrainConfig,
    source: &SplitBatches<'_>,
) -> Result<WorkLedger> {
    let per_epoch = source.batches_per_epoch().max(1);
    Ok(e2_train::baseline_ledger(net, config, &|i| {
        source.batch_len(i % per_epoch)
    })?)
}

/// The run and standard training priced with data movement: every training GEMM as the
/// convolution it is on the Eyeriss chip, mapped at the training batch.
fn dataflow(
    net: &GatedResnet,
    batch: usize,
    ledger: &WorkLedger,
    base: &WorkLedger,
) -> Result<DataflowMeasure> {
    let model =
        DataflowTraining::new(Eyeriss::preset(Preset::Chip, batch)?, net.pricing_layers()?)?;
    let run = model.price(ledger)?;
    let baseline = model.price(base)?;
    Ok(DataflowMeasure {
        saving_vs_baseline: savings(&run.energy, &baseline.energy)?,
        fallbacks: run
            .fallbacks
            .iter()
            .map(|f| format!("layer {} {} ({})", f.layer, f.product, f.reason))
            .collect(),
        energy: run.energy,
        baseline_energy: baseline.energy,
    })
}

/// Runs `f` on `source`, served a batch ahead ([`tensor_core::prefetch`]) on a GPU, where
/// preparing a batch on the host and copying it over then overlaps the device's work on the
/// previous one. On the CPU the worker would take cycles from the trainer's kernels to prepare,
/// among others, the batches SMD then drops; there a batch is prepared when it is used, so a
/// dropped one costs only its draw.
fn ahead<R>(
    source: &mut SplitBatches<'_>,
    device: &Device,
    f: impl FnOnce(&mut dyn BatchSource) -> R,
) -> R {
    if device.is_cpu() {
        f(source)
    } else {
        tensor_core::prefetch::with_prefetch(source, |p| f(p))
    }
}

/// E2-Train's gated network of `m` around cnn-zoo's CIFAR ResNet with the reference's
/// initialisation; batch norm, pooling and the FC layer run on candle's stock ops, as the
/// reference's do (the convolutions are e2-train's own). Parameters come from `init`.
pub fn gated(m: GatedResnetConfig, init: &SeededInit, device: &Device) -> Result<GatedResnet> {
    let vb = init.var_builder(DType::F32, device);
    let options = ResnetOptions {
        init: ResnetInit::E2TrainReference,
        backend: OpsBackend::Candle,
    };
    let backbone =
        cnn_zoo::resnet_with(m.depth, m.num_classes, m.in_channels, vb.clone(), options)?;
    Ok(e2_train::gated_resnet(m, Box::new(backbone), vb)?)
}

/// The zoo's plain ResNet of the same depth, whose input pipeline the gated one shares.
fn zoo_arch(depth: usize) -> Result<Arch> {
    Arch::ALL
        .into_iter()
        .find(|a| a.resnet_depth() == Some(depth))
        .with_context(|| format!("no CIFAR ResNet of depth {depth} in the zoo"))
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
