//! Where dataset files come from: the embedded subsets or a data root on disk. Both are read by
//! the same file names, so a full copy and the embedded subset go through the same parsers.

use std::borrow::Cow;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::embedded::{EMBEDDED_PREFIX, embedded_file};
use crate::error::{Error, Result};
use crate::id::{DatasetId, Split};
use crate::locate::locate;
use crate::manifest::Manifest;

/// Where to read a dataset from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The subsets compiled into the crate (docs/datasets.md §3): MNIST train 0..9,999 and the full
    /// test set; Fashion-MNIST train and test 0..999; CIFAR-10 and CIFAR-100 test 0..19. There
    /// is no embedded CIFAR training data.
    #[default]
    Embedded,
    /// A data root holding the official files in any [`Layout`](crate::Layout) that
    /// [`locate`](crate::locate) accepts, IDX files raw or `.gz`. Every file read from it must
    /// be the official one: its decompressed bytes are checked against the raw digests of the
    /// manifest ([`Manifest::verify_file`]). Only read.
    Dir(PathBuf),
}

/// The bytes of one file, the name errors use for it and its name in the manifest.
pub(crate) struct FileBytes {
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) bytes: Cow<'static, [u8]>,
}

/// A [`Source`] opened for one dataset: the embedded files, or the folder [`locate`] found with
/// the manifest its files are checked against.
pub(crate) enum Files {
    Embedded(DatasetId),
    Dir {
        id: DatasetId,
        dir: PathBuf,
        manifest: Manifest,
    },
}

impl Source {
    /// Finds `id`'s files in this source.
    pub(crate) fn open(&self, id: DatasetId) -> Result<Files> {
        Ok(match self {
            Source::Embedded => Files::Embedded(id),
            Source::Dir(root) => Files::Dir {
                id,
                dir: locate(root, id)?.dir,
                manifest: Manifest::canonical()?,
            },
        })
    }
}

impl Files {
    /// Reads the first existing file among `candidates` (names in order of preference, the
    /// manifest's name first); `split` names what was asked for in errors.
    pub(crate) fn read(&self, candidates: &[String], split: Split) -> Result<FileBytes> {
        let file = candidates[0].clone();
        match self {
            Files::Embedded(id) => candidates
                .iter()
                .find_map(|c| {
                    let path = format!("{}/{c}", id.dir_name());
                    embedded_file(&path).map(|bytes| FileBytes {
                        name: format!("{EMBEDDED_PREFIX}{path}"),
                        file: file.clone(),
                        bytes: Cow::Borrowed(bytes),
                    })
                })
                .ok_or(Error::NotEmbedded {
                    dataset: *id,
                    split,
                }),
            Files::Dir { dir, .. } => {
                let mut tried = Vec::with_capacity(candidates.len());
                for c in candidates {
                    let path = dir.join(c);
                    match std::fs::read(&path) {
                        Ok(bytes) => {
                            return Ok(FileBytes {
                                name: path.display().to_string(),
                                file,
                                bytes: Cow::Owned(bytes),
                            });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => tried.push(path),
                        Err(source) => return Err(Error::Io { path, source }),
                    }
                }
                Err(Error::FileNotFound { tried })
            }
        }
    }

    /// Checks that `raw`, the decompressed bytes of `f`, is the official file: files read from
    /// disk could be anything, the embedded ones are covered by `SHA256SUMS`.
    pub(crate) fn verify(&self, f: &FileBytes, raw: &[u8]) -> Result<()> {
        match self {
            Files::Embedded(_) => Ok(()),
            Files::Dir { id, manifest, .. } => manifest.verify_file(*id, &f.file, &f.name, raw),
        }
    }
}

/// The files one split is read from, each as its accepted names in order of preference (the
/// manifest's name first): raw before `.gz` for IDX, so an unpacked download is not inflated
/// again.
pub(crate) fn layout(id: DatasetId, split: Split) -> Vec<Vec<String>> {
    let idx = |stem: &str| vec![stem.to_string(), format!("{stem}.gz")];
    let one = |name: &str| vec![vec![name.to_string()]];
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    match (id, split) {
        (DatasetId::Mnist | DatasetId::FashionMnist, _) => vec![
            idx(&format!("{prefix}-images-idx3-ubyte")),
            idx(&format!("{prefix}-labels-idx1-ubyte")),
        ],
        (DatasetId::Cifar10, Split::Train) => (1..=5)
            .map(|k| vec![format!("data_batch_{k}.bin")])
            .collect(),
        (DatasetId::Cifar10, Split::Test) => one("test_batch.bin"),
        (DatasetId::Cifar100, Split::Train) => one("train.bin"),
        (DatasetId::Cifar100, Split::Test) => one("test.bin"),
        (DatasetId::ImageNet, _) => Vec::new(),
    }
}
