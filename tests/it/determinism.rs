//! Same seed, same numbers: initialisation and a few optimiser steps on real data are
//! bit-identical across runs on the CPU.

use cnn_zoo::Arch;
use datasets::TransformConfig;
use integration_tests::{Snapshot, mnist_batch, seeded_model, snapshot};
use tensor_core::tensor::nn;
use tensor_core::{MomentumSgd, SgdConfig};

fn train_steps(seed: u64) -> anyhow::Result<(Snapshot, Vec<f32>)> {
    let (xs, ys) = mnist_batch(128, TransformConfig::mnist32_resize())?;
    let (net, init) = seeded_model(Arch::Lenet5, 10, 1, seed)?;
    let vars = init.named_vars().into_iter().map(|(_, v)| v).collect();
    let cfg = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
    };
    let mut opt = MomentumSgd::with_config(vars, cfg)?;
    let mut losses = Vec::new();
    for _ in 0..5 {
        let loss = nn::loss::cross_entropy(&net.forward_t(&xs, true)?, &ys)?;
        losses.push(loss.to_scalar::<f32>()?);
        opt.step_grads(&loss.backward()?)?;
    }
    Ok((snapshot(&init)?, losses))
}

#[test]
fn training_steps_are_bit_identical_for_a_seed() -> anyhow::Result<()> {
    let (a, la) = train_steps(11)?;
    let (b, lb) = train_steps(11)?;
    assert_eq!(a, b);
    assert_eq!(la, lb);
    assert!(
        la[4] < la[0],
        "loss should fall on a repeated batch: {la:?}"
    );
    let (c, _) = train_steps(12)?;
    assert_ne!(a, c);
    Ok(())
}
