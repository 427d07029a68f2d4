//! The selection path: the nonzero entries become a candidate list and the fitting prefix is
//! found by repeated partitioning around the middle element. The prefix rule takes it on small
//! inputs (below `BUCKETED_MIN` entries the histogram tables cost more than selection), the
//! half-approximate variants on every input.

use super::{Item, order};

/// The nonzero entries with their scores `w²/κ`, in index order.
pub(super) fn candidates(values: &[f32], costs: &[f64]) -> Vec<Item> {
    values
        .iter()
        .zip(costs)
        .enumerate()
        .filter(|(_, (v, _))| **v != 0.0)
        .map(|(index, (v, c))| {
            let w = f64::from(*v);
            Item {
                score: w * w / c,
                cost: *c,
                index,
            }
        })
        .collect()
}

/// Splits `items` so that `items[..k]` is the longest prefix (in [`order`]) whose cost fits
/// `capacity`, in expected linear time by repeated partitioning around the middle element.
/// Returns `k` and the index of the first item that did not fit. `items[..k]` and `items[k..]`
/// come back unordered.
pub(super) fn fitting_prefix(items: &mut [Item], capacity: f64) -> (usize, Option<usize>) {
    let (mut lo, mut hi) = (0, items.len());
    let mut remaining = capacity;
    // Invariant: items[..lo] precede everything in items[lo..] and fit; items[hi..] follow
    // everything in items[lo..hi] and are rejected; items[hi] (if any) is the best rejected so
    // far.
    let mut first_rejected: Option<usize> = None;
    while lo < hi {
        let slice = &mut items[lo..hi];
        if slice.len() <= 32 {
            slice.sort_unstable_by(order);
            let mut taken = 0;
            for item in slice.iter() {
                if item.cost > remaining {
                    first_rejected = Some(item.index);
                    break;
                }
                remaining -= item.cost;
                taken += 1;
            }
            return (lo + taken, first_rejected);
        }
        let mid = slice.len() / 2;
        slice.select_nth_unstable_by(mid, order);
        let left: f64 = slice[..mid].iter().map(|i| i.cost).sum();
        if left > remaining {
            // The pivot is the first item after the shrunk range.
            first_rejected = Some(slice[mid].index);
            hi = lo + mid;
            continue;
        }
        remaining -= left;
        let pivot = slice[mid];
        if pivot.cost > remaining {
            return (lo + mid, Some(pivot.index));
        }
        remaining -= pivot.cost;
        lo += mid + 1;
    }
    (lo, first_rejected)
}

/// Best single item that fits on its own: largest `w²`, ties by score order.
pub(super) fn best_single(items: &[Item], values: &[f32], capacity: f64) -> Option<Item> {
    items
        .iter()
        .filter(|i| i.cost <= capacity)
        .min_by(|a, b| {
            let (wa, wb) = (f64::from(values[a.index]), f64::from(values[b.index]));
            (wb * wb).total_cmp(&(wa * wa)).then(order(a, b))
        })
        .copied()
}

fn value_of(values: &[f32], keep: &[usize]) -> f64 {
    keep.iter()
        .map(|&i| {
            let w = f64::from(values[i]);
            w * w
        })
        .sum()
}

/// The greedy set unless the best single item is worth strictly more.
pub(super) fn choose(
    values: &[f32],
    greedy: Vec<usize>,
    single: Option<Item>,
    rejected: Option<usize>,
) -> (Vec<usize>, Option<usize>) {
    match single {
        Some(s) if value_of(values, &[s.index]) > value_of(values, &greedy) => {
            (vec![s.index], rejected)
        }
        _ => (greedy, rejected),
    }
}
