pub(crate) mod projection;

/// Seeded weights and ICLR'19-like integer costs: a few cost classes, as in a real network.
pub(crate) fn inputs(n: usize, seed: u64) -> (Vec<f32>, Vec<f64>) {
    // A small xorshift keeps the bench free of extra dependencies and fully reproducible.
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let values = (0..n)
        .map(|_| ((next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32)
        .collect();
    let classes = [210.0, 654.0, 3732.0, 13_132.0];
    let costs = (0..n).map(|_| classes[(next() % 4) as usize]).collect();
    (values, costs)
}
