//! The importer on small models built here message by message: shapes, supports, the layouts
//! of Gemm and MatMul weights, external data, and every refusal naming what it refuses.

use prost::Message;
use tensor_core::{LayerGeometry, Support};

use super::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto,
    ValueInfoProto,
};
use super::{OnnxOptions, parse};
use crate::Error;

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: 7,
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: v,
        r#type: 2,
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: format!("/{output}"),
        op_type: op.into(),
        attribute,
        ..Default::default()
    }
}

/// A float tensor whose values are `f(i)`, raw little-endian.
fn floats(name: &str, dims: &[i64], f: impl Fn(usize) -> f32) -> TensorProto {
    let n: i64 = dims.iter().product();
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        raw_data: (0..n as usize).flat_map(|i| f(i).to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn int64s(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: 7,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn input(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            dim_value: *d,
                            dim_param: d.is_none().then(|| "batch".to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

fn model(graph: GraphProto) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        producer_name: "test".into(),
        producer_version: "1".into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
    }
    .encode_to_vec()
}

/// conv 1→4 k3 p1 (every other weight zero) → ReLU → max-pool 2 → flatten → Gemm 64→10
/// (transB) → MatMul 10→3, on a symbolic batch of 1×8×8 images.
fn small() -> GraphProto {
    GraphProto {
        name: "small".into(),
        input: vec![input("x", &[None, Some(1), Some(8), Some(8)])],
        initializer: vec![
            floats("conv.weight", &[4, 1, 3, 3], |i| (i % 2) as f32),
            floats("conv.bias", &[4], |_| 0.1),
            floats("fc.weight", &[10, 64], |i| if i < 64 { 0.0 } else { 1.0 }),
            floats("proj", &[10, 3], |i| if i % 3 == 2 { 0.0 } else { -0.5 }),
        ],
        node: vec![
            node(
                "Conv",
                &["x", "conv.weight", "conv.bias"],
                "c",
                vec![ints("pads", &[1, 1, 1, 1]), ints("kernel_shape", &[3, 3])],
            ),
            node("Relu", &["c"], "r", vec![]),
            node(
                "MaxPool",
                &["r"],
                "p",
                vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
            ),
            node("Flatten", &["p"], "f", vec![int("axis", 1)]),
            node("Gemm", &["f", "fc.weight"], "g", vec![int("transB", 1)]),
            node("MatMul", &["g", "proj"], "y", vec![]),
        ],
        ..Default::default()
    }
}

#[test]
fn small_model_geometry_supports_and_unpriced_operators() {
    let net = parse(&model(small()), "small.onnx", None, &OnnxOptions::default()).unwrap();
    assert_eq!(net.input, [1, 8, 8]);
    assert_eq!((net.producer.as_str(), net.opset), ("test 1", 17));
    let names: Vec<&str> = net.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["conv", "fc", "/y"]);
    let conv = tensor_core::ConvParams::square(3).padding(1);
    assert_eq!(
        net.layers[0].geometry,
        LayerGeometry::conv([1, 8, 8], 4, conv).unwrap()
    );
    // The FC layer is priced over the pooled 4×4×4 map it flattens.
    assert_eq!(
        net.layers[1].geometry,
        LayerGeometry::fc(4, 4, 4, 10).unwrap()
    );
    assert_eq!(
        net.layers[2].geometry,
        LayerGeometry::fc(10, 1, 1, 3).unwrap()
    );
    let nonzero = |i: usize| match &net.layers[i].sparsity.weights {
        Support::Bitmap(b) => (b.count_ones(), b.shape().to_vec()),
        other => panic!("layer {i}: {other:?}"),
    };
    assert_eq!(nonzero(0), (18, vec![4, 1, 3, 3]));
    assert_eq!(nonzero(1), (9 * 64, vec![10, 64]));
    assert_eq!(nonzero(2), (20, vec![3, 10]));
    // MatMul's [in, out] weight is transposed into the [out, in] layout: output 2 is all zero.
    if let Support::Bitmap(b) = &net.layers[2].sparsity.weights {
        assert!((0..10).all(|k| !b.get(20 + k)));
        assert!((0..10).all(|k| b.get(k) && b.get(10 + k)));
    }
    let unpriced: Vec<(&str, usize)> = net.unpriced.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(unpriced, [("Flatten", 1), ("MaxPool", 1), ("Relu", 1)]);

    let dense = OnnxOptions {
        dense: true,
        ..Default::default()
    };
    let net = parse(&model(small()), "small.onnx", None, &dense).unwrap();
    assert!(
        net.layers
            .iter()
            .all(|l| l.sparsity.weights == Support::Dense)
    );
}

fn error(graph: GraphProto, options: &OnnxOptions) -> String {
    parse(&model(graph), "m.onnx", None, options)
        .unwrap_err()
        .to_string()
}

#[test]
fn refusals_name_the_file_the_node_and_the_reason() {
    let none = OnnxOptions::default();
    let e = parse(&[], "empty.onnx", None, &none)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "ONNX model empty.onnx: file: it is empty");
    let e = parse(b"\xff\xff\xff", "junk.onnx", None, &none).unwrap_err();
    assert!(
        e.to_string().contains("junk.onnx: file: not an ONNX model"),
        "{e}"
    );

    let mut g = small();
    g.node.insert(1, node("Resize", &["c"], "c2", vec![]));
    let e = parse(&model(g), "m.onnx", None, &none).unwrap_err();
    assert!(
        matches!(&e, Error::OnnxOperator { op_type, node, .. }
        if op_type == "Resize" && node.contains("`/c2`")),
        "{e}"
    );

    let mut g = small();
    g.node[0].attribute.push(ints("dilations", &[2, 2]));
    assert!(error(g, &none).contains("node `/c` (Conv): dilation (2, 2)"));

    let mut g = small();
    g.node[0].attribute[0] = ints("pads", &[1, 1, 0, 0]);
    assert!(error(g, &none).contains("top 1, left 1, bottom 0, right 0"));

    let mut g = small();
    g.input = vec![input("x", &[None, Some(1), None, None])];
    assert!(error(g.clone(), &none).contains("graph input `x`: its channel, height or width"));
    let given = OnnxOptions {
        input: Some([1, 8, 8]),
        ..Default::default()
    };
    assert!(parse(&model(g), "m.onnx", None, &given).is_ok());
    let wrong = OnnxOptions {
        input: Some([3, 8, 8]),
        ..Default::default()
    };
    assert!(error(small(), &wrong).contains("dimension 1 is 1 in the file"));

    // Weights that are inputs: an error unless pricing dense.
    let mut g = small();
    g.initializer.remove(0);
    g.input
        .push(input("conv.weight", &[Some(4), Some(1), Some(3), Some(3)]));
    assert!(error(g.clone(), &none).contains("weight `conv.weight` is not a constant"));
    let dense = OnnxOptions {
        dense: true,
        ..Default::default()
    };
    assert!(parse(&model(g), "m.onnx", None, &dense).is_ok());

    // No layer at all.
    let g = GraphProto {
        input: vec![input("x", &[Some(1), Some(1), Some(8), Some(8)])],
        node: vec![node("Relu", &["x"], "y", vec![])],
        ..Default::default()
    };
    assert!(error(g, &none).contains("graph: no Conv, Gemm or MatMul layer"));

    let mut g = small();
    g.node[4].input[0] = "nowhere".into();
    assert!(error(g, &none).contains("input `nowhere` is not defined before it"));

    // Two activations multiplied: not a layer.
    let mut g = small();
    g.node.push(node("MatMul", &["y", "y"], "z", vec![]));
    assert!(error(g, &none).contains("product of two activations"));
}

#[test]
fn reshapes_pools_concats_and_reductions_infer_shapes() {
    let mut g = small();
    // Replace Flatten by Reshape to [0, -1] through a constant, as the newer exporter writes it.
    g.initializer.push(int64s("shape", &[0, -1]));
    g.node[3] = node("Reshape", &["p", "shape"], "f", vec![]);
    let net = parse(&model(g), "m.onnx", None, &OnnxOptions::default()).unwrap();
    assert_eq!(
        net.layers[1].geometry,
        LayerGeometry::fc(4, 4, 4, 10).unwrap()
    );

    // Ceil-mode pooling, a concat of two branches, a global mean and a 1×1 conv on it.
    let g = GraphProto {
        input: vec![input("x", &[Some(1), Some(2), Some(13), Some(13)])],
        initializer: vec![
            floats("a.weight", &[3, 2, 1, 1], |_| 1.0),
            floats("b.weight", &[5, 2, 3, 3], |_| 1.0),
            floats("head.weight", &[7, 8, 1, 1], |_| 1.0),
            int64s("axes", &[2, 3]),
        ],
        node: vec![
            node(
                "MaxPool",
                &["x"],
                "p",
                vec![
                    ints("kernel_shape", &[3, 3]),
                    ints("strides", &[2, 2]),
                    int("ceil_mode", 1),
                ],
            ),
            node("Conv", &["p", "a.weight"], "a", vec![]),
            node(
                "Conv",
                &["p", "b.weight"],
                "b",
                vec![ints("pads", &[1, 1, 1, 1])],
            ),
            node("Concat", &["a", "b"], "cat", vec![int("axis", 1)]),
            node(
                "ReduceMean",
                &["cat", "axes"],
                "m",
                vec![int("keepdims", 1)],
            ),
            node("Conv", &["m", "head.weight"], "y", vec![]),
        ],
        ..Default::default()
    };
    let net = parse(&model(g), "m.onnx", None, &OnnxOptions::default()).unwrap();
    // 13 → ⌈(13 − 3)/2⌉ + 1 = 6 with ceil mode
    assert_eq!(net.layers[0].geometry.in_h(), 6);
    assert_eq!(net.layers[2].geometry, {
        LayerGeometry::conv([8, 1, 1], 7, tensor_core::ConvParams::square(1)).unwrap()
    });
}

#[test]
fn external_data_is_read_beside_the_model_and_must_stay_there() {
    let dir = std::env::temp_dir().join(format!("onnx-external-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut g = small();
    let w = g.initializer.remove(0);
    let mut bytes = vec![7u8; 5];
    bytes.extend_from_slice(&w.raw_data);
    std::fs::write(dir.join("weights.bin"), &bytes).unwrap();
    let external = |location: &str| TensorProto {
        raw_data: Vec::new(),
        data_location: 1,
        external_data: [("location", location), ("offset", "5"), ("length", "144")]
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        ..w.clone()
    };
    g.initializer.insert(0, external("weights.bin"));
    let none = OnnxOptions::default();
    let net = parse(&model(g.clone()), "m.onnx", Some(&dir), &none).unwrap();
    match &net.layers[0].sparsity.weights {
        Support::Bitmap(b) => assert_eq!(b.count_ones(), 18),
        other => panic!("{other:?}"),
    }
    let e = parse(&model(g.clone()), "m.onnx", None, &none).unwrap_err();
    assert!(e.to_string().contains("no folder was given"), "{e}");
    g.initializer[0] = external("../weights.bin");
    let e = parse(&model(g), "m.onnx", Some(&dir), &none).unwrap_err();
    assert!(
        e.to_string()
            .contains("not a path inside the model's folder"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Bytes flipped anywhere and the file cut anywhere: an error or a model, never a panic.
    #[test]
    fn corrupted_models_are_errors_not_panics(
        flips in proptest::collection::vec((0usize..1 << 12, 1u8..=255), 1..6),
        cut in 1usize..1 << 12,
        dense in proptest::bool::ANY,
    ) {
        let mut bytes = model(small());
        let n = bytes.len();
        for (i, b) in flips {
            bytes[i % n] ^= b;
        }
        bytes.truncate(cut.min(n));
        let options = OnnxOptions { input: Some([1, 8, 8]), dense };
        if let Err(e) = parse(&bytes, "m.onnx", None, &options) {
            proptest::prop_assert!(e.to_string().starts_with("ONNX model m.onnx"), "{}", e);
        }
    }
}

/// What exporters write around channel shuffles, chunks and channel MLPs: `Split`, `Slice`,
/// `Gather`, shape arithmetic from `Shape` into `Reshape`, and a `MatMul` applied at every
/// position (priced as a 1×1 conv over those positions).
#[test]
fn splits_slices_shape_arithmetic_and_positionwise_matmuls() {
    let g = GraphProto {
        input: vec![input("x", &[Some(1), Some(4), Some(6), Some(6)])],
        initializer: vec![
            floats("a.weight", &[3, 2, 1, 1], |_| 1.0),
            floats("b.weight", &[5, 2, 1, 1], |_| 1.0),
            floats("mlp.weight", &[7, 5], |i| if i < 5 { 0.0 } else { 1.0 }),
            int64s("sizes", &[2, 2]),
            int64s("starts", &[1]),
            int64s("ends", &[i64::MAX]),
            int64s("axes", &[2]),
            int64s("steps", &[2]),
            int64s("one", &[1]),
            int64s("minus_one", &[-1]),
            TensorProto {
                name: "zero".into(),
                data_type: 7,
                int64_data: vec![0],
                ..Default::default()
            },
        ],
        node: vec![
            NodeProto {
                input: vec!["x".into(), "sizes".into()],
                output: vec!["s0".into(), "s1".into()],
                name: "/split".into(),
                op_type: "Split".into(),
                attribute: vec![int("axis", 1)],
                ..Default::default()
            },
            node("Conv", &["s0", "a.weight"], "a", vec![]),
            // every other row from row 1: 6 → 3
            node(
                "Slice",
                &["s1", "starts", "ends", "axes", "steps"],
                "sl",
                vec![],
            ),
            node("Conv", &["sl", "b.weight"], "b", vec![]),
            // [1, 5, 3, 6] → shape → gather(0) and -1 → reshape to [1, 90]
            node("Shape", &["b"], "shape", vec![]),
            node("Gather", &["shape", "zero"], "n", vec![int("axis", 0)]),
            node("Unsqueeze", &["n", "zero"], "n1", vec![]),
            node(
                "Concat",
                &["n1", "minus_one"],
                "target",
                vec![int("axis", 0)],
            ),
            node("Reshape", &["b", "target"], "flat", vec![]),
            // a channel-last [1, 6, 6, 7] view of x (twice, less the last channel) into the MLP
            node("Transpose", &["x"], "xt", vec![ints("perm", &[0, 2, 3, 1])]),
            node("Concat", &["xt", "xt"], "x8", vec![int("axis", 3)]),
            node(
                "Slice",
                &["x8", "zero", "minus_one", "minus_one"],
                "x7",
                vec![],
            ),
            node("MatMul", &["x7", "mlp.weight"], "y", vec![]),
        ],
        ..Default::default()
    };
    let net = parse(&model(g), "m.onnx", None, &OnnxOptions::default()).unwrap_or_else(|e| {
        panic!("{e}");
    });
    let geometry: Vec<LayerGeometry> = net.layers.iter().map(|l| l.geometry).collect();
    let one = tensor_core::ConvParams::square(1);
    assert_eq!(
        geometry,
        [
            LayerGeometry::conv([2, 6, 6], 3, one).unwrap(),
            LayerGeometry::conv([2, 3, 6], 5, one).unwrap(),
            // x7 is [1, 6, 6, 7]: the [7, 5] weight at 36 positions
            LayerGeometry::conv([7, 6, 6], 5, one).unwrap(),
        ]
    );
    // MatMul's [in, out] weight, transposed: input channel 0 carries no weight.
    match &net.layers[2].sparsity.weights {
        Support::Bitmap(b) => {
            assert_eq!(b.count_ones(), 30);
            assert!((0..5).all(|o| !b.get(o * 7)));
        }
        other => panic!("{other:?}"),
    }
    for op in ["Split", "Slice", "Shape", "Gather", "Reshape", "Transpose"] {
        assert!(net.unpriced.contains_key(op), "{op}: {:?}", net.unpriced);
    }
}
