//! Proptest strategies (feature `proptest-support`) for the shared vocabulary. Strategies are
//! functions, not `Arbitrary` impls, so each test says which corner of the space it explores.

use proptest::prelude::*;

use crate::geometry::LayerGeometry;
use crate::sparsity::{Bitmap, Density, Support};

/// Valid conv geometries with small sizes: channels divisible by groups (depthwise included),
/// kernel no larger than the padded input.
pub fn conv_geometry(max_channels: usize, max_size: usize) -> impl Strategy<Value = LayerGeometry> {
    (
        1..=max_channels,
        1..=max_channels,
        1usize..=5,
        1usize..=3,
        0usize..=2,
        1..=max_size,
        1..=max_size,
        0usize..3,
    )
        .prop_filter_map(
            "kernel larger than padded input",
            |(cg, dg, k, s, p, h, w, gsel)| {
                let groups = [1, 2, cg.max(1)][gsel];
                let (c, d) = if gsel == 2 {
                    (groups, groups)
                } else {
                    (cg * groups, dg * groups)
                };
                LayerGeometry::conv(c, h, w, d, (k, k), (s, s), (p, p), groups).ok()
            },
        )
}

/// Valid FC geometries fed by a small `c × h × w` producer.
pub fn fc_geometry(max_in: usize, max_out: usize) -> impl Strategy<Value = LayerGeometry> {
    (1..=max_in, 1usize..=3, 1usize..=3, 1..=max_out)
        .prop_filter_map("invalid fc", |(c, h, w, d)| {
            LayerGeometry::fc(c, h, w, d).ok()
        })
}

/// Densities in `[0, 1]`, both ends included.
pub fn density() -> impl Strategy<Value = Density> {
    prop_oneof![
        Just(Density::EMPTY),
        Just(Density::DENSE),
        (0.0f64..=1.0).prop_filter_map("density", |d| Density::new(d).ok()),
    ]
}

/// Random bitmaps of the given shape, each bit set with probability in `[0, 1]`.
pub fn bitmap(shape: Vec<usize>) -> impl Strategy<Value = Bitmap> {
    let n: usize = shape.iter().product();
    proptest::collection::vec(any::<bool>(), n)
        .prop_filter_map("bitmap", move |bits| Bitmap::from_bools(&shape, &bits).ok())
}

/// Any support for a tensor of the given shape.
pub fn support(shape: Vec<usize>) -> impl Strategy<Value = Support> {
    prop_oneof![
        Just(Support::Dense),
        density().prop_map(Support::Density),
        bitmap(shape).prop_map(Support::Bitmap),
    ]
}
