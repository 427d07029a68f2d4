//! Resolving the boundary bucket of the histogram kernel: the bucket where the running cost
//! crosses the capacity holds the first rejected entry, found exactly among the bucket's entries
//! (or by one scan when they all tie). The two scans over the whole input are compiled for AVX2
//! like the kernel's passes.

use multiversion::multiversion;

use super::bucketed::{BLOCK, block_keys, for_each_hit, score_of};
use super::{Item, order};

/// Boundary candidates at or below this count are resolved by sorting.
const SORT_MAX: usize = 32;

/// The nonzero entries of bucket `b`, in index order: the last resort when the window missed
/// and the bucket holds more than one score.
#[multiversion(targets("x86_64+avx2"))]
pub(super) fn collect_bucket(values: &[f32], costs: &[f64], b: u32) -> Vec<Item> {
    let mut keys = [0u32; BLOCK];
    let mut boundary = Vec::new();
    for (block, (vb, cb)) in values.chunks(BLOCK).zip(costs.chunks(BLOCK)).enumerate() {
        for_each_in_bucket(&mut keys, block, vb, cb, b, |item| boundary.push(item));
    }
    boundary
}

/// Calls `f` with the nonzero entries of bucket `b` in block number `block` (values `vb`, costs
/// `cb`), in index order; `keys` is scratch. The input is valid by now. Always inlined, so each
/// caller's AVX2 clone compiles it with AVX2.
#[inline(always)]
fn for_each_in_bucket(
    keys: &mut [u32; BLOCK],
    block: usize,
    vb: &[f32],
    cb: &[f64],
    b: u32,
    mut f: impl FnMut(Item),
) {
    let keys = &mut keys[..vb.len()];
    block_keys(vb, cb, keys);
    let keys = &*keys;
    for_each_hit(
        vb.len(),
        |j| keys[j] == b,
        |j| {
            f(Item {
                score: score_of(vb[j], cb[j]),
                cost: cb[j],
                index: block * BLOCK + j,
            })
        },
    );
}

/// The first rejected entry of bucket `b` when all its nonzero entries share one score: their
/// rank order is then index order, and one scan finds the first misfit without storing them (a
/// crowd of ties, such as equal weights and costs, can fill the whole input). `None` as soon as
/// a second score shows up. As in [`first_rejected_in`], the last entry is rejected when
/// rounding lets them all fit.
#[multiversion(targets("x86_64+avx2"))]
pub(super) fn misfit_among_ties(
    values: &[f32],
    costs: &[f64],
    b: u32,
    mut remaining: f64,
) -> Option<Item> {
    let mut keys = [0u32; BLOCK];
    let (mut first, mut misfit, mut last, mut mixed) = (None, None, None, false);
    for (block, (vb, cb)) in values.chunks(BLOCK).zip(costs.chunks(BLOCK)).enumerate() {
        for_each_in_bucket(&mut keys, block, vb, cb, b, |item| {
            mixed |= item.score != *first.get_or_insert(item.score);
            if misfit.is_none() {
                if item.cost > remaining {
                    misfit = Some(item);
                } else {
                    remaining -= item.cost;
                }
            }
            last = Some(item);
        });
        if mixed {
            return None;
        }
    }
    misfit.or(last)
}

/// Scans `items`, already in [`order`], for the first one that does not fit `remaining`.
fn first_misfit(items: &[Item], mut remaining: f64) -> Option<Item> {
    for item in items {
        if item.cost > remaining {
            return Some(*item);
        }
        remaining -= item.cost;
    }
    None
}

/// The first rejected item of the longest prefix (in [`order`]) of the boundary bucket's
/// `items` (nonempty, in index order) whose cost fits `remaining`.
///
/// Most significant digit radix selection on the bits of the `f64` score, 8 bits a level: a cost
/// histogram per digit finds the digit where the prefix ends and keeps only its items. Filtering
/// is stable, so once every bit has been used the survivors have equal scores in index order,
/// which is their rank order. Deterministic linear time, however many ties.
///
/// The bucket's mass exceeded `remaining`, so some item should misfit; when rounding of sums of
/// non-integer costs says otherwise, the last item in order is rejected, which keeps the result
/// a prefix within the capacity.
pub(crate) fn first_rejected_in(items: &[Item], mut remaining: f64) -> Item {
    // Bits shared by every score need no level: start at the digit of the highest differing bit.
    let first = items[0].score.to_bits();
    let differ = items
        .iter()
        .fold(0u64, |acc, i| acc | (i.score.to_bits() ^ first));
    let mut shift = (differ != 0).then(|| (63 - differ.leading_zeros()) / 8 * 8);
    let mut owned: Option<Vec<Item>> = None;
    loop {
        let live = owned.as_deref().unwrap_or(items);
        if live.len() <= SORT_MAX {
            let mut sorted = live.to_vec();
            sorted.sort_unstable_by(order);
            return first_misfit(&sorted, remaining).unwrap_or(sorted[sorted.len() - 1]);
        }
        let Some(s) = shift else {
            // Equal scores in index order: already ranked.
            return first_misfit(live, remaining).unwrap_or(live[live.len() - 1]);
        };
        let digit = |i: &Item| ((i.score.to_bits() >> s) & 0xff) as usize;
        let mut mass = [0.0f64; 256];
        for item in live {
            mass[digit(item)] += item.cost;
        }
        let mut cut = None;
        for d in (0..256).rev() {
            if mass[d] > remaining {
                cut = Some(d);
                break;
            }
            remaining -= mass[d];
        }
        let Some(d) = cut else {
            // Rounding: everything fits after all (see above).
            return *live.iter().max_by(|a, b| order(a, b)).expect("nonempty");
        };
        owned = Some(live.iter().filter(|i| digit(i) == d).copied().collect());
        shift = s.checked_sub(8);
    }
}
