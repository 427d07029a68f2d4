use proptest::prelude::*;
use tensor_core::proptest::{conv_geometry, fc_geometry};
use tensor_core::{Bitmap, Density, LayerGeometry, LayerId, LayerSparsity, LayerWorkload};

use super::*;
use tensor_core::ConvParams;

/// AlexNet, Caffe grouped layout (docs/energy-models.md B.10).
fn alexnet() -> Vec<LayerGeometry> {
    vec![
        LayerGeometry::conv([3, 227, 227], 96, ConvParams::square(11).stride(4)).unwrap(),
        LayerGeometry::conv(
            [96, 27, 27],
            256,
            ConvParams::square(5).padding(2).groups(2),
        )
        .unwrap(),
        LayerGeometry::conv([256, 13, 13], 384, ConvParams::square(3).padding(1)).unwrap(),
        LayerGeometry::conv(
            [384, 13, 13],
            384,
            ConvParams::square(3).padding(1).groups(2),
        )
        .unwrap(),
        LayerGeometry::conv(
            [384, 13, 13],
            256,
            ConvParams::square(3).padding(1).groups(2),
        )
        .unwrap(),
        LayerGeometry::fc(256, 6, 6, 4096).unwrap(),
        LayerGeometry::fc(4096, 1, 1, 4096).unwrap(),
        LayerGeometry::fc(4096, 1, 1, 1000).unwrap(),
    ]
}

fn workloads(gs: &[LayerGeometry]) -> Vec<LayerWorkload> {
    gs.iter()
        .enumerate()
        .map(|(i, g)| LayerWorkload::dense(LayerId(i), format!("l{}", i + 1), *g))
        .collect()
}

#[test]
fn alexnet_lines() {
    let text = write(&from_workloads(&workloads(&alexnet())).unwrap());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8);
    // conv2: 27x27x96 ifmap, 5x5x48 filters (per group) x 256, 27x27x256 ofmap, stride 1, pad 2.
    assert_eq!(
        lines[1],
        "2 27 27 96 1 0 16 5 5 48 256 0 16 27 27 256 1 0 16 1 1 2 2 2 2"
    );
    assert_eq!(
        lines[5],
        "6 6 6 256 1 0 16 6 6 256 4096 0 16 1 1 4096 1 0 16 1 1 0 0 0 0"
    );
    let back = parse(&text).unwrap();
    for (l, g) in back.iter().zip(alexnet()) {
        assert_eq!(l.geometry().unwrap(), g);
        assert_eq!(l.sparsity().unwrap(), LayerSparsity::dense());
        assert_eq!(l.precision().unwrap(), Precision::default());
    }
}

#[test]
fn zero_counts_are_densities() {
    let g = LayerGeometry::conv([2, 4, 4], 2, ConvParams::square(3)).unwrap();
    let mut w = LayerWorkload::dense(LayerId(0), "c", g);
    let bits: Vec<bool> = (0..36).map(|i| i % 4 == 0).collect();
    w.sparsity.weights = Support::Bitmap(Bitmap::from_bools(&g.weight_shape(), &bits).unwrap());
    w.sparsity.inputs = Support::Density(Density::new(0.75).unwrap());
    w.precision = Precision::new(8, 4, 16).unwrap();
    let l = ToolLayer::from_workload(1, &w).unwrap();
    assert_eq!(l.filter.zero_entries, 27);
    assert_eq!(l.ifmap.zero_entries, 8);
    assert_eq!((l.filter.bitwidth, l.ifmap.bitwidth), (8, 4));
    let back = parse(&write(&[l])).unwrap()[0].to_workload("c").unwrap();
    assert_eq!(back.sparsity.weights.density().unwrap().get(), 0.25);
    assert_eq!(back.sparsity.inputs.density().unwrap().get(), 0.75);
    assert_eq!(back.precision, w.precision);
}

#[test]
fn malformed_lines_name_line_and_field() {
    let good = "1 4 4 1 1 0 16 3 3 1 2 0 16 2 2 2 1 0 16 1 1 0 0 0 0";
    let cases: [(&str, usize, &str); 10] = [
        ("1 4 4 1 1 0 16", 1, "line"),
        (
            "1 4 4 x 1 0 16 3 3 1 2 0 16 2 2 2 1 0 16 1 1 0 0 0 0",
            1,
            "ifmap.channels",
        ),
        (
            "2 4 4 1 1 0 16 3 3 1 2 0 16 2 2 2 1 0 16 1 1 0 0 0 0",
            1,
            "index",
        ),
        (
            "1 4 4 1 1 0 16 3 3 1 2 0 0 2 2 2 1 0 16 1 1 0 0 0 0",
            1,
            "filter.bitwidth",
        ),
        (
            "1 4 4 1 1 99 16 3 3 1 2 0 16 2 2 2 1 0 16 1 1 0 0 0 0",
            1,
            "ifmap.zero_entries",
        ),
        (
            "1 4 4 1 1 0 16 3 3 1 2 0 16 2 2 3 1 0 16 1 1 0 0 0 0",
            1,
            "ofmap.channels",
        ),
        (
            "1 4 4 1 1 0 16 3 3 1 2 0 16 3 3 2 1 0 16 1 1 0 0 0 0",
            1,
            "ofmap.height",
        ),
        (
            "1 4 4 1 1 0 16 3 3 1 2 0 16 2 2 2 1 0 16 0 1 0 0 0 0",
            1,
            "stride.y",
        ),
        (
            "1 4 4 1 1 0 16 3 3 1 2 0 16 2 2 2 1 0 16 1 1 1 0 0 0",
            1,
            "padding.bottom",
        ),
        (
            "1 4 4 1 1 0 16 3 3 1 2 0 16 2 2 2 1 0 16 1 1 0 0 0 -1",
            1,
            "padding.right",
        ),
    ];
    for (text, line, field) in cases {
        match parse(text) {
            Err(Error::ToolFormat {
                line: l, field: f, ..
            }) => {
                assert_eq!((l, f.as_str()), (line, field), "{text}")
            }
            other => panic!("{text}: expected a format error, got {other:?}"),
        }
    }
    // The physical line is reported, blank lines included.
    let text = format!("{good}\n\n2 4 4 1 1 0 16 3 3 1 2 0 16 2 2 9 1 0 16 1 1 0 0 0 0\n");
    assert!(matches!(
        parse(&text),
        Err(Error::ToolFormat { line: 3, .. })
    ));
    assert_eq!(parse(&format!("\n{good}\n\n")).unwrap().len(), 1);
}

/// Sizes whose product overflows a 64-bit count are errors naming the block, not a panic (debug)
/// or a wrapped entry count (release); the same for a geometry whose MAC count overflows.
#[test]
fn sizes_that_overflow_are_format_errors() {
    let big = "4294967296";
    let line = format!("1 {big} {big} {big} 1 0 16 1 1 1 1 0 16 1 1 1 1 0 16 1 1 0 0 0 0");
    match parse(&line) {
        Err(Error::ToolFormat { line: 1, field, .. }) => assert_eq!(field, "ifmap.height"),
        other => panic!("expected a format error, got {other:?}"),
    }
    // Each block fits in 64 bits, but padding the ifmap does not.
    let pad = usize::MAX / 2 + 1;
    let line = format!("1 4 4 1 1 0 16 3 3 1 1 0 16 2 2 1 1 0 16 1 1 {pad} {pad} 0 0");
    match parse(&line) {
        Err(Error::ToolFormat {
            line: 1,
            field,
            reason,
        }) => {
            assert_eq!(field, "filter");
            assert!(reason.contains("overflow"), "{reason}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}

proptest! {
    // Writing then parsing returns the same lines and geometries.
    #[test]
    fn round_trip(gs in proptest::collection::vec(prop_oneof![conv_geometry(6, 9), fc_geometry(8, 8)], 1..6)) {
        let ws = workloads(&gs);
        let lines = from_workloads(&ws).unwrap();
        let back = parse(&write(&lines)).unwrap();
        prop_assert_eq!(&back, &lines);
        for (l, g) in back.iter().zip(&gs) {
            // A conv whose kernel covers its unpadded input with a 1x1 output reads back as FC
            // (B.3): same sizes, so the same weights and MACs.
            let r = l.geometry().unwrap();
            prop_assert_eq!(r.weights(), g.weights());
            prop_assert_eq!(r.macs(), g.macs());
            if g.kind() == LayerKind::Fc { prop_assert_eq!(r, *g); }
        }
    }
}
