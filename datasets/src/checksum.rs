//! Sizes and digests: pure helpers that check bytes against expected lower-case hex digests.
//! MD5 is here only because it is the one digest published for some files (CIFAR-100,
//! Fashion-MNIST's raw files); prefer SHA-256 wherever both exist.

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The lower-case hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

/// Checks `bytes` against the hex SHA-256 `expected` (case-insensitive); `file` names the bytes
/// in the error.
pub fn verify_sha256(file: &str, bytes: &[u8], expected: &str) -> Result<()> {
    compare(file, "sha256", expected, sha256_hex(bytes))
}

/// Checks `bytes` against the hex MD5 `expected` (case-insensitive); `file` names the bytes in
/// the error.
pub fn verify_md5(file: &str, bytes: &[u8], expected: &str) -> Result<()> {
    compare(file, "md5", expected, md5_hex(bytes))
}

/// What is known about one file: any of its size, MD5 and SHA-256. [`Checksums::verify`] checks
/// every field that is present.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checksums {
    /// Length in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// MD5, lower-case hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// SHA-256, lower-case hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Checksums {
    /// Checks the size first (cheap, and the clearest message for a truncated download), then
    /// SHA-256, then MD5.
    pub fn verify(&self, file: &str, data: &[u8]) -> Result<()> {
        if let Some(expected) = self.bytes
            && expected != data.len() as u64
        {
            return Err(Error::LengthMismatch {
                file: file.to_string(),
                expected,
                got: data.len() as u64,
            });
        }
        if let Some(expected) = &self.sha256 {
            verify_sha256(file, data, expected)?;
        }
        if let Some(expected) = &self.md5 {
            verify_md5(file, data, expected)?;
        }
        Ok(())
    }

    /// Whether a digest is present (a size alone does not identify a file).
    pub fn has_digest(&self) -> bool {
        self.md5.is_some() || self.sha256.is_some()
    }

    /// Checks that the digests present are lower-case hex of the right length; `file` names the
    /// list they come from.
    pub fn check_format(&self, file: &str) -> Result<()> {
        if let Some(v) = &self.sha256 {
            check_hex(file, "sha256", v, 64)?;
        }
        if let Some(v) = &self.md5 {
            check_hex(file, "md5", v, 32)?;
        }
        Ok(())
    }
}

/// One line of a `SHA256SUMS` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChecksumLine {
    /// The path as listed (relative, `/`-separated).
    pub path: String,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
}

/// Parses the `sha256sum` output format, `<64 hex>  <path>` per line (a `*` before the path, the
/// binary-mode marker, is accepted); blank lines are skipped. `file` names the list in errors.
pub fn parse_sha256sums(file: &str, text: &str) -> Result<Vec<ChecksumLine>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = || Error::ChecksumList {
            file: file.to_string(),
            line: i + 1,
        };
        let (digest, path) = line.split_once(char::is_whitespace).ok_or_else(malformed)?;
        let path = path.trim_start();
        let path = path.strip_prefix('*').unwrap_or(path);
        if path.is_empty() {
            return Err(malformed());
        }
        check_hex(file, "sha256", digest, 64)?;
        out.push(ChecksumLine {
            path: path.to_string(),
            sha256: digest.to_string(),
        });
    }
    Ok(out)
}

fn compare(file: &str, algorithm: &'static str, expected: &str, got: String) -> Result<()> {
    if expected.eq_ignore_ascii_case(&got) {
        Ok(())
    } else {
        Err(Error::ChecksumMismatch {
            file: file.to_string(),
            algorithm,
            expected: expected.to_string(),
            got,
        })
    }
}

fn check_hex(file: &str, algorithm: &'static str, value: &str, len: usize) -> Result<()> {
    let ok = value.len() == len
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::BadDigest {
            file: file.to_string(),
            algorithm,
            value: value.to_string(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
