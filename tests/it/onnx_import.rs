//! ONNX models exported by PyTorch (`tests/fixtures/torch/make_fixtures.py`) against the zoo:
//! the same layers, geometry and energy under both energy models, and a pruned model priced
//! with its zeros.

use std::io::Read;
use std::path::PathBuf;

use cnn_zoo::Arch;
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_model::iclr19::{Evaluator, Iclr19};
use energy_model::onnx::{OnnxNetwork, OnnxOptions, parse};
use integration_tests::seeded_model;
use tensor_core::{Bitmap, EnergyModel, LayerWorkload, Support};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/torch")
        .join(name);
    let gz = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

/// The zoo architectures torchvision shares (and the ICLR'19 LeNet-5), with the files written
/// for each: the default exporter's and, for two, the TorchScript exporter's.
const MODELS: [(Arch, &[&str]); 4] = [
    (Arch::Lenet5, &["lenet5.onnx.gz", "lenet5-legacy.onnx.gz"]),
    (Arch::Alexnet, &["alexnet.onnx.gz"]),
    (Arch::Squeezenet1_0, &["squeezenet1_0.onnx.gz"]),
    (
        Arch::MobilenetV2,
        &["mobilenet_v2.onnx.gz", "mobilenet_v2-legacy.onnx.gz"],
    ),
];

fn import(file: &str, dense: bool) -> OnnxNetwork {
    let options = OnnxOptions {
        dense,
        ..Default::default()
    };
    parse(&fixture(file), file, None, &options).unwrap_or_else(|e| panic!("{e}"))
}

fn zoo(arch: Arch) -> Vec<LayerWorkload> {
    let [c, _, _] = arch.input_shape();
    let (net, _) = seeded_model(arch, arch.default_classes(), c, 0).unwrap();
    net.workloads()
}

/// Per-layer energies under the iclr19 model (relaxed and exact) and the Eyeriss model.
fn energies(layers: &[LayerWorkload]) -> Vec<Vec<f64>> {
    let models: Vec<Box<dyn EnergyModel>> = vec![
        Box::new(Iclr19::paper()),
        Box::new(Iclr19::paper().with_evaluator(Evaluator::Exact)),
        Box::new(Eyeriss::preset(Preset::Isca16, 16).unwrap()),
    ];
    models
        .iter()
        .map(|m| {
            let e = m.network_energy(layers).unwrap();
            e.layers.iter().map(|(_, _, l)| l.total()).collect()
        })
        .collect()
}

#[test]
fn exported_models_have_the_zoo_geometry_and_energy() {
    for (arch, files) in MODELS {
        let zoo = zoo(arch);
        for file in files.iter().copied() {
            let net = import(file, true);
            assert_eq!(net.input, arch.input_shape(), "{file}");
            assert_eq!(net.layers.len(), zoo.len(), "{file}: layer count");
            for (o, z) in net.layers.iter().zip(&zoo) {
                assert_eq!(o.geometry, z.geometry, "{file}: layer {}", z.name);
                // The TorchScript exporter renames the weights it folds batch norm into.
                if !file.contains("legacy") || arch == Arch::Lenet5 {
                    assert_eq!(o.name, z.name, "{file}");
                }
            }
            assert_eq!(energies(&net.layers), energies(&zoo), "{file}");
            assert!(net.unpriced.contains_key("Relu") || net.unpriced.contains_key("Clip"));
        }
    }
}

/// The exported weights are every third entry zero: the importer reads exactly the zeros the
/// state dict holds, and the energy follows them.
#[test]
fn a_pruned_export_is_priced_with_its_zeros() {
    for (arch, files) in MODELS {
        let net = import(files[0], false);
        let dict_bytes = fixture(&format!("{}.safetensors.gz", arch.name()));
        let dict = safetensors::SafeTensors::deserialize(&dict_bytes).unwrap();
        let mut zoo = zoo(arch);
        for (o, z) in net.layers.iter().zip(zoo.iter_mut()) {
            let t = dict.tensor(&format!("{}.weight", z.name)).unwrap();
            let values: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let bitmap = Bitmap::from_values(&z.geometry.weight_shape(), &values).unwrap();
            let density = bitmap.count_ones() as f64 / z.geometry.weights() as f64;
            // every third weight, and a few more where the closed form crosses zero
            assert!((0.55..0.67).contains(&density), "{}: {density}", z.name);
            assert_eq!(
                o.sparsity.weights,
                Support::Bitmap(bitmap.clone()),
                "{}",
                z.name
            );
            z.sparsity.weights = Support::Bitmap(bitmap);
        }
        let (pruned, dense) = (
            energies(&net.layers),
            energies(&import(files[0], true).layers),
        );
        assert_eq!(pruned, energies(&zoo), "{arch}");
        let total = |e: &[f64]| e.iter().sum::<f64>();
        assert!(
            total(&pruned[0]) < total(&dense[0]),
            "{arch}: zeros save energy"
        );
    }
}

/// `cargo xtask energy --onnx` as the library behind it serves it: the zoo's totals, the
/// operators it does not price listed, and the refusals.
#[test]
fn the_energy_command_prices_an_onnx_file() {
    use experiments::energy::{EnergyRequest, Format, ModelKind, Subject, render};
    let dir = std::env::temp_dir().join(format!("onnx-energy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lenet5.onnx");
    std::fs::write(&path, fixture("lenet5.onnx.gz")).unwrap();
    let request = |subject: Subject, density: Option<f64>| EnergyRequest {
        subject,
        model: ModelKind::Eyeriss,
        preset: None,
        batch: None,
        density_from: None,
        density,
        exact: false,
        format: Format::Json,
    };
    let onnx = |dense: bool| Subject::Onnx {
        path: path.clone(),
        options: OnnxOptions { input: None, dense },
    };
    let json = |r: EnergyRequest| -> serde_json::Value {
        serde_json::from_str(&render(&r).unwrap()).unwrap()
    };
    let dense = json(request(onnx(true), None));
    let arch = json(request(Subject::Arch(Arch::Lenet5), None));
    assert_eq!(dense["total"], arch["total"]);
    assert_eq!(dense["unpriced_operators"]["Relu"], 4);
    let pruned = json(request(onnx(false), None));
    assert!(pruned["total"].as_f64() < dense["total"].as_f64());

    let e = render(&request(onnx(false), Some(0.5))).unwrap_err();
    assert!(e.to_string().contains("drop --density"), "{e}");
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let e = render(&request(Subject::ToolFile(empty), None)).unwrap_err();
    assert!(e.to_string().contains("holds no layer lines"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
