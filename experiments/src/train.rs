//! The baseline trainer shared by `cargo xtask train` and the experiments: epochs, a
//! learning-rate schedule, evaluation after every epoch, an atomic checkpoint after every epoch,
//! and exact resume.
//!
//! It speaks tensor-core's training contract: the schedule is a [`LrSchedule`] on the global
//! iteration index, the test evaluation is [`tensor_core::evaluate`], an observer's `Break` ends
//! the run with [`tensor_core::Error::Interrupted`] and a NaN or infinite loss with
//! [`tensor_core::Error::Diverged`] (the root cause of the returned error, under a context that
//! says which checkpoint survives).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use datasets::DatasetId;
use datasets::FolderBatches;
use serde::{Deserialize, Serialize};
use tensor_core::tensor::nn;
use tensor_core::{
    BatchSource, BatchStats, DType, Device, DeviceKind, DeviceSpec, EvalStats, Evaluation, LrDecay,
    LrSchedule, MomentumSgd, Network, Observer, RunStart, SeededInit, SgdConfig, Step, Tensor,
};

use crate::checkpoint::{self, CheckpointMeta};
use crate::data::{DataDir, DataSource, Split, SplitBatches, SplitData};
use crate::paths::git_revision;

mod schedule_form;

/// Everything that defines a training run; saved in every checkpoint and record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    /// Model.
    pub arch: Arch,
    /// Dataset.
    pub dataset: DatasetId,
    /// Which data: the embedded subset or the full dataset (read from the run's [`DataDir`]).
    pub data: DataSource,
    /// Use only the first `n` training records (all when `None`).
    pub train_limit: Option<usize>,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Optimiser hyper-parameters (base learning rate included).
    pub optimizer: SgdConfig,
    /// Learning-rate schedule on the global iteration index (milestones count iterations),
    /// from the base rate `optimizer.lr`.
    #[serde(with = "schedule_form")]
    pub schedule: LrSchedule,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// The kind of device (`cpu` or `cuda`); which GPU is the caller's (`train_from`).
    pub device: DeviceKind,
    /// Starting weights read from a PyTorch `state_dict` instead of drawn from `seed` (which
    /// still seeds shuffling and augmentation). Absent from the stored spec when `None`, so the
    /// specs of seeded runs keep their form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<InitFrom>,
}

/// The weight file a run starts from, as its spec records it: by content (its SHA-256) and file
/// name, never by folder, so one run has one spec on every machine (as with [`DataSource`]), and
/// a resume with another file is refused as another spec. The file itself is handed to
/// [`train_from`] beside the spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitFrom {
    /// The file's name, without its folder.
    pub file: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
}

impl InitFrom {
    /// Names the file at `path` by its name and content.
    pub fn of(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let file = path
            .file_name()
            .with_context(|| format!("{} names no file", path.display()))?
            .to_string_lossy()
            .into_owned();
        Ok(Self {
            file,
            sha256: datasets::sha256_hex(&bytes),
        })
    }
}

impl TrainSpec {
    /// The default recipe for an architecture on a dataset: momentum SGD with cosine decay;
    /// on ImageNet AlexNet's rate of 0.01 at batch 256 for 90 epochs.
    pub fn recipe(arch: Arch, dataset: DatasetId) -> Self {
        let (lr, epochs, batch) = match dataset {
            DatasetId::Mnist | DatasetId::FashionMnist => (0.05, 8, 64),
            DatasetId::ImageNet => (0.01, 90, 256),
            _ => (0.1, 30, 64),
        };
        Self {
            arch,
            dataset,
            data: DataSource::Embedded,
            train_limit: None,
            epochs,
            batch,
            optimizer: SgdConfig {
                lr,
                momentum: 0.9,
                weight_decay: 5e-4,
            },
            schedule: LrSchedule::new(LrDecay::Cosine),
            seed: 1,
            device: DeviceKind::Cpu,
            init_from: None,
        }
    }

    fn validate(&self) -> Result<()> {
        // Zero epochs: the model is the weight file's, evaluated once (a pretrained dense model).
        if (self.epochs == 0 && self.init_from.is_none()) || self.batch == 0 {
            bail!(
                "epochs and batch size must be positive (got {} and {}); zero epochs need a \
                 weight file to start from",
                self.epochs,
                self.batch
            );
        }
        self.optimizer.validate()?;
        if self.train_limit == Some(0) {
            bail!("the training limit must keep at least one record (got 0)");
        }
        self.schedule.clone().validate()?;
        Ok(())
    }
}

/// Accuracy after one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochResult {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Test-set top-1 accuracy in `[0, 1]`.
    pub test_accuracy: f64,
    /// Test-set top-5 accuracy in `[0, 1]`, for ImageNet runs (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_top5: Option<f64>,
    /// Mean test loss.
    pub test_loss: f64,
    /// Seconds spent in this epoch's training and evaluation.
    pub seconds: f64,
}

/// What a finished run reports (the record's metrics of a training run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOutcome {
    /// Every epoch, resumed ones included.
    pub history: Vec<EpochResult>,
    /// Test accuracy after the last epoch.
    pub final_accuracy: f64,
    /// Test top-5 accuracy after the last epoch, for ImageNet runs (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_top5: Option<f64>,
    /// Training records used.
    pub train_samples: usize,
    /// Test records evaluated.
    pub test_samples: usize,
    /// Path of the final checkpoint.
    pub checkpoint: PathBuf,
}

const HISTORY_KEY: &str = "history";
/// Test images per evaluation batch.
const EVAL_BATCH: usize = 500;

/// Trains `spec` on its data (the full dataset from `data`) with checkpoints in `dir`
/// (`last.safetensors`), resuming from it when `resume` is set and it belongs to the same spec.
/// A spec with [`TrainSpec::init_from`] needs its file: see [`train_from`].
pub fn train(
    spec: &TrainSpec,
    data: &DataDir,
    dir: &Path,
    resume: bool,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    train_from(spec, data, None, spec.device.first(), dir, resume, observer)
}

/// [`train`] with the file of [`TrainSpec::init_from`] at `init_file`: the model starts from
/// its weights (loaded by [`cnn_zoo::load_state_dict`], so a file of another architecture fails
/// naming a tensor) unless the run resumes from a checkpoint. The file must be the one the spec
/// names, and a spec naming one must be given it.
pub fn train_from(
    spec: &TrainSpec,
    data: &DataDir,
    init_file: Option<&Path>,
    device: DeviceSpec,
    dir: &Path,
    resume: bool,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    let readback = match device.kind() {
        DeviceKind::Cpu => 1,
        DeviceKind::Cuda => GPU_LOSS_READBACK,
    };
    train_with_readback(
        spec, data, init_file, device, dir, resume, observer, readback,
    )
}

/// Batches whose losses a GPU run reads back to the host at once.
const GPU_LOSS_READBACK: usize = 32;

/// [`train_from`], reading the training losses back to the host every `readback` batches (and
/// at the end of every epoch). Each read-back waits for the device, so a GPU run defers it: the
/// losses, their divergence checks and the observer's calls are the same, in the same order, only
/// later. On a CPU the read-back is a copy and every batch's loss is checked before its step
/// (`readback` 1). A deferred non-finite loss is found up to `readback − 1` steps late, and still
/// before the epoch's checkpoint, which it never reaches.
#[allow(clippy::too_many_arguments)]
fn train_with_readback(
    spec: &TrainSpec,
    data: &DataDir,
    init_file: Option<&Path>,
    device: DeviceSpec,
    dir: &Path,
    resume: bool,
    observer: &mut dyn Observer,
    readback: usize,
) -> Result<TrainOutcome> {
    spec.validate()?;
    match (&spec.init_from, init_file) {
        (None, None) => {}
        (Some(named), Some(path)) => {
            if InitFrom::of(path)? != *named {
                bail!(
                    "{} is not the weight file of this run spec ({} with sha256 {})",
                    path.display(),
                    named.file,
                    named.sha256
                );
            }
        }
        (Some(named), None) => bail!(
            "the run spec starts from the weight file {} (sha256 {}), but none was given",
            named.file,
            named.sha256
        ),
        (None, Some(path)) => bail!(
            "a weight file {} was given, but the run spec starts from a seeded initialisation",
            path.display()
        ),
    }
    if device.kind() != spec.device {
        bail!("the run spec trains on {}, not on {device}", spec.device);
    }
    let device = device
        .to_device()
        .with_context(|| format!("cannot use the device {device}"))?;
    tensor_core::seed_device(&device, spec.seed)?;
    let mut splits = RunData::load(spec, data, &device)?;
    let init = SeededInit::new(spec.seed);
    let vb = init.var_builder(DType::F32, &device);
    let c = splits.channels();
    let net = cnn_zoo::build(spec.arch, spec.dataset.num_classes(), c, vb)
        .with_context(|| format!("cannot build {}", spec.arch))?;
    let ckpt_path = dir.join("last.safetensors");
    let resuming = resume && ckpt_path.exists();
    // A resumed run takes every variable from its checkpoint.
    if let (Some(path), false) = (init_file, resuming) {
        cnn_zoo::load_state_dict(path, init.var_map())
            .with_context(|| format!("cannot start {} from {}", spec.arch, path.display()))?;
    }
    let vars = init.named_vars();
    let mut opt = MomentumSgd::with_config(
        vars.iter().map(|(_, v)| v.clone()).collect(),
        spec.optimizer,
    )?;

    let spec_json = serde_json::to_value(spec)?;
    let mut history: Vec<EpochResult> = Vec::new();
    let mut start_epoch = 0;
    if resuming {
        let ckpt = checkpoint::load(&ckpt_path, &device)?;
        if ckpt.meta.spec != spec_json {
            bail!(
                "{} belongs to a different run spec; remove it or drop --resume",
                ckpt_path.display()
            );
        }
        checkpoint::restore_vars(&ckpt_path, &ckpt, &vars)?;
        let buffers = vars
            .iter()
            .map(|(name, _)| ckpt.optimizer.get(&format!("momentum.{name}")).cloned())
            .collect();
        opt.set_buffers(buffers)?;
        // The record is built from this history: a missing or short one would silently drop
        // epochs from it, so both are errors.
        let rows = ckpt
            .meta
            .extra
            .get(HISTORY_KEY)
            .cloned()
            .with_context(|| format!("{} has no training history", ckpt_path.display()))?;
        history = serde_json::from_value(rows)
            .with_context(|| format!("{} has a malformed training history", ckpt_path.display()))?;
        let epochs: Vec<usize> = history.iter().map(|h| h.epoch).collect();
        if epochs != (0..ckpt.meta.epoch).collect::<Vec<_>>() {
            bail!(
                "{} says {} epochs are done but its history holds epochs {epochs:?}",
                ckpt_path.display(),
                ckpt.meta.epoch
            );
        }
        if ckpt.meta.epoch > spec.epochs {
            bail!(
                "{} holds {} epochs, more than the {} of this run",
                ckpt_path.display(),
                ckpt.meta.epoch,
                spec.epochs
            );
        }
        start_epoch = ckpt.meta.epoch;
    }

    let n = splits.train_len();
    let per_epoch = n.div_ceil(spec.batch);
    let total_iters = per_epoch * spec.epochs;
    observer.on_run_start(&RunStart {
        name: format!("{} on {} seed {}", spec.arch, spec.dataset, spec.seed),
        epochs: spec.epochs,
        batches_per_epoch: per_epoch,
    });
    for epoch in start_epoch..spec.epochs {
        let started = Instant::now();
        observer.on_epoch_start(epoch);
        let batches = splits.epoch(spec, epoch, &device);
        let loss_sum = tensor_core::prefetch::in_order(batches, |batches| -> Result<f64> {
            let mut losses = Losses {
                sum: 0.0,
                pending: Vec::with_capacity(readback),
            };
            for (b, batch) in batches.enumerate() {
                let iter = epoch * per_epoch + b;
                let lr = spec.schedule.at(spec.optimizer.lr, iter, total_iters);
                tensor_core::tensor::Optimizer::set_learning_rate(&mut opt, lr);
                let (xs, ys) = batch?;
                let samples = ys.dim(0)?;
                let logits = net.forward_t(&xs, true)?;
                let loss = nn::loss::cross_entropy(&logits, &ys)?;
                // Detached, so a pending loss keeps no graph (and no activations) alive.
                losses.pending.push(PendingLoss {
                    stats: BatchStats {
                        epoch,
                        batch: b,
                        loss: f64::NAN,
                        lr,
                        samples,
                    },
                    iter,
                    loss: loss.detach(),
                });
                if losses.pending.len() >= readback {
                    losses.flush(observer, &ckpt_path)?;
                }
                let grads = loss.backward()?;
                opt.step_grads(&grads)?;
            }
            losses.flush(observer, &ckpt_path)?;
            Ok(losses.sum)
        })?;
        let test = splits.test(net.as_ref(), &device)?;
        // The last step of an epoch can leave non-finite weights behind a finite loss: never
        // let them overwrite the last good checkpoint.
        let last_step = (epoch + 1) * per_epoch - 1;
        if let Some(name) = first_non_finite(&vars)? {
            let what = format!("parameter `{name}` after epoch {}", epoch + 1);
            return Err(stopped(
                tensor_core::Error::NonFinite { what },
                last_step,
                &ckpt_path,
            ));
        }
        if !test.loss.is_finite() {
            let what = format!("the test loss after epoch {}", epoch + 1);
            return Err(stopped(
                tensor_core::Error::NonFinite { what },
                last_step,
                &ckpt_path,
            ));
        }
        observer.on_eval(&EvalStats {
            epoch,
            split: "test".into(),
            accuracy: test.accuracy,
            loss: test.loss,
            samples: test.samples,
        });
        history.push(EpochResult {
            epoch,
            train_loss: loss_sum / per_epoch as f64,
            test_accuracy: test.accuracy,
            test_top5: splits.top5(&test),
            test_loss: test.loss,
            seconds: started.elapsed().as_secs_f64(),
        });
        let mut extra = serde_json::Map::new();
        extra.insert(HISTORY_KEY.into(), serde_json::to_value(&history)?);
        let meta = CheckpointMeta {
            arch: spec.arch.to_string(),
            dataset: spec.dataset.to_string(),
            epoch: epoch + 1,
            seed: spec.seed,
            git_revision: git_revision(),
            spec: spec_json.clone(),
            extra,
        };
        let optim: Vec<(String, Tensor)> = vars
            .iter()
            .zip(opt.buffers())
            .filter_map(|((name, _), b)| b.clone().map(|b| (format!("momentum.{name}"), b)))
            .collect();
        checkpoint::save(&ckpt_path, &meta, &vars, &optim)?;
    }
    let (final_accuracy, final_top5) = match history.last() {
        Some(h) => (h.test_accuracy, h.test_top5),
        // Zero epochs: the weight file's model as it is, evaluated and saved once.
        None => {
            let test = splits.test(net.as_ref(), &device)?;
            if !resuming {
                let meta = CheckpointMeta {
                    arch: spec.arch.to_string(),
                    dataset: spec.dataset.to_string(),
                    epoch: 0,
                    seed: spec.seed,
                    git_revision: git_revision(),
                    spec: spec_json.clone(),
                    extra: [(HISTORY_KEY.to_string(), serde_json::json!([]))]
                        .into_iter()
                        .collect(),
                };
                checkpoint::save(&ckpt_path, &meta, &vars, &[])?;
            }
            (test.accuracy, splits.top5(&test))
        }
    };
    Ok(TrainOutcome {
        history,
        final_accuracy,
        final_top5,
        train_samples: n,
        test_samples: splits.test_len(),
        checkpoint: ckpt_path,
    })
}

/// The splits a dense run trains and tests on.
// One value per run: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum RunData {
    /// A dataset's record files on the host, converted batch by batch.
    Records { train: SplitData, test: SplitData },
    /// ImageNet's class folders: the training images shuffled and augmented by the folder
    /// loader's worker threads, the validation images as the test split.
    Folder {
        train: FolderBatches,
        test: FolderBatches,
    },
}

/// ImageNet images per evaluation batch (a batch of 224 × 224 images is 0.6 MB per image).
const FOLDER_EVAL_BATCH: usize = 100;

impl RunData {
    fn load(spec: &TrainSpec, data: &DataDir, device: &Device) -> Result<Self> {
        if !spec.dataset.has_records() {
            let dir = data.imagenet_for(spec)?;
            return Ok(RunData::Folder {
                train: crate::data::imagenet_train(&dir, spec.arch, spec.batch, spec.seed, device)?,
                test: crate::data::imagenet_val(&dir, spec.arch, FOLDER_EVAL_BATCH, device)?,
            });
        }
        let train = SplitData::load(spec, Split::Train, data)?;
        let test = SplitData::load(spec, Split::Test, data)?;
        // Means over no records would be NaN in the record, not an error.
        for (split, data) in [("training", &train), ("test", &test)] {
            if data.is_empty() {
                bail!("the {split} split of {} has no records", spec.dataset);
            }
        }
        Ok(RunData::Records { train, test })
    }

    fn train_len(&self) -> usize {
        match self {
            RunData::Records { train, .. } => train.len(),
            RunData::Folder { train, .. } => train.folder().len(),
        }
    }

    fn test_len(&self) -> usize {
        match self {
            RunData::Records { test, .. } => test.len(),
            RunData::Folder { test, .. } => test.folder().len(),
        }
    }

    /// Channels of a sample as the network sees it.
    fn channels(&self) -> usize {
        match self {
            RunData::Records { train, .. } => train.sample_shape()[0],
            RunData::Folder { .. } => 3,
        }
    }

    /// The training batches of `epoch`, in order. Records: per-epoch streams, so resuming at an
    /// epoch boundary replays exactly the same order, and one augmentation stream drawn batch
    /// after batch (the batches are prepared one ahead on a worker thread, in order, so it draws
    /// exactly as it would here). Folders: the loader's own seeded order and draws.
    fn epoch<'a>(
        &'a mut self,
        spec: &TrainSpec,
        epoch: usize,
        device: &'a Device,
    ) -> Box<dyn Iterator<Item = Result<(Tensor, Tensor)>> + Send + 'a> {
        let batch = spec.batch;
        match self {
            RunData::Records { train, .. } => {
                let mut shuffle = tensor_core::rng(spec.seed, &format!("shuffle/{epoch}"));
                let mut augment = tensor_core::rng(spec.seed, &format!("augment/{epoch}"));
                let order = tensor_core::seed::permutation(train.len(), &mut shuffle);
                let train: &SplitData = train;
                Box::new((0..order.len().div_ceil(batch)).map(move |b| {
                    let idx = &order[b * batch..((b + 1) * batch).min(order.len())];
                    train.batch(idx, Some(&mut augment), device)
                }))
            }
            RunData::Folder { train, .. } => {
                let batches = train.batches_per_epoch();
                Box::new((0..batches).map(move |b| Ok(train.batch(epoch, b)?)))
            }
        }
    }

    /// The network evaluated on the test split.
    fn test(&mut self, net: &dyn Network, device: &Device) -> Result<Evaluation> {
        let forward = |xs: &Tensor| net.forward_t(xs, false);
        Ok(match self {
            RunData::Records { test, .. } => {
                let mut batches = SplitBatches::in_order(test, EVAL_BATCH, device);
                tensor_core::evaluate("the test split", &mut batches, forward)?
            }
            RunData::Folder { test, .. } => {
                tensor_core::evaluate("the validation images", test, forward)?
            }
        })
    }

    /// The top-5 accuracy a record keeps: ImageNet's only.
    fn top5(&self, test: &Evaluation) -> Option<f64> {
        matches!(self, RunData::Folder { .. }).then_some(test.top5)
    }
}

/// A batch's loss still on the device, with what its observer call needs.
struct PendingLoss {
    /// The batch's statistics, all but the loss.
    stats: BatchStats,
    /// Global step.
    iter: usize,
    loss: Tensor,
}

/// An epoch's training losses: the sum of those read back, and those still on the device.
struct Losses {
    sum: f64,
    pending: Vec<PendingLoss>,
}

impl Losses {
    /// Reads the pending losses back in one transfer, then checks each and reports it, in
    /// order: a non-finite loss is a divergence at its step, an observer's `Break` an interrupt.
    fn flush(&mut self, observer: &mut dyn Observer, ckpt: &Path) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let on_device: Vec<Tensor> = self.pending.iter().map(|p| p.loss.clone()).collect();
        let values = Tensor::stack(&on_device, 0)?.to_vec1::<f32>()?;
        for (p, v) in self.pending.drain(..).zip(values) {
            let at = || Step::new("training", p.stats.epoch, p.stats.batch);
            let loss =
                tensor_core::finite_loss(f64::from(v), at).map_err(|e| stopped(e, p.iter, ckpt))?;
            self.sum += loss;
            let stats = BatchStats { loss, ..p.stats };
            if let ControlFlow::Break(()) = observer.on_batch_end(&stats) {
                let interrupted = tensor_core::Error::Interrupted { at: at() };
                return Err(stopped(interrupted, p.iter, ckpt));
            }
        }
        Ok(())
    }
}

/// A run that stopped at global step `iter`: the cause (interrupt, divergence) stays the root of
/// the error, the context says which checkpoint survives.
fn stopped(cause: tensor_core::Error, iter: usize, ckpt: &Path) -> anyhow::Error {
    let kept = if ckpt.exists() {
        format!("the last good checkpoint {} is kept", ckpt.display())
    } else {
        "no epoch completed, so no checkpoint was written".into()
    };
    anyhow::Error::new(cause).context(format!("training stopped at global step {iter}; {kept}"))
}

/// The name of the first variable holding a NaN or an infinity, if any.
pub fn first_non_finite(vars: &[(String, tensor_core::Var)]) -> Result<Option<String>> {
    for (name, var) in vars {
        // One reduction per variable: NaN and ±inf survive a sum of absolute values, and a
        // finite f32 tensor of these sizes cannot overflow it in f64.
        let sum = var
            .as_tensor()
            .abs()?
            .to_dtype(DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?;
        if !sum.is_finite() {
            return Ok(Some(name.clone()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
