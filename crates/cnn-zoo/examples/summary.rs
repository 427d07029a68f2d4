//! Builds two zoo models and prints their per-layer tables: geometry derived from a real
//! forward pass, weights and MACs per layer, and the parameter count of the whole model.
//!
//! `cargo run -p cnn-zoo --example summary`
#![allow(clippy::print_stdout)] // an example's output is the point

use cnn_zoo::{Arch, Totals, build, summary};
use tensor_core::{DType, Device, SeededInit};

fn main() -> tensor_core::Result<()> {
    for (arch, classes, channels) in [(Arch::Lenet5, 10, 1), (Arch::Resnet20, 10, 3)] {
        let init = SeededInit::new(0);
        let net = build(
            arch,
            classes,
            channels,
            init.var_builder(DType::F32, &Device::Cpu),
        )?;
        print!("{}", summary(net.as_ref()));
        let totals = Totals::of(net.as_ref());
        // Every tensor the model created, less batch-norm running statistics.
        let parameters: usize = init
            .named_vars()
            .iter()
            .filter(|(name, _)| !name.ends_with("running_mean") && !name.ends_with("running_var"))
            .map(|(_, var)| var.elem_count())
            .sum();
        println!(
            "{}: {} conv/FC weights, {parameters} trainable parameters (biases and batch norm included), {:.2} MMACs per image\n",
            arch.name(),
            totals.weights,
            totals.macs as f64 / 1e6
        );
    }
    Ok(())
}
