//! Energy-constrained compression runs (ICLR'19): a dense model from [`crate::dense`], then
//! sparse-proj's trainer under energy-model's `iclr19` systolic-array model, evaluated on the
//! test split with the final masks, checkpointed with the budget and the estimate.

use std::path::Path;

use anyhow::{Context, Result, bail};
use energy_model::iclr19::{Evaluator, Iclr19};
use serde::{Deserialize, Serialize};
use sparse_proj::{ConstrainedConfig, InputMasks, Projection};
use tensor_core::tensor::D;
use tensor_core::{DType, Network, NoTaps, Tensor, Var};

use crate::checkpoint::{self, CheckpointMeta};
use crate::data::{Split, SplitData, TensorBatches};
use crate::dense;
use crate::paths::git_revision;
use crate::progress::Progress;
use crate::train::TrainSpec;

/// One constrained run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstrainedSpec {
    /// Recipe of the dense starting model; its `train_limit` is the number of training records
    /// (the constrained phases use the same ones).
    pub dense: TrainSpec,
    /// Records right after the training ones, held out for the round-stopping rule.
    pub val_records: usize,
    /// Batch size of the constrained phases.
    pub batch: usize,
    /// The trainer's parameters (budget, projection, masks, ...).
    pub config: ConstrainedConfig,
}

impl ConstrainedSpec {
    /// `energy-projection` or `magnitude`.
    pub fn method(&self) -> &'static str {
        match self.config.projection {
            Projection::Weighted { .. } => "energy-projection",
            Projection::Magnitude => "magnitude",
        }
    }
}

/// Metrics of a finished run (the record's `metrics`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConstrainedMetrics {
    /// Method name.
    pub method: String,
    /// Energy model that priced everything, e.g. `iclr19 (exact)`.
    pub energy_model: String,
    /// The relative budget.
    pub budget: f64,
    /// Whether input masks were trained.
    pub masks: bool,
    /// Relative energy of the result, relaxed evaluator (the constrained one).
    pub relative_energy_relaxed: f64,
    /// Relative energy of the result, exact evaluator.
    pub relative_energy_exact: f64,
    /// Nonzero weights of the result.
    pub nonzero_weights: u64,
    /// Weights of the dense model.
    pub total_weights: u64,
    /// Nonzero input-mask entries (0 without masks).
    pub nonzero_inputs: u64,
    /// Test accuracy of the result.
    pub test_accuracy: f64,
    /// Test accuracy of the dense model.
    pub dense_test_accuracy: f64,
    /// Validation accuracy of the result.
    pub val_accuracy: f64,
    /// Floor of the unmasked network, relative.
    pub floor: f64,
    /// Dense relaxed energy, in RF-access units.
    pub dense_energy: f64,
    /// The run's summary from the trainer (history, per-layer counts).
    pub outcome: sparse_proj::ConstrainedOutcome,
    /// Checkpoint of the result.
    pub checkpoint: String,
}

/// Runs `spec`, writing its checkpoint under `dir`.
pub fn run(
    spec: &ConstrainedSpec,
    out: &Path,
    dir: &Path,
    label: &str,
    progress: &Progress,
) -> Result<ConstrainedMetrics> {
    let dense = dense::ensure(out, &spec.dense, progress)?;
    let device = spec.dense.device.to_device()?;
    tensor_core::seed_device(&device, spec.dense.seed)?;
    let train_n = spec
        .dense
        .train_limit
        .context("the dense recipe must fix its number of training records")?;
    let mut full = spec.dense.clone();
    full.train_limit = None;
    let train_split = SplitData::load(&full, Split::Train)?;
    if train_split.len() < train_n + spec.val_records {
        bail!(
            "{} has {} training records; {} for training plus {} held out are needed",
            spec.dense.dataset,
            train_split.len(),
            train_n,
            spec.val_records
        );
    }
    let train_idx: Vec<usize> = (0..train_n).collect();
    let val_idx: Vec<usize> = (train_n..train_n + spec.val_records).collect();
    let seed = spec.dense.seed;
    let mut train = TensorBatches::new(&train_split, &train_idx, spec.batch, seed, true, &device)?;
    let mut val = TensorBatches::new(&train_split, &val_idx, 500, seed, false, &device)?;
    let test_split = SplitData::load(&full, Split::Test)?;
    let test_idx: Vec<usize> = (0..test_split.len()).collect();
    let test = TensorBatches::new(&test_split, &test_idx, 500, seed, false, &device)?;
    let [c, _, _] = train_split.sample_shape();

    let student = dense::load(&spec.dense, c, &dense.checkpoint)?;
    let teacher = dense::load(&spec.dense, c, &dense.checkpoint)?;
    let model = Iclr19::paper().with_evaluator(Evaluator::Exact);
    let mut obs = progress.run_observer(label.to_string());
    let trained = sparse_proj::train_constrained(
        sparse_proj::ConstrainedRun {
            student: student.net.as_ref(),
            params: student.vars.iter().map(|(_, v)| v.clone()).collect(),
            teacher: Some(teacher.net.as_ref()),
            model: &model,
            train: &mut train,
            val: &mut val,
        },
        &spec.config,
        &mut obs,
    )
    .with_context(|| format!("{label}: constrained training failed"))?;
    let outcome = trained.outcome;
    if !outcome.within_budget {
        bail!(
            "{label}: the result's relaxed energy {} exceeds the budget {}",
            outcome.energy.relaxed,
            outcome.relative_budget
        );
    }
    let test_accuracy = accuracy(student.net.as_ref(), trained.masks.as_ref(), &test)?;

    let path = dir.join("final.safetensors");
    let mut extra = serde_json::Map::new();
    extra.insert(
        "budget".into(),
        serde_json::json!(spec.config.relative_budget),
    );
    extra.insert("energy_model".into(), serde_json::json!(model_name(&model)));
    extra.insert("energy".into(), serde_json::to_value(&outcome.energy)?);
    extra.insert("method".into(), serde_json::json!(spec.method()));
    let mut tensors: Vec<(String, Var)> = student.vars.clone();
    if let Some(masks) = &trained.masks {
        for (layer, mask) in student.net.layers().iter().zip(masks.tensors()) {
            if let Some(mask) = mask {
                tensors.push((
                    format!("input_mask.{}", layer.name),
                    Var::from_tensor(&mask)?,
                ));
            }
        }
    }
    let meta = CheckpointMeta {
        arch: spec.dense.arch.to_string(),
        dataset: spec.dense.dataset.to_string(),
        epoch: outcome.history.len(),
        seed,
        git_revision: git_revision(),
        spec: serde_json::to_value(spec)?,
        extra,
    };
    checkpoint::save(&path, &meta, &tensors, &[])?;

    let total_weights = student
        .net
        .layers()
        .iter()
        .map(|l| l.weight.elem_count() as u64)
        .sum();
    Ok(ConstrainedMetrics {
        method: spec.method().into(),
        energy_model: model_name(&model),
        budget: spec.config.relative_budget,
        masks: spec.config.masks.is_some(),
        relative_energy_relaxed: outcome.energy.relaxed,
        relative_energy_exact: outcome.energy.modelled,
        nonzero_weights: outcome.energy.nonzero_weights,
        total_weights,
        nonzero_inputs: outcome.energy.nonzero_inputs,
        test_accuracy,
        dense_test_accuracy: dense.test_accuracy,
        val_accuracy: outcome.val_accuracy,
        floor: outcome.floor,
        dense_energy: outcome.dense_energy,
        outcome,
        checkpoint: path.display().to_string(),
    })
}

fn model_name(model: &Iclr19) -> String {
    use tensor_core::EnergyModel;
    format!(
        "{} ({} evaluator for the record, relaxed for the budget)",
        model.name(),
        model.evaluator().name()
    )
}

/// Top-1 accuracy of `net` over every batch of `data`, with `masks` applied when given.
fn accuracy(net: &dyn Network, masks: Option<&InputMasks>, data: &TensorBatches) -> Result<f64> {
    let (xs, ys) = data.all();
    let n = ys.dims()[0];
    let mut correct = 0.0f64;
    let mut start = 0;
    while start < n {
        let len = 500.min(n - start);
        let x = xs.narrow(0, start, len)?;
        let y = ys.narrow(0, start, len)?;
        let logits: Tensor = match masks {
            Some(m) => net.forward_tapped(&x, false, &mut &*m)?,
            None => net.forward_tapped(&x, false, &mut NoTaps)?,
        };
        let pred = logits.argmax(D::Minus1)?;
        correct += f64::from(
            pred.eq(&y.to_dtype(pred.dtype())?)?
                .to_dtype(DType::F32)?
                .sum_all()?
                .to_scalar::<f32>()?,
        );
        start += len;
    }
    Ok(correct / n.max(1) as f64)
}
