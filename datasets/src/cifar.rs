//! The CIFAR-10 and CIFAR-100 binary formats (docs/datasets.md §1), as pure functions over bytes.
//!
//! Fixed-size records without a header: the label byte(s), then 1,024 red, 1,024 green and 1,024
//! blue bytes, each plane 32 × 32 row-major (CHW). The record count is the file length divided by
//! the record size, which must divide exactly.

use crate::error::{Error, Result};

/// Pixel bytes of one CIFAR image: 3 × 32 × 32.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
/// A CIFAR-10 record: 1 label byte (0–9) and the image.
pub const CIFAR10_RECORD: usize = 1 + IMAGE_BYTES;
/// A CIFAR-100 record: coarse label (0–19), fine label (0–99) and the image.
pub const CIFAR100_RECORD: usize = 2 + IMAGE_BYTES;

/// The records of one CIFAR batch file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CifarBatch {
    /// Number of records.
    pub n: usize,
    /// `n · 3,072` pixel bytes, each image CHW.
    pub pixels: Vec<u8>,
    /// Labels: CIFAR-10's class, CIFAR-100's **fine** class.
    pub labels: Vec<u8>,
    /// CIFAR-100's coarse labels (superclasses); `None` for CIFAR-10.
    pub coarse_labels: Option<Vec<u8>>,
}

impl CifarBatch {
    /// An empty batch with room for `n` records and no coarse labels.
    fn with_capacity(n: usize) -> Self {
        CifarBatch {
            n,
            pixels: Vec::with_capacity(n * IMAGE_BYTES),
            labels: Vec::with_capacity(n),
            coarse_labels: None,
        }
    }
}

/// Parses a CIFAR-10 binary batch (`data_batch_k.bin`, `test_batch.bin`): 3,073-byte records,
/// labels in 0..=9.
pub fn parse_cifar10(file: &str, bytes: &[u8]) -> Result<CifarBatch> {
    let records = records(file, bytes, CIFAR10_RECORD)?;
    let mut batch = CifarBatch::with_capacity(records.len());
    for (index, r) in records.iter().enumerate() {
        batch.labels.push(check_label(file, index, r[0], 9)?);
        batch.pixels.extend_from_slice(&r[1..]);
    }
    Ok(batch)
}

/// Parses a CIFAR-100 binary file (`train.bin`, `test.bin`): 3,074-byte records, coarse labels
/// in 0..=19 and fine labels in 0..=99. [`CifarBatch::labels`] holds the fine labels.
pub fn parse_cifar100(file: &str, bytes: &[u8]) -> Result<CifarBatch> {
    let records = records(file, bytes, CIFAR100_RECORD)?;
    let mut coarse = Vec::with_capacity(records.len());
    let mut batch = CifarBatch::with_capacity(records.len());
    for (index, r) in records.iter().enumerate() {
        coarse.push(check_label(file, index, r[0], 19)?);
        batch.labels.push(check_label(file, index, r[1], 99)?);
        batch.pixels.extend_from_slice(&r[2..]);
    }
    batch.coarse_labels = Some(coarse);
    Ok(batch)
}

/// Parses a class-name list (`batches.meta.txt`, `fine_label_names.txt`): one name per line,
/// surrounding whitespace trimmed, blank lines skipped.
pub fn parse_class_names(file: &str, bytes: &[u8]) -> Result<Vec<String>> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
        file: file.to_string(),
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

fn records<'a>(file: &str, bytes: &'a [u8], record: usize) -> Result<Vec<&'a [u8]>> {
    if !bytes.len().is_multiple_of(record) {
        return Err(Error::PartialRecord {
            file: file.to_string(),
            len: bytes.len() as u64,
            record,
        });
    }
    Ok(bytes.chunks_exact(record).collect())
}

fn check_label(file: &str, index: usize, label: u8, max: u8) -> Result<u8> {
    if label > max {
        return Err(Error::LabelOutOfRange {
            file: file.to_string(),
            index,
            label: label.into(),
            max: max.into(),
        });
    }
    Ok(label)
}
