//! The real-data subsets compiled into the crate (docs/datasets.md §3) and their checksum list.
//!
//! The files live in `datasets/data/` with the official names and directories; their licences are
//! in `datasets/NOTICE`.

use crate::checksum::{parse_sha256sums, verify_sha256};
use crate::error::{Error, Result};

/// One embedded file: its path under `datasets/data/` and its bytes, as shipped (gzip for IDX).
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedFile {
    /// Relative path, `/`-separated, e.g. `mnist/train-images-idx3-ubyte.gz`.
    pub path: &'static str,
    /// The file's bytes.
    pub bytes: &'static [u8],
}

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        [$(EmbeddedFile { path: $path, bytes: include_bytes!(concat!("../data/", $path)) }),*]
    };
}

static FILES: [EmbeddedFile; 11] = embed![
    "mnist/train-images-idx3-ubyte.gz",
    "mnist/train-labels-idx1-ubyte.gz",
    "mnist/t10k-images-idx3-ubyte.gz",
    "mnist/t10k-labels-idx1-ubyte.gz",
    "fashion-mnist/train-images-idx3-ubyte.gz",
    "fashion-mnist/train-labels-idx1-ubyte.gz",
    "fashion-mnist/t10k-images-idx3-ubyte.gz",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz",
    "cifar-10-batches-bin/test_batch.bin",
    "cifar-10-batches-bin/batches.meta.txt",
    "cifar-100-binary/test.bin",
];

/// The `SHA256SUMS` list shipped beside the embedded files.
pub const SHA256SUMS: &str = include_str!("../data/SHA256SUMS");

/// Prefix of embedded file names in errors, so they are not mistaken for paths on disk.
pub(crate) const EMBEDDED_PREFIX: &str = "embedded:";

/// Every embedded file.
pub fn embedded_files() -> &'static [EmbeddedFile] {
    &FILES
}

/// The embedded file at `path` (relative, `/`-separated), if there is one.
pub fn embedded_file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|f| f.path == path).map(|f| f.bytes)
}

/// Checks every embedded file against [`SHA256SUMS`], and that the list names exactly the
/// embedded files.
pub fn verify_embedded() -> Result<()> {
    let list = "embedded:SHA256SUMS";
    let lines = parse_sha256sums(list, SHA256SUMS)?;
    for line in &lines {
        let bytes = embedded_file(&line.path).ok_or_else(|| Error::FileNotFound {
            tried: vec![format!("{EMBEDDED_PREFIX}{}", line.path).into()],
        })?;
        verify_sha256(
            &format!("{EMBEDDED_PREFIX}{}", line.path),
            bytes,
            &line.sha256,
        )?;
    }
    if let Some(f) = FILES
        .iter()
        .find(|f| !lines.iter().any(|l| l.path == f.path))
    {
        return Err(Error::NotListed {
            file: format!("{EMBEDDED_PREFIX}{}", f.path),
            list: list.to_string(),
        });
    }
    Ok(())
}
