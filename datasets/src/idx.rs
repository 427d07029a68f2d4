//! IDX, the format of MNIST and Fashion-MNIST (docs/datasets.md §1), as pure functions over bytes.
//!
//! Big-endian header: magic `00 00 08 nd` (`0x08` = unsigned byte, `nd` = number of dimensions),
//! then one `u32` per dimension, then the bytes row-major. Gzip is transparent: input starting
//! with `1f 8b` is inflated first.

use std::borrow::Cow;
use std::io::Read;

use crate::error::{Error, Result};

/// Magic of an IDX image file: unsigned bytes, 3 dimensions (N, rows, cols).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX label file: unsigned bytes, 1 dimension (N).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// The largest label of the IDX datasets (10 classes, 0..=9).
pub const MAX_LABEL: u8 = 9;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
// Cap on the preallocation hint read from a gzip trailer, so a corrupt trailer cannot ask for an
// absurd buffer up front (the decoder still grows the buffer as needed).
const MAX_SIZE_HINT: usize = 1 << 28;
// Deflate expands at most about 1032:1, so a trailer promising more than that (a corrupt one)
// is not believed: a 20-byte file must not reserve 256 MiB.
const MAX_DEFLATE_RATIO: usize = 1032;
/// The most bytes [`inflate`] produces: the largest file of these datasets inflates to 47 MB
/// (MNIST's training images), so anything past 1 GiB is a corrupt or hostile stream, reported as
/// [`Error::TooLarge`] instead of exhausting memory.
pub const MAX_INFLATED: u64 = 1 << 30;

/// The images of an IDX file: `n` images of `rows × cols` bytes, row-major, 0 = background.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images (from the header).
    pub n: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `n · rows · cols` pixel bytes.
    pub pixels: Vec<u8>,
}

/// Whether `bytes` starts with the gzip magic `1f 8b`.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Inflates `bytes` if they are gzip (multi-member streams included), borrows them otherwise.
/// `file` names the input in errors.
pub fn inflate<'a>(file: &str, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>> {
    inflate_limited(file, bytes, MAX_INFLATED)
}

/// [`inflate`] with the output capped at `limit` bytes.
pub(crate) fn inflate_limited<'a>(
    file: &str,
    bytes: &'a [u8],
    limit: u64,
) -> Result<Cow<'a, [u8]>> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(size_hint(bytes, limit));
    // One byte past the limit tells "exactly at the limit" from "more".
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| Error::Gzip {
            file: file.to_string(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(Error::TooLarge {
            file: file.to_string(),
            limit,
        });
    }
    Ok(Cow::Owned(out))
}

/// The capacity to reserve for inflating the gzip `bytes`: ISIZE, the last four bytes (the
/// inflated size modulo 2^32), unless it is more than deflate can produce from this many bytes,
/// the fixed cap, or `limit`.
pub(crate) fn size_hint(bytes: &[u8], limit: u64) -> usize {
    bytes
        .len()
        .checked_sub(4)
        .and_then(|i| bytes.get(i..))
        .and_then(|t| t.try_into().ok())
        .map_or(0, |t: [u8; 4]| u32::from_le_bytes(t) as usize)
        .min(MAX_SIZE_HINT)
        .min(bytes.len().saturating_mul(MAX_DEFLATE_RATIO))
        .min(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// Parses an IDX image file (`0x00000803`, gzip or raw). The image count comes from the header
/// and the file length must be exactly `16 + n · rows · cols`.
pub fn parse_idx_images(file: &str, bytes: &[u8]) -> Result<IdxImages> {
    let bytes = inflate(file, bytes)?;
    let dims = header(file, &bytes, IMAGES_MAGIC)?;
    let [n, rows, cols] = [dims[0], dims[1], dims[2]];
    let body = body(file, &bytes, &dims)?;
    Ok(IdxImages {
        n,
        rows,
        cols,
        pixels: body.to_vec(),
    })
}

/// Parses an IDX label file (`0x00000801`, gzip or raw). The label count comes from the header,
/// the file length must be exactly `8 + n`, and every label must lie in `0..=9`.
pub fn parse_idx_labels(file: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let bytes = inflate(file, bytes)?;
    let dims = header(file, &bytes, LABELS_MAGIC)?;
    let labels = body(file, &bytes, &dims)?;
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l > MAX_LABEL) {
        return Err(Error::LabelOutOfRange {
            file: file.to_string(),
            index,
            label: label.into(),
            max: MAX_LABEL.into(),
        });
    }
    Ok(labels.to_vec())
}

/// Checks the magic and returns the dimensions of the header.
fn header(file: &str, bytes: &[u8], magic: u32) -> Result<Vec<usize>> {
    let nd = (magic & 0xff) as usize;
    let header_len = 4 + 4 * nd;
    let word = |i: usize| -> Option<u32> {
        let b = bytes.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let too_short = || Error::LengthMismatch {
        file: file.to_string(),
        expected: header_len as u64,
        got: bytes.len() as u64,
    };
    // A file shorter than the magic is reported by length: there is no magic to show.
    let found = word(0).ok_or_else(too_short)?;
    if found != magic {
        return Err(Error::BadMagic {
            file: file.to_string(),
            found,
            expected: magic,
        });
    }
    (1..=nd)
        .map(|i| word(i).map(|d| d as usize).ok_or_else(too_short))
        .collect()
}

/// Returns the data after the header, requiring the exact length the dimensions imply.
fn body<'a>(file: &str, bytes: &'a [u8], dims: &[usize]) -> Result<&'a [u8]> {
    let header_len = 4 + 4 * dims.len();
    // u128: three u32 dimensions cannot overflow it, whatever a corrupt header says.
    let expected = header_len as u128 + dims.iter().map(|&d| d as u128).product::<u128>();
    if expected != bytes.len() as u128 {
        return Err(Error::LengthMismatch {
            file: file.to_string(),
            expected: u64::try_from(expected).unwrap_or(u64::MAX),
            got: bytes.len() as u64,
        });
    }
    Ok(&bytes[header_len..])
}
