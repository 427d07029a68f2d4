//! The typed metadata in a checkpoint's safetensors header, read from the file's bytes alone.
//!
//! Kept apart from the tensors (and from candle) so that the `checkpoint_meta` fuzz target in
//! `fuzz/` can compile this very file: it depends on anyhow, serde, serde_json and safetensors
//! only.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The header key holding [`CheckpointMeta`] as JSON.
pub const META_KEY: &str = "energy";

/// Metadata stored in every checkpoint's safetensors header under the key `energy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Architecture name (cnn-zoo `Arch`).
    pub arch: String,
    /// Dataset name.
    pub dataset: String,
    /// Epochs completed.
    pub epoch: usize,
    /// Run seed.
    pub seed: u64,
    /// Git revision of the code that wrote it.
    pub git_revision: String,
    /// The full run spec as JSON, for checking that a resume continues the same run.
    pub spec: serde_json::Value,
    /// Extra typed facts (masks, budget, energy estimate) added by later experiments.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Reads the metadata of the checkpoint `bytes`; `file` names it in errors. Only the header is
/// parsed: the tensors are checked when they are loaded.
pub fn parse(file: &str, bytes: &[u8]) -> Result<CheckpointMeta> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .with_context(|| format!("{file} is not a safetensors file"))?;
    let Some(json) = header.metadata().as_ref().and_then(|m| m.get(META_KEY)) else {
        bail!("{file} has no `{META_KEY}` metadata: not a checkpoint of this project")
    };
    serde_json::from_str(json)
        .with_context(|| format!("{file} has malformed `{META_KEY}` metadata"))
}
