//! The checked vocabulary: values that cannot be built invalid, and the learning-rate schedule.
//!
//! `cargo run -p tensor-core --example vocabulary`
#![allow(clippy::print_stdout)] // an example's output is the point

use tensor_core::{
    ConvParams, Density, LayerGeometry, LrDecay, LrSchedule, RelativeBudget, Support,
};

fn main() -> tensor_core::Result<()> {
    println!("budgets and densities (checked when made):");
    for value in [0.2, 1.0, 0.0, 1.5, f64::NAN] {
        match RelativeBudget::new(value) {
            Ok(b) => println!("  RelativeBudget::new({value}) = {b}"),
            Err(e) => println!("  RelativeBudget::new({value}): {e}"),
        }
    }
    let kept = Density::from_counts(150, 600)?;
    println!("  Density::from_counts(150, 600) = {}", kept.get());
    match Density::new(-0.1) {
        Ok(d) => println!("  Density::new(-0.1) = {}", d.get()),
        Err(e) => println!("  Density::new(-0.1): {e}"),
    }
    let support = Support::Density(kept);
    println!(
        "  Support::Density({}) keeps {} of 600 weights",
        kept.get(),
        support.nonzeros(600)?
    );

    println!("\nlayer geometry (validated by its constructors):");
    let conv = LayerGeometry::conv([3, 32, 32], 16, ConvParams::square(3).padding(1))?;
    println!(
        "  conv 3x32x32 -> {}x{}x{}: {} weights, {} MACs",
        conv.out_channels(),
        conv.out_h(),
        conv.out_w(),
        conv.weights(),
        conv.macs()
    );
    let dw = LayerGeometry::conv(
        [16, 32, 32],
        16,
        ConvParams::square(3).padding(1).groups(16),
    )?;
    println!(
        "  depthwise 16 groups: {} weights, {} MACs, depthwise = {}",
        dw.weights(),
        dw.macs(),
        dw.is_depthwise()
    );
    let invalid = [
        LayerGeometry::conv([3, 4, 4], 8, ConvParams::square(5)),
        LayerGeometry::conv([3, 32, 32], 8, ConvParams::square(3).groups(2)),
        LayerGeometry::conv([0, 32, 32], 8, ConvParams::square(3)),
        LayerGeometry::fc(16, 5, 5, 0),
    ];
    for result in invalid {
        if let Err(e) = result {
            println!("  rejected: {e}");
        }
    }

    println!("\nlearning rate, base 0.1, 200 iterations:");
    let step = LrSchedule::new(LrDecay::Step {
        milestones: vec![100, 150],
        gamma: 0.1,
    })
    .with_warmup(10, 0.01)
    .validate()?;
    let cosine = LrSchedule::new(LrDecay::Cosine);
    println!("  iteration  step+warm-up  cosine");
    for i in [0, 9, 10, 99, 100, 150, 199] {
        println!(
            "  {i:>9}  {:>12.4}  {:>6.4}",
            step.at(0.1, i, 200),
            cosine.at(0.1, i, 200)
        );
    }
    let unordered = LrSchedule::new(LrDecay::Step {
        milestones: vec![150, 100],
        gamma: 0.1,
    });
    if let Err(e) = unordered.validate() {
        println!("  rejected: {e}");
    }
    Ok(())
}
