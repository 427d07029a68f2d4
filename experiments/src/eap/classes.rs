//! `eap-classes-fashion-mnist` (standard profile): the energy-aware pruning paper's
//! fewer-classes finding. The dense Caffe LeNet of `pareto-lenet5-caffe-fashion-mnist` is pruned
//! by the energy-aware procedure for its first 2, 5 and all 10 classes (the output layer keeps
//! the rows of those classes, every split keeps their records), under the same accuracy budget.
//! The table sets the weights removed beside the energy saved, both relative to the 10-class
//! dense network: the paper reports that a smaller task lets pruning remove far more weights
//! while the energy falls much less.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use cnn_zoo::Arch;
use datasets::DatasetId;
use energy_prune::EnergyPruneConfig;

use super::{EapMethod, EapMetrics, EapSpec};
use crate::deviation::{Deviation, caption};
use crate::pareto::dense_recipe;
use crate::record::RunRecord;
use crate::registry::{Experiment, Profile, RunContext, RunKind, RunSpec, Typed};
use crate::render::format::{grouped, mean_sd};
use crate::render::{Section, Table};
use crate::verdict::at_chance;

/// Target class counts, the whole task last (it is the reference of every ratio).
pub const CLASSES: [usize; 3] = [2, 5, 10];

/// Records held out for the accept/reject decisions (before keeping the target classes).
const VAL: usize = 5_000;

/// Per seed and class count, one energy-aware run on the shared dense model.
pub fn runs(experiment: Experiment, profile: Profile, ctx: &RunContext) -> Vec<RunSpec> {
    if profile != Profile::Standard {
        return Vec::new();
    }
    let mut runs = Vec::new();
    for seed in [1, 2, 3] {
        let dense = dense_recipe(Arch::Lenet5Caffe, DatasetId::FashionMnist, seed, ctx);
        for classes in CLASSES {
            let mut config = EnergyPruneConfig::reconstruction_lenet5_mnist();
            config.seed = seed;
            runs.push(RunSpec {
                experiment,
                id: format!("classes{classes}-seed{seed}"),
                kind: RunKind::Eap(Box::new(EapSpec::lenet(
                    dense.clone(),
                    VAL,
                    EapMethod::EnergyAware(config),
                    deviations(),
                    Some(classes),
                ))),
            });
        }
    }
    runs
}

fn deviations() -> Vec<Deviation> {
    vec![
        Deviation::new(
            "network, data and classes",
            "AlexNet on ImageNet, a subset of its 1,000 classes",
            "Caffe's LeNet on Fashion-MNIST, its first 2, 5 or 10 classes",
            "ImageNet is outside what two CPU cores train",
        ),
        Deviation::new(
            "pruning settings",
            "the paper's (AlexNet)",
            "the LeNet reconstruction settings of docs/energy-aware-pruning.md §2",
            "the paper gives none for a LeNet",
        ),
    ]
}

/// The README section: per class count, accuracy, weights and energy relative to the 10-class
/// dense network of the same seed, means over seeds.
pub fn section(parsed: &Typed<'_, EapMetrics>) -> Result<Section> {
    let label = parsed
        .first()
        .map(|p| p.1.energy.label())
        .context("no eap-classes records")?;
    // The 10-class dense network of each seed: the reference of every ratio.
    let reference: BTreeMap<u64, (f64, f64)> = parsed
        .iter()
        .filter(|(r, _)| classes_of(r) == Some(10))
        .map(|(r, m)| (r.seed, (m.total_weights as f64, m.energy_dense)))
        .collect();
    let mut t = Table::new(
        &[
            "target classes",
            "test accuracy (mean ± sd)",
            "dense on these classes",
            "nonzero weights (mean)",
            "weights removed (x, mean ± sd)",
            "energy saved (x, mean ± sd)",
            "status",
            "seeds",
        ],
        &[
            "classes",
            "test_accuracy_mean_percent",
            "test_accuracy_sd_percent",
            "dense_test_accuracy_mean_percent",
            "nonzero_weights_mean",
            "weight_reduction_factor_mean",
            "weight_reduction_factor_sd",
            "energy_reduction_factor_mean",
            "energy_reduction_factor_sd",
            "status",
            "seeds",
        ],
    );
    let mut rows = Vec::new();
    for k in CLASSES {
        let mut runs: Vec<&(&RunRecord, &EapMetrics)> = parsed
            .iter()
            .filter(|(r, _)| classes_of(r) == Some(k))
            .collect();
        if runs.is_empty() {
            continue;
        }
        runs.sort_by_key(|p| p.0.seed);
        let of = |f: &dyn Fn(&EapMetrics) -> f64| {
            mean_sd(&runs.iter().map(|p| f(p.1)).collect::<Vec<_>>())
        };
        let (acc, acc_sd) = of(&|m| m.test_accuracy);
        let (dense_acc, _) = of(&|m| m.dense_test_accuracy);
        let (nz, _) = of(&|m| m.nonzero_weights as f64);
        let ratios = |f: &dyn Fn(&EapMetrics, (f64, f64)) -> f64| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|(r, m)| reference.get(&r.seed).map(|&d| f(m, d)))
                .collect();
            (!v.is_empty()).then(|| mean_sd(&v))
        };
        let weights = ratios(&|m, (w, _)| w / m.nonzero_weights.max(1) as f64);
        let energy = ratios(&|m, (_, e)| e / m.energy_pruned);
        let failed = runs.iter().any(|p| at_chance(p.1.test_accuracy, k));
        let status = if failed {
            "failed (chance accuracy)"
        } else {
            "ok"
        };
        let seeds: Vec<String> = runs.iter().map(|p| p.0.seed.to_string()).collect();
        let show =
            |r: Option<(f64, f64)>| r.map_or("n/a".into(), |(m, s)| format!("{m:.2} ± {s:.2}"));
        let csv = |r: Option<(f64, f64)>, sd: bool| {
            r.map_or(String::new(), |(m, s)| {
                format!("{:.4}", if sd { s } else { m })
            })
        };
        t.row(
            vec![
                k.to_string(),
                format!("{:.2}% ± {:.2}", 100.0 * acc, 100.0 * acc_sd),
                format!("{:.2}%", 100.0 * dense_acc),
                grouped(nz.round() as u64),
                show(weights),
                show(energy),
                status.into(),
                seeds.join(", "),
            ],
            vec![
                k.to_string(),
                format!("{:.4}", 100.0 * acc),
                format!("{:.4}", 100.0 * acc_sd),
                format!("{:.4}", 100.0 * dense_acc),
                format!("{nz:.1}"),
                csv(weights, false),
                csv(weights, true),
                csv(energy, false),
                csv(energy, true),
                status.into(),
                seeds.join(", "),
            ],
        );
        rows.push((k, weights, energy));
    }
    let deviations: Vec<&Deviation> = parsed
        .iter()
        .filter_map(|(r, _)| match &r.spec.kind {
            RunKind::Eap(spec) => Some(spec.deviations.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    let name = Experiment::EapClassesFashionMnist.name();
    let mut s = Section::new(format!("Pruning for fewer classes (`{name}`)"));
    s.intro = format!(
        "Energy-aware pruning of the dense Caffe LeNet (Fashion-MNIST, 55,000 training records) \
         for its first k classes: the output layer keeps their rows, training, validation and \
         test records are those of the k classes, and the accuracy budget is the same for every \
         k. Weights removed and energy saved are both relative to the 10-class dense network of \
         the same seed; energy on {label} with activation densities measured on the \
         calibration images.{}\n",
        caption(deviations)
    );
    s.outro = finding(&rows);
    s.tables.push((name.into(), String::new(), t));
    Ok(s)
}

type Ratio = Option<(f64, f64)>;

/// How the two reductions move from all classes to fewer, as measured: the paper's finding is
/// that the weight count falls much more than the energy.
fn finding(rows: &[(usize, Ratio, Ratio)]) -> String {
    let Some(&(all, Some((w_all, _)), Some((e_all, _)))) = rows.iter().max_by_key(|r| r.0) else {
        return String::new();
    };
    let lines: Vec<String> = rows
        .iter()
        .filter(|r| r.0 < all)
        .filter_map(|&(k, w, e)| {
            let ((w, _), (e, _)) = (w?, e?);
            let (gw, ge) = (w / w_all, e / e_all);
            Some(format!(
                "- {all} → {k} classes: weights removed {w_all:.2}x → {w:.2}x ({gw:.2} times as \
                 many), energy saved {e_all:.2}x → {e:.2}x ({ge:.2} times as much): {}.",
                if gw > ge {
                    "fewer classes cut weights more than energy"
                } else {
                    "fewer classes do not cut weights more than energy"
                }
            ))
        })
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("{}\n", lines.join("\n"))
    }
}

fn classes_of(r: &RunRecord) -> Option<usize> {
    match &r.spec.kind {
        RunKind::Eap(spec) => Some(spec.classes.unwrap_or(10)),
        _ => None,
    }
}
