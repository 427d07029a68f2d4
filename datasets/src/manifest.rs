//! The download manifest (`datasets/manifest.toml`, docs/datasets.md §2): per dataset the mirrors in
//! preferred order, the files with their sizes and digests, and the archive layout. Read by
//! `cargo xtask datasets`; this crate never downloads.
//!
//! Verify files with [`FileEntry::verify_raw`]: it checks the decompressed bytes, whose digest
//! does not depend on the mirror or on how a file was re-compressed. CIFAR-100 publishes only an
//! md5 (its archive's), so its `sha256` is absent until recorded from a verified download.
//! [`Manifest::verify_file`] also says which file the bytes are when they are not the one
//! expected, since MNIST and Fashion-MNIST share their file names.

use std::cell::OnceCell;

use serde::{Deserialize, Serialize};

use crate::checksum::{Checksums, md5_hex, sha256_hex};
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

    /// The file of the manifest whose raw checksums `raw` (decompressed bytes) match, if any.
    /// Only files with a published digest can match.
    pub fn identify(&self, raw: &[u8]) -> Option<KnownFile> {
        self.find(&Digests::new(raw))
    }

    /// Checks that `raw` (decompressed bytes) is `id`'s file `name`; `file` names the bytes in
    /// errors. Another file of the manifest is [`Error::WrongFile`] saying which one it is
    /// (Fashion-MNIST's training images read as MNIST's); bytes matching no file are
    /// [`Error::UnknownFile`] with both digests. A name the manifest does not list, or one it
    /// lists without a digest (CIFAR's files), has nothing to be checked against and passes.
    pub fn verify_file(&self, id: DatasetId, name: &str, file: &str, raw: &[u8]) -> Result<()> {
        let Some(entry) = self.dataset(id)?.file(name).filter(|f| f.raw.has_digest()) else {
            return Ok(());
        };
        let digests = Digests::new(raw);
        if digests.matches(&entry.raw) {
            return Ok(());
        }
        let expected = KnownFile {
            dataset: id,
            name: name.to_string(),
        };
        if let Some(found) = self.find(&digests) {
            return Err(Error::WrongFile {
                file: file.to_string(),
                expected,
                found,
            });
        }
        // The digest `matches` compared: SHA-256 where the manifest has one.
        let (algorithm, digest, got) = match &entry.raw.sha256 {
            Some(sha) => ("sha256", sha.clone(), digests.sha256()),
            None => (
                "md5",
                entry.raw.md5.clone().unwrap_or_default(),
                digests.md5(),
            ),
        };
        Err(Error::UnknownFile {
            file: file.to_string(),
            expected,
            algorithm,
            digest,
            got: got.to_string(),
        })
    }

    fn find(&self, digests: &Digests<'_>) -> Option<KnownFile> {
        self.datasets.iter().find_map(|d| {
            d.files
                .iter()
                .find(|f| f.raw.has_digest() && digests.matches(&f.raw))
                .map(|f| KnownFile {
                    dataset: d.id,
                    name: f.name.clone(),
                })
        })
    }
}

/// One file of the manifest: whose, and its name. Displays as `Fashion-MNIST's training images`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownFile {
    /// The dataset it belongs to.
    pub dataset: DatasetId,
    /// Its name as read (decompressed), e.g. `train-images-idx3-ubyte`.
    pub name: String,
}

impl KnownFile {
    /// What the file holds in words (`training images`), or its name where there are none.
    pub fn what(&self) -> &str {
        [
            ("train-images", "training images"),
            ("train-labels", "training labels"),
            ("t10k-images", "test images"),
            ("t10k-labels", "test labels"),
        ]
        .into_iter()
        .find(|(prefix, _)| self.name.starts_with(prefix))
        .map_or(self.name.as_str(), |(_, what)| what)
    }
}

impl std::fmt::Display for KnownFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}'s {}", self.dataset.title(), self.what())
    }
}

/// The digests of one file's bytes, each computed once and only if asked for: hashing the 47 MB
/// of MNIST's training images is the cost of a check.
struct Digests<'a> {
    raw: &'a [u8],
    sha256: OnceCell<String>,
    md5: OnceCell<String>,
}

impl<'a> Digests<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Self {
            raw,
            sha256: OnceCell::new(),
            md5: OnceCell::new(),
        }
    }

    fn sha256(&self) -> &str {
        self.sha256.get_or_init(|| sha256_hex(self.raw))
    }

    fn md5(&self) -> &str {
        self.md5.get_or_init(|| md5_hex(self.raw))
    }

    /// Whether the bytes have `c`'s size and digest: SHA-256 where it is known, MD5 otherwise.
    fn matches(&self, c: &Checksums) -> bool {
        if c.bytes.is_some_and(|b| b != self.raw.len() as u64) {
            return false;
        }
        match (&c.sha256, &c.md5) {
            (Some(sha), _) => sha.eq_ignore_ascii_case(self.sha256()),
            (None, Some(md5)) => md5.eq_ignore_ascii_case(self.md5()),
            (None, None) => false,
        }
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
