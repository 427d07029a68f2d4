//! E2-Train's decisions on a toy schedule: stochastic mini-batch dropping picks the iterations
//! that run, selective layer update picks, per sample, the residual blocks that run in them.
//!
//! `cargo run -p e2-train --example smd_slu`
#![allow(clippy::print_stdout)] // an example's output is the point

use e2_train::{
    MinibatchDrop, SluConfig, SmdConfig, StochasticDepthConfig, executed_percentage,
    regulariser_sign, straight_through_gate,
};
use rand::Rng as _;
use tensor_core::{Device, LrDecay, LrSchedule, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (iterations, batch) = (16, 8);
    let lr = LrSchedule::new(LrDecay::Step {
        milestones: vec![8, 12],
        gamma: 0.1,
    })
    .validate()?;
    let mut smd = MinibatchDrop::new(SmdConfig { p: 0.5 }, tensor_core::rng(1, "smd"))?;
    let slu = SluConfig::with_target(50.0).validate()?;
    let mut uniform = tensor_core::rng(1, "gates");
    // Stand-ins for what the recurrent gate would output for three gated blocks.
    let pi = [0.9f32, 0.6, 0.2];

    println!(
        "SMD p = 0.5, SLU target {}% of (block, sample) pairs, batch {batch}",
        slu.target
    );
    println!(
        "  {:>4} {:>7} {:>5} {:>22} {:>10} {:>4}",
        "iter", "lr", "SMD", "gated blocks run", "executed", "reg"
    );
    let (mut ran, mut pairs_on, mut pairs) = (0, 0.0, 0);
    for i in 0..iterations {
        // A dropped iteration still advances the schedule: the rate is a function of time.
        let rate = lr.at(0.1, i, iterations);
        if smd.next_dropped() {
            println!("  {i:>4} {rate:>7.3} {:>5}", "drop");
            continue;
        }
        ran += 1;
        // Hard gates m = 1[pi > u] per sample and block (the forward value of the
        // straight-through gate; its gradient would be that of pi).
        let mut masks = Vec::new();
        for &p in &pi {
            let u: Vec<f32> = (0..batch).map(|_| uniform.random()).collect();
            let u = Tensor::from_vec(u, batch, &Device::Cpu)?;
            let p = Tensor::full(p, batch, &Device::Cpu)?;
            masks.push(straight_through_gate(&p, &u)?.to_vec1::<f32>()?);
        }
        let cp = executed_percentage(&masks);
        pairs_on += masks.iter().flatten().sum::<f32>() as f64;
        pairs += masks.len() * batch;
        let per_block: Vec<String> = masks
            .iter()
            .map(|m| format!("{}/{batch}", m.iter().sum::<f32>()))
            .collect();
        // +1 pushes the gates toward running fewer blocks, -1 toward more.
        let sign = regulariser_sign(cp, slu.target);
        println!(
            "  {i:>4} {rate:>7.3} {:>5} {:>22} {cp:>9.1}% {sign:>+4}",
            "run",
            per_block.join(" ")
        );
    }
    println!(
        "executed iterations {ran}/{iterations} ({:.0}%), gated pairs run {:.1}%, gated block work {:.1}% of standard training",
        100.0 * ran as f64 / iterations as f64,
        100.0 * pairs_on / pairs as f64,
        100.0 * pairs_on / (iterations * pi.len() * batch) as f64
    );

    // The stochastic-depth baseline drops whole blocks per mini-batch, deeper ones more often.
    let depth = StochasticDepthConfig {
        final_survival: 0.5,
    }
    .validate()?;
    let survival: Vec<String> = (1..=pi.len())
        .map(|l| format!("{:.3}", depth.survival(l, pi.len())))
        .collect();
    println!(
        "stochastic depth survival of gated blocks 1..{}: {}",
        pi.len(),
        survival.join(", ")
    );
    Ok(())
}
