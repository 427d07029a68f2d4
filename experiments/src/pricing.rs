//! One network state priced by both inference energy models, for the tables that put methods
//! side by side: the ICLR'19 systolic-array model (relaxed and exact evaluators, RF-access
//! units, batch 1) and the Eyeriss row-stationary model (16-bit-MAC units, its preset and batch
//! named). Each figure is the network's energy over the same network's energy with every weight
//! kept and dense inputs, under the same model, so figures of the two models never mix.

use anyhow::Result;
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_model::iclr19::{Evaluator, Iclr19};
use serde::{Deserialize, Serialize};
use tensor_core::{
    Bitmap, DType, EnergyModel, LayerSparsity, LayerWorkload, Network, Precision, Support,
};

/// The Eyeriss setting of the comparison tables: the fabricated chip at batch 16.
pub const EYERISS_PRESET: Preset = Preset::Chip;
/// Batch of the Eyeriss estimates (FC weight traffic per image falls like 1/N).
pub const EYERISS_BATCH: usize = 16;

/// Relative energies of one network state under both models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BothModels {
    /// ICLR'19 model, relaxed evaluator (what the projection constrains).
    pub iclr19_relaxed: f64,
    /// ICLR'19 model, exact evaluator.
    pub iclr19_exact: f64,
    /// Eyeriss row-stationary model, dense activations apart from the input masks.
    pub eyeriss: f64,
    /// The Eyeriss model's name (preset and batch).
    pub eyeriss_model: String,
}

/// Prices `net`'s current weights (exact bitmaps) with `inputs` as each layer's input support
/// (input masks; dense when `None`), relative to the dense network under each model.
pub fn price(net: &dyn Network, inputs: Option<&[Support]>) -> Result<BothModels> {
    let mut dense = Vec::new();
    let mut current = Vec::new();
    for (i, l) in net.layers().iter().enumerate() {
        let values = l
            .weight
            .as_tensor()
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        dense.push(LayerWorkload::dense(l.id, l.name.clone(), l.geometry));
        current.push(LayerWorkload {
            id: l.id,
            name: l.name.clone(),
            geometry: l.geometry,
            sparsity: LayerSparsity {
                weights: Support::Bitmap(Bitmap::from_values(l.weight.dims(), &values)?),
                inputs: inputs
                    .and_then(|s| s.get(i))
                    .cloned()
                    .unwrap_or(Support::Dense),
                outputs: Support::Dense,
            },
            precision: Precision::default(),
        });
    }
    let relative = |model: &dyn EnergyModel| -> Result<f64> {
        Ok(model.network_energy(&current)?.total() / model.network_energy(&dense)?.total())
    };
    let eyeriss = Eyeriss::preset(EYERISS_PRESET, EYERISS_BATCH)?;
    Ok(BothModels {
        iclr19_relaxed: relative(&Iclr19::paper().with_evaluator(Evaluator::Relaxed))?,
        iclr19_exact: relative(&Iclr19::paper().with_evaluator(Evaluator::Exact))?,
        eyeriss: relative(&eyeriss)?,
        eyeriss_model: eyeriss.name(),
    })
}
