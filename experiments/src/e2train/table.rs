//! The E2-Train sections: one row per variant (means over seeds, accuracy against each seed's
//! baseline), the target check, and the cumulative-energy plot of the first seed.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::{E2TrainMetrics, variant_ids};
use crate::deviation::caption;
use crate::record::{RunRecord, seeds_label, without_seed};
use crate::registry::{Experiment, RunKind, Typed};
use crate::render::format::mean_sd;
use crate::render::{Section, Table, plot};
use crate::verdict::Spread;

/// Target for SMD+SLU+PSG under the bit-product proxy, checked where the records carry no
/// dataflow estimate (the quick profile): saving and accuracy loss. Where they do, the targets
/// of [`MEASURE_TARGETS`] replace it.
const TARGET_SAVING: f64 = 0.75;
const TARGET_DROP_POINTS: f64 = 2.0;

/// How far a variant's share of the baseline's training time may stray from its share of the
/// baseline's MACs before the section lists it.
const STRAY_SHARE: f64 = 0.10;

/// `gated-resnet20` → `ResNet-20`.
fn resnet_name(arch: &str) -> String {
    arch.rsplit_once("resnet")
        .map_or_else(|| arch.to_string(), |(_, depth)| format!("ResNet-{depth}"))
}

/// Training batch of an E2-Train record.
fn batch_of(record: &RunRecord) -> String {
    match &record.spec.kind {
        RunKind::E2Train(spec) => spec.batch.to_string(),
        _ => "?".into(),
    }
}

/// The README section of `experiment`.
pub fn section(experiment: Experiment, parsed: &Typed<'_, E2TrainMetrics>) -> Result<Section> {
    let name = experiment.name();
    let group_of = |variant: &str| -> Vec<&(&RunRecord, &E2TrainMetrics)> {
        let mut g: Vec<_> = parsed
            .iter()
            .filter(|p| without_seed(&p.0.run) == variant)
            .collect();
        g.sort_by_key(|p| p.0.seed);
        g
    };
    let base = group_of("baseline");
    let base_acc: BTreeMap<u64, f64> = base.iter().map(|p| (p.0.seed, p.1.test_accuracy)).collect();
    let base_secs: Vec<f64> = base.iter().map(|p| p.1.train_seconds).collect();
    let first = parsed
        .first()
        .with_context(|| format!("no {name} records"))?;
    let mut t = Table::new(
        &[
            "variant",
            "test accuracy (mean ± sd)",
            "vs baseline (points)",
            "blocks executed (train)",
            "training energy (MAC16)",
            "saving vs baseline",
            "PSG fallback ρ",
            "iterations run",
            "training time (s)",
            "MACs executed / time taken, vs baseline",
            "seeds",
        ],
        &[
            "variant",
            "test_accuracy_mean_percent",
            "test_accuracy_sd_percent",
            "vs_baseline_points",
            "train_executed_percent_mean",
            "training_energy_mac16_mean",
            "training_energy_mac16_sd",
            "saving_mean_percent",
            "saving_sd_percent",
            "psg_fallback_fraction_mean",
            "executed_iterations_mean",
            "iterations",
            "train_seconds_mean",
            "executed_macs_fraction_mean",
            "train_seconds_fraction",
            "seeds",
        ],
    );
    let base_secs_mean = mean_sd(&base_secs).0;
    // Variants whose time share strays from their work share: `(label, work, time)`.
    let mut strays: Vec<(String, f64, f64)> = Vec::new();
    let mut summary: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    for v in variant_ids() {
        let g = group_of(v);
        if g.is_empty() {
            continue;
        }
        let acc: Vec<f64> = g.iter().map(|p| p.1.test_accuracy).collect();
        let spread = Spread::of(&acc);
        let am = spread.mean;
        let delta = points_vs_baseline(&g, &base_acc);
        let saving: Vec<f64> = g.iter().map(|p| p.1.saving_vs_baseline).collect();
        let (sm, ssd) = mean_sd(&saving);
        let energy: Vec<f64> = g.iter().map(|p| p.1.training_energy.total()).collect();
        let executed = mean_sd(
            &g.iter()
                .map(|p| p.1.train_executed_percentage)
                .collect::<Vec<_>>(),
        )
        .0;
        let rho: Vec<f64> = g
            .iter()
            .filter_map(|p| p.1.mean_fallback_fraction)
            .collect();
        let iters = mean_sd(
            &g.iter()
                .map(|p| p.1.executed_iterations as f64)
                .collect::<Vec<_>>(),
        )
        .0;
        let secs = mean_sd(&g.iter().map(|p| p.1.train_seconds).collect::<Vec<_>>()).0;
        // What the schedule executed against what the clock saw, both relative to the
        // baseline: a saving that is real work skipped shows in both.
        let work = mean_sd(
            &g.iter()
                .map(|p| p.1.training_macs / p.1.baseline_macs)
                .collect::<Vec<_>>(),
        )
        .0;
        let time = (!base_secs.is_empty()).then(|| secs / base_secs_mean);
        if let Some(time) = time
            && (time - work).abs() > STRAY_SHARE
        {
            strays.push((g[0].1.method.clone(), work, time));
        }
        let (dm, _) = mean_sd(&delta);
        summary.insert(v, (sm, dm, secs));
        let (em, esd) = mean_sd(&energy);
        let (rho_md, rho_csv) = if rho.is_empty() {
            ("—".to_string(), String::new())
        } else {
            let r = mean_sd(&rho).0;
            (format!("{r:.3}"), format!("{r:.5}"))
        };
        let seeds = seeds_label(&g.iter().map(|p| p.0).collect::<Vec<_>>());
        let nominal = g[0].1.iterations;
        t.row(
            vec![
                g[0].1.method.clone(),
                spread.percent(),
                format!("{dm:+.2}"),
                format!("{executed:.1}%"),
                with_spread(format!("{em:.3e}"), format!("{esd:.1e}"), g.len()),
                with_spread(
                    format!("{:.1}%", 100.0 * sm),
                    format!("{:.1}", 100.0 * ssd),
                    g.len(),
                ),
                rho_md,
                format!("{iters:.0}/{nominal}"),
                format!("{secs:.0}"),
                format!(
                    "{:.0}% / {}",
                    100.0 * work,
                    time.map_or("—".into(), |t| format!("{:.0}%", 100.0 * t))
                ),
                seeds.clone(),
            ],
            vec![
                g[0].1.method.clone(),
                format!("{:.4}", 100.0 * am),
                spread.sd_percent_csv(),
                format!("{dm:.4}"),
                format!("{executed:.2}"),
                format!("{em:.6e}"),
                format!("{esd:.6e}"),
                format!("{:.4}", 100.0 * sm),
                format!("{:.4}", 100.0 * ssd),
                rho_csv,
                format!("{iters:.1}"),
                nominal.to_string(),
                format!("{secs:.2}"),
                format!("{work:.4}"),
                time.map_or(String::new(), |t| format!("{t:.4}")),
                seeds,
            ],
        );
    }
    let mut s = Section::new(format!(
        "E2-Train on a gated {} (`{name}`)",
        resnet_name(&first.1.arch)
    ));
    s.intro = format!(
        "`{}` on {}, {} iterations of batch {} per run. Training energy is priced by `{}`{}; \
         savings are against standard training of the same backbone on the same nominal \
         schedule, priced by the same function. Blocks executed is the mean share of (gated \
         block, sample) pairs that ran in training. Accuracy differences are per seed against \
         that seed's baseline; training time is the measured wall-clock of the training \
         loop, and the next column sets the share of the baseline's MACs a variant executed \
         beside the share of the baseline's mean training time it took (wall-clock on a \
         machine other jobs may have shared, so only a coarse check of the saving).{}\n",
        first.1.arch,
        first.1.dataset.to_uppercase(),
        first.1.iterations,
        batch_of(first.0),
        first.1.energy_model,
        if first.1.energy_proxy {
            " (a bit-product proxy, not the paper's measured per-op energies)"
        } else {
            ""
        },
        caption(parsed.iter().flat_map(|(r, _)| match &r.spec.kind {
            RunKind::E2Train(spec) => spec.deviations.as_slice(),
            _ => &[],
        })),
    );
    let measured = measures(parsed, &base_acc);
    let mut outro = Vec::new();
    if let Some((saving, delta, _)) = summary.get("smd-slu-psg")
        && measured.is_none()
    {
        let met = *saving >= TARGET_SAVING && -delta <= TARGET_DROP_POINTS;
        outro.push(format!(
            "- SMD + SLU + PSG: {:.1}% saving at {delta:+.2} points; target ≥ {:.0}% saving \
             within {TARGET_DROP_POINTS} points: {}.",
            100.0 * saving,
            100.0 * TARGET_SAVING,
            if met { "met" } else { "not met" }
        ));
    }
    if let Some(g) = summary.get("slu")
        && !base_secs.is_empty()
    {
        outro.push(format!(
            "- SLU with real skipping trains in {:.0} s against the baseline's {:.0} s (mean \
             wall-clock of the training loop on this machine, measured, not modelled).",
            g.2,
            mean_sd(&base_secs).0
        ));
    }
    if !strays.is_empty() {
        let list: Vec<String> = strays
            .iter()
            .map(|(v, work, time)| {
                format!(
                    "{v} ({:.0}% of the MACs, {:.0}% of the time)",
                    100.0 * work,
                    100.0 * time
                )
            })
            .collect();
        outro.push(format!(
            "- Time taken differs from the work executed by more than {:.0} points for: {}.",
            100.0 * STRAY_SHARE,
            list.join("; ")
        ));
    }
    s.outro = format!("{}\n", outro.join("\n"));
    s.tables.push((name.into(), String::new(), t));
    if let Some((table, findings)) = measured {
        s.tables.push((
            format!("{name}-measures"),
            "The saving of every variant under the three measures of training energy: executed \
             MACs (no model), the bit-product proxy (computation only) and the Eyeriss dataflow \
             estimate (computation and data movement at every memory level, weight updates \
             included); each against standard training on the same nominal schedule under the \
             same measure."
                .into(),
            table,
        ));
        s.outro = format!("{}{findings}", s.outro);
    }
    if let Some(plot) = energy_plot(name, parsed, &base)? {
        s.plots.push(plot);
    }
    Ok(s)
}

/// Per run of `g`, test accuracy minus its seed's baseline, in points.
fn points_vs_baseline(
    g: &[&(&RunRecord, &E2TrainMetrics)],
    base_acc: &BTreeMap<u64, f64>,
) -> Vec<f64> {
    g.iter()
        .filter_map(|p| {
            base_acc
                .get(&p.0.seed)
                .map(|b| 100.0 * (p.1.test_accuracy - b))
        })
        .collect()
}

/// Targets of the standard profile, checked under the dataflow estimate (the named measure):
/// `(variant, saving, drop in points)`.
const MEASURE_TARGETS: [(&str, f64, f64); 4] = [
    ("smd-slu-psg", 0.80, 2.0),
    ("smd-slu", 0.60, 1.2),
    ("smd-slu-psg-gather", 0.80, 2.0),
    ("smd-slu-gather", 0.60, 1.2),
];

/// The three measures side by side, and the target checks, where the records carry the dataflow
/// estimate.
fn measures(
    parsed: &Typed<'_, E2TrainMetrics>,
    base_acc: &BTreeMap<u64, f64>,
) -> Option<(Table, String)> {
    let model = parsed
        .iter()
        .find_map(|p| p.1.dataflow.as_ref())?
        .energy
        .model
        .clone();
    let mut t = Table::new(
        &[
            "variant",
            "vs baseline (points, mean ± sd)",
            "saving: executed MACs",
            "saving: bit-product proxy",
            &format!("saving: {model}"),
            "seeds",
        ],
        &[
            "variant",
            "vs_baseline_points_mean",
            "vs_baseline_points_sd",
            "saving_macs_mean_percent",
            "saving_proxy_mean_percent",
            "saving_dataflow_mean_percent",
            "saving_dataflow_sd_percent",
            "seeds",
        ],
    );
    let mut findings = Vec::new();
    for v in variant_ids() {
        let mut g: Vec<_> = parsed
            .iter()
            .filter(|p| without_seed(&p.0.run) == v && p.1.dataflow.is_some())
            .collect();
        if g.is_empty() {
            continue;
        }
        g.sort_by_key(|p| p.0.seed);
        let delta = points_vs_baseline(&g, base_acc);
        let (dm, dsd) = mean_sd(&delta);
        let macs = mean_sd(
            &g.iter()
                .map(|p| 1.0 - p.1.training_macs / p.1.baseline_macs)
                .collect::<Vec<_>>(),
        )
        .0;
        let proxy = mean_sd(&g.iter().map(|p| p.1.saving_vs_baseline).collect::<Vec<_>>()).0;
        let (flow, flow_sd) = mean_sd(
            &g.iter()
                .filter_map(|p| p.1.dataflow.as_ref().map(|d| d.saving_vs_baseline))
                .collect::<Vec<_>>(),
        );
        let seeds = seeds_label(&g.iter().map(|p| p.0).collect::<Vec<_>>());
        t.row(
            vec![
                g[0].1.method.clone(),
                with_spread(format!("{dm:+.2}"), format!("{dsd:.2}"), g.len()),
                format!("{:.1}%", 100.0 * macs),
                format!("{:.1}%", 100.0 * proxy),
                with_spread(
                    format!("{:.1}%", 100.0 * flow),
                    format!("{:.1}", 100.0 * flow_sd),
                    g.len(),
                ),
                seeds.clone(),
            ],
            vec![
                g[0].1.method.clone(),
                format!("{dm:.4}"),
                format!("{dsd:.4}"),
                format!("{:.4}", 100.0 * macs),
                format!("{:.4}", 100.0 * proxy),
                format!("{:.4}", 100.0 * flow),
                format!("{:.4}", 100.0 * flow_sd),
                seeds,
            ],
        );
        if let Some(&(_, saving, drop)) = MEASURE_TARGETS.iter().find(|t| t.0 == v) {
            let met = flow >= saving && -dm <= drop;
            findings.push(format!(
                "- {}: {:.1}% saving under {model} ({:.1}% executed MACs, {:.1}% bit-product \
                 proxy) at {dm:+.2} points; target ≥ {:.0}% within {drop} points: {}.",
                g[0].1.method,
                100.0 * flow,
                100.0 * macs,
                100.0 * proxy,
                100.0 * saving,
                if met { "met" } else { "not met" }
            ));
        }
    }
    if let Some(b) = parsed.iter().find(|p| without_seed(&p.0.run) == "baseline") {
        // Convergence: the validation curve over the last quarter of the schedule, after the
        // final learning-rate step.
        let evals = &b.1.evals;
        let quarter = b.1.iterations * 3 / 4;
        let tail: Vec<f64> = evals
            .iter()
            .filter(|e| e.iteration >= quarter)
            .map(|e| e.accuracy)
            .collect();
        if let (Some(first), Some(last)) = (tail.first(), tail.last()) {
            findings.push(format!(
                "- Baseline (seed {}): validation accuracy over the last quarter of the schedule \
                 (after the final step of the learning rate) moves from {:.2}% to {:.2}% in {} \
                 evaluations.",
                b.0.seed,
                100.0 * first,
                100.0 * last,
                tail.len()
            ));
        }
    }
    findings.push(
        "- Paper, for reference (ResNet-74 on CIFAR-10, measured FPGA energy): more than 90% \
         saving at about 2 points, more than 60% at 1.2 points."
            .into(),
    );
    Some((t, format!("{}\n", findings.join("\n"))))
}

/// Cumulative energy of the first seed per variant, relative to the baseline's total.
fn energy_plot(
    name: &str,
    parsed: &Typed<'_, E2TrainMetrics>,
    base: &[&(&RunRecord, &E2TrainMetrics)],
) -> Result<Option<(String, String, String)>> {
    let seed = parsed.iter().map(|p| p.0.seed).min().unwrap_or(1);
    let base_total = base
        .iter()
        .find(|p| p.0.seed == seed)
        .map(|p| p.1.baseline_energy.total())
        .unwrap_or(1.0);
    let mut curves = Vec::new();
    for v in variant_ids() {
        let first = parsed
            .iter()
            .find(|p| without_seed(&p.0.run) == v && p.0.seed == seed);
        if let Some(p) = first
            && !p.1.energy_curve.is_empty()
        {
            curves.push(plot::Curve {
                label: p.1.method.clone(),
                points: p
                    .1
                    .energy_curve
                    .iter()
                    .map(|&(i, e)| (i as f64, e / base_total))
                    .collect(),
            });
        }
    }
    if curves.is_empty() {
        return Ok(None);
    }
    let svg = plot::curves(
        &format!(
            "Cumulative training energy, seed {seed} (bit-product proxy, relative to standard \
             training's total)"
        ),
        "iteration",
        "energy / standard training's total",
        &curves,
    )?;
    Ok(Some((
        format!("{name}-energy"),
        "Cumulative training energy per E2-Train variant".into(),
        svg,
    )))
}

/// `value ± sd` over `n` seeds; the value alone for one seed, whose spread is not a measurement.
fn with_spread(value: String, sd: String, n: usize) -> String {
    if n < 2 {
        value
    } else {
        format!("{value} ± {sd}")
    }
}
