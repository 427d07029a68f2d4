//! Checkpoints: model variables, optimiser state and typed metadata in one safetensors file,
//! written atomically so an interrupted run never leaves a half-written checkpoint.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use tensor_core::tensor::candle;
use tensor_core::{Device, Tensor, Var};

use crate::paths::write_atomic;

pub mod meta;

pub use meta::CheckpointMeta;
use meta::META_KEY;

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

/// Loads a checkpoint onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let meta = meta::parse(&path.display().to_string(), &bytes)?;
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
        // A NaN in a checkpoint would only surface later as a "diverged" loss: name it here.
        let magnitude = t
            .abs()?
            .to_dtype(tensor_core::DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?;
        if !magnitude.is_finite() {
            bail!(
                "{}: tensor `{name}` holds NaN or infinite values",
                path.display()
            );
        }
        var.set(&t.to_dtype(var.dtype())?)
            .with_context(|| format!("cannot restore `{name}` from {}", path.display()))?;
    }
    Ok(())
}
