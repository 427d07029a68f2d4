//! Data for the trainers: a dataset split with the input pipeline an architecture expects, and
//! its records served as [`BatchSource`]s, either materialised once ([`TensorBatches`]) or
//! converted batch by batch ([`SplitBatches`]).

use anyhow::{Context, Result};
use cnn_zoo::Arch;
use datasets::{DatasetId, Normalization, RawDataset, Transform, TransformConfig};
use tensor_core::{BatchSource, Device, Tensor};

pub use datasets::{Source as DataSource, Split};

use crate::train::TrainSpec;

/// One split, its records on the host, converted to tensors batch by batch.
pub struct SplitData {
    raw: RawDataset,
    transform: Transform,
}

impl SplitData {
    /// Loads `split` of the spec's dataset from the spec's source, with the pipeline for the
    /// spec's architecture (augmentation on the training split of CIFAR only).
    pub fn load(spec: &TrainSpec, split: Split) -> Result<Self> {
        let mut raw = RawDataset::load(spec.dataset, split, &spec.data)
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
