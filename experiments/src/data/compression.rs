//! The data of a compression run (ICLR'19 projection, energy-aware and magnitude pruning): the
//! training batches, a held-out set for the trainers' decisions, the test split and, for
//! pruning, calibration images. Record datasets serve them from memory ([`TensorBatches`]);
//! ImageNet from its class folders ([`FolderBatches`]), so no split is ever held whole.

use anyhow::{Context, Result, bail};
use datasets::{FolderBatchConfig, FolderBatches};
use tensor_core::{BatchSource, Device};

use super::{DataDir, HeldOutSplits, SplitData, TensorBatches, decode_workers, imagenet_pipeline};
use crate::train::TrainSpec;

/// Records (or images) per evaluation batch of a record dataset.
const EVAL_BATCH: usize = 500;
/// Calibration images per batch.
const CALIBRATION_BATCH: usize = 128;
/// ImageNet images per evaluation, calibration or probe batch (0.6 MB per 224 × 224 image).
const FOLDER_EVAL_BATCH: usize = 64;

/// What a compression run reads, as its spec fixes it.
#[derive(Clone, Copy, Debug)]
pub struct CompressionSplit<'a> {
    /// The dense recipe: dataset, architecture (its input pipeline), seed and, for a record
    /// dataset, the number of training records.
    pub dense: &'a TrainSpec,
    /// Training images held out for the decisions.
    pub val_records: usize,
    /// Batch size of training or fine-tuning.
    pub batch: usize,
    /// Calibration images (0: none).
    pub calibration_images: usize,
    /// Keep the first this many classes only (record datasets).
    pub classes: Option<usize>,
}

/// The sources of one compression run.
pub struct CompressionData {
    /// Training batches, shuffled per epoch from the dense seed.
    pub train: Box<dyn BatchSource>,
    /// The held-out training images, in order: accept/reject and round-stopping decisions.
    pub val: Box<dyn BatchSource>,
    /// The test split, in order (ImageNet: its validation images).
    pub test: Box<dyn BatchSource>,
    /// The first calibration images of the training ones, in order, unaugmented; `None` when
    /// none were asked for.
    pub calibration: Option<Box<dyn BatchSource>>,
    /// The same images for activation-density probes: one batch on a record dataset (as the
    /// pruning runs have always measured them), ImageNet-sized batches otherwise.
    pub probe: Option<Box<dyn BatchSource>>,
    /// Channels of a sample as the network sees it.
    pub channels: usize,
    /// Whether the dataset is read from class folders (ImageNet), whose results carry top-5.
    pub folder: bool,
}

impl CompressionData {
    /// Loads the sources of `split` from `data` onto `device`.
    pub fn load(split: CompressionSplit<'_>, data: &DataDir, device: &Device) -> Result<Self> {
        if split.dense.dataset.has_records() {
            Self::records(split, data, device)
        } else {
            Self::folder(split, data, device)
        }
    }

    fn records(split: CompressionSplit<'_>, data: &DataDir, device: &Device) -> Result<Self> {
        let mut splits = HeldOutSplits::load(split.dense, split.val_records, data)?;
        if let Some(k) = split.classes {
            splits.retain_classes(k);
        }
        let seed = split.dense.seed;
        let batches = |set: &SplitData, idx: &[usize], batch: usize, shuffle: bool| {
            TensorBatches::new(set, idx, batch, seed, shuffle, device)
                .map(|b| Box::new(b) as Box<dyn BatchSource>)
        };
        let cal_idx = &splits.train_idx[..split.calibration_images.min(splits.train_idx.len())];
        let (calibration, probe) = if cal_idx.is_empty() {
            (None, None)
        } else {
            (
                Some(batches(&splits.train, cal_idx, CALIBRATION_BATCH, false)?),
                Some(batches(&splits.train, cal_idx, cal_idx.len(), false)?),
            )
        };
        Ok(Self {
            train: batches(&splits.train, &splits.train_idx, split.batch, true)?,
            val: batches(&splits.train, &splits.val_idx, EVAL_BATCH, false)?,
            test: batches(&splits.test, &splits.test_idx, EVAL_BATCH, false)?,
            calibration,
            probe,
            channels: splits.train.sample_shape()[0],
            folder: false,
        })
    }

    /// ImageNet: `val_records` training images drawn with the dense seed are held out, the rest
    /// train; calibration takes the first training images in folder order through the
    /// evaluation pipeline; the validation folder is the test split.
    fn folder(split: CompressionSplit<'_>, data: &DataDir, device: &Device) -> Result<Self> {
        let dense = split.dense;
        if split.classes.is_some() {
            bail!(
                "{}: pruning for fewer classes reads record datasets only",
                dense.dataset
            );
        }
        let dir = data.imagenet_for(dense)?;
        let n = dir.train.len();
        if n <= split.val_records {
            bail!(
                "{} holds {n} training images; {} held out leave none to train on",
                dir.train.dir().display(),
                split.val_records
            );
        }
        let mut rng = tensor_core::rng(dense.seed, "imagenet/held-out");
        let order = tensor_core::seed::permutation(n, &mut rng);
        let (held, rest) = order.split_at(split.val_records);
        let (mut held, mut rest) = (held.to_vec(), rest.to_vec());
        // Folder order inside each part: the shuffle of training comes from the batches.
        held.sort_unstable();
        rest.sort_unstable();
        let workers = decode_workers();
        let eval = |images: &[usize], batch: usize| -> Result<Box<dyn BatchSource>> {
            Ok(Box::new(FolderBatches::new(
                dir.train.subset(images)?,
                imagenet_pipeline(dense.arch, false),
                FolderBatchConfig::evaluation(batch, workers),
                device,
            )?))
        };
        let cal = &rest[..split.calibration_images.min(rest.len())];
        let (calibration, probe) = if cal.is_empty() {
            (None, None)
        } else {
            (
                Some(eval(cal, FOLDER_EVAL_BATCH)?),
                Some(eval(cal, FOLDER_EVAL_BATCH)?),
            )
        };
        let train = FolderBatches::new(
            dir.train.subset(&rest)?,
            imagenet_pipeline(dense.arch, true),
            FolderBatchConfig::training(split.batch, dense.seed, workers),
            device,
        )
        .with_context(|| format!("cannot read {}", dir.train.dir().display()))?;
        let test = FolderBatches::new(
            dir.val.clone(),
            imagenet_pipeline(dense.arch, false),
            FolderBatchConfig::evaluation(FOLDER_EVAL_BATCH, workers),
            device,
        )?;
        Ok(Self {
            train: Box::new(train),
            val: eval(&held, FOLDER_EVAL_BATCH)?,
            test: Box::new(test),
            calibration,
            probe,
            channels: 3,
            folder: true,
        })
    }
}
