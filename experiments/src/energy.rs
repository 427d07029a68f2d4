//! `cargo xtask energy`: prices a zoo model (or the layers of an MIT-tool file or an ONNX model)
//! with one of the energy models and renders the per-layer report as a table, JSON, CSV, SVG or the tool's own
//! format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_model::iclr19::{Evaluator, Iclr19};
use energy_model::mit_format;
use energy_model::onnx::{self, OnnxOptions};
use energy_model::report::EnergyReport;
use tensor_core::{
    Bitmap, DType, Density, Device, EnergyModel, LayerGeometry, LayerWorkload, Network, SeededInit,
    Support,
};

use crate::checkpoint;
use crate::render::energy_report::{self, Stack};

/// What is priced.
#[derive(Clone, Debug, PartialEq)]
pub enum Subject {
    /// A zoo model's geometry.
    Arch(Arch),
    /// The layers of an MIT energy-estimation-tool file.
    ToolFile(PathBuf),
    /// The conv and FC layers of an ONNX model, with the zeros of its weights unless
    /// `options.dense`.
    Onnx {
        /// The model file (tensors stored outside it are read from its folder).
        path: PathBuf,
        /// The input shape and whether to price dense.
        options: OnnxOptions,
    },
}

/// The energy model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// ICLR'19 systolic-array model (RF-access units, one sample).
    Iclr19,
    /// Eyeriss row-stationary model (16-bit-MAC units).
    Eyeriss,
}

/// The rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned text table.
    Table,
    /// JSON, one object per layer.
    Json,
    /// CSV, one row per layer.
    Csv,
    /// Stacked per-layer bar chart.
    Svg,
    /// The MIT estimation tool's layer format (geometry, zero counts, widths; no energies).
    Mit,
}

/// One `energy` invocation.
#[derive(Clone, Debug)]
pub struct EnergyRequest {
    /// What is priced.
    pub subject: Subject,
    /// Which model prices it.
    pub model: ModelKind,
    /// Eyeriss hardware preset (default ISCA'16).
    pub preset: Option<Preset>,
    /// Eyeriss batch size (default [`DEFAULT_EYERISS_BATCH`]); the iclr19 model prices one sample.
    pub batch: Option<usize>,
    /// Take each layer's weight support (and input mask, if saved) from this checkpoint.
    pub density_from: Option<PathBuf>,
    /// Price every layer at this weight density instead of dense weights.
    pub density: Option<f64>,
    /// iclr19: exact MACs (nonzero weight and input pairs) instead of the relaxed bound.
    pub exact: bool,
    /// The rendering.
    pub format: Format,
}

/// Batch of the Eyeriss estimates when none is given: ISCA'16 Fig. 10 uses 16.
pub const DEFAULT_EYERISS_BATCH: usize = 16;

/// The report as text in the requested format.
pub fn render(req: &EnergyRequest) -> Result<String> {
    let Layers {
        subject,
        workloads,
        unpriced,
    } = workloads(req)?;
    if req.format == Format::Mit {
        let lines = mit_format::from_workloads(&workloads)
            .context("cannot express the layers in the MIT tool format")?;
        return Ok(mit_format::write(&lines));
    }
    let report = price(req, &subject, &workloads)?.with_unpriced(unpriced);
    Ok(match req.format {
        Format::Table => energy_report::table(&report),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&energy_report::json(&report))
                .context("cannot serialise the report")?;
            s.push('\n');
            s
        }
        Format::Csv => energy_report::csv(&report)?,
        Format::Svg => energy_report::svg(&report, Stack::ByLevel)?,
        Format::Mit => unreachable!("rendered above"),
    })
}

/// Prices the workloads with the model the request selects.
fn price(req: &EnergyRequest, subject: &str, workloads: &[LayerWorkload]) -> Result<EnergyReport> {
    match req.model {
        ModelKind::Iclr19 => {
            if let Some(preset) = req.preset {
                bail!(
                    "--preset {preset} applies to --model eyeriss; the iclr19 model has one \
                     hardware configuration"
                );
            }
            if req.batch.is_some_and(|b| b != 1) {
                bail!("the iclr19 model prices one sample; --batch applies to --model eyeriss");
            }
            let model = Iclr19::paper().with_evaluator(match req.exact {
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
        ModelKind::Eyeriss => {
            if req.exact {
                bail!("--exact selects the iclr19 evaluator; it does not apply to eyeriss");
            }
            let batch = req.batch.unwrap_or(DEFAULT_EYERISS_BATCH);
            if batch == 0 {
                bail!("--batch must be at least 1");
            }
            let preset = req.preset.unwrap_or(Preset::Isca16);
            let model = Eyeriss::preset(preset, batch).with_context(|| {
                format!("invalid eyeriss configuration ({preset}, batch {batch})")
            })?;
            let energy = model
                .network_energy(workloads)
                .with_context(|| format!("cannot price {subject} with {}", model.name()))?;
            Ok(EnergyReport::new(subject, workloads, &energy, batch)?)
        }
    }
}

/// What is priced: its name, its layers and the operators without weights it also has.
struct Layers {
    subject: String,
    workloads: Vec<LayerWorkload>,
    unpriced: BTreeMap<String, usize>,
}

/// The layers to price and the name of what they come from.
fn workloads(req: &EnergyRequest) -> Result<Layers> {
    let plain = |subject: String, workloads| Layers {
        subject,
        workloads,
        unpriced: BTreeMap::new(),
    };
    let arch = match &req.subject {
        Subject::Onnx { path, options } => {
            if req.density_from.is_some() || req.density.is_some() {
                bail!(
                    "--onnx reads each layer's zeros from the model's weights (or prices them \
                     dense with --dense); drop --density and --density-from"
                );
            }
            let net = onnx::read(path, options)?;
            return Ok(Layers {
                subject: path.display().to_string(),
                workloads: net.layers,
                unpriced: net.unpriced,
            });
        }
        Subject::ToolFile(path) => {
            if req.density_from.is_some() || req.density.is_some() {
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
            if ws.is_empty() {
                bail!("{} holds no layer lines: nothing to price", path.display());
            }
            return Ok(plain(path.display().to_string(), ws));
        }
        Subject::Arch(arch) => *arch,
    };
    let mut ws = match &req.density_from {
        Some(path) => from_checkpoint(arch, path)?,
        None => zoo_network(arch, arch.default_classes())?.workloads(),
    };
    if let Some(d) = req.density {
        let d = Density::new(d).context("invalid --density")?;
        for w in &mut ws {
            w.sparsity.weights = Support::Density(d);
        }
    }
    Ok(plain(arch.to_string(), ws))
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
            let mshape = [g.in_channels(), g.in_h(), g.in_w()];
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
mod tests;
