//! `zoo-geometry`: the per-layer geometry of every zoo model and its weight and MAC totals,
//! checked against the exact totals of docs/energy-models.md B.10 where the docs give them. No data,
//! no training.

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use energy_model::reference::{self, Totals};
use serde::{Deserialize, Serialize};
use tensor_core::{DType, Device, LayerGeometry, SeededInit};

use crate::registry::{Experiment, RunKind, RunSpec, Typed};
use crate::render::format::{boolean, grouped};
use crate::render::{Section, Table};

/// One layer of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeometryLayer {
    /// Layer name.
    pub name: String,
    /// Its geometry.
    pub geometry: LayerGeometry,
    /// Weights.
    pub weights: u64,
    /// MACs of one sample.
    pub macs: u64,
}

/// Exact totals the docs give for a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// Weights.
    pub weights: u64,
    /// MACs of one sample.
    pub macs: u64,
}

/// The record's metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeometryMetrics {
    /// The model.
    pub arch: String,
    /// Per layer, in network order.
    pub layers: Vec<GeometryLayer>,
    /// Weights (biases excluded).
    pub total_weights: u64,
    /// MACs of one sample.
    pub total_macs: u64,
    /// The docs' totals, where they give them.
    pub expected: Option<Expected>,
}

/// One run per zoo model.
pub fn runs(experiment: Experiment) -> Vec<RunSpec> {
    Arch::ALL
        .iter()
        .map(|&arch| RunSpec {
            experiment,
            id: arch.to_string(),
            kind: RunKind::Geometry { arch },
        })
        .collect()
}

/// The totals docs/energy-models.md B.10 gives for `arch` (batch 1, biases excluded).
fn expected(arch: Arch) -> Option<Totals> {
    match arch {
        Arch::AlexnetCaffe => Some(reference::ALEXNET_CAFFE),
        Arch::Googlenet => Some(reference::GOOGLENET),
        Arch::Squeezenet1_0 => Some(reference::SQUEEZENET1_0),
        _ => None,
    }
}

/// Builds `arch` and tabulates its layers; totals that disagree with the docs are an error.
pub fn run(arch: Arch) -> Result<GeometryMetrics> {
    let init = SeededInit::new(0);
    let vb = init.var_builder(DType::F32, &Device::Cpu);
    let [c, _, _] = arch.input_shape();
    let net = cnn_zoo::build(arch, arch.default_classes(), c, vb)
        .with_context(|| format!("cannot build {arch}"))?;
    let layers: Vec<GeometryLayer> = net
        .layers()
        .iter()
        .map(|l| GeometryLayer {
            name: l.name.clone(),
            geometry: l.geometry,
            weights: l.geometry.weights() as u64,
            macs: l.geometry.macs() as u64,
        })
        .collect();
    let weights: u64 = layers.iter().map(|l| l.weights).sum();
    let macs: u64 = layers.iter().map(|l| l.macs).sum();
    let expected = expected(arch).map(|t| Expected {
        weights: t.weights,
        macs: t.macs,
    });
    if let Some(e) = expected
        && (e.weights, e.macs) != (weights, macs)
    {
        bail!(
            "{arch}: {weights} weights / {macs} MACs, the spec says {} / {}",
            e.weights,
            e.macs
        );
    }
    Ok(GeometryMetrics {
        arch: arch.to_string(),
        layers,
        total_weights: weights,
        total_macs: macs,
        expected,
    })
}

/// One line on a record.
pub fn summary(m: &GeometryMetrics) -> String {
    format!(
        "{} weights, {} MACs (batch 1, biases excluded)",
        m.total_weights, m.total_macs
    )
}

/// The README section.
pub fn section(runs: &Typed<'_, GeometryMetrics>) -> Result<Section> {
    let mut t = Table::new(
        &[
            "model",
            "weights",
            "MACs (batch 1)",
            "spec weights / MACs",
            "matches spec",
        ],
        &[
            "model",
            "weights",
            "macs_per_image",
            "spec_weights",
            "spec_macs_per_image",
            "matches_spec",
        ],
    );
    for (r, m) in runs {
        let (w, macs) = (m.total_weights, m.total_macs);
        let model = if m.arch.is_empty() { &r.run } else { &m.arch };
        let (md_spec, md_ok, csv_spec) = match m.expected {
            Some(e) => {
                let ok = (e.weights, e.macs) == (w, macs);
                (
                    format!("{} / {}", grouped(e.weights), grouped(e.macs)),
                    if ok { "yes" } else { "no" }.to_string(),
                    vec![e.weights.to_string(), e.macs.to_string(), boolean(ok)],
                )
            }
            None => ("-".into(), "-".into(), vec![String::new(); 3]),
        };
        let mut csv = vec![model.clone(), w.to_string(), macs.to_string()];
        csv.extend(csv_spec);
        t.row(
            vec![model.clone(), grouped(w), grouped(macs), md_spec, md_ok],
            csv,
        );
    }
    let mut s = Section::new("Model geometry (`zoo-geometry`)");
    s.intro = "Weights and multiply-accumulates of every zoo model (conv and FC layers, biases \
               excluded), against the exact totals of docs/energy-models.md B.10 where it gives them.\n"
        .into();
    s.tables.push(("zoo-geometry".into(), String::new(), t));
    Ok(s)
}
