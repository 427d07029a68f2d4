//! Criterion benches of energy-model: `cargo bench -p energy-model`.

mod benchmarks;

criterion::criterion_main!(benchmarks::estimate::benches, benchmarks::eyeriss::benches);
