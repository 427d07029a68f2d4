//! The `eap-lenet5` section: one row per method (means over seeds), the comparison of energy
//! reductions, and the per-layer energy of the first seed.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::EapMetrics;
use crate::deviation::caption;
use crate::record::{RunRecord, seeds_label, without_seed};
use crate::registry::{RunKind, Typed};
use crate::render::format::{grouped, mean_sd};
use crate::render::{Section, Table, plot};
use crate::verdict::{Spread, Verdict};

/// The README section.
pub fn section(parsed: &Typed<'_, EapMetrics>) -> Result<Section> {
    let label = parsed
        .first()
        .map(|p| p.1.energy.label())
        .context("no eap-lenet5 records")?;
    let mut t = Table::new(
        &[
            "method",
            "energy reduction (mean ± sd)",
            "nonzero weights (mean)",
            "test accuracy (mean ± sd)",
            "dense test accuracy",
            "validation drop (points, mean)",
            "seeds",
        ],
        &[
            "method",
            "energy_reduction_factor_mean",
            "energy_reduction_factor_sd",
            "nonzero_weights_mean",
            "test_accuracy_mean_percent",
            "test_accuracy_sd_percent",
            "dense_test_accuracy_mean_percent",
            "val_drop_points_mean",
            "seeds",
        ],
    );
    // By run id without the seed, in id order; each group by seed.
    let mut groups: BTreeMap<String, Vec<&(&RunRecord, &EapMetrics)>> = BTreeMap::new();
    for p in parsed {
        groups.entry(without_seed(&p.0.run)).or_default().push(p);
    }
    let mut reductions = BTreeMap::new();
    for (variant, g) in &mut groups {
        g.sort_by_key(|p| p.0.seed);
        let ms: Vec<&EapMetrics> = g.iter().map(|p| p.1).collect();
        let red: Vec<f64> = ms.iter().map(|m| m.energy_reduction).collect();
        let (rm, rsd) = mean_sd(&red);
        reductions.insert(
            variant.clone(),
            Spread {
                mean: rm,
                sd: rsd,
                n: red.len(),
            },
        );
        let nz = mean_sd(
            &ms.iter()
                .map(|m| m.nonzero_weights as f64)
                .collect::<Vec<_>>(),
        )
        .0;
        let (am, asd) = mean_sd(&ms.iter().map(|m| m.test_accuracy).collect::<Vec<_>>());
        let dense = mean_sd(&ms.iter().map(|m| m.dense_test_accuracy).collect::<Vec<_>>()).0;
        let drop: Vec<f64> = ms
            .iter()
            .map(|m| 100.0 * (m.dense_val_accuracy - m.val_accuracy))
            .collect();
        let drop = mean_sd(&drop).0;
        let method = ms.first().map_or(variant.clone(), |m| m.method.clone());
        let seeds = seeds_label(&g.iter().map(|p| p.0).collect::<Vec<_>>());
        t.row(
            vec![
                method.clone(),
                format!("{rm:.2}x ± {rsd:.2}"),
                grouped(nz.round() as u64),
                format!("{:.2}% ± {:.2}", 100.0 * am, 100.0 * asd),
                format!("{:.2}%", 100.0 * dense),
                format!("{drop:.2}"),
                seeds.clone(),
            ],
            vec![
                method,
                format!("{rm:.4}"),
                format!("{rsd:.4}"),
                format!("{nz:.1}"),
                format!("{:.4}", 100.0 * am),
                format!("{:.4}", 100.0 * asd),
                format!("{:.4}", 100.0 * dense),
                format!("{drop:.4}"),
                seeds,
            ],
        );
    }
    let mut s = Section::new("Energy-aware pruning of LeNet-5 (`eap-lenet5`)");
    s.intro = format!(
        "Energy modelled on {label} with measured activation densities; each method prunes the \
         same dense models as far as a 1-point validation-accuracy budget allows (held-out \
         split, never the test set), then fine-tunes with fixed masks.{}\n",
        caption(parsed.iter().flat_map(|(r, _)| match &r.spec.kind {
            RunKind::Eap(spec) => spec.deviations.as_slice(),
            _ => &[],
        }))
    );
    if let (Some(e), Some(m)) = (reductions.get("eap"), reductions.get("mag")) {
        s.outro = format!(
            "Energy-aware pruning reduces energy {:.2}x ± {:.2} against {:.2}x ± {:.2} for \
             magnitude pruning at the same accuracy budget: energy-aware {} (ahead only beyond \
             both seed spreads).\n",
            e.mean,
            e.sd,
            m.mean,
            m.sd,
            Verdict::of(*e, *m).words()
        );
    }
    s.tables.push(("eap-lenet5".into(), String::new(), t));
    s.plots.push(layer_plot(parsed, &label)?);
    Ok(s)
}

/// Per-layer energy of the first seed: dense, then each method.
fn layer_plot(parsed: &Typed<'_, EapMetrics>, label: &str) -> Result<(String, String, String)> {
    let first_seed = parsed.iter().map(|p| p.0.seed).min().unwrap_or(1);
    let mut bars: Vec<plot::Bar> = Vec::new();
    let mut layer_names: Vec<String> = Vec::new();
    for (_, m) in parsed.iter().filter(|p| p.0.seed == first_seed) {
        if bars.is_empty() {
            layer_names = m.layers.iter().map(|l| l.name.clone()).collect();
            bars.push(plot::Bar {
                label: "dense".into(),
                values: m.layers.iter().map(|l| l.energy_dense).collect(),
            });
        }
        bars.push(plot::Bar {
            label: m.method.clone(),
            values: m.layers.iter().map(|l| l.energy_pruned).collect(),
        });
    }
    Ok((
        "eap-lenet5-layer-energy".into(),
        "Per-layer energy of LeNet-5 before and after pruning".into(),
        plot::stacked_bars(
            &format!("LeNet-5 energy per layer, seed {first_seed} (modelled on {label})"),
            &layer_names,
            &bars,
        )?,
    ))
}
