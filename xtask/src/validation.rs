//! The `energy-validation` experiment: the two inference energy models against the published
//! numbers they must reproduce, priced from the same geometry the rest of the project uses. No
//! data, no training; the records carry the reference values next to ours so that `tables` can
//! print paper / ours / difference.

use anyhow::{Context, Result};
use cnn_zoo::Arch;
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_model::iclr19::Iclr19;
use serde::{Deserialize, Serialize};
use tensor_core::{
    DType, Device, EnergyModel, LayerGeometry, LayerSparsity, Level, Precision, SeededInit, Support,
};

/// Which published table a run checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// energy-models.md A.7: LeNet-5 under the iclr19 model, per layer `E_X`, `E_W`, `E_C`, `κ_in`.
    Lenet5Iclr19,
    /// Chen, Emer, Sze, ISCA'16 Fig. 10 (energy-models.md B.10): AlexNet under eyeriss/isca16,
    /// batch 16, ALU, DRAM and RF energy per layer.
    AlexnetFig10,
}

impl Check {
    /// Both checks, in table order.
    pub const ALL: [Check; 2] = [Check::Lenet5Iclr19, Check::AlexnetFig10];

    /// Run id.
    pub fn id(self) -> &'static str {
        match self {
            Check::Lenet5Iclr19 => "lenet5-iclr19",
            Check::AlexnetFig10 => "alexnet-fig10",
        }
    }
}

/// One quantity of one layer: the published value and ours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// What it is (`E_X`, `DRAM`, ...).
    pub quantity: String,
    /// The published value.
    pub reference: f64,
    /// Ours.
    pub ours: f64,
}

/// One layer's cells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationLayer {
    /// Layer name.
    pub name: String,
    /// Its quantities.
    pub cells: Vec<Cell>,
}

/// The record's metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationMetrics {
    /// The model and preset that priced it.
    pub energy_model: String,
    /// Where the reference values come from.
    pub source: String,
    /// Unit of every cell.
    pub unit: String,
    /// Per layer.
    pub layers: Vec<ValidationLayer>,
    /// How a cell passes.
    pub tolerance: String,
    /// Cells within the tolerance, out of all cells.
    pub cells_within: usize,
    /// All cells.
    pub cells: usize,
}

/// Runs one check.
pub fn run(check: Check) -> Result<ValidationMetrics> {
    match check {
        Check::Lenet5Iclr19 => lenet5_iclr19(),
        Check::AlexnetFig10 => alexnet_fig10(),
    }
}

/// energy-models.md A.7: (weights, E_X, E_W, E_C, κ_in) per layer, exact integers.
const LENET5_A7: [(&str, f64, f64, f64, f64, f64); 5] = [
    ("conv1", 150.0, 1_380_800.0, 207_000.0, 352_800.0, 3_732.0),
    ("conv2", 2_400.0, 975_200.0, 849_600.0, 720_000.0, 654.0),
    ("fc1", 48_000.0, 173_600.0, 9_936_000.0, 144_000.0, 210.0),
    ("fc2", 10_080.0, 55_200.0, 2_086_560.0, 30_240.0, 210.0),
    ("fc3", 840.0, 20_144.0, 173_880.0, 2_520.0, 210.0),
];

fn lenet5_iclr19() -> Result<ValidationMetrics> {
    let init = SeededInit::new(0);
    let net = cnn_zoo::build(
        Arch::Lenet5,
        Arch::Lenet5.default_classes(),
        1,
        init.var_builder(DType::F32, &Device::Cpu),
    )
    .context("cannot build lenet5")?;
    let model = Iclr19::paper();
    let layers = net
        .layers()
        .iter()
        .zip(LENET5_A7)
        .map(|(l, (name, w, ex, ew, ec, kappa))| {
            let priced = model
                .layer(&l.geometry, &LayerSparsity::dense())
                .with_context(|| format!("iclr19 cannot price lenet5 layer {}", l.name))?;
            let costs = model
                .costs(&l.geometry, &Support::Dense)
                .with_context(|| format!("iclr19 has no costs for lenet5 layer {}", l.name))?;
            let cell = |quantity: &str, reference: f64, ours: f64| Cell {
                quantity: quantity.into(),
                reference,
                ours,
            };
            Ok(ValidationLayer {
                name: name.into(),
                cells: vec![
                    cell("weights", w, l.geometry.weights() as f64),
                    cell("E_X", ex, priced.input.total()),
                    cell("E_W", ew, priced.weight.total()),
                    cell("E_C", ec, priced.compute),
                    cell("kappa_in", kappa, costs.kappa_in),
                ],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(finish(
        model.name(),
        "energy-models.md A.7 (exact integers)",
        "iclr19 units (MAC = 3, RF = 1, cache = 6, DRAM = 200)",
        layers,
        "exact",
        |c| c.ours == c.reference,
    ))
}

/// Fig. 10 (ALU, DRAM, RF) per layer in 10^9 MAC energies for the batch of 16.
const FIG10: [(&str, f64, f64, f64); 8] = [
    ("conv1", 1.69, 2.46, 6.75),
    ("conv2", 3.58, 2.27, 14.33),
    ("conv3", 2.39, 2.02, 9.57),
    ("conv4", 1.79, 1.57, 7.18),
    ("conv5", 1.20, 1.05, 4.78),
    ("fc6", 0.60, 7.78, 2.42),
    ("fc7", 0.27, 3.39, 1.07),
    ("fc8", 0.07, 0.84, 0.26),
];

/// Within 5%, or within half a unit of the figure's last printed digit (0.01).
pub fn within_fig10(ours: f64, paper: f64) -> bool {
    (ours - paper).abs() <= (0.05 * paper).max(0.005)
}

fn alexnet_fig10() -> Result<ValidationMetrics> {
    let model = Eyeriss::preset(Preset::Isca16, 16).context("eyeriss/isca16 batch 16")?;
    let mut layers = Vec::new();
    for ((name, geometry, towers), (_, alu, dram, rf)) in fig10_layers()?.into_iter().zip(FIG10) {
        let e = model
            .layer_energy(&geometry, &LayerSparsity::dense(), Precision::FIXED16)
            .with_context(|| format!("eyeriss cannot price AlexNet layer {name}"))?;
        let cell = |quantity: &str, reference: f64, ours: f64| Cell {
            quantity: quantity.into(),
            reference,
            ours: towers * ours / 1e9,
        };
        layers.push(ValidationLayer {
            name: name.into(),
            cells: vec![
                cell("ALU", alu, e.compute),
                cell("DRAM", dram, e.by_level(Level::Dram)),
                cell("RF", rf, e.by_level(Level::Rf)),
            ],
        });
    }
    Ok(finish(
        model.name(),
        "Chen, Emer, Sze, ISCA 2016, Fig. 10 (energy-models.md B.10)",
        "10^9 MAC16 energies for the batch of 16",
        layers,
        "within 5% or 0.005 (the figure's rounding)",
        |c| within_fig10(c.ours, c.reference),
    ))
}

/// AlexNet as Fig. 10 prices it: Krizhevsky's two-tower conv1 (two 48-filter convolutions that
/// each read the whole image), the other layers as in the Caffe grouped layout.
fn fig10_layers() -> Result<Vec<(&'static str, LayerGeometry, f64)>> {
    let conv = |c, hw, d, k, s, p, g| {
        LayerGeometry::conv(c, hw, hw, d, (k, k), (s, s), (p, p), g)
            .context("invalid AlexNet geometry")
    };
    let fc = |c, hw, d| LayerGeometry::fc(c, hw, hw, d).context("invalid AlexNet geometry");
    Ok(vec![
        ("conv1", conv(3, 227, 48, 11, 4, 0, 1)?, 2.0),
        ("conv2", conv(96, 27, 256, 5, 1, 2, 2)?, 1.0),
        ("conv3", conv(256, 13, 384, 3, 1, 1, 1)?, 1.0),
        ("conv4", conv(384, 13, 384, 3, 1, 1, 2)?, 1.0),
        ("conv5", conv(384, 13, 256, 3, 1, 1, 2)?, 1.0),
        ("fc6", fc(256, 6, 4096)?, 1.0),
        ("fc7", fc(4096, 1, 4096)?, 1.0),
        ("fc8", fc(4096, 1, 1000)?, 1.0),
    ])
}

fn finish(
    energy_model: String,
    source: &str,
    unit: &str,
    layers: Vec<ValidationLayer>,
    tolerance: &str,
    passes: impl Fn(&Cell) -> bool,
) -> ValidationMetrics {
    let cells = layers.iter().map(|l| l.cells.len()).sum();
    let cells_within = layers
        .iter()
        .flat_map(|l| &l.cells)
        .filter(|c| passes(c))
        .count();
    ValidationMetrics {
        energy_model,
        source: source.into(),
        unit: unit.into(),
        layers,
        tolerance: tolerance.into(),
        cells_within,
        cells,
    }
}
