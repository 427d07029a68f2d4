//! Shared fixtures of the integration tests: models built from a seed, real embedded batches.

use anyhow::Result;
use cnn_zoo::Arch;
use datasets::{DatasetId, RawDataset, Source, Split, TransformConfig};
use e2_train::{GatedResnet, GatedResnetConfig};
use tensor_core::{DType, Device, Network, SeededInit, Tensor};

/// A zoo model on the CPU with parameters drawn from `seed`, and the store that owns them.
pub fn seeded_model(
    arch: Arch,
    classes: usize,
    in_channels: usize,
    seed: u64,
) -> Result<(Box<dyn Network>, SeededInit)> {
    let init = SeededInit::new(seed);
    let vb = init.var_builder(DType::F32, &Device::Cpu);
    let net = cnn_zoo::build(arch, classes, in_channels, vb)?;
    Ok((net, init))
}

/// The first `n` embedded MNIST training records through `config`.
pub fn mnist_batch(n: usize, config: TransformConfig) -> Result<(Tensor, Tensor)> {
    let mut raw = RawDataset::load(DatasetId::Mnist, Split::Train, &Source::Embedded)?;
    raw.truncate(n);
    let transform = config.validate(raw.shape())?;
    Ok(raw.to_tensors(&transform, &Device::Cpu)?)
}

/// Parameter values by name, as host vectors.
pub type Snapshot = Vec<(String, Vec<f32>)>;

/// All parameter values of a store, by name, as host vectors.
pub fn snapshot(init: &SeededInit) -> Result<Snapshot> {
    init.named_vars()
        .into_iter()
        .map(|(k, v)| Ok((k, v.as_tensor().flatten_all()?.to_vec1::<f32>()?)))
        .collect()
}

/// E2-Train's gated network of `config` as the experiments build it (cnn-zoo's CIFAR ResNet
/// with the reference's initialisation and numerics), on the CPU, parameters drawn from `init`.
pub fn gated(config: GatedResnetConfig, init: &SeededInit) -> Result<GatedResnet> {
    experiments::e2train::gated(config, init, &Device::Cpu)
}
