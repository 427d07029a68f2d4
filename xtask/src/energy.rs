//! `cargo xtask energy`: prices a zoo model (or an MIT-tool layer file) with one of the energy
//! models and renders the per-layer report as a table, JSON, CSV, SVG or the tool's own format.

use std::path::Path;

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_model::iclr19::{Evaluator, Iclr19};
use energy_model::mit_format;
use energy_model::report::{EnergyReport, Stack};
use tensor_core::{
    Bitmap, DType, Density, Device, EnergyModel, LayerGeometry, LayerWorkload, Network, SeededInit,
    Support,
};

use crate::checkpoint;
use crate::flags::{EnergyArgs, EnergyFormat, EnergyModelArg, EnergyPreset};
use crate::paths::write_atomic;

/// Runs the command: renders the report and writes it to `--out` or stdout.
pub fn run(args: &EnergyArgs) -> Result<()> {
    let text = render(args)?;
    match &args.out {
        Some(path) => {
            write_atomic(path, text.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// The report as text in the requested format.
pub fn render(args: &EnergyArgs) -> Result<String> {
    let (subject, workloads) = workloads(args)?;
    if args.format == EnergyFormat::Mit {
        let lines = mit_format::from_workloads(&workloads)
            .context("cannot express the layers in the MIT tool format")?;
        return Ok(mit_format::write(&lines));
    }
    let report = price(args, &subject, &workloads)?;
    Ok(match args.format {
        EnergyFormat::Table => report.to_table(),
        EnergyFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report.to_json())
                .context("cannot serialise the report")?;
            s.push('\n');
            s
        }
        EnergyFormat::Csv => report.to_csv(),
        EnergyFormat::Svg => report.to_svg(Stack::ByLevel),
        EnergyFormat::Mit => unreachable!("handled above"),
    })
}

/// Prices the workloads with the model the flags select.
fn price(args: &EnergyArgs, subject: &str, workloads: &[LayerWorkload]) -> Result<EnergyReport> {
    match args.model {
        EnergyModelArg::Iclr19 => {
            if let Some(preset) = args.preset {
                bail!(
                    "--preset {} applies to --model eyeriss; the iclr19 model has one hardware \
                     configuration",
                    preset.name()
                );
            }
            if args.batch.is_some_and(|b| b != 1) {
                bail!("the iclr19 model prices one sample; --batch applies to --model eyeriss");
            }
            let model = Iclr19::paper().with_evaluator(match args.exact {
                true => Evaluator::Exact,
                false => Evaluator::Relaxed,
            });
            let energy = model
                .network_energy(workloads)
                .with_context(|| format!("cannot price {subject} with {}", model.name()))?;
            let geometries: Vec<LayerGeometry> = workloads.iter().map(|w| w.geometry).collect();
            let norm = model
                .normalization(&geometries)
                .with_context(|| format!("cannot normalise {subject} with {}", model.name()))?;
            Ok(EnergyReport::new(subject, workloads, &energy, 1)?.with_normalization(norm))
        }
        EnergyModelArg::Eyeriss => {
            if args.exact {
                bail!("--exact selects the iclr19 evaluator; it does not apply to eyeriss");
            }
            let batch = args.batch.unwrap_or(DEFAULT_EYERISS_BATCH);
            if batch == 0 {
                bail!("--batch must be at least 1");
            }
            let preset = args.preset.unwrap_or(EnergyPreset::Isca16);
            let model = eyeriss_model(preset, batch)?;
            let energy = model
                .network_energy(workloads)
                .with_context(|| format!("cannot price {subject} with {}", model.name()))?;
            Ok(EnergyReport::new(subject, workloads, &energy, batch)?)
        }
    }
}

/// Batch of the Eyeriss estimates when `--batch` is not given: ISCA'16 Fig. 10 uses 16.
const DEFAULT_EYERISS_BATCH: usize = 16;

fn eyeriss_model(preset: EnergyPreset, batch: usize) -> Result<Box<dyn EnergyModel>> {
    let preset = match preset {
        EnergyPreset::Isca16 => Preset::Isca16,
        EnergyPreset::Chip => Preset::Chip,
    };
    let model = Eyeriss::preset(preset, batch)
        .with_context(|| format!("invalid eyeriss configuration ({preset}, batch {batch})"))?;
    Ok(Box::new(model))
}

/// The layers to price and the name of what they come from.
fn workloads(args: &EnergyArgs) -> Result<(String, Vec<LayerWorkload>)> {
    if let Some(path) = &args.tool_file {
        if args.density_from.is_some() || args.density.is_some() {
            bail!("--tool-file carries its own zero counts; drop --density and --density-from");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let lines = mit_format::parse(&text)
            .with_context(|| format!("malformed MIT tool file {}", path.display()))?;
        let ws = lines
            .iter()
            .map(|l| l.to_workload(format!("layer{}", l.index)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .with_context(|| format!("malformed MIT tool file {}", path.display()))?;
        return Ok((path.display().to_string(), ws));
    }
    let Some(arch) = args.arch else {
        bail!("give --arch ARCH or --tool-file FILE");
    };
    let mut ws = match &args.density_from {
        Some(path) => from_checkpoint(arch, path)?,
        None => zoo_network(arch, arch.default_classes())?.workloads(),
    };
    if let Some(d) = args.density {
        let d = Density::new(d).context("invalid --density")?;
        for w in &mut ws {
            w.sparsity.weights = Support::Density(d);
        }
    }
    Ok((arch.to_string(), ws))
}

/// A zoo model with fresh parameters: only its geometry is used.
fn zoo_network(arch: Arch, classes: usize) -> Result<Box<dyn Network>> {
    let init = SeededInit::new(0);
    let [c, _, _] = arch.input_shape();
    cnn_zoo::build(arch, classes, c, init.var_builder(DType::F32, &Device::Cpu))
        .with_context(|| format!("cannot build {arch}"))
}

/// Workloads of `arch` with each layer's weight support (and input mask, when the checkpoint
/// holds one) taken from a checkpoint written by this project.
fn from_checkpoint(arch: Arch, path: &Path) -> Result<Vec<LayerWorkload>> {
    let ckpt = checkpoint::load(path, &Device::Cpu)?;
    if ckpt.meta.arch != arch.name() {
        bail!(
            "{} is a checkpoint of {}, not of {arch}",
            path.display(),
            ckpt.meta.arch
        );
    }
    // The class count follows the checkpoint (a CIFAR-100 ResNet has 100), read off the last
    // layer's weight.
    let probe = zoo_network(arch, arch.default_classes())?;
    let classes = probe
        .layers()
        .last()
        .and_then(|l| ckpt.model.get(&format!("{}.weight", l.name)))
        // A forged or foreign file may hold a scalar there: fall back, the shape checks below
        // then name the tensor.
        .and_then(|t| t.dims().first().copied())
        .unwrap_or(arch.default_classes());
    let net = if classes == arch.default_classes() {
        probe
    } else {
        zoo_network(arch, classes)?
    };
    let mut ws = net.workloads();
    for w in &mut ws {
        let key = format!("{}.weight", w.name);
        let t = ckpt
            .model
            .get(&key)
            .with_context(|| format!("{} has no tensor `{key}`", path.display()))?;
        let shape = w.geometry.weight_shape();
        if t.elem_count() != w.geometry.weights() {
            bail!(
                "{}: `{key}` has shape {:?}, {arch} expects {shape:?}",
                path.display(),
                t.dims()
            );
        }
        w.sparsity.weights = Support::Bitmap(bitmap_of(t, &shape, path, &key)?);
        let mask_key = format!("input_mask.{}", w.name);
        if let Some(m) = ckpt.model.get(&mask_key) {
            let g = &w.geometry;
            let mshape = [g.in_channels, g.in_h, g.in_w];
            if m.elem_count() != g.in_features() {
                bail!(
                    "{}: `{mask_key}` has shape {:?}, the layer's input is {mshape:?}",
                    path.display(),
                    m.dims()
                );
            }
            w.sparsity.inputs = Support::Bitmap(bitmap_of(m, &mshape, path, &mask_key)?);
        }
    }
    Ok(ws)
}

fn bitmap_of(t: &tensor_core::Tensor, shape: &[usize], path: &Path, key: &str) -> Result<Bitmap> {
    let values: Vec<f32> = t
        .flatten_all()
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1())
        .with_context(|| format!("cannot read `{key}` from {}", path.display()))?;
    Ok(Bitmap::from_values(shape, &values)?)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser;

    use super::*;
    use crate::flags::{Cmd, Flags};

    fn args(cmd: &[&str]) -> EnergyArgs {
        let mut all = vec!["cargo xtask", "energy"];
        all.extend(cmd);
        match Flags::try_parse_from(all).expect("valid flags").cmd {
            Cmd::Energy(a) => a,
            other => panic!("parsed {other:?}"),
        }
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("xtask-energy-{}-{name}", std::process::id()))
    }

    // energy-models.md A.7: dense LeNet-5 costs 17,107,544 with floor 0.15227.
    #[test]
    fn lenet5_iclr19_json_totals() {
        let text = render(&args(&["--arch", "lenet5", "--format", "json"])).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["total"], 17_107_544.0);
        assert_eq!(v["model"], "iclr19/relaxed batch 1");
        assert_eq!(v["subject"], "lenet5");
        assert!((v["normalized_floor"].as_f64().unwrap() - 0.15227).abs() < 5e-6);
        let layers = v["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 5);
        assert_eq!(layers[0]["name"], "features.0");
        assert_eq!(layers[0]["weights_nonzero"], 150);
    }

    #[test]
    fn density_and_errors() {
        let half = render(&args(&[
            "--arch",
            "lenet5",
            "--density",
            "0.5",
            "--format",
            "json",
        ]))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&half).unwrap();
        assert!(v["total"].as_f64().unwrap() < 17_107_544.0);
        let err = render(&args(&["--arch", "lenet5", "--density", "-0.1"])).unwrap_err();
        assert!(format!("{err:#}").contains("density"), "{err:#}");
        assert!(Flags::try_parse_from(["cargo xtask", "energy", "--arch", "nope"]).is_err());
        assert!(render(&args(&["--arch", "lenet5", "--batch", "4"])).is_err());
        assert!(render(&args(&["--arch", "lenet5", "--preset", "chip"])).is_err());
        assert!(
            render(&args(&[
                "--arch", "lenet5", "--model", "eyeriss", "--batch", "0"
            ]))
            .is_err()
        );
    }

    #[test]
    fn lenet5_eyeriss_names_preset_and_batch() {
        for (preset, batch) in [("isca16", "16"), ("chip", "4")] {
            let text = render(&args(&[
                "--arch", "lenet5", "--model", "eyeriss", "--preset", preset, "--batch", batch,
                "--format", "json",
            ]))
            .unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let model = v["model"].as_str().unwrap();
            assert!(
                model.contains(preset) && model.contains(&format!("batch {batch}")),
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
        let mit = render(&args(&["--arch", "lenet5", "--format", "mit"])).unwrap();
        assert_eq!(mit.lines().count(), 5);
        let path = temp("lenet5.txt");
        std::fs::write(&path, &mit).unwrap();
        let p = path.to_str().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&render(&args(&["--tool-file", p, "--format", "json"])).unwrap())
                .unwrap();
        assert_eq!(v["total"], 17_107_544.0);
        std::fs::write(&path, mit.replace("\n2 ", "\n7 ")).unwrap();
        let err = render(&args(&["--tool-file", p])).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("line 2") && msg.contains("index"), "{msg}");
        let _ = std::fs::remove_file(&path);
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
        let meta = checkpoint::CheckpointMeta {
            arch: "lenet5".into(),
            dataset: "mnist".into(),
            epoch: 0,
            seed: 3,
            git_revision: "test".into(),
            spec: serde_json::Value::Null,
            extra: Default::default(),
        };
        let path = temp("lenet5.safetensors");
        checkpoint::save(&path, &meta, &init.named_vars(), &[]).unwrap();
        let p = path.to_str().unwrap();
        let v: serde_json::Value = serde_json::from_str(
            &render(&args(&[
                "--arch",
                "lenet5",
                "--density-from",
                p,
                "--format",
                "json",
            ]))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(v["layers"][0]["weights_nonzero"], 75);
        assert_eq!(v["layers"][2]["weights_nonzero"], 24_000);
        let err = render(&args(&["--arch", "lenet5-caffe", "--density-from", p])).unwrap_err();
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
        let meta = checkpoint::CheckpointMeta {
            arch: "lenet5".into(),
            dataset: "mnist".into(),
            epoch: 0,
            seed: 0,
            git_revision: "test".into(),
            spec: serde_json::Value::Null,
            extra: Default::default(),
        };
        let path = temp("forged.safetensors");
        checkpoint::save(&path, &meta, &[(last, scalar)], &[]).unwrap();
        let p = path.to_str().unwrap();
        let err = render(&args(&["--arch", "lenet5", "--density-from", p])).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("forged.safetensors") && msg.contains("no tensor"),
            "{msg}"
        );
        let _ = std::fs::remove_file(&path);
    }
}
