//! Where a dataset lies under a data root. [`Source::Dir`](crate::Source::Dir) takes the files
//! where other tools leave them, so [`locate`] tries each [`Layout`] in order of preference and
//! says which one holds the dataset.
//!
//! A layout holds a dataset when its folder holds any of the dataset's files (raw or `.gz` for
//! IDX). MNIST and Fashion-MNIST share their file names, so in a flat folder the name says
//! nothing about which dataset it is: the loader tells them apart by the raw digests of
//! `manifest.toml` ([`Manifest::verify_file`](crate::Manifest::verify_file)).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::id::{DatasetId, Split};
use crate::source::layout;

/// How a data root keeps a dataset's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `root/<dataset dir>/<file>` ([`DatasetId::dir_name`]): the download cache of
    /// `cargo xtask datasets`, the embedded subsets, and a folder holding CIFAR's unpacked
    /// archives (`cifar-10-batches-bin/`, `cifar-100-binary/`).
    Cache,
    /// torchvision's `root/MNIST/raw/<file>` and `root/FashionMNIST/raw/<file>`, or
    /// `root/raw/<file>` when the root is torchvision's dataset folder itself. torchvision keeps
    /// CIFAR in its pickled Python version, which is not read, so CIFAR has no such folder.
    Torchvision,
    /// `root/<file>`: a folder holding the files themselves, such as a package's data folder or
    /// CIFAR's unpacked archive folder given as the root.
    Flat,
}

impl Layout {
    /// Every layout, in the order [`locate`] tries them: the most specific first, so a data
    /// root holding several datasets is never read as a flat folder.
    pub const ALL: [Layout; 3] = [Layout::Cache, Layout::Torchvision, Layout::Flat];

    /// The folders under `root` where this layout keeps `id`'s files, in order of preference.
    pub fn folders(self, root: &Path, id: DatasetId) -> Vec<PathBuf> {
        match self {
            Layout::Cache => vec![root.join(id.dir_name())],
            Layout::Torchvision => {
                let name = match id {
                    DatasetId::Mnist => "MNIST",
                    DatasetId::FashionMnist => "FashionMNIST",
                    DatasetId::Cifar10 | DatasetId::Cifar100 | DatasetId::ImageNet => {
                        return Vec::new();
                    }
                };
                vec![root.join(name).join("raw"), root.join("raw")]
            }
            Layout::Flat => vec![root.to_path_buf()],
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Cache => "cache layout",
            Layout::Torchvision => "torchvision layout",
            Layout::Flat => "flat folder",
        })
    }
}

/// Where [`locate`] found a dataset. Displays as `mnist in flat folder /data/mnist-files`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The dataset looked for.
    pub dataset: DatasetId,
    /// The layout that holds it.
    pub layout: Layout,
    /// The folder holding its files.
    pub dir: PathBuf,
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {} {}",
            self.dataset,
            self.layout,
            self.dir.display()
        )
    }
}

/// The folder under `root` that holds `id`'s files: the first of [`Layout::ALL`]'s folders
/// holding any of them. Only looks at names; which dataset the files really are is checked when
/// they are read. [`Error::DatasetNotFound`] lists every folder looked in.
pub fn locate(root: &Path, id: DatasetId) -> Result<Located> {
    if !id.has_records() {
        return Err(Error::NoRecords { dataset: id });
    }
    let names = accepted_names(id);
    let mut looked_in = Vec::new();
    for layout in Layout::ALL {
        for dir in layout.folders(root, id) {
            if names.iter().any(|n| dir.join(n).is_file()) {
                return Ok(Located {
                    dataset: id,
                    layout,
                    dir,
                });
            }
            looked_in.push(dir);
        }
    }
    Err(Error::DatasetNotFound {
        dataset: id,
        root: root.to_path_buf(),
        looked_in,
        names,
    })
}

/// Every accepted name of every file of both splits, in layout order.
fn accepted_names(id: DatasetId) -> Vec<String> {
    [Split::Train, Split::Test]
        .into_iter()
        .flat_map(|split| layout(id, split))
        .flatten()
        .collect()
}
