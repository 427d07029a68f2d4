//! Benchmarks of the projection kernel.

mod benchmarks;

criterion::criterion_main!(benchmarks::projection::benches);
