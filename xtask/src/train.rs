//! The baseline trainer shared by `train` and the experiments: epochs, a learning-rate schedule,
//! evaluation after every epoch, an atomic checkpoint after every epoch, and exact resume.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use datasets::DatasetId;
use serde::{Deserialize, Serialize};
use tensor_core::tensor::nn;
use tensor_core::{
    BatchStats, DType, DeviceSpec, EvalStats, MomentumSgd, Network, Observer, RunStart, SeededInit,
    SgdConfig, Tensor,
};

use crate::checkpoint::{self, CheckpointMeta};
use crate::data::{DataSource, Split, SplitData};
use crate::paths::git_revision;

/// Learning-rate schedule over the iterations of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// Cosine decay from the base rate to 0 at the last iteration.
    Cosine,
    /// Multiply by `gamma` at each epoch in `milestones`.
    Step {
        /// Epochs (0-based) at which the rate is multiplied.
        milestones: Vec<usize>,
        /// The factor.
        gamma: f64,
    },
}

impl LrSchedule {
    /// Rate at global iteration `iter` (0-based) of `total`, in epoch `epoch`.
    pub fn rate(&self, base: f64, epoch: usize, iter: usize, total: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine => {
                let t = iter as f64 / total.max(1) as f64;
                0.5 * base * (1.0 + (std::f64::consts::PI * t).cos())
            }
            LrSchedule::Step { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| epoch >= m).count() as i32)
            }
        }
    }
}

/// Everything that defines a training run; saved in every checkpoint and record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    /// Model.
    pub arch: Arch,
    /// Dataset.
    pub dataset: DatasetId,
    /// Where the data comes from.
    pub data: DataSource,
    /// Use only the first `n` training records (all when `None`).
    pub train_limit: Option<usize>,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Optimiser hyper-parameters (base learning rate included).
    pub optimizer: SgdConfig,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// Device.
    pub device: DeviceSpec,
}

impl TrainSpec {
    /// The default recipe for an architecture on a dataset: momentum SGD with cosine decay.
    pub fn recipe(arch: Arch, dataset: DatasetId) -> Self {
        let (lr, epochs) = match dataset {
            DatasetId::Mnist | DatasetId::FashionMnist => (0.05, 8),
            _ => (0.1, 30),
        };
        Self {
            arch,
            dataset,
            data: DataSource::Embedded,
            train_limit: None,
            epochs,
            batch: 64,
            optimizer: SgdConfig {
                lr,
                momentum: 0.9,
                weight_decay: 5e-4,
            },
            schedule: LrSchedule::Cosine,
            seed: 1,
            device: DeviceSpec::Cpu,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.batch == 0 {
            bail!(
                "epochs and batch size must be positive (got {} and {})",
                self.epochs,
                self.batch
            );
        }
        self.optimizer.validate()?;
        if self.train_limit == Some(0) {
            bail!("the training limit must keep at least one record (got 0)");
        }
        if let LrSchedule::Step { gamma, .. } = self.schedule
            && !(gamma.is_finite() && gamma > 0.0)
        {
            bail!("the step schedule's gamma must be finite and positive (got {gamma})");
        }
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
    /// Mean test loss.
    pub test_loss: f64,
    /// Seconds spent in this epoch's training and evaluation.
    pub seconds: f64,
}

/// What a finished run reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOutcome {
    /// Every epoch, resumed ones included.
    pub history: Vec<EpochResult>,
    /// Test accuracy after the last epoch.
    pub final_accuracy: f64,
    /// Training records used.
    pub train_samples: usize,
    /// Test records evaluated.
    pub test_samples: usize,
    /// Path of the final checkpoint.
    pub checkpoint: PathBuf,
}

const HISTORY_KEY: &str = "history";

/// Trains `spec` with checkpoints in `dir` (`last.safetensors`), resuming from it when `resume`
/// is set and it belongs to the same spec.
pub fn train(
    spec: &TrainSpec,
    dir: &Path,
    resume: bool,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    spec.validate()?;
    let device = spec.device.to_device()?;
    tensor_core::seed_device(&device, spec.seed)?;
    let train_set = SplitData::load(spec, Split::Train)?;
    let test_set = SplitData::load(spec, Split::Test)?;
    // Means over no records would be NaN in the record, not an error.
    for (split, data) in [("training", &train_set), ("test", &test_set)] {
        if data.len() == 0 {
            bail!("the {split} split of {} has no records", spec.dataset);
        }
    }
    let init = SeededInit::new(spec.seed);
    let vb = init.var_builder(DType::F32, &device);
    let [c, _, _] = train_set.sample_shape();
    let net = cnn_zoo::build(spec.arch, spec.dataset.num_classes(), c, vb)
        .with_context(|| format!("cannot build {}", spec.arch))?;
    let vars = init.named_vars();
    let mut opt = MomentumSgd::with_config(
        vars.iter().map(|(_, v)| v.clone()).collect(),
        spec.optimizer,
    )?;

    let ckpt_path = dir.join("last.safetensors");
    let spec_json = serde_json::to_value(spec)?;
    let mut history: Vec<EpochResult> = Vec::new();
    let mut start_epoch = 0;
    if resume && ckpt_path.exists() {
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

    let n = train_set.len();
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
        // Per-epoch streams: resuming at an epoch boundary replays exactly the same order.
        let mut shuffle = tensor_core::rng(spec.seed, &format!("shuffle/{epoch}"));
        let mut augment = tensor_core::rng(spec.seed, &format!("augment/{epoch}"));
        let order = tensor_core::seed::permutation(n, &mut shuffle);
        let mut loss_sum = 0.0;
        for (b, idx) in order.chunks(spec.batch).enumerate() {
            let iter = epoch * per_epoch + b;
            let lr = spec
                .schedule
                .rate(spec.optimizer.lr, epoch, iter, total_iters);
            tensor_core::tensor::Optimizer::set_learning_rate(&mut opt, lr);
            let (xs, ys) = train_set.batch(idx, Some(&mut augment), &device)?;
            let logits = net.forward_t(&xs, true)?;
            let loss = nn::loss::cross_entropy(&logits, &ys)?;
            let loss_v = loss.to_scalar::<f32>()? as f64;
            if !loss_v.is_finite() {
                bail!(
                    "training loss became {loss_v} at epoch {} batch {b} (global step {iter}); {}",
                    epoch + 1,
                    kept_checkpoint(&ckpt_path)
                );
            }
            let grads = loss.backward()?;
            opt.step_grads(&grads)?;
            loss_sum += loss_v;
            let stats = BatchStats {
                epoch,
                batch: b,
                loss: loss_v,
                lr,
                samples: idx.len(),
            };
            if let ControlFlow::Break(()) = observer.on_batch_end(&stats) {
                bail!(
                    "interrupted in epoch {}; {} holds the last completed epoch",
                    epoch + 1,
                    ckpt_path.display()
                );
            }
        }
        let (test_accuracy, test_loss) = evaluate(net.as_ref(), &test_set, &device)?;
        // The last step of an epoch can leave non-finite weights behind a finite loss: never
        // let them overwrite the last good checkpoint.
        if let Some(name) = first_non_finite(&vars)? {
            bail!(
                "parameter `{name}` became non-finite in epoch {} (by global step {}); {}",
                epoch + 1,
                (epoch + 1) * per_epoch - 1,
                kept_checkpoint(&ckpt_path)
            );
        }
        if !test_loss.is_finite() {
            bail!(
                "test loss became {test_loss} after epoch {}; {}",
                epoch + 1,
                kept_checkpoint(&ckpt_path)
            );
        }
        observer.on_eval(&EvalStats {
            epoch,
            split: "test".into(),
            accuracy: test_accuracy,
            loss: test_loss,
            samples: test_set.len(),
        });
        history.push(EpochResult {
            epoch,
            train_loss: loss_sum / per_epoch as f64,
            test_accuracy,
            test_loss,
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
    let final_accuracy = history.last().map_or(0.0, |h| h.test_accuracy);
    Ok(TrainOutcome {
        history,
        final_accuracy,
        train_samples: n,
        test_samples: test_set.len(),
        checkpoint: ckpt_path,
    })
}

/// What a failed run leaves: the checkpoint of the last completed epoch, if there is one.
fn kept_checkpoint(path: &Path) -> String {
    if path.exists() {
        format!("the last good checkpoint {} is kept", path.display())
    } else {
        "no epoch completed, so no checkpoint was written".into()
    }
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

/// Top-1 accuracy and mean cross-entropy over a whole split, in eval mode.
pub fn evaluate(
    net: &dyn Network,
    data: &SplitData,
    device: &tensor_core::Device,
) -> Result<(f64, f64)> {
    let n = data.len();
    let (mut correct, mut loss_sum) = (0u64, 0.0f64);
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(500) {
        let (xs, ys) = data.batch(chunk, None, device)?;
        let logits = net.forward_t(&xs, false)?;
        loss_sum +=
            nn::loss::cross_entropy(&logits, &ys)?.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        let pred = logits.argmax(1)?;
        correct += pred
            .eq(&ys)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()? as u64;
    }
    Ok((correct as f64 / n as f64, loss_sum / n as f64))
}

#[cfg(test)]
mod tests;
