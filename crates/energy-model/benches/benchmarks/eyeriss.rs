//! Whole-network Eyeriss estimates: the row-stationary search for every layer, both presets.

use criterion::{BenchmarkId, Criterion, criterion_group};
use energy_model::eyeriss::{Eyeriss, Preset};
use std::hint::black_box;
use tensor_core::EnergyModel;

fn eyeriss(c: &mut Criterion) {
    let mut group = c.benchmark_group("estimate");
    let layers = super::alexnet_caffe();
    for preset in [Preset::Isca16, Preset::Chip] {
        for batch in [1, 16] {
            let model = Eyeriss::preset(preset, batch).expect("presets are valid");
            let id = BenchmarkId::new(
                format!("eyeriss-{preset}"),
                format!("alexnet-caffe-b{batch}"),
            );
            group.bench_with_input(id, &layers, |b, layers| {
                b.iter(|| {
                    model
                        .network_energy(black_box(layers))
                        .expect("the bench networks fit the model")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, eyeriss);
