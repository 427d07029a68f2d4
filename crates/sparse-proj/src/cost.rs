//! Per-weight knapsack costs built from an energy model's [`WeightCosts`], and the network-level
//! projection over all layers at once.
//!
//! Cache tail (`docs/sparse-projection.md` §2): in a layer with more entries than the
//! weight cache holds, the entries of smallest `w²` beyond the `cached` largest (ties by index,
//! zeros included) pay `kappa_out`; the others pay `kappa_in`. Any `k` kept weights then carry at
//! most `cached` cheap costs, so the assigned total bounds the model's relaxed energy from above
//! and a feasible knapsack implies a feasible network.

use serde::{Deserialize, Serialize};
use tensor_core::WeightCosts;

use crate::error::{Error, Result};
use crate::projection::{GreedyVariant, project_weighted_l0};

/// Fills `out` with the per-entry costs of one layer's flattened weights.
pub fn layer_costs(values: &[f32], costs: &WeightCosts, out: &mut Vec<f64>) {
    out.clear();
    out.resize(values.len(), costs.kappa_in);
    if values.len() <= costs.cached || costs.kappa_out == costs.kappa_in {
        return;
    }
    let mut idx: Vec<usize> = (0..values.len()).collect();
    let sq = |i: usize| {
        let w = f64::from(values[i]);
        w * w
    };
    idx.select_nth_unstable_by(costs.cached, |&a, &b| {
        sq(b).total_cmp(&sq(a)).then(a.cmp(&b))
    });
    for &i in &idx[costs.cached..] {
        out[i] = costs.kappa_out;
    }
}

/// Relaxed energy of one layer with `nonzero` kept weights: the fixed part plus the cheapest
/// `cached` weights at `kappa_in` and the rest at `kappa_out`.
pub fn layer_relaxed_energy(costs: &WeightCosts, nonzero: usize) -> f64 {
    let cheap = nonzero.min(costs.cached);
    costs.fixed + costs.kappa_in * cheap as f64 + costs.kappa_out * (nonzero - cheap) as f64
}

/// Relaxed energy of a network from its layers' weights and costs.
pub fn relaxed_energy(weights: &[&[f32]], costs: &[WeightCosts]) -> f64 {
    weights
        .iter()
        .zip(costs)
        .map(|(w, c)| layer_relaxed_energy(c, w.iter().filter(|v| **v != 0.0).count()))
        .sum()
}

/// Sum of the layers' fixed (weight-independent) energy: the floor with every weight zero.
pub fn floor_energy(costs: &[WeightCosts]) -> f64 {
    costs.iter().map(|c| c.fixed).sum()
}

/// Result of projecting a whole network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkProjection {
    /// Kept (nonzero) weights per layer.
    pub kept_per_layer: Vec<usize>,
    /// Σ fixed + Σ assigned κ of the kept weights: the relaxed energy after projection.
    pub energy: f64,
    /// The absolute budget projected onto.
    pub budget: f64,
}

impl NetworkProjection {
    /// Kept weights over all layers.
    pub fn kept(&self) -> usize {
        self.kept_per_layer.iter().sum()
    }
}

fn check_lengths(weights: &[&mut [f32]], costs: &[WeightCosts]) -> Result<()> {
    if weights.len() != costs.len() {
        return Err(Error::LengthMismatch {
            values: weights.len(),
            costs: costs.len(),
        });
    }
    Ok(())
}

/// Positions of the `k` largest-magnitude nonzero entries of `values` (ties by position).
fn top_entries(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).filter(|&i| values[i] != 0.0).collect();
    if idx.len() > k {
        if k == 0 {
            return Vec::new();
        }
        idx.select_nth_unstable_by(k - 1, |&a, &b| {
            values[b].abs().total_cmp(&values[a].abs()).then(a.cmp(&b))
        });
        idx.truncate(k);
    }
    idx.sort_unstable();
    idx
}

/// Entries each layer keeps whatever the ranking says: the `min_kept[l]` largest of layer `l`
/// (none when `min_kept` is empty).
fn guarded(weights: &[&mut [f32]], min_kept: &[usize]) -> Result<Vec<Vec<usize>>> {
    if min_kept.is_empty() {
        return Ok(vec![Vec::new(); weights.len()]);
    }
    if min_kept.len() != weights.len() {
        return Err(Error::LengthMismatch {
            values: weights.len(),
            costs: min_kept.len(),
        });
    }
    Ok(weights
        .iter()
        .zip(min_kept)
        .map(|(w, &k)| top_entries(w, k))
        .collect())
}

/// Projects every layer's weights at once onto the absolute energy `budget`: one global ranking
/// by `w²/κ` across layers (not per layer).
///
/// `min_kept` (empty for none) guards against layer collapse: layer `l` keeps its `min_kept[l]`
/// largest entries unconditionally, paid for before the global ranking spends the rest. A layer
/// left without weights disconnects the network, which a global ranking can do when one layer's
/// weights are far costlier than the others'. The paper's method is `min_kept = []`.
///
/// `budget` below the floor (plus the guarded entries' cost) is [`Error::BudgetInfeasible`] with
/// both figures absolute.
pub fn project_layers(
    weights: &mut [&mut [f32]],
    costs: &[WeightCosts],
    budget: f64,
    variant: GreedyVariant,
    min_kept: &[usize],
) -> Result<NetworkProjection> {
    check_lengths(weights, costs)?;
    let keep = guarded(weights, min_kept)?;
    let total: usize = weights.iter().map(|w| w.len()).sum();
    let mut flat = Vec::with_capacity(total);
    let mut flat_costs = Vec::with_capacity(total);
    let mut scratch = Vec::new();
    let mut floor = floor_energy(costs);
    for ((w, c), keep) in weights.iter().zip(costs).zip(&keep) {
        layer_costs(w, c, &mut scratch);
        let start = flat.len();
        flat.extend_from_slice(w);
        flat_costs.extend_from_slice(&scratch);
        for &i in keep {
            // Guarded entries leave the ranking (a zero never enters it) and are paid up front.
            floor += scratch[i];
            flat[start + i] = 0.0;
        }
    }
    if budget.is_nan() || budget < floor {
        return Err(Error::BudgetInfeasible { budget, floor });
    }
    let outcome = project_weighted_l0(&mut flat, &flat_costs, budget - floor, variant)?;
    let mut kept_per_layer = Vec::with_capacity(weights.len());
    let mut offset = 0;
    for (w, keep) in weights.iter_mut().zip(&keep) {
        let n = w.len();
        let guarded_values: Vec<f32> = keep.iter().map(|&i| w[i]).collect();
        w.copy_from_slice(&flat[offset..offset + n]);
        for (&i, v) in keep.iter().zip(guarded_values) {
            w[i] = v;
        }
        kept_per_layer.push(w.iter().filter(|v| **v != 0.0).count());
        offset += n;
    }
    debug_assert_eq!(
        outcome.kept + keep.iter().map(Vec::len).sum::<usize>(),
        kept_per_layer.iter().sum::<usize>()
    );
    Ok(NetworkProjection {
        kept_per_layer,
        energy: floor + outcome.consumed,
        budget,
    })
}

/// Magnitude pruning at equal energy: keeps the largest global top-k by `|w|` (ties by position)
/// with the largest `k` whose relaxed energy fits `budget`.
///
/// Walking the magnitude order once and charging each weight `kappa_in` while its layer still
/// has cache room and `kappa_out` after gives the relaxed energy of every prefix, because the
/// top-k of a layer by magnitude is exactly the set the cache tail charges cheaply.
///
/// `min_kept` guards against layer collapse exactly as in [`project_layers`].
pub fn project_layers_magnitude(
    weights: &mut [&mut [f32]],
    costs: &[WeightCosts],
    budget: f64,
    min_kept: &[usize],
) -> Result<NetworkProjection> {
    check_lengths(weights, costs)?;
    let guard = guarded(weights, min_kept)?;
    let floor = floor_energy(costs);
    if budget.is_nan() || budget < floor {
        return Err(Error::BudgetInfeasible { budget, floor });
    }
    let mut entries: Vec<(f32, u32, usize)> = Vec::new();
    for (l, w) in weights.iter().enumerate() {
        for (i, v) in w.iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::NonFinite {
                    what: format!("layer {l}"),
                    index: i,
                });
            }
            if *v != 0.0 {
                entries.push((v.abs(), l as u32, i));
            }
        }
    }
    let is_guarded = |l: u32, i: usize| guard[l as usize].binary_search(&i).is_ok();
    // Guarded entries first (they are paid before anything else), then magnitude order.
    entries.sort_unstable_by(|a, b| {
        is_guarded(b.1, b.2)
            .cmp(&is_guarded(a.1, a.2))
            .then(b.0.total_cmp(&a.0))
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    let mut counts = vec![0usize; weights.len()];
    let mut energy = floor;
    let mut kept = 0;
    for &(_, l, i) in &entries {
        let c = &costs[l as usize];
        let kappa = if counts[l as usize] < c.cached {
            c.kappa_in
        } else {
            c.kappa_out
        };
        if energy + kappa > budget {
            if is_guarded(l, i) {
                // The guarded entries alone exceed the budget.
                let needed: f64 = energy + kappa;
                return Err(Error::BudgetInfeasible {
                    budget,
                    floor: needed,
                });
            }
            break;
        }
        energy += kappa;
        counts[l as usize] += 1;
        kept += 1;
    }
    let mut keep_mask: Vec<Vec<bool>> = weights.iter().map(|w| vec![false; w.len()]).collect();
    for &(_, l, i) in &entries[..kept] {
        keep_mask[l as usize][i] = true;
    }
    for (w, m) in weights.iter_mut().zip(&keep_mask) {
        for (v, k) in w.iter_mut().zip(m) {
            if !k {
                *v = 0.0;
            }
        }
    }
    Ok(NetworkProjection {
        kept_per_layer: counts,
        energy,
        budget,
    })
}
