//! The download manifest (`datasets/manifest.toml`, docs/datasets.md §2): per dataset the mirrors in
//! preferred order, the files with their sizes and digests, and the archive layout. Read by
//! `cargo xtask datasets`; this crate never downloads.
//!
//! Verify files with [`FileEntry::verify_raw`]: it checks the decompressed bytes, whose digest
//! does not depend on the mirror or on how a file was re-compressed. CIFAR-100 publishes only an
//! md5 (its archive's), so its `sha256` is absent until recorded from a verified download.

use serde::{Deserialize, Serialize};

use crate::checksum::Checksums;
use crate::error::{Error, Result};
use crate::id::DatasetId;
use crate::idx::inflate;

/// The manifest as shipped with the crate.
pub const MANIFEST_TOML: &str = include_str!("../manifest.toml");

/// The download manifest: one entry per dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The datasets (`[[dataset]]` tables).
    #[serde(rename = "dataset")]
    pub datasets: Vec<DatasetEntry>,
}

/// How to obtain and check one dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    /// The dataset.
    pub id: DatasetId,
    /// Directory of its files under the data root ([`DatasetId::dir_name`]).
    pub dir: String,
    /// Licence and attribution, in words.
    pub licence: String,
    /// Base URLs in preferred order; a file's URL is a mirror followed by its remote name.
    pub mirrors: Vec<String>,
    /// The archive to download and unpack instead of single files (CIFAR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<Archive>,
    /// The files of `dir` (`[[dataset.file]]` tables).
    #[serde(rename = "file")]
    pub files: Vec<FileEntry>,
}

/// A tar.gz holding a dataset's files under one directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    /// File name, appended to a mirror.
    pub name: String,
    /// Path prefix of the members, e.g. `cifar-10-batches-bin/`; members are the dataset's
    /// [`files`](DatasetEntry::files) under it.
    pub prefix: String,
    /// Size and digests of the archive.
    pub checksums: Checksums,
}

/// One file of a dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Name of the file as read (decompressed), e.g. `train-images-idx3-ubyte`.
    pub name: String,
    /// Size and digests of the file as read (decompressed). May be empty where nothing is
    /// published.
    pub raw: Checksums,
    /// Size and digests of the official `<name>.gz`, for files published gzipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gz: Option<Checksums>,
}

impl Manifest {
    /// The manifest shipped with the crate ([`MANIFEST_TOML`]).
    pub fn canonical() -> Result<Self> {
        Self::parse("datasets/manifest.toml", MANIFEST_TOML)
    }

    /// Parses and checks a manifest: exactly one entry per dataset, every digest lower-case hex
    /// of its algorithm's length. `file` names the text in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| Error::Manifest {
            file: file.to_string(),
            source: Box::new(e),
        })?;
        for id in DatasetId::ALL {
            let count = manifest.datasets.iter().filter(|d| d.id == id).count();
            if count != 1 {
                return Err(Error::ManifestEntries { dataset: id, count });
            }
        }
        for d in &manifest.datasets {
            if let Some(a) = &d.archive {
                a.checksums.check_format(file)?;
            }
            for f in &d.files {
                f.raw.check_format(file)?;
                if let Some(gz) = &f.gz {
                    gz.check_format(file)?;
                }
            }
        }
        Ok(manifest)
    }

    /// The entry of `id`.
    pub fn dataset(&self, id: DatasetId) -> Result<&DatasetEntry> {
        self.datasets
            .iter()
            .find(|d| d.id == id)
            .ok_or(Error::ManifestEntries {
                dataset: id,
                count: 0,
            })
    }
}

impl DatasetEntry {
    /// The URLs of a remote file name (an archive name or [`FileEntry::remote_name`]), one per
    /// mirror in preferred order.
    pub fn urls(&self, remote_name: &str) -> Vec<String> {
        self.mirrors
            .iter()
            .map(|m| format!("{m}{remote_name}"))
            .collect()
    }

    /// The file called `name`.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }
}

impl FileEntry {
    /// The name of the published gzip file, `<name>.gz`.
    pub fn gz_name(&self) -> String {
        format!("{}.gz", self.name)
    }

    /// The name to download when the dataset has no archive: the `.gz` if one is published.
    pub fn remote_name(&self) -> String {
        if self.gz.is_some() {
            self.gz_name()
        } else {
            self.name.clone()
        }
    }

    /// Checks a file's bytes, raw or gzip (inflated first), against the [`raw`](Self::raw)
    /// checksums; `file` names it in errors.
    pub fn verify_raw(&self, file: &str, bytes: &[u8]) -> Result<()> {
        self.raw.verify(file, &inflate(file, bytes)?)
    }
}
