//! Per-layer energy reports as data: a priced network joined with its geometry, naming the model
//! and preset that priced it, the unit and the batch, so a number never travels without them
//! (docs/energy-models.md B.8). Rendering (text table, JSON, CSV, SVG) is the caller's; the
//! workspace's renderers live in the `experiments` crate behind `cargo xtask energy`.
//!
//! ```
//! use energy_model::iclr19::Iclr19;
//! use energy_model::report::EnergyReport;
//! use tensor_core::{ConvParams, EnergyModel, LayerGeometry, LayerId, LayerWorkload};
//!
//! let layers = vec![
//!     LayerWorkload::dense(LayerId(0), "conv", LayerGeometry::conv([1, 4, 4], 2, ConvParams::square(3))?),
//!     LayerWorkload::dense(LayerId(1), "fc", LayerGeometry::fc(100, 1, 1, 20)?),
//! ];
//! let model = Iclr19::paper();
//! let energy = model.network_energy(&layers)?;
//! let report = EnergyReport::new("tiny", &layers, &energy, 1)?
//!     .with_normalization(model.normalization(&[layers[0].geometry, layers[1].geometry])?);
//! assert_eq!(report.total(), 9_084.0 + 447_200.0);
//! assert_eq!(report.provenance(), "modelled on iclr19/relaxed batch 1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Serialize};
use tensor_core::{EnergyUnit, LayerEnergy, LayerKind, LayerWorkload, NetworkEnergy};

use crate::error::{Error, Result};
use crate::iclr19::Normalization;

/// One layer of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    /// Layer name.
    pub name: String,
    /// Conv or FC.
    pub kind: LayerKind,
    /// Dense MACs of one sample (geometry).
    pub macs: u64,
    /// Weights of the layer.
    pub weights: u64,
    /// The energy as priced (nonzero weights and effective MACs inside).
    pub energy: LayerEnergy,
}

/// A priced network with what is needed to render it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyReport {
    /// What was priced, e.g. the architecture `lenet5`.
    pub subject: String,
    /// The model and preset, as [`NetworkEnergy::model`] names it.
    pub model: String,
    /// Unit of every energy.
    pub unit: EnergyUnit,
    /// Batch size the estimate is for.
    pub batch: usize,
    /// Layers in network order.
    pub layers: Vec<LayerRow>,
    /// ICLR'19 model only: `E_dense` and `Σ E_X`, for the normalised floor.
    pub normalization: Option<Normalization>,
    /// Operators of the priced model that carry no weights and that neither model prices
    /// (activations, pooling, additions of an imported ONNX graph), by type with their counts;
    /// empty for a zoo model, whose layer list is its conv and FC layers.
    #[serde(default)]
    pub unpriced: std::collections::BTreeMap<String, usize>,
}

impl EnergyReport {
    /// Joins the workloads (geometry) with their priced energies; the two must list the same
    /// layers in the same order.
    pub fn new(
        subject: impl Into<String>,
        workloads: &[LayerWorkload],
        energy: &NetworkEnergy,
        batch: usize,
    ) -> Result<Self> {
        if workloads.len() != energy.layers.len() {
            return Err(Error::Config {
                field: "report layers",
                reason: format!(
                    "{} workloads but {} priced layers",
                    workloads.len(),
                    energy.layers.len()
                ),
            });
        }
        let layers = workloads
            .iter()
            .zip(&energy.layers)
            .map(|(w, (id, name, e))| {
                if w.id != *id {
                    return Err(Error::Config {
                        field: "report layers",
                        reason: format!("workload {} ({}) priced as {id} ({name})", w.id, w.name),
                    });
                }
                Ok(LayerRow {
                    name: name.clone(),
                    kind: w.geometry.kind(),
                    macs: w.geometry.macs() as u64,
                    weights: w.geometry.weights() as u64,
                    energy: e.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            subject: subject.into(),
            model: energy.model.clone(),
            unit: energy.unit,
            batch,
            layers,
            normalization: None,
            unpriced: Default::default(),
        })
    }

    /// Attaches the ICLR'19 normalisation (dense energy and floor).
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = Some(normalization);
        self
    }

    /// The same report listing the operators it does not price.
    pub fn with_unpriced(mut self, unpriced: std::collections::BTreeMap<String, usize>) -> Self {
        self.unpriced = unpriced;
        self
    }

    /// Network totals.
    pub fn totals(&self) -> LayerEnergy {
        let mut t = LayerEnergy::default();
        for l in &self.layers {
            t.accumulate(&l.energy);
        }
        t
    }

    /// Total energy.
    pub fn total(&self) -> f64 {
        self.layers.iter().map(|l| l.energy.total()).sum()
    }

    /// `Σ E_X / E_dense` when a normalisation is attached.
    pub fn normalized_floor(&self) -> Option<f64> {
        self.normalization.map(|n| n.floor())
    }

    /// "modelled on `model`, batch N" (the batch is not repeated when the model name has it).
    pub fn provenance(&self) -> String {
        if self.model.contains("batch") {
            format!("modelled on {}", self.model)
        } else {
            format!("modelled on {}, batch {}", self.model, self.batch)
        }
    }

    /// One line naming subject, model, batch and unit.
    pub fn caption(&self) -> String {
        format!(
            "{}: energy {}, in {}",
            self.subject,
            self.provenance(),
            self.unit
        )
    }
}

#[cfg(test)]
mod tests;
