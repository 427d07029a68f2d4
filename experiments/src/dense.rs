//! Dense pretrained models shared by the compression experiments: trained once per spec with the
//! baseline trainer, cached under the output directory, and loaded as often as needed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tensor_core::{DType, Device, Network, SeededInit, Var};

use crate::checkpoint;
use crate::registry::RunEnv;
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

/// A trained dense model: its checkpoint and the test accuracy it reached.
pub struct Dense {
    /// `last.safetensors` of the dense run.
    pub checkpoint: PathBuf,
    /// Test accuracy after the last epoch.
    pub test_accuracy: f64,
}

/// Trains `spec` on its data (the full dataset from the run's data folder), or finishes an
/// interrupted run of it, unless its checkpoint is complete. A spec starting from a weight file
/// ([`TrainSpec::init_from`]) takes it from [`RunEnv::init_file`].
pub fn ensure(env: &RunEnv<'_>, spec: &TrainSpec) -> Result<Dense> {
    let (out, data, reporter) = (env.out, env.data, env.reporter);
    let init_file = env.init_file(spec);
    let dir = dir(out, spec)?;
    // Held across processes too: jobs and shards needing this model train it once; the others
    // wait, then find the checkpoint complete.
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let _lock = crate::lock::exclusive(&crate::lock::path(
        out,
        "dense",
        name.as_deref().unwrap_or("dense"),
    ))?;
    let mut obs = reporter.observer(&format!("dense {} seed {}", spec.arch, spec.seed));
    let outcome = train::train_from(spec, data, init_file, env.device, &dir, true, obs.as_mut())
        .with_context(|| {
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
pub fn load(spec: &TrainSpec, in_channels: usize, path: &Path, device: &Device) -> Result<Loaded> {
    load_classes(spec, in_channels, path, spec.dataset.num_classes(), device)
}

/// As [`load`] with the output layer narrowed to the first `classes` classes: its weight and
/// bias keep the rows of those classes, every other tensor is restored as it is.
pub fn load_classes(
    spec: &TrainSpec,
    in_channels: usize,
    path: &Path,
    classes: usize,
    device: &Device,
) -> Result<Loaded> {
    let all = spec.dataset.num_classes();
    if classes == 0 || classes > all {
        bail!("{classes} target classes: {} has {all}", spec.dataset);
    }
    let mut ckpt = checkpoint::load(path, device)?;
    let init = SeededInit::new(spec.seed);
    let vb = init.var_builder(DType::F32, device);
    let net = cnn_zoo::build(spec.arch, classes, in_channels, vb)
        .with_context(|| format!("cannot build {}", spec.arch))?;
    if classes < all {
        let output = net
            .layers()
            .last()
            .with_context(|| format!("{} has no layers", spec.arch))?
            .name
            .clone();
        let prefix = format!("{output}.");
        for (name, t) in ckpt.model.iter_mut() {
            if name.starts_with(&prefix) && t.dims().first() == Some(&all) {
                *t = t.narrow(0, 0, classes)?;
            }
        }
    }
    let vars = init.named_vars();
    checkpoint::restore_vars(path, &ckpt, &vars)?;
    Ok(Loaded { net, vars })
}

#[cfg(test)]
mod tests {
    use tensor_core::{DType, Device, SeededInit, Tensor};

    use super::{load, load_classes};
    use crate::checkpoint::{self, CheckpointMeta};
    use crate::train::TrainSpec;
    use cnn_zoo::Arch;
    use datasets::DatasetId;

    #[test]
    fn fewer_classes_keep_their_rows_of_the_output_layer() -> anyhow::Result<()> {
        let spec = TrainSpec::recipe(Arch::Lenet5Caffe, DatasetId::FashionMnist);
        let init = SeededInit::new(3);
        let net = cnn_zoo::build(spec.arch, 10, 1, init.var_builder(DType::F32, &Device::Cpu))?;
        let dir = std::env::temp_dir().join(format!("experiments-dense-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("dense.safetensors");
        let meta = CheckpointMeta {
            arch: spec.arch.to_string(),
            dataset: spec.dataset.to_string(),
            epoch: 1,
            seed: 3,
            git_revision: String::new(),
            spec: serde_json::Value::Null,
            extra: Default::default(),
        };
        checkpoint::save(&path, &meta, &init.named_vars(), &[])?;
        let xs = Tensor::randn(0f32, 1.0, (4, 1, 28, 28), &Device::Cpu)?;
        let all = net.forward_t(&xs, false)?;
        let two = load_classes(&spec, 1, &path, 2, &Device::Cpu)?;
        let narrowed = two.net.forward_t(&xs, false)?;
        assert_eq!(narrowed.dims(), &[4, 2]);
        let diff = (narrowed - all.narrow(1, 0, 2)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert_eq!(diff, 0.0);
        // Every class is the plain load; more classes than the dataset has is an error.
        assert_eq!(load(&spec, 1, &path, &Device::Cpu)?.net.layers().len(), 4);
        assert!(load_classes(&spec, 1, &path, 11, &Device::Cpu).is_err());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
