//! Dense pretrained models shared by the compression experiments: trained once per spec with the
//! baseline trainer, cached under the output directory, and loaded as often as needed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use tensor_core::{DType, Network, SeededInit, Var};

use crate::checkpoint;
use crate::data::DataDir;
use crate::reporter::Reporter;
use crate::train::{self, TrainSpec};

/// FNV-1a over the spec's JSON: a stable, dependency-free key for the cache directory.
fn spec_key(spec: &TrainSpec) -> Result<String> {
    let json = serde_json::to_string(spec)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{h:016x}"))
}

/// Directory holding the dense checkpoint of `spec`.
pub fn dir(out: &Path, spec: &TrainSpec) -> Result<PathBuf> {
    Ok(out.join("checkpoints").join("dense").join(format!(
        "{}-{}-seed{}-{}",
        spec.arch,
        spec.dataset,
        spec.seed,
        spec_key(spec)?
    )))
}

/// One lock per cache directory, so parallel runs needing the same dense model train it once.
fn lock_for(dir: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(dir.to_path_buf()).or_default().clone()
}

/// A trained dense model: its checkpoint and the test accuracy it reached.
pub struct Dense {
    /// `last.safetensors` of the dense run.
    pub checkpoint: PathBuf,
    /// Test accuracy after the last epoch.
    pub test_accuracy: f64,
}

/// Trains `spec` on its data (the full dataset from `data`), or finishes an interrupted run of
/// it, unless its checkpoint is complete.
pub fn ensure(
    out: &Path,
    spec: &TrainSpec,
    data: &DataDir,
    reporter: &dyn Reporter,
) -> Result<Dense> {
    let dir = dir(out, spec)?;
    let lock = lock_for(&dir);
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let mut obs = reporter.observer(&format!("dense {} seed {}", spec.arch, spec.seed));
    let outcome = train::train(spec, data, &dir, true, obs.as_mut()).with_context(|| {
        format!(
            "cannot train the dense {} for seed {}",
            spec.arch, spec.seed
        )
    })?;
    Ok(Dense {
        checkpoint: outcome.checkpoint,
        test_accuracy: outcome.final_accuracy,
    })
}

/// A model built from a checkpoint, with its variables by name.
pub struct Loaded {
    /// The network.
    pub net: Box<dyn Network>,
    /// Every variable, named as in the checkpoint.
    pub vars: Vec<(String, Var)>,
}

impl Loaded {
    /// The variables alone, in the order the trainers take them.
    pub fn params(&self) -> Vec<Var> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }
}

/// Builds `spec`'s architecture and restores the weights of `path` into it.
pub fn load(spec: &TrainSpec, in_channels: usize, path: &Path) -> Result<Loaded> {
    let device = spec.device.to_device()?;
    let ckpt = checkpoint::load(path, &device)?;
    let init = SeededInit::new(spec.seed);
    let vb = init.var_builder(DType::F32, &device);
    let net = cnn_zoo::build(spec.arch, spec.dataset.num_classes(), in_channels, vb)
        .with_context(|| format!("cannot build {}", spec.arch))?;
    let vars = init.named_vars();
    checkpoint::restore_vars(path, &ckpt, &vars)?;
    Ok(Loaded { net, vars })
}
