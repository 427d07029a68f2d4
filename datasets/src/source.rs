//! Where dataset files come from: the embedded subsets or a directory with the official layout.
//! Both are read through the same relative paths, so a full download and the embedded subset go
//! through the same parsers.

use std::borrow::Cow;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::embedded::{EMBEDDED_PREFIX, embedded_file};
use crate::error::{Error, Result};
use crate::id::{DatasetId, Split};

/// Where to read a dataset from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The subsets compiled into the crate (docs/datasets.md §3): MNIST train 0..9,999 and the full
    /// test set; Fashion-MNIST train and test 0..999; CIFAR-10 and CIFAR-100 test 0..19. There
    /// is no embedded CIFAR training data.
    #[default]
    Embedded,
    /// A directory holding `mnist/`, `fashion-mnist/`, `cifar-10-batches-bin/` and
    /// `cifar-100-binary/` with the official file names (IDX files raw or `.gz`). Only read.
    Dir(PathBuf),
}

/// The bytes of one file and the name errors use for it.
pub(crate) struct FileBytes {
    pub(crate) name: String,
    pub(crate) bytes: Cow<'static, [u8]>,
}

impl Source {
    /// Reads the first existing file among `candidates` (paths relative to the data root, in
    /// order of preference); `id` and `split` name what was asked for in errors.
    pub(crate) fn read(
        &self,
        candidates: &[String],
        id: DatasetId,
        split: Split,
    ) -> Result<FileBytes> {
        match self {
            Source::Embedded => candidates
                .iter()
                .find_map(|c| {
                    embedded_file(c).map(|bytes| FileBytes {
                        name: format!("{EMBEDDED_PREFIX}{c}"),
                        bytes: Cow::Borrowed(bytes),
                    })
                })
                .ok_or(Error::NotEmbedded { dataset: id, split }),
            Source::Dir(root) => {
                let mut tried = Vec::with_capacity(candidates.len());
                for c in candidates {
                    let path = c.split('/').fold(root.clone(), |p, part| p.join(part));
                    match std::fs::read(&path) {
                        Ok(bytes) => {
                            return Ok(FileBytes {
                                name: path.display().to_string(),
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
}

/// The files one split is read from, each as its accepted names in order of preference: raw
/// before `.gz` for IDX, so an unpacked download is not inflated again.
pub(crate) fn layout(id: DatasetId, split: Split) -> Vec<Vec<String>> {
    let dir = id.dir_name();
    let idx = |stem: &str| vec![format!("{dir}/{stem}"), format!("{dir}/{stem}.gz")];
    let one = |name: &str| vec![vec![format!("{dir}/{name}")]];
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
            .map(|k| vec![format!("{dir}/data_batch_{k}.bin")])
            .collect(),
        (DatasetId::Cifar10, Split::Test) => one("test_batch.bin"),
        (DatasetId::Cifar100, Split::Train) => one("train.bin"),
        (DatasetId::Cifar100, Split::Test) => one("test.bin"),
    }
}
