//! The crate's one error type. Every variant about a file carries the file's name (its path for
//! [`Source::Dir`](crate::Source::Dir), its embedded path such as
//! `embedded:mnist/t10k-labels-idx1-ubyte.gz` otherwise) and the offending values.

use std::fmt;
use std::path::PathBuf;

use crate::id::{DatasetId, Split};
use crate::manifest::KnownFile;

/// Errors raised while reading, parsing, verifying or transforming datasets.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from the tensor layer (building tensors on a device).
    #[error(transparent)]
    Tensor(#[from] tensor_core::Error),

    /// The file does not start with the expected magic number.
    #[error("{file}: bad magic {found:#010x}, expected {expected:#010x}")]
    BadMagic {
        /// The file.
        file: String,
        /// The first four bytes, big-endian.
        found: u32,
        /// The magic number of the expected format.
        expected: u32,
    },

    /// The file's length disagrees with the length its header (or format) implies. A file
    /// shorter than its header reports the header length as `expected`.
    #[error("{file}: {got} bytes, expected {expected}")]
    LengthMismatch {
        /// The file.
        file: String,
        /// The length implied by the header or the manifest.
        expected: u64,
        /// The actual length.
        got: u64,
    },

    /// An IDX image file has other dimensions than the dataset's.
    #[error("{file}: images of {got:?}, expected {expected:?}")]
    DimsMismatch {
        /// The file.
        file: String,
        /// The dimensions the dataset has (rows, cols).
        expected: Vec<usize>,
        /// The dimensions found in the header.
        got: Vec<usize>,
    },

    /// The label file holds a different number of records than the image file.
    #[error("{file}: {labels} labels for {images} images")]
    CountMismatch {
        /// The label file.
        file: String,
        /// Records in the image file.
        images: usize,
        /// Records in the label file.
        labels: usize,
    },

    /// A label outside the dataset's classes.
    #[error("{file}: label {label} of record {index} is out of range 0..={max}")]
    LabelOutOfRange {
        /// The file.
        file: String,
        /// The record's index.
        index: usize,
        /// The label found.
        label: u32,
        /// The largest valid label.
        max: u32,
    },

    /// A fixed-record file (CIFAR) whose length is not a whole number of records.
    #[error("{file}: {len} bytes is not a whole number of {record}-byte records")]
    PartialRecord {
        /// The file.
        file: String,
        /// The file's length.
        len: u64,
        /// The record size.
        record: usize,
    },

    /// A gzip stream (detected by its `1f 8b` magic) that does not inflate.
    #[error("{file}: corrupt gzip stream: {source}")]
    Gzip {
        /// The file.
        file: String,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },

    /// A gzip stream that inflates past [`MAX_INFLATED`](crate::idx::MAX_INFLATED) bytes.
    #[error("{file}: gzip stream inflates past {limit} bytes (corrupt, or not a dataset file)")]
    TooLarge {
        /// The file.
        file: String,
        /// The limit in bytes.
        limit: u64,
    },

    /// A text file (class names) that is not UTF-8.
    #[error("{file}: not UTF-8 text")]
    NotUtf8 {
        /// The file.
        file: String,
    },

    /// Reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },

    /// A dataset without record files (ImageNet) asked for as records.
    #[error(
        "{dataset} has no record files: it is read from its class folders of images \
         (`image_folder`, feature `imagenet`)"
    )]
    NoRecords {
        /// The dataset asked for.
        dataset: DatasetId,
    },

    /// None of the accepted names of a file exists in the data directory.
    #[error("file not found: tried {}", display_paths(tried))]
    FileNotFound {
        /// Every path tried, in order.
        tried: Vec<PathBuf>,
    },

    /// No folder of any [`Layout`](crate::Layout) under the data root holds any of the
    /// dataset's files.
    #[error(
        "no {dataset} files under {}: looked in {} for {}",
        root.display(),
        display_paths(looked_in),
        display_names(names)
    )]
    DatasetNotFound {
        /// The dataset looked for.
        dataset: DatasetId,
        /// The data root.
        root: PathBuf,
        /// Every folder looked in, in order.
        looked_in: Vec<PathBuf>,
        /// Every accepted file name.
        names: Vec<String>,
    },

    /// A file read from disk that is another file of the manifest, such as Fashion-MNIST's
    /// training images under MNIST's name.
    #[error("{file} is {found}, not {}", expected.short_against(found))]
    WrongFile {
        /// The file.
        file: String,
        /// The file it should be.
        expected: KnownFile,
        /// The file its digest says it is.
        found: KnownFile,
    },

    /// A file read from disk whose digest matches no file of the manifest: not an official copy
    /// (a subset, another release) or a damaged one.
    #[error(
        "{file}: {algorithm} {got} matches no file of the manifest ({expected} has {digest}); \
         only the official files are read"
    )]
    UnknownFile {
        /// The file.
        file: String,
        /// The file it should be.
        expected: KnownFile,
        /// `sha256`, or `md5` where the manifest lists no SHA-256.
        algorithm: &'static str,
        /// The manifest's digest of the expected file.
        digest: String,
        /// The digest of the bytes.
        got: String,
    },

    /// The embedded subsets hold no such split (only the CIFAR test records are embedded).
    #[error(
        "{dataset} {split} is not embedded: fetch it with `cargo xtask datasets`, read a directory"
    )]
    NotEmbedded {
        /// The dataset asked for.
        dataset: DatasetId,
        /// The split asked for.
        split: Split,
    },

    /// A file's size or digest differs from the expected one.
    #[error("{file}: {algorithm} mismatch: expected {expected}, got {got}")]
    ChecksumMismatch {
        /// The file.
        file: String,
        /// `sha256` or `md5`.
        algorithm: &'static str,
        /// The expected digest (lower-case hex).
        expected: String,
        /// The digest of the bytes (lower-case hex).
        got: String,
    },

    /// A digest in a manifest that is not lower-case hex of the algorithm's length.
    #[error("{file}: malformed {algorithm} digest {value:?}")]
    BadDigest {
        /// The manifest (or checksum list) holding it.
        file: String,
        /// `sha256` or `md5`.
        algorithm: &'static str,
        /// The value found.
        value: String,
    },

    /// The manifest does not parse.
    #[error("{file}: {source}")]
    Manifest {
        /// The manifest file.
        file: String,
        /// The parser's error.
        #[source]
        source: Box<toml::de::Error>,
    },

    /// The manifest has no (or more than one) entry for a dataset.
    #[error("manifest has {count} entries for {dataset}, expected 1")]
    ManifestEntries {
        /// The dataset.
        dataset: DatasetId,
        /// The number of entries found.
        count: usize,
    },

    /// A file missing from the checksum list that should cover it.
    #[error("{file} is not listed in {list}")]
    NotListed {
        /// The file.
        file: String,
        /// The checksum list.
        list: String,
    },

    /// A line of a `SHA256SUMS` list that is not `<hex>  <path>`.
    #[error("{file}: malformed line {line}")]
    ChecksumList {
        /// The list.
        file: String,
        /// The 1-based line number.
        line: usize,
    },

    /// A string that names no dataset.
    #[error("unknown dataset {input:?}: expected one of mnist, fashion-mnist, cifar10, cifar100")]
    UnknownDataset {
        /// The input as given.
        input: String,
    },

    /// A string that names no split.
    #[error("unknown split {input:?}: expected train or test")]
    UnknownSplit {
        /// The input as given.
        input: String,
    },

    /// Records that do not fit together (pixels for another shape, labels of another length).
    #[error("{what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// What was checked.
        what: &'static str,
        /// The expected sizes.
        expected: Vec<usize>,
        /// The sizes found.
        got: Vec<usize>,
    },

    /// A record index past the end of the dataset.
    #[error("record index {index} out of range for {len} records")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The number of records.
        len: usize,
    },

    /// A transform that cannot be applied to its input shape (zero sizes, padding to a smaller
    /// size, replicating other than one channel, a normalisation of another channel count).
    #[error("invalid transform for input {input:?}: {problem}")]
    InvalidTransform {
        /// The per-sample input shape `[c, h, w]`.
        input: [usize; 3],
        /// What is wrong.
        problem: TransformProblem,
    },

    /// A transform with random augmentation applied without a generator.
    #[error("the transform augments at random: pass a generator or use `without_augment()`")]
    MissingRng,

    /// An image folder not in the class-folder layout (feature `imagenet`).
    #[error("{}: {problem}", dir.display())]
    ImageFolder {
        /// The split's folder.
        dir: PathBuf,
        /// What is wrong.
        problem: FolderProblem,
    },

    /// An image file that does not decode (feature `imagenet`).
    #[error("{}: cannot decode the image: {message}", path.display())]
    ImageDecode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },

    /// An image pipeline whose crop is empty or larger than its resized shorter side, or whose
    /// normalisation is not three finite positive standard deviations.
    #[error(
        "invalid image pipeline: resize {resize}, crop {crop}, normalisation {normalization:?} \
         (need 0 < crop <= resize and three channels with positive std)"
    )]
    InvalidImagePipeline {
        /// The shorter side after resizing.
        resize: u32,
        /// The crop side.
        crop: u32,
        /// The normalisation.
        normalization: crate::transform::Normalization,
    },
}

/// Why a [`TransformConfig`](crate::TransformConfig) does not validate.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum TransformProblem {
    /// A size of zero (input, resize target or pad target).
    ZeroSize,
    /// `pad_to` smaller than the image it pads.
    PadSmaller {
        /// The image's (h, w) before padding.
        from: (usize, usize),
        /// The requested (h, w).
        to: (usize, usize),
    },
    /// Channel replication other than 1 → c.
    Channels {
        /// Channels before.
        from: usize,
        /// Channels requested.
        to: usize,
    },
    /// The normalisation has another channel count than the image (or mean and std differ).
    NormalizationChannels {
        /// Channels of the image.
        channels: usize,
        /// Length of `mean`.
        mean: usize,
        /// Length of `std`.
        std: usize,
    },
    /// A mean that is not finite or a std that is not finite and positive.
    NormalizationValue {
        /// The channel.
        channel: usize,
        /// Its mean.
        mean: f32,
        /// Its std.
        std: f32,
    },
}

impl std::fmt::Display for TransformProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ZeroSize => f.write_str("a size is zero"),
            Self::PadSmaller { from, to } => write!(f, "cannot pad {from:?} to smaller {to:?}"),
            Self::Channels { from, to } => {
                write!(
                    f,
                    "cannot replicate {from} channels to {to}: only 1 -> c is supported"
                )
            }
            Self::NormalizationChannels {
                channels,
                mean,
                std,
            } => write!(
                f,
                "normalisation with {mean} means and {std} stds for {channels} channels"
            ),
            Self::NormalizationValue { channel, mean, std } => write!(
                f,
                "channel {channel}: mean {mean} must be finite and std {std} finite and positive"
            ),
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// Names joined, `x` followed by `x.gz` written once as `x[.gz]`.
fn display_names(names: &[String]) -> String {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        match (out.last_mut(), n.strip_suffix(".gz")) {
            (Some(last), Some(stem)) if last == stem => last.push_str("[.gz]"),
            _ => out.push(n.clone()),
        }
    }
    out.join(", ")
}

impl KnownFile {
    /// How the file named `found` instead reads in `…, not {this}`: the dataset alone when the
    /// two differ only in it (`MNIST's`), the whole description otherwise.
    fn short_against(&self, found: &KnownFile) -> String {
        if self.name == found.name {
            format!("{}'s", self.dataset.title())
        } else {
            self.to_string()
        }
    }
}

/// Result alias with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What is wrong with an image folder.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FolderProblem {
    /// The folder holds no class folders.
    NoClasses,
    /// A class folder holds no image file.
    EmptyClass(String),
    /// A class folder of the split that the training split does not have.
    UnknownClass(String),
    /// A class of the training split that the split lacks.
    MissingClass(String),
    /// A subset named an image position the folder does not have.
    NoSample {
        /// The position asked for.
        index: usize,
        /// Images in the folder.
        len: usize,
    },
}

impl fmt::Display for FolderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoClasses => write!(
                f,
                "no class folders (expected one folder of images per class)"
            ),
            Self::EmptyClass(c) => {
                write!(f, "class folder `{c}` holds no image (.jpeg, .jpg or .png)")
            }
            Self::UnknownClass(c) => {
                write!(f, "class folder `{c}` is not a class of the training split")
            }
            Self::MissingClass(c) => write!(f, "no folder for class `{c}` of the training split"),
            Self::NoSample { index, len } => {
                write!(f, "no image at position {index} (the folder holds {len})")
            }
        }
    }
}
