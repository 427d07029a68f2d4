//! Prunes one synthetic FC layer by magnitude and restores it by least squares: the kept weights
//! are refitted so the layer's outputs match the original ones, then a few removed weights are
//! re-admitted where they reduce the error most.
//!
//! `cargo run -p energy-prune --example prune_layer`
#![allow(clippy::print_stdout)] // an example's output is the point

use energy_prune::{LeastSquares, Matrix, RestoreRule, SolveOptions};
use rand::Rng as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (samples, inputs, filters, keep) = (512, 32, 4, 8);
    let mut rng = tensor_core::rng(7, "example/prune-layer");

    // Correlated inputs (32 features mixed from 8 sources), as a conv layer's are, so that the
    // kept weights can take over part of the removed ones' work.
    let mix: Vec<f64> = (0..8 * inputs)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let mut x = Vec::with_capacity(samples * inputs);
    for _ in 0..samples {
        let z: Vec<f64> = (0..8).map(|_| rng.random_range(-1.0..1.0)).collect();
        for j in 0..inputs {
            let noise: f64 = rng.random_range(-0.1..0.1);
            x.push((0..8).map(|s| z[s] * mix[s * inputs + j]).sum::<f64>() + noise);
        }
    }
    let x = Matrix::new(samples, inputs, x)?;
    let ls = LeastSquares::new(&x, true);
    let opts = SolveOptions {
        lambda: 1e-6,
        max_condition: 1e10,
    };
    let rule = RestoreRule {
        threshold: 1e-3,
        max_count: 4,
    };

    println!("{filters} filters of {inputs} weights, {samples} samples, keep {keep} by magnitude");
    println!("relative squared error of the outputs |y - y_pruned|^2 / |y|^2:");
    println!(
        "  {:>6} {:>10} {:>10} {:>10} {:>11}",
        "filter", "pruned", "refitted", "restored", "re-admitted"
    );
    for f in 0..filters {
        // The original filter and its outputs: the targets of the fit.
        let w: Vec<f64> = (0..inputs).map(|_| rng.random_range(-1.0..1.0)).collect();
        let bias: f64 = rng.random_range(-0.5..0.5);
        let y: Vec<f64> = (0..samples)
            .map(|r| x.row(r).iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() + bias)
            .collect();
        let target = ls.target(&y)?;

        // Magnitude pruning: the `keep` largest |w| stay, unchanged.
        let mut order: Vec<usize> = (0..inputs).collect();
        order.sort_by(|&a, &b| w[b].abs().total_cmp(&w[a].abs()));
        let mut support = vec![false; inputs];
        for &j in &order[..keep] {
            support[j] = true;
        }
        let pruned_error: f64 = (0..samples)
            .map(|r| {
                let out: f64 = (0..inputs)
                    .filter(|&j| support[j])
                    .map(|j| x.get(r, j) * w[j])
                    .sum();
                (y[r] - out - bias).powi(2)
            })
            .sum();

        // Least squares on the same support, then greedy restoration of removed weights.
        let refit = ls
            .fit(&target, &support, opts)
            .map_err(|s| format!("singular: {s:?}"))?;
        let removed: Vec<usize> = order[keep..].to_vec();
        let (restored, readmitted) = ls
            .restore(&target, &mut support, &removed, opts, rule)
            .map_err(|s| format!("singular: {s:?}"))?;
        let norm = target.norm_sq();
        println!(
            "  {f:>6} {:>10.4} {:>10.4} {:>10.4} {:>11}",
            pruned_error / norm,
            refit.sq_error / norm,
            restored.sq_error / norm,
            format!("+{}", readmitted.len())
        );
    }
    Ok(())
}
