//! Whole-network estimates: the ICLR'19 model, relaxed and exact, dense weights.

use criterion::{BenchmarkId, Criterion, criterion_group};
use energy_model::iclr19::{Evaluator, Iclr19};
use std::hint::black_box;
use tensor_core::EnergyModel;

fn iclr19(c: &mut Criterion) {
    let mut group = c.benchmark_group("estimate");
    for (arch, layers) in [
        ("lenet5", super::lenet5()),
        ("alexnet-caffe", super::alexnet_caffe()),
    ] {
        for evaluator in [Evaluator::Relaxed, Evaluator::Exact] {
            let model = Iclr19::paper().with_evaluator(evaluator);
            let id = BenchmarkId::new(format!("iclr19-{}", evaluator.name()), format!("{arch}-b1"));
            group.bench_with_input(id, &layers, |b, layers| {
                b.iter(|| {
                    model
                        .network_energy(black_box(layers))
                        .expect("the bench networks fit the model")
                })
            });
        }
    }
    // Exact evaluator on pruned conv weights: the per-weight walk over bitmaps dominates.
    let pruned = super::with_weight_bitmaps(super::alexnet_caffe(), 0.3, 7);
    let model = Iclr19::paper().with_evaluator(Evaluator::Exact);
    group.bench_with_input(
        BenchmarkId::new("iclr19-exact", "alexnet-caffe-b1-bitmap-d0.3-seed7"),
        &pruned,
        |b, layers| {
            b.iter(|| {
                model
                    .network_energy(black_box(layers))
                    .expect("the bench networks fit the model")
            })
        },
    );
    group.finish();
}

criterion_group!(benches, iclr19);
