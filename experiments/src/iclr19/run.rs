//! One constrained run: data, the dense start, sparse-proj's trainer, the test evaluation with
//! the final masks, and the checkpoint with masks, budget and estimate.

use anyhow::{Context, Result, bail};
use energy_model::iclr19::{Evaluator, Iclr19};
use sparse_proj::InputMasks;
use tensor_core::{EnergyModel, Network, NoTaps, Var};

use super::{ConstrainedMetrics, ConstrainedSpec};
use crate::checkpoint::{self, CheckpointMeta};
use crate::data::{CompressionData, CompressionSplit};
use crate::dense;
use crate::paths::git_revision;
use crate::pricing;
use crate::registry::RunEnv;

/// Runs `spec`, writing its checkpoint under the run's checkpoint directory.
pub fn run(spec: &ConstrainedSpec, env: &RunEnv<'_>) -> Result<ConstrainedMetrics> {
    let label = &env.label;
    let dense = dense::ensure(env, &spec.dense)?;
    let device = env.open(spec.dense.device)?;
    tensor_core::seed_device(&device, spec.dense.seed)?;
    let seed = spec.dense.seed;
    let mut data = CompressionData::load(
        CompressionSplit {
            dense: &spec.dense,
            val_records: spec.val_records,
            batch: spec.batch,
            calibration_images: 0,
            classes: None,
        },
        env.data,
        &device,
    )?;
    let c = data.channels;

    let student = dense::load(&spec.dense, c, &dense.checkpoint, &device)?;
    let teacher = dense::load(&spec.dense, c, &dense.checkpoint, &device)?;
    let model = Iclr19::paper().with_evaluator(Evaluator::Exact);
    let mut obs = env.reporter.observer(label);
    let trained = sparse_proj::train_constrained(
        sparse_proj::ConstrainedRun {
            student: student.net.as_ref(),
            params: student.params(),
            teacher: Some(teacher.net.as_ref()),
            model: &model,
            train: data.train.as_mut(),
            val: data.val.as_mut(),
        },
        &spec.config,
        obs.as_mut(),
    )
    .with_context(|| format!("{label}: constrained training failed"))?;
    drop(obs);
    let outcome = trained.outcome;
    if !outcome.within_budget {
        bail!(
            "{label}: the result's relaxed energy {} exceeds the budget {}",
            outcome.energy.relaxed,
            outcome.relative_budget
        );
    }
    let masks = trained.masks.as_ref();
    let test = tensor_core::evaluate("the test split", data.test.as_mut(), |xs| {
        forward(student.net.as_ref(), masks, xs)
    })
    .with_context(|| format!("{label}: test evaluation failed"))?;

    let path = env.checkpoints.join("final.safetensors");
    let mut extra = serde_json::Map::new();
    extra.insert(
        "budget".into(),
        serde_json::json!(spec.config.relative_budget),
    );
    extra.insert("energy_model".into(), serde_json::json!(model_name(&model)));
    extra.insert("energy".into(), serde_json::to_value(&outcome.energy)?);
    extra.insert("method".into(), serde_json::json!(spec.method()));
    let mut tensors: Vec<(String, Var)> = student.vars.clone();
    if let Some(masks) = masks {
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

    let supports = masks.map(InputMasks::supports).transpose()?;
    let priced = pricing::price(student.net.as_ref(), supports.as_deref())?;
    let total_weights = student
        .net
        .layers()
        .iter()
        .map(|l| l.weight.elem_count() as u64)
        .sum();
    Ok(ConstrainedMetrics {
        method: spec.method().into(),
        energy_model: model_name(&model),
        budget: spec.config.relative_budget.get(),
        masks: spec.config.masks.is_some(),
        relative_energy_relaxed: outcome.energy.relaxed,
        relative_energy_exact: outcome.energy.modelled,
        nonzero_weights: outcome.energy.nonzero_weights,
        total_weights,
        nonzero_inputs: outcome.energy.nonzero_inputs,
        test_accuracy: test.accuracy,
        test_top5: data.folder.then_some(test.top5),
        dense_test_accuracy: dense.test_accuracy,
        val_accuracy: outcome.val_accuracy,
        floor: outcome.floor,
        dense_energy: outcome.dense_energy,
        outcome,
        checkpoint: path.display().to_string(),
        priced: Some(priced),
    })
}

/// The evaluation forward pass, through the input masks when the run trained them.
fn forward(
    net: &dyn Network,
    masks: Option<&InputMasks>,
    xs: &tensor_core::Tensor,
) -> tensor_core::Result<tensor_core::Tensor> {
    match masks {
        Some(m) => net.forward_tapped(xs, false, &mut &*m),
        None => net.forward_tapped(xs, false, &mut NoTaps),
    }
}

fn model_name(model: &Iclr19) -> String {
    format!(
        "{} ({} evaluator for the record, relaxed for the budget)",
        model.name(),
        model.evaluator().name()
    )
}
