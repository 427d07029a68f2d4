use std::path::PathBuf;

use energy_model::reference;

use super::*;

fn request(arch: Arch) -> EnergyRequest {
    EnergyRequest {
        subject: Subject::Arch(arch),
        model: ModelKind::Iclr19,
        preset: None,
        batch: None,
        density_from: None,
        density: None,
        exact: false,
        format: Format::Json,
    }
}

fn json(req: &EnergyRequest) -> serde_json::Value {
    serde_json::from_str(&render(req).unwrap()).unwrap()
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("experiments-energy-{}-{name}", std::process::id()))
}

// docs/energy-models.md A.7: dense LeNet-5 costs 17,107,544 with floor 0.15227.
#[test]
fn lenet5_iclr19_json_totals() {
    let v = json(&request(Arch::Lenet5));
    assert_eq!(v["total"], reference::LENET5_DENSE_ENERGY);
    assert_eq!(v["model"], "iclr19/relaxed batch 1");
    assert_eq!(v["subject"], "lenet5");
    assert!((v["normalized_floor"].as_f64().unwrap() - reference::LENET5_FLOOR).abs() < 5e-6);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 5);
    assert_eq!(layers[0]["name"], "features.0");
    assert_eq!(layers[0]["weights_nonzero"], 150);
}

#[test]
fn every_format_renders_and_names_the_model() {
    for format in [Format::Table, Format::Csv, Format::Svg] {
        let text = render(&EnergyRequest {
            format,
            ..request(Arch::Lenet5)
        })
        .unwrap();
        assert!(text.contains("iclr19/relaxed batch 1"), "{format:?}");
    }
}

#[test]
fn density_and_errors() {
    let half = json(&EnergyRequest {
        density: Some(0.5),
        ..request(Arch::Lenet5)
    });
    assert!(half["total"].as_f64().unwrap() < reference::LENET5_DENSE_ENERGY);
    let err = render(&EnergyRequest {
        density: Some(-0.1),
        ..request(Arch::Lenet5)
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("density"), "{err:#}");
    let bad = [
        EnergyRequest {
            batch: Some(4),
            ..request(Arch::Lenet5)
        },
        EnergyRequest {
            preset: Some(Preset::Chip),
            ..request(Arch::Lenet5)
        },
        EnergyRequest {
            model: ModelKind::Eyeriss,
            batch: Some(0),
            ..request(Arch::Lenet5)
        },
        EnergyRequest {
            model: ModelKind::Eyeriss,
            exact: true,
            ..request(Arch::Lenet5)
        },
    ];
    for req in bad {
        assert!(render(&req).is_err(), "{req:?}");
    }
}

#[test]
fn lenet5_eyeriss_names_preset_and_batch() {
    for (preset, batch) in [(Preset::Isca16, 16), (Preset::Chip, 4)] {
        let v = json(&EnergyRequest {
            model: ModelKind::Eyeriss,
            preset: Some(preset),
            batch: Some(batch),
            ..request(Arch::Lenet5)
        });
        let model = v["model"].as_str().unwrap();
        assert!(
            model.contains(&preset.to_string()) && model.contains(&format!("batch {batch}")),
            "{model}"
        );
        assert_eq!(v["unit"], "mac16");
        assert!(v.get("normalized_floor").is_none());
        let sum: f64 = v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["total"].as_f64().unwrap())
            .sum();
        assert!((sum - v["total"].as_f64().unwrap()).abs() <= 1e-9 * sum);
    }
}

#[test]
fn tool_file_round_trip_and_malformed() {
    let mit = render(&EnergyRequest {
        format: Format::Mit,
        ..request(Arch::Lenet5)
    })
    .unwrap();
    assert_eq!(mit.lines().count(), 5);
    let path = temp("lenet5.txt");
    std::fs::write(&path, &mit).unwrap();
    let from_file = |format| EnergyRequest {
        subject: Subject::ToolFile(path.clone()),
        format,
        ..request(Arch::Lenet5)
    };
    let v = json(&from_file(Format::Json));
    assert_eq!(v["total"], reference::LENET5_DENSE_ENERGY);
    std::fs::write(&path, mit.replace("\n2 ", "\n7 ")).unwrap();
    let err = render(&from_file(Format::Table)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("line 2") && msg.contains("index"), "{msg}");
    let _ = std::fs::remove_file(&path);
}

fn meta(arch: &str, seed: u64) -> checkpoint::CheckpointMeta {
    checkpoint::CheckpointMeta {
        arch: arch.into(),
        dataset: "mnist".into(),
        epoch: 0,
        seed,
        git_revision: "test".into(),
        spec: serde_json::Value::Null,
        extra: Default::default(),
    }
}

#[test]
fn checkpoint_supports_and_arch_mismatch() {
    let init = SeededInit::new(3);
    let net = cnn_zoo::build(
        Arch::Lenet5,
        10,
        1,
        init.var_builder(DType::F32, &Device::Cpu),
    )
    .unwrap();
    // Zero the first half of every weight tensor.
    for l in net.layers() {
        let n = l.weight.elem_count();
        let vals: Vec<f32> = (0..n).map(|i| if i < n / 2 { 0.0 } else { 1.0 }).collect();
        let t = tensor_core::Tensor::from_vec(vals, l.weight.dims(), &Device::Cpu).unwrap();
        l.weight.set(&t).unwrap();
    }
    let path = temp("lenet5.safetensors");
    checkpoint::save(&path, &meta("lenet5", 3), &init.named_vars(), &[]).unwrap();
    let v = json(&EnergyRequest {
        density_from: Some(path.clone()),
        ..request(Arch::Lenet5)
    });
    assert_eq!(v["layers"][0]["weights_nonzero"], 75);
    assert_eq!(v["layers"][2]["weights_nonzero"], 24_000);
    let err = render(&EnergyRequest {
        density_from: Some(path.clone()),
        ..request(Arch::Lenet5Caffe)
    })
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("not of lenet5-caffe"),
        "{err:#}"
    );
    let _ = std::fs::remove_file(&path);
}

/// A checkpoint that says `lenet5` but holds a scalar as the last layer's weight is an error
/// naming a tensor (indexing its first dimension used to panic).
#[test]
fn forged_checkpoint_with_a_scalar_weight_is_an_error() {
    let probe = zoo_network(Arch::Lenet5, 10).unwrap();
    let last = format!("{}.weight", probe.layers().last().unwrap().name);
    let scalar = tensor_core::Var::new(1f32, &Device::Cpu).unwrap();
    let path = temp("forged.safetensors");
    checkpoint::save(&path, &meta("lenet5", 0), &[(last, scalar)], &[]).unwrap();
    let err = render(&EnergyRequest {
        density_from: Some(path.clone()),
        format: Format::Table,
        ..request(Arch::Lenet5)
    })
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("forged.safetensors") && msg.contains("no tensor"),
        "{msg}"
    );
    let _ = std::fs::remove_file(&path);
}
