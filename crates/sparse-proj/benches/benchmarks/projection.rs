use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group};
use sparse_proj::{GreedyVariant, project_prefix_sorted, project_weighted_l0};

fn projection(c: &mut Criterion) {
    let mut group = c.benchmark_group("projection");
    group.sample_size(10);
    for n in [10_000usize, 100_000, 1_000_000, 10_000_000] {
        let (values, costs) = super::inputs(n, 7);
        // A budget keeping roughly a fifth of the cost mass.
        let capacity = costs.iter().sum::<f64>() * 0.2;
        group.bench_with_input(BenchmarkId::new("select-prefix", n), &n, |b, _| {
            b.iter_batched(
                || values.clone(),
                |mut v| project_weighted_l0(&mut v, &costs, capacity, GreedyVariant::Prefix),
                BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("sort-prefix", n), &n, |b, _| {
            b.iter_batched(
                || values.clone(),
                |mut v| project_prefix_sorted(&mut v, &costs, capacity),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, projection);
