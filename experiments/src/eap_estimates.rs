//! `eap-estimates`: Eyeriss estimates without data or training. AlexNet dense and with Han et
//! al.'s per-layer densities (energy-model's `reference` module), SqueezeNet 1.0 and GoogLeNet
//! dense, at batch 16 under both Eyeriss presets, with the qualitative claims of
//! docs/energy-aware-pruning.md §6 they test.

use anyhow::{Context, Result};
use cnn_zoo::Arch;
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_model::reference::HAN_ALEXNET_DENSITIES;
use serde::{Deserialize, Serialize};
use tensor_core::{
    DType, Density, Device, EnergyModel, LayerGeometry, LayerId, LayerSparsity, LayerWorkload,
    Level, Precision, SeededInit, Support,
};

use crate::eap::EnergySetting;
use crate::registry::{Experiment, RunKind, RunSpec, Typed};
use crate::render::format::grouped;
use crate::render::{Section, Table};

/// Estimate-only rows: no data, no training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstimateSpec {
    /// The energy model.
    pub energy: EnergySetting,
}

/// One layer of an estimate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstimateLayer {
    /// Layer name.
    pub name: String,
    /// Weights (dense).
    pub weights: u64,
    /// Dense MACs of one image.
    pub macs: u64,
    /// Weight density priced.
    pub weight_density: f64,
    /// Energy of the batch.
    pub energy: f64,
    /// Compute share of the layer's energy.
    pub compute_share: f64,
    /// DRAM share of the layer's energy.
    pub dram_share: f64,
}

/// One network priced once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstimateRow {
    /// Model and variant, e.g. `alexnet-caffe (Han et al. densities)`.
    pub name: String,
    /// Nonzero weights priced (dense weights times density, rounded per layer).
    pub weights: u64,
    /// Dense MACs of one image.
    pub macs: u64,
    /// Energy of the batch, in units of one 16-bit MAC.
    pub energy: f64,
    /// Largest compute share of any layer (spec §6 claim 3: at most 0.2 when dense).
    pub max_compute_share: f64,
    /// Per layer.
    pub layers: Vec<EstimateLayer>,
}

/// Metrics of an estimate run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstimateMetrics {
    /// The energy model's own name.
    pub energy_model: String,
    /// Preset and batch of every energy figure.
    pub energy: EnergySetting,
    /// Activations are priced dense everywhere: no trained ImageNet model measures them here.
    pub activations: String,
    /// Dense AlexNet-caffe.
    pub alexnet: EstimateRow,
    /// AlexNet-caffe with Han et al.'s per-layer densities.
    pub alexnet_han: EstimateRow,
    /// Dense SqueezeNet 1.0.
    pub squeezenet: EstimateRow,
    /// Dense GoogLeNet.
    pub googlenet: EstimateRow,
    /// Dense / Han weights.
    pub han_weight_reduction: f64,
    /// Dense / Han energy.
    pub han_energy_reduction: f64,
    /// Spec §6 claim 5: Han et al.'s densities save less energy than weights.
    pub han_energy_below_weight_reduction: bool,
    /// SqueezeNet energy / AlexNet energy (claim 2).
    pub squeezenet_vs_alexnet_energy: f64,
    /// AlexNet weights / SqueezeNet weights (claim 2).
    pub alexnet_vs_squeezenet_weights: f64,
    /// GoogLeNet energy / AlexNet energy.
    pub googlenet_vs_alexnet_energy: f64,
    /// Dense AlexNet layers ranked by weights, by MACs and by energy, highest first (claim 1).
    pub alexnet_rank_by_weights: Vec<String>,
    /// By MACs.
    pub alexnet_rank_by_macs: Vec<String>,
    /// By energy.
    pub alexnet_rank_by_energy: Vec<String>,
    /// Share of the Han row's energy saving that comes from the FC layers (claim 4).
    pub han_saving_share_fc: f64,
}

/// One run per Eyeriss preset, batch 16.
pub fn runs(experiment: Experiment) -> Vec<RunSpec> {
    [Preset::Isca16, Preset::Chip]
        .into_iter()
        .map(|preset| RunSpec {
            experiment,
            id: format!("{preset}-b16"),
            kind: RunKind::EapEstimate(EstimateSpec {
                energy: EnergySetting { preset, batch: 16 },
            }),
        })
        .collect()
}

pub(crate) fn geometry(arch: Arch) -> Result<Vec<(String, LayerGeometry)>> {
    let init = SeededInit::new(0);
    let vb = init.var_builder(DType::F32, &Device::Cpu);
    let [c, _, _] = arch.input_shape();
    let net = cnn_zoo::build(arch, arch.default_classes(), c, vb)
        .with_context(|| format!("cannot build {arch}"))?;
    Ok(net
        .layers()
        .iter()
        .map(|l| (l.name.clone(), l.geometry))
        .collect())
}

fn price(
    model: &Eyeriss,
    name: &str,
    layers: &[(String, LayerGeometry)],
    densities: &[f64],
) -> Result<EstimateRow> {
    let workloads = layers
        .iter()
        .zip(densities)
        .enumerate()
        .map(|(i, ((n, g), &d))| {
            let weights = if d >= 1.0 {
                Support::Dense
            } else {
                Support::Density(Density::new(d)?)
            };
            Ok(LayerWorkload {
                id: LayerId(i),
                name: n.clone(),
                geometry: *g,
                sparsity: LayerSparsity {
                    weights,
                    inputs: Support::Dense,
                    outputs: Support::Dense,
                },
                precision: Precision::default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let priced = model
        .network_energy(&workloads)
        .with_context(|| format!("cannot price {name} with {}", model.name()))?;
    let rows: Vec<EstimateLayer> = priced
        .layers
        .iter()
        .zip(layers.iter().zip(densities))
        .map(|((_, n, e), ((_, g), &d))| {
            let total = e.total();
            EstimateLayer {
                name: n.clone(),
                weights: g.weights() as u64,
                macs: g.macs() as u64,
                weight_density: d,
                energy: total,
                compute_share: e.compute / total,
                dram_share: e.by_level(Level::Dram) / total,
            }
        })
        .collect();
    Ok(EstimateRow {
        name: name.into(),
        weights: rows
            .iter()
            .map(|r| (r.weights as f64 * r.weight_density).round() as u64)
            .sum(),
        macs: rows.iter().map(|r| r.macs).sum(),
        energy: priced.total(),
        max_compute_share: rows.iter().map(|r| r.compute_share).fold(0.0, f64::max),
        layers: rows,
    })
}

fn dense_row(model: &Eyeriss, arch: Arch) -> Result<EstimateRow> {
    let layers = geometry(arch)?;
    price(model, arch.name(), &layers, &vec![1.0; layers.len()])
}

fn ranked(layers: &[EstimateLayer], key: impl Fn(&EstimateLayer) -> f64) -> Vec<String> {
    let mut v: Vec<&EstimateLayer> = layers.iter().collect();
    v.sort_by(|a, b| key(b).total_cmp(&key(a)));
    v.into_iter().map(|l| l.name.clone()).collect()
}

/// Prices the estimate-only rows.
pub fn run(spec: &EstimateSpec) -> Result<EstimateMetrics> {
    let model = spec.energy.model()?;
    let alex = geometry(Arch::AlexnetCaffe)?;
    let densities = alex
        .iter()
        .map(|(name, _)| {
            HAN_ALEXNET_DENSITIES
                .iter()
                .find(|(n, _)| n == name)
                .map(|&(_, d)| d)
                .with_context(|| format!("no Han et al. density for AlexNet layer {name}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let alexnet = price(&model, "alexnet-caffe", &alex, &vec![1.0; alex.len()])?;
    let alexnet_han = price(
        &model,
        "alexnet-caffe (Han et al. densities)",
        &alex,
        &densities,
    )?;
    let squeezenet = dense_row(&model, Arch::Squeezenet1_0)?;
    let googlenet = dense_row(&model, Arch::Googlenet)?;
    let han_weight_reduction = alexnet.weights as f64 / alexnet_han.weights as f64;
    let han_energy_reduction = alexnet.energy / alexnet_han.energy;
    let saving = |fc: bool| -> f64 {
        alexnet
            .layers
            .iter()
            .zip(&alexnet_han.layers)
            .filter(|(d, _)| d.name.starts_with("fc") == fc)
            .map(|(d, p)| d.energy - p.energy)
            .sum()
    };
    let han_saving_share_fc = saving(true) / (saving(true) + saving(false));
    Ok(EstimateMetrics {
        energy_model: model.name(),
        energy: spec.energy,
        activations: "dense (no trained ImageNet model to measure them)".into(),
        han_weight_reduction,
        han_energy_reduction,
        han_energy_below_weight_reduction: han_energy_reduction < han_weight_reduction,
        squeezenet_vs_alexnet_energy: squeezenet.energy / alexnet.energy,
        alexnet_vs_squeezenet_weights: alexnet.weights as f64 / squeezenet.weights as f64,
        googlenet_vs_alexnet_energy: googlenet.energy / alexnet.energy,
        alexnet_rank_by_weights: ranked(&alexnet.layers, |l| l.weights as f64),
        alexnet_rank_by_macs: ranked(&alexnet.layers, |l| l.macs as f64),
        alexnet_rank_by_energy: ranked(&alexnet.layers, |l| l.energy),
        han_saving_share_fc,
        alexnet,
        alexnet_han,
        squeezenet,
        googlenet,
    })
}

/// One line on a record.
pub fn summary(m: &EstimateMetrics) -> String {
    format!(
        "AlexNet with Han et al.'s densities: {:.1}x fewer weights, energy {:.2}x lower; dense \
         SqueezeNet 1.0 at {:.2}x and GoogLeNet at {:.2}x AlexNet's energy (modelled on {}, \
         dense activations)",
        m.han_weight_reduction,
        m.han_energy_reduction,
        m.squeezenet_vs_alexnet_energy,
        m.googlenet_vs_alexnet_energy,
        m.energy.label(),
    )
}

/// The README section.
pub fn section(runs: &Typed<'_, EstimateMetrics>) -> Result<Section> {
    let mut t = Table::new(
        &[
            "model",
            "network",
            "weights",
            "MACs",
            "energy (×10⁹)",
            "vs dense AlexNet",
            "max compute share",
        ],
        &[
            "energy_model",
            "network",
            "weights",
            "macs_per_image",
            "energy_mac16",
            "energy_vs_dense_alexnet",
            "max_compute_share",
        ],
    );
    let mut findings = Vec::new();
    for (_, m) in runs {
        let label = m.energy.label();
        let rows: [(&str, &EstimateRow); 4] = [
            ("AlexNet (dense)", &m.alexnet),
            ("AlexNet, Han et al. densities", &m.alexnet_han),
            ("SqueezeNet 1.0 (dense)", &m.squeezenet),
            ("GoogLeNet (dense)", &m.googlenet),
        ];
        let energy_model = format!("eyeriss/{}", m.energy.preset);
        for (name, row) in rows {
            let rel = row.energy / m.alexnet.energy;
            t.row(
                vec![
                    energy_model.clone(),
                    name.into(),
                    grouped(row.weights),
                    grouped(row.macs),
                    format!("{:.2}", row.energy / 1e9),
                    format!("{rel:.2}x"),
                    format!("{:.0}%", 100.0 * row.max_compute_share),
                ],
                vec![
                    energy_model.clone(),
                    name.into(),
                    row.weights.to_string(),
                    row.macs.to_string(),
                    row.energy.to_string(),
                    format!("{rel:.4}"),
                    format!("{:.4}", row.max_compute_share),
                ],
            );
        }
        findings.push(format!(
            "- {label}: Han et al.'s densities remove {:.1}x of AlexNet's weights (paper: 9x) but \
             cut its energy only {:.2}x; SqueezeNet, with {:.0}x fewer weights than AlexNet, costs \
             {:.2}x AlexNet's energy.",
            m.han_weight_reduction,
            m.han_energy_reduction,
            m.alexnet_vs_squeezenet_weights,
            m.squeezenet_vs_alexnet_energy
        ));
    }
    let mut s = Section::new("Energy estimates without training (`eap-estimates`)");
    s.intro = "Eyeriss row-stationary estimates at batch 16 with dense activations, in MAC16 \
               energies for the whole batch. The pruning rows of the EAP paper (AlexNet 3.7x, \
               GoogLeNet 1.6x less energy) need ImageNet and are in the full profile \
               (`eap-alexnet`, `eap-googlenet`), not run here.\n"
        .into();
    s.outro = format!("{}\n", findings.join("\n"));
    s.tables.push(("eap-estimates".into(), String::new(), t));
    Ok(s)
}
