//! Proptest strategies (feature `proptest`) for the shared vocabulary. Strategies are
//! functions, not `Arbitrary` impls, so each test says which corner of the space it explores.

use proptest::prelude::*;

use crate::geometry::{ConvParams, LayerGeometry, LayerId};
use crate::ledger::{Gemm, LayerWork, WorkLedger};
use crate::sparsity::{Bitmap, Density, Precision, Support};

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
                LayerGeometry::conv(
                    [c, h, w],
                    d,
                    ConvParams::square(k).stride(s).padding(p).groups(groups),
                )
                .ok()
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

/// Bitmaps of the given shape whose density is itself random: a probability `q` in `[0, 1]` is
/// drawn first, then each bit is set with probability `q`, so empty, sparse and full supports
/// all occur.
pub fn sparse_bitmap(shape: Vec<usize>) -> impl Strategy<Value = Bitmap> {
    let n: usize = shape.iter().product();
    (0.0f64..=1.0)
        .prop_flat_map(move |q| proptest::collection::vec(proptest::bool::weighted(q), n))
        .prop_filter_map("bitmap", move |bits| Bitmap::from_bools(&shape, &bits).ok())
}

/// A conv geometry together with a weight bitmap (`[d, c/g, r_h, r_w]`) and an input mask
/// (`[c, h, w]`) of random densities.
pub fn conv_with_supports(
    max_channels: usize,
    max_size: usize,
) -> impl Strategy<Value = (LayerGeometry, Bitmap, Bitmap)> {
    conv_geometry(max_channels, max_size).prop_flat_map(|g| {
        (
            Just(g),
            sparse_bitmap(g.weight_shape()),
            sparse_bitmap(vec![g.in_channels(), g.in_h(), g.in_w()]),
        )
    })
}

/// Operand widths from 1 to 32 bits.
pub fn bit_width() -> impl Strategy<Value = u8> {
    1u8..=32
}

/// A [`Precision`] with each width in `1..=32`.
pub fn precision() -> impl Strategy<Value = Precision> {
    (bit_width(), bit_width(), bit_width()).prop_map(|(w, i, o)| Precision {
        weight_bits: w,
        input_bits: i,
        output_bits: o,
    })
}

/// One GEMM class with up to `max_macs` MACs per sample.
pub fn gemm(max_macs: u64) -> impl Strategy<Value = Gemm> {
    (0..=max_macs, bit_width(), bit_width()).prop_map(|(m, a, b)| Gemm {
        macs_per_sample: m,
        a_bits: a,
        b_bits: b,
    })
}

/// The work of one layer in one iteration: any mix of optional GEMMs, fractions in `[0, 1]`.
pub fn layer_work(layer: LayerId, max_macs: u64) -> impl Strategy<Value = LayerWork> {
    (
        0.0f64..=1.0,
        gemm(max_macs),
        proptest::option::of(gemm(max_macs)),
        proptest::option::of(gemm(max_macs)),
        proptest::option::of(gemm(max_macs)),
        0.0f64..=1.0,
    )
        .prop_map(
            move |(f, forward, input_grad, weight_grad, predictor, rho)| LayerWork {
                layer,
                executed_fraction: f,
                forward,
                input_grad,
                weight_grad,
                predictor,
                fallback_fraction: rho,
            },
        )
}

/// A ledger of up to `max_iterations` iterations over `layers` layers, some of them dropped.
pub fn work_ledger(
    max_iterations: usize,
    layers: usize,
    max_macs: u64,
) -> impl Strategy<Value = WorkLedger> {
    let iteration = proptest::option::of((
        1usize..=64,
        (0..layers)
            .map(|l| layer_work(LayerId(l), max_macs))
            .collect::<Vec<_>>(),
    ));
    proptest::collection::vec(iteration, 0..=max_iterations).prop_map(|its| {
        let mut ledger = WorkLedger::new();
        for it in its {
            match it {
                None => ledger.record_dropped(),
                Some((batch, work)) => ledger
                    .record_executed(batch, work)
                    .expect("strategy fractions lie in [0, 1]"),
            }
        }
        ledger
    })
}
