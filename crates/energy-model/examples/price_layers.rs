//! Prices a small custom CNN, layer by layer, under the ICLR'19 systolic-array model and the
//! Eyeriss row-stationary model. The two count in different units, so each gets its own table.
//!
//! `cargo run -p energy-model --example price_layers`
#![allow(clippy::print_stdout)] // an example's output is the point

use energy_model::eyeriss::{Eyeriss, Preset};
use energy_model::iclr19::Iclr19;
use tensor_core::{ConvParams, EnergyModel, LayerGeometry, LayerId, LayerWorkload};

fn table(
    model: &dyn EnergyModel,
    layers: &[LayerWorkload],
) -> Result<(), Box<dyn std::error::Error>> {
    let priced = model.network_energy(layers)?;
    println!("\nmodel {} ({})", priced.model, priced.unit);
    println!(
        "  {:<6} {:>11} {:>12} {:>12} {:>12}",
        "layer", "MACs/sample", "compute", "data", "total"
    );
    for ((_, name, e), layer) in priced.layers.iter().zip(layers) {
        println!(
            "  {:<6} {:>11} {:>12.4e} {:>12.4e} {:>12.4e}",
            name,
            layer.geometry.macs(),
            e.compute,
            e.data_total(),
            e.total()
        );
    }
    println!(
        "  {:<6} {:>11} {:>12} {:>12} {:>12.4e}",
        "total",
        "",
        "",
        "",
        priced.total()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A small CIFAR-sized network; every geometry is checked when it is built.
    let geometry = [
        (
            "conv1",
            LayerGeometry::conv([3, 32, 32], 16, ConvParams::square(3).padding(1))?,
        ),
        (
            "conv2",
            LayerGeometry::conv([16, 32, 32], 32, ConvParams::square(3).stride(2).padding(1))?,
        ),
        (
            "conv3",
            LayerGeometry::conv([32, 16, 16], 64, ConvParams::square(3).stride(2).padding(1))?,
        ),
        ("fc", LayerGeometry::fc(64, 8, 8, 10)?),
    ];
    let layers: Vec<LayerWorkload> = geometry
        .iter()
        .enumerate()
        .map(|(i, (name, g))| LayerWorkload::dense(LayerId(i), *name, *g))
        .collect();
    for (name, g) in &geometry {
        println!(
            "{name:<6} {} {}x{}x{} -> {}x{}x{}, {} weights",
            g.kind(),
            g.in_channels(),
            g.in_h(),
            g.in_w(),
            g.out_channels(),
            g.out_h(),
            g.out_w(),
            g.weights()
        );
    }

    // ICLR'19: the systolic array of the paper, one sample, relaxed evaluator.
    table(&Iclr19::paper(), &layers)?;
    // Eyeriss: the ISCA'16 configuration; its figures are for the whole batch of 16.
    table(&Eyeriss::preset(Preset::Isca16, 16)?, &layers)?;
    Ok(())
}
