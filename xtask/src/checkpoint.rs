//! Checkpoints: model variables, optimiser state and typed metadata in one safetensors file,
//! written atomically so an interrupted run never leaves a half-written checkpoint.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tensor_core::tensor::candle;
use tensor_core::{Device, Tensor, Var};

use crate::paths::write_atomic;

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

const META_KEY: &str = "energy";
const OPTIM_PREFIX: &str = "optimizer.";

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Its metadata.
    pub meta: CheckpointMeta,
    /// Model tensors by variable name.
    pub model: HashMap<String, Tensor>,
    /// Optimiser tensors by name (prefix stripped).
    pub optimizer: HashMap<String, Tensor>,
}

/// Writes model variables and optimiser tensors with metadata to `path`, atomically.
pub fn save(
    path: &Path,
    meta: &CheckpointMeta,
    model: &[(String, Var)],
    optimizer: &[(String, Tensor)],
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = model
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    tensors.extend(
        optimizer
            .iter()
            .map(|(k, t)| (format!("{OPTIM_PREFIX}{k}"), t.clone())),
    );
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let header = HashMap::from([(
        META_KEY.to_string(),
        serde_json::to_string(meta).context("cannot serialise checkpoint metadata")?,
    )]);
    let bytes = safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(header))
        .with_context(|| format!("cannot serialise checkpoint {}", path.display()))?;
    write_atomic(path, &bytes)
}

fn meta_of(path: &Path, bytes: &[u8]) -> Result<CheckpointMeta> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .with_context(|| format!("{} is not a safetensors file", path.display()))?;
    let Some(json) = header.metadata().as_ref().and_then(|m| m.get(META_KEY)) else {
        bail!(
            "{} has no `{META_KEY}` metadata: not a checkpoint of this project",
            path.display()
        )
    };
    serde_json::from_str(json)
        .with_context(|| format!("{} has malformed `{META_KEY}` metadata", path.display()))
}

/// Loads a checkpoint onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let meta = meta_of(path, &bytes)?;
    let all = candle::safetensors::load_buffer(&bytes, device)
        .with_context(|| format!("cannot load tensors from {}", path.display()))?;
    let (mut model, mut optimizer) = (HashMap::new(), HashMap::new());
    for (k, t) in all {
        match k.strip_prefix(OPTIM_PREFIX) {
            Some(name) => optimizer.insert(name.to_string(), t),
            None => model.insert(k, t),
        };
    }
    Ok(Checkpoint {
        meta,
        model,
        optimizer,
    })
}

/// Copies checkpoint tensors into the model's variables; every variable must be present with
/// its exact shape, and the checkpoint may hold nothing else.
pub fn restore_vars(path: &Path, ckpt: &Checkpoint, vars: &[(String, Var)]) -> Result<()> {
    if ckpt.model.len() != vars.len() {
        bail!(
            "{} holds {} model tensors but the model has {} variables (another architecture?)",
            path.display(),
            ckpt.model.len(),
            vars.len()
        );
    }
    for (name, var) in vars {
        let t = ckpt
            .model
            .get(name)
            .with_context(|| format!("{} has no tensor `{name}`", path.display()))?;
        if t.dims() != var.dims() {
            bail!(
                "{}: tensor `{name}` has shape {:?}, the model expects {:?}",
                path.display(),
                t.dims(),
                var.dims()
            );
        }
        var.set(&t.to_dtype(var.dtype())?)
            .with_context(|| format!("cannot restore `{name}` from {}", path.display()))?;
    }
    Ok(())
}
