//! [`RawDataset`]: one split of a dataset as host bytes, and its conversion to tensors.

use tensor_core::{Device, Rng, Tensor};

use crate::cifar::{CifarBatch, parse_cifar10, parse_cifar100};
use crate::error::{Error, Result};
use crate::id::{DatasetId, Split};
use crate::idx::{inflate, parse_idx_images, parse_idx_labels};
use crate::source::{Source, layout};
use crate::transform::Transform;

/// Name used in errors for records built in memory rather than read from a file.
const IN_MEMORY: &str = "in-memory records";

/// One split of a dataset as raw bytes on the host: `len()` images of [`shape`](Self::shape)
/// `[c, h, w]` (CHW, 0–255) and one label per image.
///
/// Pixels stay `u8` until a batch is built, so a training loop can shuffle and augment per
/// batch ([`batch`](Self::batch)) without holding a float copy of the whole set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawDataset {
    id: DatasetId,
    split: Split,
    shape: [usize; 3],
    pixels: Vec<u8>,
    labels: Vec<u32>,
    coarse_labels: Option<Vec<u32>>,
}

impl RawDataset {
    /// Reads and parses one split from `source`. IDX files may be raw or gzip; CIFAR-10's
    /// training split is `data_batch_1.bin` … `data_batch_5.bin` concatenated. A
    /// [`Source::Dir`] is searched with [`locate`](crate::locate), and every file read from it
    /// is checked against the manifest's raw digests after it parses, so a damaged file reports
    /// what is wrong with it and an intact one that is not the official file says so
    /// ([`Error::WrongFile`], [`Error::UnknownFile`]). Errors name the file;
    /// [`Error::NotEmbedded`] for the CIFAR training splits of [`Source::Embedded`].
    pub fn load(id: DatasetId, split: Split, source: &Source) -> Result<Self> {
        if !id.has_records() {
            return Err(Error::NoRecords { dataset: id });
        }
        let names = layout(id, split);
        let files = source.open(id)?;
        match id {
            DatasetId::Mnist | DatasetId::FashionMnist => {
                let images = files.read(&names[0], split)?;
                let labels = files.read(&names[1], split)?;
                let images_raw = inflate(&images.name, &images.bytes)?;
                let images_parsed = parse_idx_images(&images.name, &images_raw)?;
                let [_, h, w] = id.input_shape();
                if (images_parsed.rows, images_parsed.cols) != (h, w) {
                    return Err(Error::DimsMismatch {
                        file: images.name,
                        expected: vec![h, w],
                        got: vec![images_parsed.rows, images_parsed.cols],
                    });
                }
                let labels_raw = inflate(&labels.name, &labels.bytes)?;
                let labels_parsed = parse_idx_labels(&labels.name, &labels_raw)?;
                if labels_parsed.len() != images_parsed.n {
                    return Err(Error::CountMismatch {
                        file: labels.name,
                        images: images_parsed.n,
                        labels: labels_parsed.len(),
                    });
                }
                files.verify(&images, &images_raw)?;
                files.verify(&labels, &labels_raw)?;
                Ok(Self {
                    id,
                    split,
                    shape: id.input_shape(),
                    pixels: images_parsed.pixels,
                    labels: labels_parsed.into_iter().map(u32::from).collect(),
                    coarse_labels: None,
                })
            }
            DatasetId::ImageNet => Err(Error::NoRecords { dataset: id }),
            DatasetId::Cifar10 | DatasetId::Cifar100 => {
                let mut out = Self {
                    id,
                    split,
                    shape: id.input_shape(),
                    pixels: Vec::new(),
                    labels: Vec::new(),
                    coarse_labels: (id == DatasetId::Cifar100).then(Vec::new),
                };
                for candidates in &names {
                    let file = files.read(candidates, split)?;
                    let batch = match id {
                        DatasetId::Cifar10 => parse_cifar10(&file.name, &file.bytes)?,
                        _ => parse_cifar100(&file.name, &file.bytes)?,
                    };
                    files.verify(&file, &file.bytes)?;
                    out.append(batch);
                }
                Ok(out)
            }
        }
    }

    /// Records built in memory (synthetic data, tests): `pixels` holds `labels.len()` images of
    /// `id`'s [`input_shape`](DatasetId::input_shape), CHW; labels must be below
    /// [`num_classes`](DatasetId::num_classes).
    pub fn new(id: DatasetId, split: Split, pixels: Vec<u8>, labels: Vec<u32>) -> Result<Self> {
        let shape = id.input_shape();
        let per_image: usize = shape.iter().product();
        if pixels.len() != labels.len() * per_image {
            return Err(Error::Shape {
                what: "pixels of the labelled images",
                expected: vec![labels.len() * per_image],
                got: vec![pixels.len()],
            });
        }
        let max = id.num_classes() as u32 - 1;
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l > max) {
            return Err(Error::LabelOutOfRange {
                file: IN_MEMORY.to_string(),
                index,
                label,
                max,
            });
        }
        Ok(Self {
            id,
            split,
            shape,
            pixels,
            labels,
            coarse_labels: None,
        })
    }

    /// The dataset.
    pub fn id(&self) -> DatasetId {
        self.id
    }

    /// The split.
    pub fn split(&self) -> Split {
        self.split
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Per-sample shape `[c, h, w]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Number of classes of [`labels`](Self::labels).
    pub fn num_classes(&self) -> usize {
        self.id.num_classes()
    }

    /// Class names indexed by label.
    pub fn class_names(&self) -> &'static [&'static str] {
        self.id.class_names()
    }

    /// All pixels, image after image, each CHW.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// One label per image (CIFAR-100: the fine label).
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// CIFAR-100's coarse labels (0–19); `None` for the other datasets.
    pub fn coarse_labels(&self) -> Option<&[u32]> {
        self.coarse_labels.as_deref()
    }

    /// The pixels of image `index`, CHW.
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let start = index.checked_mul(self.image_size())?;
        self.pixels
            .get(start..start.checked_add(self.image_size())?)
    }

    /// Images per class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Keeps the first `n` records (no-op when there are fewer), like [`Vec::truncate`].
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.pixels.truncate(n * self.image_size());
        self.labels.truncate(n);
        if let Some(c) = &mut self.coarse_labels {
            c.truncate(n);
        }
    }

    /// The records at `indices`, in that order (repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        self.check_indices(indices)?;
        let size = self.image_size();
        let mut pixels = Vec::with_capacity(indices.len() * size);
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * size..(i + 1) * size]);
        }
        Ok(Self {
            id: self.id,
            split: self.split,
            shape: self.shape,
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            coarse_labels: self
                .coarse_labels
                .as_ref()
                .map(|c| indices.iter().map(|&i| c[i]).collect()),
        })
    }

    /// Every record through `transform`: images `[n, c, h, w]` f32 (the transform's output
    /// shape) and labels `[n]` u32, on `device`. For evaluation: a random transform is an error
    /// ([`Error::MissingRng`]); use [`Transform::without_augment`].
    pub fn to_tensors(&self, transform: &Transform, device: &Device) -> Result<(Tensor, Tensor)> {
        let all: Vec<usize> = (0..self.len()).collect();
        self.build(&all, transform, None, device)
    }

    /// The records at `indices` through `transform`: images `[b, c, h, w]` f32 and labels `[b]`
    /// u32, on `device`. Augmentation draws from `rng` sample by sample in `indices` order
    /// ([`Augment::draw`](crate::Augment::draw)), so a seed fixes the batch; `rng` is untouched
    /// by a deterministic transform.
    pub fn batch(
        &self,
        indices: &[usize],
        transform: &Transform,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        self.build(indices, transform, Some(rng), device)
    }

    fn build(
        &self,
        indices: &[usize],
        transform: &Transform,
        mut rng: Option<&mut Rng>,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        if transform.input_shape() != self.shape {
            return Err(Error::Shape {
                what: "transform input shape",
                expected: self.shape.to_vec(),
                got: transform.input_shape().to_vec(),
            });
        }
        if transform.is_random() && rng.is_none() {
            return Err(Error::MissingRng);
        }
        self.check_indices(indices)?;
        let [c, h, w] = transform.output_shape();
        let mut xs = Vec::with_capacity(indices.len() * c * h * w);
        let size = self.image_size();
        for &i in indices {
            let image = &self.pixels[i * size..(i + 1) * size];
            transform.apply_into(image, rng.as_deref_mut(), &mut xs)?;
        }
        let ys: Vec<u32> = indices.iter().map(|&i| self.labels[i]).collect();
        let b = indices.len();
        let xs = Tensor::from_vec(xs, (b, c, h, w), device).map_err(tensor_core::Error::from)?;
        let ys = Tensor::from_vec(ys, b, device).map_err(tensor_core::Error::from)?;
        Ok((xs, ys))
    }

    fn check_indices(&self, indices: &[usize]) -> Result<()> {
        match indices.iter().find(|&&i| i >= self.len()) {
            Some(&index) => Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            }),
            None => Ok(()),
        }
    }

    fn image_size(&self) -> usize {
        self.shape.iter().product()
    }

    fn append(&mut self, batch: CifarBatch) {
        self.pixels.extend_from_slice(&batch.pixels);
        self.labels
            .extend(batch.labels.iter().map(|&l| u32::from(l)));
        if let (Some(all), Some(coarse)) = (&mut self.coarse_labels, &batch.coarse_labels) {
            all.extend(coarse.iter().map(|&l| u32::from(l)));
        }
    }
}
