//! Data for the trainers: which data a run uses ([`DataSource`], part of its spec) and where this
//! machine keeps it ([`DataDir`], part of the run context); a dataset split with the input
//! pipeline an architecture expects, and its records served as [`BatchSource`]s, either
//! materialised once ([`TensorBatches`]) or converted batch by batch ([`SplitBatches`]).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use datasets::{
    DatasetId, FolderBatchConfig, FolderBatches, ImageNetDir, ImagePipeline, Located,
    Normalization, RawDataset, Source, Transform, TransformConfig,
};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use tensor_core::{BatchSource, Device, Tensor};

pub use datasets::Split;

mod compression;
pub use compression::{CompressionData, CompressionSplit};

use crate::train::TrainSpec;

/// Which data a run uses, as its spec records it. It never says where the data lies, so two
/// machines running the same run write the same spec, and a run resumes from a copy in another
/// folder. Stored as `"embedded"` or `"full"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSource {
    /// The subsets embedded in the datasets crate (docs/datasets.md §3).
    #[default]
    Embedded,
    /// The complete official dataset: the files whose raw digests `datasets/manifest.toml`
    /// lists, read from the run context's [`DataDir`].
    Full,
}

impl<'de> Deserialize<'de> for DataSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // Specs written before they named their data held its folder (`{"dir": path}`), which
        // only the full dataset was read from.
        #[derive(Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Stored {
            Embedded,
            Full,
            Dir(IgnoredAny),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Embedded => DataSource::Embedded,
            Stored::Full | Stored::Dir(_) => DataSource::Full,
        })
    }
}

/// Where this machine keeps the full datasets: the `--data-dir` folder, else the download cache
/// ([`crate::paths::dataset_cache`]), and ImageNet's folder (`--imagenet-dir`), which is never
/// downloaded. Part of the run context, never of a spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataDir {
    dir: Option<PathBuf>,
    imagenet: Option<PathBuf>,
}

impl DataDir {
    /// The folder given on the command line, or the download cache when `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            imagenet: None,
        }
    }

    /// The same, with ImageNet read from `dir` (`train/` and `val/` of class folders).
    pub fn with_imagenet(self, dir: Option<PathBuf>) -> Self {
        Self {
            imagenet: dir,
            ..self
        }
    }

    /// The data root.
    pub fn root(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(crate::paths::dataset_cache)
    }

    /// The class folders a run of `spec` reads, refusing a training limit (the folders are read
    /// whole): [`Self::imagenet`].
    pub fn imagenet_for(&self, spec: &TrainSpec) -> Result<ImageNetDir> {
        if spec.train_limit.is_some() {
            bail!(
                "a training limit is not available for {}: its images are read from their \
                 class folders, whole",
                spec.dataset
            );
        }
        self.imagenet()
    }

    /// ImageNet's training and validation folders, opened (every image listed, the classes of
    /// both splits checked against each other).
    pub fn imagenet(&self) -> Result<ImageNetDir> {
        let root = self.imagenet.as_ref().context(
            "ImageNet is read from its own folder: give --imagenet-dir, a folder holding train/ \
             and val/ with one sub-folder of images per class",
        )?;
        let dir = ImageNetDir::open(root)
            .with_context(|| format!("cannot read ImageNet in {}", root.display()))?;
        let classes = dir.train.classes().len();
        let expected = DatasetId::ImageNet.num_classes();
        if classes > expected {
            bail!(
                "{} has {classes} class folders; ImageNet has {expected}",
                root.join("train").display()
            );
        }
        Ok(dir)
    }

    /// Where `data` of a dataset is read from.
    pub fn source(&self, data: DataSource) -> Source {
        match data {
            DataSource::Embedded => Source::Embedded,
            DataSource::Full => Source::Dir(self.root()),
        }
    }

    /// The folder and layout holding the full `dataset` ([`datasets::locate`]).
    pub fn locate(&self, dataset: DatasetId) -> Result<Located> {
        let root = self.root();
        datasets::locate(&root, dataset).with_context(|| match self.dir {
            Some(_) => format!("no full {dataset} in {}", root.display()),
            None => format!(
                "no full {dataset} in the download cache {}: fetch it with `cargo xtask datasets` \
                 or give --data-dir",
                root.display()
            ),
        })
    }
}

/// One split, its records on the host, converted to tensors batch by batch.
pub struct SplitData {
    raw: RawDataset,
    transform: Transform,
}

impl SplitData {
    /// Loads `split` of the spec's dataset and data (the full one from `dir`), with the pipeline
    /// for the spec's architecture (augmentation on the training split of CIFAR only).
    pub fn load(spec: &TrainSpec, split: Split, dir: &DataDir) -> Result<Self> {
        let mut raw = RawDataset::load(spec.dataset, split, &dir.source(spec.data))
            .with_context(|| format!("cannot load {} {}", spec.dataset, split.name()))?;
        if split == Split::Train
            && let Some(n) = spec.train_limit
        {
            raw.truncate(n);
        }
        let config = pipeline(spec.arch, spec.dataset, split == Split::Train);
        let transform = config
            .validate(raw.shape())
            .with_context(|| format!("no input pipeline from {} to {}", spec.dataset, spec.arch))?;
        Ok(Self { raw, transform })
    }

    /// Records in the split.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the split has no records.
    pub fn is_empty(&self) -> bool {
        self.raw.len() == 0
    }

    /// Class label of every record.
    pub fn labels(&self) -> &[u32] {
        self.raw.labels()
    }

    /// Shape `[c, h, w]` of one transformed sample.
    pub fn sample_shape(&self) -> [usize; 3] {
        self.transform.output_shape()
    }

    /// Images `[b, c, h, w]` and labels `[b]` of the records at `indices`; augmentation (if the
    /// pipeline has any) draws from `rng`, and without one the deterministic pipeline runs.
    pub fn batch(
        &self,
        indices: &[usize],
        rng: Option<&mut tensor_core::Rng>,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let batch = match rng {
            Some(rng) => self.raw.batch(indices, &self.transform, rng, device),
            None => {
                // A deterministic transform never touches the generator.
                let mut unused = tensor_core::rng(0, "unused");
                self.raw.batch(
                    indices,
                    &self.transform.without_augment(),
                    &mut unused,
                    device,
                )
            }
        };
        batch.context("cannot build a batch")
    }
}

/// A dense recipe's data as the compression runs split it: the recipe's `train_limit` first
/// training records for training, the next records held out for validation, and the whole test
/// split.
pub struct HeldOutSplits {
    /// The whole training split.
    pub train: SplitData,
    /// The whole test split.
    pub test: SplitData,
    /// Indices of the training records.
    pub train_idx: Vec<usize>,
    /// Indices of the held-out records.
    pub val_idx: Vec<usize>,
    /// Indices of every test record.
    pub test_idx: Vec<usize>,
}

impl HeldOutSplits {
    /// Loads the splits of `dense`'s dataset (the full one from `dir`) with `val_records` held out.
    pub fn load(dense: &TrainSpec, val_records: usize, dir: &DataDir) -> Result<Self> {
        let train_n = dense
            .train_limit
            .context("the dense recipe must fix its number of training records")?;
        let mut full = dense.clone();
        full.train_limit = None;
        let train = SplitData::load(&full, Split::Train, dir)?;
        if train.len() < train_n + val_records {
            bail!(
                "{} has {} training records; {} for training plus {} held out are needed",
                dense.dataset,
                train.len(),
                train_n,
                val_records
            );
        }
        let test = SplitData::load(&full, Split::Test, dir)?;
        Ok(Self {
            train_idx: (0..train_n).collect(),
            val_idx: (train_n..train_n + val_records).collect(),
            test_idx: (0..test.len()).collect(),
            train,
            test,
        })
    }

    /// Keeps the records of the first `classes` classes only (labels stay as they are, so a
    /// network with `classes` outputs scores them directly).
    pub fn retain_classes(&mut self, classes: usize) {
        let keep = |labels: &[u32], idx: &mut Vec<usize>| {
            idx.retain(|&i| (labels[i] as usize) < classes);
        };
        keep(self.train.labels(), &mut self.train_idx);
        keep(self.train.labels(), &mut self.val_idx);
        keep(self.test.labels(), &mut self.test_idx);
    }
}

/// The input pipeline of `arch` on `dataset`: the dataset's normalisation; 28x28 images resized
/// to 32x32 for the ICLR'19 LeNet-5 (docs/sparse-projection.md §8) and zero-padded to 32x32 for the
/// CIFAR ResNets; other size mismatches resized; CIFAR augmentation when training.
pub fn pipeline(arch: Arch, dataset: DatasetId, train: bool) -> TransformConfig {
    let [_, h, w] = arch.input_shape();
    let [_, dh, dw] = dataset.input_shape();
    let mut config = TransformConfig::normalize(Normalization::for_dataset(dataset));
    if (h, w) != (dh, dw) {
        if arch.resnet_depth().is_some() && h >= dh && w >= dw {
            config.pad_to = Some((h, w));
        } else {
            config.resize = Some((h, w));
        }
    }
    if train && matches!(dataset, DatasetId::Cifar10 | DatasetId::Cifar100) {
        config.augment = Some(datasets::Augment::cifar());
    }
    config
}

/// ImageNet's preprocessing for `arch`: the shorter side resized to 256, then the network's
/// input side cropped (224, or 227 for the Caffe layouts), at random with a horizontal flip when
/// training and centred otherwise, with the ImageNet normalisation.
pub fn imagenet_pipeline(arch: Arch, train: bool) -> ImagePipeline {
    let [_, side, _] = arch.input_shape();
    let crop = u32::try_from(side).unwrap_or(u32::MAX);
    let base = if train {
        ImagePipeline::imagenet_train()
    } else {
        ImagePipeline::imagenet_eval()
    };
    base.sized(crop.max(256), crop)
}

/// Threads decoding ImageNet's JPEGs: the machine's cores, at most eight. The batches do not
/// depend on it.
pub fn decode_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// ImageNet's training images as a dense run reads them: shuffled per epoch from `seed` and
/// augmented, in batches of `batch`, decoded ahead on worker threads.
pub fn imagenet_train(
    dir: &ImageNetDir,
    arch: Arch,
    batch: usize,
    seed: u64,
    device: &Device,
) -> Result<FolderBatches> {
    Ok(FolderBatches::new(
        dir.train.clone(),
        imagenet_pipeline(arch, true),
        FolderBatchConfig::training(batch, seed, decode_workers()),
        device,
    )?)
}

/// ImageNet's validation images in order, centre-cropped, in batches of `batch`: the test split
/// of an ImageNet run.
pub fn imagenet_val(
    dir: &ImageNetDir,
    arch: Arch,
    batch: usize,
    device: &Device,
) -> Result<FolderBatches> {
    Ok(FolderBatches::new(
        dir.val.clone(),
        imagenet_pipeline(arch, false),
        FolderBatchConfig::evaluation(batch, decode_workers()),
        device,
    )?)
}

/// A fixed set of records materialised as tensors once (deterministic pipelines only), served
/// as seeded shuffled batches: the data side of the compression trainers.
pub struct TensorBatches {
    xs: Tensor,
    ys: Tensor,
    batch: usize,
    seed: u64,
    shuffle: bool,
    order: Option<(usize, Tensor)>,
}

impl TensorBatches {
    /// The records at `indices` of `data`, in batches of `batch`; shuffled per epoch from `seed`
    /// when `shuffle` is set.
    pub fn new(
        data: &SplitData,
        indices: &[usize],
        batch: usize,
        seed: u64,
        shuffle: bool,
        device: &Device,
    ) -> Result<Self> {
        let (xs, ys) = data.batch(indices, None, device)?;
        Ok(Self {
            xs,
            ys,
            batch: batch.max(1),
            seed,
            shuffle,
            order: None,
        })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.ys.dims()[0]
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All images and labels.
    pub fn all(&self) -> (&Tensor, &Tensor) {
        (&self.xs, &self.ys)
    }
}

impl BatchSource for TensorBatches {
    fn batches_per_epoch(&self) -> usize {
        self.len().div_ceil(self.batch)
    }

    fn batch(&mut self, epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)> {
        let n = self.len();
        let start = index * self.batch;
        let len = self.batch.min(n.saturating_sub(start));
        if !self.shuffle {
            return Ok((
                self.xs.narrow(0, start, len)?,
                self.ys.narrow(0, start, len)?,
            ));
        }
        let perm = match &self.order {
            Some((e, perm)) if *e == epoch => perm.clone(),
            _ => {
                let mut rng = tensor_core::rng(self.seed, &format!("batches/{epoch}"));
                let perm: Vec<u32> = tensor_core::seed::permutation(n, &mut rng)
                    .into_iter()
                    .map(|i| i as u32)
                    .collect();
                let perm = Tensor::from_vec(perm, n, self.xs.device())?;
                self.order = Some((epoch, perm.clone()));
                perm
            }
        };
        let idx = perm.narrow(0, start, len)?;
        Ok((
            self.xs.index_select(&idx, 0)?,
            self.ys.index_select(&idx, 0)?,
        ))
    }
}

/// Records of one split converted batch by batch (no second copy of a large split): shuffled
/// per epoch and augmented (when the pipeline augments) from the seed when training, in order
/// otherwise.
pub struct SplitBatches<'a> {
    data: &'a SplitData,
    indices: Vec<usize>,
    batch: usize,
    seed: u64,
    train: bool,
    device: Device,
    order: Option<(usize, Vec<usize>)>,
}

impl<'a> SplitBatches<'a> {
    /// The records at `indices` of `data` in batches of `batch`; `train` shuffles and augments.
    pub fn new(
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

    /// Every record of `data`, in order, in batches of `batch`: the evaluation source.
    pub fn in_order(data: &'a SplitData, batch: usize, device: &Device) -> Self {
        Self::new(data, (0..data.len()).collect(), batch, 0, false, device)
    }

    /// Size of batch `index` of an epoch (the last one may be short).
    pub fn batch_len(&self, index: usize) -> usize {
        self.batch
            .min(self.indices.len().saturating_sub(index * self.batch))
    }
}

impl BatchSource for SplitBatches<'_> {
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

#[cfg(test)]
mod tests;
