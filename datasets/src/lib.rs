//! Datasets of the energy-aware deep learning workspace: MNIST, Fashion-MNIST, CIFAR-10 and
//! CIFAR-100 (formats and sources: `docs/datasets.md`).
//!
//! - [`DatasetId`] and [`Split`] name what to load; [`Source`] says where from: the real-data
//!   subsets compiled into the crate ([`Source::Embedded`], offline, for tests and the default
//!   run) or a data root on disk ([`Source::Dir`]), where [`locate`] finds the files in the
//!   download cache's layout, torchvision's, or a flat folder ([`Layout`]) and the manifest's
//!   raw digests say whether they are the official ones. Both go through the same parsers.
//! - [`RawDataset::load`] returns one split as host bytes (`u8` CHW pixels, `u32` labels);
//!   [`RawDataset::batch`] and [`RawDataset::to_tensors`] turn records into candle tensors
//!   through a [`Transform`], so a training loop shuffles and augments per batch.
//! - [`TransformConfig`] is the per-sample pipeline as data (resize, pad, channels, CIFAR
//!   augmentation, [`Normalization`]), validated into a [`Transform`]; the image operations are
//!   pure functions in [`transform`].
//! - [`idx`] and [`cifar`] are the parsers, pure functions over bytes with typed errors naming
//!   the file.
//! - `image_folder` (feature `imagenet`) reads ImageNet-style class folders of JPEGs and
//!   serves them as batches decoded on worker threads with a bounded prefetch queue.
//! - [`Manifest`] is the download manifest for `cargo xtask datasets` and the list of official
//!   files whose raw digests the loader checks; [`checksum`] verifies bytes; [`verify_embedded`]
//!   checks the embedded files against their `SHA256SUMS`.
//!
//! The crate never downloads and never writes files.
//!
//! ```
//! use datasets::{DatasetId, RawDataset, Source, Split, TransformConfig};
//! use tensor_core::Device;
//!
//! let test = RawDataset::load(DatasetId::Mnist, Split::Test, &Source::Embedded)?;
//! assert_eq!(test.len(), 10_000);
//! assert_eq!(&test.labels()[..5], &[7, 2, 1, 0, 4]);
//!
//! // The MNIST-32 input of the ICLR'19 LeNet-5: bilinear resize to 32x32, then normalise.
//! let transform = TransformConfig::mnist32_resize().validate(test.shape())?;
//! let mut rng = tensor_core::rng(7, "shuffle");
//! let (xs, ys) = test.batch(&[0, 1, 2, 3], &transform, &mut rng, &Device::Cpu)?;
//! assert_eq!(xs.dims(), &[4, 1, 32, 32]);
//! assert_eq!(ys.to_vec1::<u32>().map_err(tensor_core::Error::from)?, vec![7, 2, 1, 0]);
//! # Ok::<(), datasets::Error>(())
//! ```
//!
//! Data licences (see `datasets/NOTICE`): MNIST by Y. LeCun and C. Cortes, CC BY-SA 3.0;
//! Fashion-MNIST, MIT, Copyright (c) 2017 Zalando SE; CIFAR-10/100 from A. Krizhevsky, "Learning
//! Multiple Layers of Features from Tiny Images", technical report, 2009.
//!
//! Other crates in this workspace: `tensor-core` (shared vocabulary), `energy-model` (prices
//! layers and training work), `sparse-proj` (energy-constrained projection, ICLR'19), `e2-train`
//! (energy-efficient training, NeurIPS'19), `energy-prune` (energy-aware pruning, CVPR'17),
//! `cnn-zoo` (the models).
#![warn(missing_docs)]

pub mod checksum;
pub mod cifar;
mod dataset;
mod embedded;
pub mod error;
mod id;
pub mod idx;
#[cfg(feature = "imagenet")]
pub mod image_folder;
mod locate;
pub mod manifest;
mod source;
pub mod transform;

pub use checksum::{Checksums, md5_hex, sha256_hex, verify_md5, verify_sha256};
pub use dataset::RawDataset;
pub use embedded::{EmbeddedFile, SHA256SUMS, embedded_file, embedded_files, verify_embedded};
pub use error::{Error, FolderProblem, Result, TransformProblem};
pub use id::{
    CIFAR10_CLASSES, CIFAR100_COARSE_CLASSES, CIFAR100_FINE_CLASSES, DatasetId,
    FASHION_MNIST_CLASSES, MNIST_CLASSES, Split,
};
#[cfg(feature = "imagenet")]
pub use image_folder::{FolderBatchConfig, FolderBatches, ImageFolder, ImageNetDir, ImagePipeline};
pub use locate::{Layout, Located, locate};
pub use manifest::{Archive, DatasetEntry, FileEntry, KnownFile, MANIFEST_TOML, Manifest};
pub use source::Source;
pub use transform::{Augment, AugmentDraw, Normalization, Transform, TransformConfig};

#[cfg(test)]
mod tests;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
