//! Projects weights onto an energy budget: first one vector with per-entry costs, then two layers
//! under one budget with the linearised costs an energy model supplies.
//!
//! `cargo run -p sparse-proj --example project`
#![allow(clippy::print_stdout)] // an example's output is the point

use sparse_proj::{GreedyVariant, project_layers, project_weighted_l0, relaxed_energy};
use tensor_core::{RelativeBudget, WeightCosts};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One vector: keep the entries of largest w²/κ whose costs fit the capacity.
    let mut w = [0.9f32, -0.2, 0.5, -1.2, 0.05, 0.7, -0.4, 0.3];
    let costs = [1.0, 1.0, 2.0, 3.0, 1.0, 2.0, 1.0, 1.0];
    let before = w;
    let out = project_weighted_l0(&mut w, &costs, 6.0, GreedyVariant::Prefix)?;
    println!("project_weighted_l0, capacity 6:");
    println!(
        "  {:>5} {:>6} {:>5} {:>7} {:>6}",
        "entry", "w", "cost", "w^2/k", "kept"
    );
    for (i, ((&w0, &k), &w1)) in before.iter().zip(&costs).zip(&w).enumerate() {
        let score = f64::from(w0) * f64::from(w0) / k;
        println!("  {i:>5} {w0:>6.2} {k:>5} {score:>7.3} {:>6}", w1 != 0.0);
    }
    println!(
        "  kept {} entries, consumed {} of 6, kept sum of squares {:.3}",
        out.kept, out.consumed, out.kept_value
    );

    // Two layers under one budget. A layer's relaxed energy is its fixed part plus κ per
    // nonzero weight; the second layer's weight cache holds 16 weights, the rest cost more.
    let layer_costs = [
        WeightCosts {
            fixed: 100.0,
            kappa_in: 4.0,
            kappa_out: 4.0,
            cached: 64,
        },
        WeightCosts {
            fixed: 60.0,
            kappa_in: 1.0,
            kappa_out: 6.0,
            cached: 16,
        },
    ];
    let weights = |n: usize, seed: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 37 + seed) % 23) as f32 - 11.5) / 11.5)
            .collect()
    };
    let (mut conv, mut fc) = (weights(54, 3), weights(40, 7));
    let dense = relaxed_energy(&[&conv, &fc], &layer_costs);
    let budget = RelativeBudget::new(0.6)?;
    let absolute = budget.get() * dense;
    let out = project_layers(
        &mut [&mut conv, &mut fc],
        &layer_costs,
        absolute,
        GreedyVariant::Prefix,
        &[],
    )?;
    println!("\nproject_layers, budget {budget} of the dense energy {dense} = {absolute:.1}:");
    for (name, (kept, total)) in ["conv", "fc"]
        .iter()
        .zip(out.kept_per_layer.iter().zip([54, 40]))
    {
        println!("  {name:<4} keeps {kept:>2} of {total} weights");
    }
    println!(
        "  relaxed energy after projection {} <= budget {:.1}",
        out.energy, out.budget
    );

    // Below the fixed energy no choice of weights fits: an error naming the floor.
    let floor = layer_costs.iter().map(|c| c.fixed).sum::<f64>();
    if let Err(e) = project_layers(
        &mut [&mut conv, &mut fc],
        &layer_costs,
        floor - 1.0,
        GreedyVariant::Prefix,
        &[],
    ) {
        println!("  budget {}: {e}", floor - 1.0);
    }
    Ok(())
}
