//! The weighted-L0 projection kernel: keep the entries of largest `w²/κ` whose costs fit a
//! capacity (a 0/1 knapsack solved greedily), zero the rest.
//!
//! Ordering is total: score `w²/κ` descending, ties by index ascending. Entries that are already
//! zero never enter the order (they can add no value), so the returned count is honest; this
//! differs from the ICLR'19 reference, which also keeps one item fewer than the fitting prefix and
//! crashes when nothing fits (`docs/sparse-projection.md` §4). Here the whole fitting
//! prefix is kept and an empty prefix yields all zeros.
//!
//! The entry points and their variants live here; `select` is the small-input path (selection
//! over a candidate list), `bucketed` the two-pass histogram kernel that large inputs take, and
//! `boundary` resolves the bucket where that kernel's capacity runs out.

mod boundary;
mod bucketed;
mod select;

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use bucketed::prefix_bucketed;
use select::{best_single, candidates, choose, fitting_prefix};

pub(crate) use bucketed::BUCKETED_MIN;
#[cfg(test)]
pub(crate) use {boundary::first_rejected_in, bucketed::prefix_bucketed_with};

/// Which greedy rule picks the support.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GreedyVariant {
    /// The longest prefix of the score order whose cost fits. Idempotent and monotone in the
    /// capacity; exact for the capacity it consumes; value ≥ OPT − (first rejected w²).
    #[default]
    Prefix,
    /// Items costing more than the capacity are dropped, then the better of the prefix and the
    /// best single item is kept: value ≥ OPT/2.
    PrefixOrBestSingle,
    /// Scan the whole order and keep every item that still fits, then compare with the best
    /// single item: dominates the prefix, value ≥ OPT/2.
    FillOrBestSingle,
}

/// What a projection kept.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionOutcome {
    /// Entries left nonzero.
    pub kept: usize,
    /// Σ κ over the kept entries.
    pub consumed: f64,
    /// Σ w² over the kept entries.
    pub kept_value: f64,
    /// Index of the first entry in score order that did not fit (the prefix variants), if any.
    pub first_rejected: Option<usize>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub(crate) score: f64,
    pub(crate) cost: f64,
    pub(crate) index: usize,
}

/// Score descending, index ascending: a strict total order on distinct items.
fn order(a: &Item, b: &Item) -> Ordering {
    b.score.total_cmp(&a.score).then(a.index.cmp(&b.index))
}

/// The checks that need no pass over the entries: matching lengths and a finite, non-negative
/// capacity.
fn validate_sizes(values: &[f32], costs: &[f64], capacity: f64) -> Result<()> {
    if values.len() != costs.len() {
        return Err(Error::LengthMismatch {
            values: values.len(),
            costs: costs.len(),
        });
    }
    if !capacity.is_finite() || capacity < 0.0 {
        return Err(Error::InvalidCapacity { capacity });
    }
    Ok(())
}

fn validate(values: &[f32], costs: &[f64], capacity: f64) -> Result<()> {
    validate_sizes(values, costs, capacity)?;
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "weights".into(),
            index,
        });
    }
    if let Some(index) = costs.iter().position(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(Error::InvalidCost {
            index,
            cost: costs[index],
        });
    }
    Ok(())
}

fn outcome_of(
    values: &[f32],
    costs: &[f64],
    kept: &[usize],
    first_rejected: Option<usize>,
) -> ProjectionOutcome {
    let mut consumed = 0.0;
    let mut kept_value = 0.0;
    for &i in kept {
        consumed += costs[i];
        let w = f64::from(values[i]);
        kept_value += w * w;
    }
    ProjectionOutcome {
        kept: kept.len(),
        consumed,
        kept_value,
        first_rejected,
    }
}

/// Zeroes every entry outside `keep` (sorted ascending).
fn apply(values: &mut [f32], keep: &[usize]) {
    let mut next = keep.iter().peekable();
    for (i, v) in values.iter_mut().enumerate() {
        if next.peek() == Some(&&i) {
            next.next();
        } else {
            *v = 0.0;
        }
    }
}

/// Projects `values` in place onto `{w : Σ_{w_j ≠ 0} κ_j ≤ capacity}` with a greedy rule.
///
/// Kept entries are unchanged (hard thresholding). [`GreedyVariant::Prefix`] runs in linear time,
/// on large inputs in two streaming passes (a cost histogram over score buckets that also
/// gathers the bucket where the capacity runs out, then the write-back after that bucket is
/// resolved exactly); [`GreedyVariant::PrefixOrBestSingle`] runs in expected linear time by
/// weighted selection; [`GreedyVariant::FillOrBestSingle`] sorts. A non-finite value or cost is
/// an error and leaves `values` untouched.
///
/// Feasibility is decided in `f64`: exact whenever the costs are integers below 2⁵³ (the ICLR'19
/// model's are). A capacity below every cost leaves all zeros.
///
/// ```
/// use sparse_proj::{project_weighted_l0, GreedyVariant};
/// // docs/sparse-projection.md §12: scores 4.5, 1, 4, 0.25; costs 2, 3, 4, 5 cumulated.
/// let mut w = [3.0f32, -1.0, 2.0, 0.5];
/// let out = project_weighted_l0(&mut w, &[2.0, 1.0, 1.0, 1.0], 3.0, GreedyVariant::Prefix)?;
/// assert_eq!(w, [3.0, 0.0, 2.0, 0.0]);
/// assert_eq!((out.kept, out.consumed, out.kept_value), (2, 3.0, 13.0));
/// assert_eq!(out.first_rejected, Some(1));
/// # Ok::<(), sparse_proj::Error>(())
/// ```
pub fn project_weighted_l0(
    values: &mut [f32],
    costs: &[f64],
    capacity: f64,
    variant: GreedyVariant,
) -> Result<ProjectionOutcome> {
    if variant == GreedyVariant::Prefix {
        validate_sizes(values, costs, capacity)?;
        // The histogram tables are a fixed 512 KiB; below a few thousand entries selection wins.
        if values.len() >= BUCKETED_MIN {
            return prefix_bucketed(values, costs, capacity);
        }
    }
    validate(values, costs, capacity)?;
    let mut items = candidates(values, costs);
    let (mut keep, first_rejected) = match variant {
        GreedyVariant::Prefix => {
            let (k, rejected) = fitting_prefix(&mut items, capacity);
            (
                items[..k].iter().map(|i| i.index).collect::<Vec<_>>(),
                rejected,
            )
        }
        GreedyVariant::PrefixOrBestSingle => {
            items.retain(|i| i.cost <= capacity);
            let single = best_single(&items, values, capacity);
            let (k, rejected) = fitting_prefix(&mut items, capacity);
            let prefix: Vec<usize> = items[..k].iter().map(|i| i.index).collect();
            choose(values, prefix, single, rejected)
        }
        GreedyVariant::FillOrBestSingle => {
            items.sort_unstable_by(order);
            let single = best_single(&items, values, capacity);
            let mut remaining = capacity;
            let mut fill = Vec::new();
            let mut rejected = None;
            for item in &items {
                if item.cost <= remaining {
                    remaining -= item.cost;
                    fill.push(item.index);
                } else if rejected.is_none() {
                    rejected = Some(item.index);
                }
            }
            choose(values, fill, single, rejected)
        }
    };
    keep.sort_unstable();
    let outcome = outcome_of(values, costs, &keep, first_rejected);
    apply(values, &keep);
    Ok(outcome)
}

/// Reference implementation of the prefix rule by a full sort and a sequential scan, for tests
/// and benchmarks of [`project_weighted_l0`].
pub fn project_prefix_sorted(
    values: &mut [f32],
    costs: &[f64],
    capacity: f64,
) -> Result<ProjectionOutcome> {
    validate(values, costs, capacity)?;
    let mut items = candidates(values, costs);
    items.sort_unstable_by(order);
    let mut remaining = capacity;
    let mut keep = Vec::new();
    let mut rejected = None;
    for item in &items {
        if item.cost > remaining {
            rejected = Some(item.index);
            break;
        }
        remaining -= item.cost;
        keep.push(item.index);
    }
    keep.sort_unstable();
    let outcome = outcome_of(values, costs, &keep, rejected);
    apply(values, &keep);
    Ok(outcome)
}

/// Keeps the `k` entries of largest magnitude (ties by index ascending), zeroing the rest:
/// plain top-k, the unweighted projection used for masks and magnitude pruning. Non-finite
/// entries are an error naming `what`.
pub fn top_k_magnitude(values: &mut [f32], k: usize, what: &str) -> Result<usize> {
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: what.into(),
            index,
        });
    }
    let mut idx: Vec<usize> = (0..values.len()).filter(|&i| values[i] != 0.0).collect();
    if idx.len() <= k {
        return Ok(idx.len());
    }
    let by_mag =
        |a: &usize, b: &usize| values[*b].abs().total_cmp(&values[*a].abs()).then(a.cmp(b));
    if k > 0 {
        idx.select_nth_unstable_by(k - 1, by_mag);
    }
    let mut keep = idx[..k].to_vec();
    keep.sort_unstable();
    apply(values, &keep);
    Ok(k)
}
