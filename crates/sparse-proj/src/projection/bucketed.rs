//! The two-pass histogram kernel of the prefix rule on large inputs. Everything here is exact:
//! the score of an entry is always the same correctly rounded `f64` quotient as in the selection
//! path, buckets only group scores without ever inverting their order, and the boundary bucket is
//! resolved on the exact scores and indices.
//!
//! The passes over the whole input (here [`cost_histogram`] and [`keep_before`], in `boundary`
//! the bucket scans) are compiled twice by `multiversion`: for AVX2 where the CPU has it (4-wide
//! divisions instead of SSE2's 2-wide) and for the baseline target, chosen at run time. Every
//! operation in them is IEEE-exact or an integer one, so both builds give identical bits.

use multiversion::multiversion;

use super::boundary::{collect_bucket, first_rejected_in, misfit_among_ties};
use super::{Item, ProjectionOutcome};
use crate::error::{Error, Result};

/// Entries per block of the streaming passes: a block's scores and keys stay in L1 between the
/// vectorised loop that computes them and the scalar loops that consume them.
pub(super) const BLOCK: usize = 512;
/// Histogram key of a score: the top 16 bits of the score rounded to `f32`. Rounding is monotone,
/// so a higher key always means a higher score, and `f32`'s 8-bit exponent leaves 7 mantissa bits
/// (128 buckets per octave) in a table small enough for L2. Valid scores are ≥ 0, so 15 bits
/// suffice; the mask only keeps the keys of invalid entries (rejected before any table is read)
/// in bounds.
const KEY_SHIFT: u32 = 16;
const BUCKETS: usize = 1 << 15;
const KEY_MASK: u32 = BUCKETS as u32 - 1;
/// Keys below this are the buckets a score can land in: `0x7f80` is +∞'s (a valid score can
/// overflow), the keys above only NaN's.
const SCORED: u32 = 0x7f81;
/// Zero weights get keys in `ZERO_KEYS..BUCKETS`, above every score, where no scan looks: their
/// cost needs no masking and no window or boundary bucket ever holds one. They are spread over
/// 64 buckets so that a run of zeros does not serialise on one table entry.
const ZERO_KEYS: u32 = 0x7fc0;
/// Inputs at least this long take the bucketed path.
pub(crate) const BUCKETED_MIN: usize = 1 << 12;
/// The window estimate samples every `stride`-th block, with the stride chosen so that about
/// this many blocks are sampled...
const SAMPLE_BLOCKS: usize = 64;
/// ...but never more than a quarter nor less than 1/64 of the input.
const SAMPLE_STRIDE: (usize, usize) = (4, 64);
/// The first pass collects the window's entries only if the sample puts at most this fraction of
/// the entries in it; beyond that the extra pass costs less than copying them.
const WINDOW_MAX_FRACTION: f64 = 1.0 / 16.0;

#[inline(always)]
pub(super) fn score_of(w: f32, c: f64) -> f64 {
    let w = f64::from(w);
    w * w / c
}

#[inline(always)]
fn key_of(score: f64) -> u32 {
    ((score as f32).to_bits() >> KEY_SHIFT) & KEY_MASK
}

/// `x` where `keep`, else `+0.0`, without a branch: kept and dropped entries alternate at
/// random, and a plain select compiles to a mispredicted branch.
#[inline(always)]
fn masked(x: f64, keep: bool) -> f64 {
    std::hint::select_unpredictable(keep, x, 0.0)
}

/// The error for the first invalid entry of a block flagged by [`block_keys`], if any: a
/// non-finite weight wins over an invalid cost at the same index, as in the single validating
/// scan this replaced.
fn first_invalid(values: &[f32], costs: &[f64], offset: usize) -> Option<Error> {
    for (i, (&v, &c)) in values.iter().zip(costs).enumerate() {
        if !v.is_finite() {
            return Some(Error::NonFinite {
                what: "weights".into(),
                index: offset + i,
            });
        }
        if !(c.is_finite() && c > 0.0) {
            return Some(Error::InvalidCost {
                index: offset + i,
                cost: c,
            });
        }
    }
    None
}

/// The lowest and highest key of the nonzero entries seen. The tables are scanned and cleared
/// over this range only, which real scores keep to a small part of the 32 Ki buckets.
#[derive(Clone, Copy)]
pub(super) struct KeyRange {
    lo: u32,
    hi: u32,
}

impl KeyRange {
    const EMPTY: Self = Self {
        lo: u32::MAX,
        hi: 0,
    };

    fn union(self, other: Self) -> Self {
        Self {
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
        }
    }

    /// The buckets of the range, as indices (empty for [`KeyRange::EMPTY`]).
    fn buckets(self) -> std::ops::Range<usize> {
        if self.lo > self.hi {
            0..0
        } else {
            self.lo as usize..self.hi as usize + 1
        }
    }
}

/// The keys of one block and the range of its nonzero entries' keys. `false` flags a block that
/// may hold an invalid entry (its keys are then garbage, but in bounds): a non-finite weight or a
/// cost ≤ 0 or NaN makes the score NaN, infinite or negative (zero weights included: 0/0, or −0
/// for a negative cost), and an infinite cost is tested directly. A score can also overflow to +∞
/// from valid inputs, so a flagged block is checked entry by entry before it is an error.
#[inline(always)]
pub(super) fn block_keys(values: &[f32], costs: &[f64], keys: &mut [u32]) -> (bool, KeyRange) {
    // Branch-free, in the lanes of the `f64` score, so that it vectorises.
    let mut valid = true;
    let KeyRange { mut lo, mut hi } = KeyRange::EMPTY;
    for (j, ((k, &v), &c)) in keys.iter_mut().zip(values).zip(costs).enumerate() {
        let score = score_of(v, c);
        valid &= (score.to_bits() < f64::INFINITY.to_bits()) & (c < f64::INFINITY);
        let key = key_of(score);
        let nonzero = v != 0.0;
        *k = if nonzero {
            key
        } else {
            ZERO_KEYS | (j as u32 & 63)
        };
        lo = lo.min(if nonzero { key } else { u32::MAX });
        hi = hi.max(if nonzero { key } else { 0 });
    }
    (valid, KeyRange { lo, hi })
}

/// Calls `f` with the positions `j < n` of a block where `hit(j)`, ascending. The hits of 64
/// positions are gathered into a bit mask first: the test runs branch-free (whether an entry
/// hits is a coin toss when its bucket is crowded) and the walk costs one step per hit.
#[inline(always)]
pub(super) fn for_each_hit(n: usize, hit: impl Fn(usize) -> bool, mut f: impl FnMut(usize)) {
    for base in (0..n).step_by(64) {
        let mut bits = 0u64;
        for t in 0..(n - base).min(64) {
            bits |= u64::from(hit(base + t)) << t;
        }
        while bits != 0 {
            f(base + bits.trailing_zeros() as usize);
            bits &= bits - 1;
        }
    }
}

/// A guess, from a sample of blocks, of the bucket range that holds the boundary bucket: the
/// buckets where the sample's running cost crosses the capacity scaled to the sample, widened by
/// a few standard errors of that running cost. `None` when the sample is too small or the range
/// too crowded to be worth collecting. `table` (`2 * BUCKETS`, zeroed) is scratch and comes back
/// zeroed.
fn estimate_window(
    values: &[f32],
    costs: &[f64],
    capacity: f64,
    table: &mut [f64],
) -> Option<(u32, u32)> {
    let blocks = values.len().div_ceil(BLOCK);
    let stride = (blocks / SAMPLE_BLOCKS).clamp(SAMPLE_STRIDE.0, SAMPLE_STRIDE.1);
    let (mass, count) = table.split_at_mut(BUCKETS);
    let count = &mut count[..BUCKETS];
    let mut keys = [0u32; BLOCK];
    let (mut sampled, mut nonzero, mut sum_sq) = (0usize, 0usize, 0.0f64);
    let mut range = KeyRange::EMPTY;
    for start in (0..values.len()).step_by(stride * BLOCK) {
        let end = (start + BLOCK).min(values.len());
        let keys = &mut keys[..end - start];
        let (valid, block_range) = block_keys(&values[start..end], &costs[start..end], keys);
        // Invalid entries are the first pass's business; the sample just skips their blocks.
        if !valid {
            continue;
        }
        range = range.union(block_range);
        for (&k, &c) in keys.iter().zip(&costs[start..end]) {
            let k = (k & KEY_MASK) as usize;
            mass[k] += c;
            count[k] += 1.0;
            if k < SCORED as usize {
                nonzero += 1;
                sum_sq += c * c;
            }
        }
        sampled += end - start;
    }
    let window = (nonzero >= 64).then(|| {
        let target = capacity * sampled as f64 / values.len() as f64;
        // Treating the sample as independent draws, the running cost above any score has a
        // standard error of at most √(Σ c²) in sample units; allow three each way, plus a
        // bucket either side for buckets the sample missed. A miss costs one extra pass, not
        // correctness.
        let margin = 3.0 * sum_sq.sqrt();
        let (low, high) = (target - margin, target + margin);
        let (mut above, mut top, mut bottom) = (0.0, None, None);
        for b in range.buckets().rev() {
            let next = above + mass[b];
            if next > low && above <= high {
                top.get_or_insert(b);
                bottom = Some(b);
            }
            above = next;
        }
        let (lo, hi) = (
            bottom?.saturating_sub(1),
            (top? + 1).min(SCORED as usize - 1),
        );
        let inside: f64 = count[lo..=hi].iter().sum();
        (inside <= WINDOW_MAX_FRACTION * nonzero as f64).then_some((lo as u32, hi as u32))
    });
    // Only the range and the zero buckets were written.
    for part in [mass, count] {
        part[range.buckets()].fill(0.0);
        part[ZERO_KEYS as usize..].fill(0.0);
    }
    window.flatten()
}

/// What the first pass hands on.
struct Histogram {
    /// Cost of the nonzero entries per bucket, zero outside `range`.
    mass: Vec<f64>,
    range: KeyRange,
    /// The nonzero entries whose bucket lies in the window, in index order.
    window: Vec<Item>,
}

/// First pass: validates every entry, sums the cost of the nonzero entries per score bucket, and
/// collects the entries of `window` (an inclusive bucket range). Nothing is written to `values`,
/// so an error leaves them untouched.
#[multiversion(targets("x86_64+avx2"))]
fn cost_histogram(
    values: &[f32],
    costs: &[f64],
    window: Option<(u32, u32)>,
    mut table: Vec<f64>,
) -> Result<Histogram> {
    // Even and odd entries go to separate tables: a run of entries in one bucket (zeros, equal
    // scores) then forms two interleaved read-modify-write chains instead of one serial chain.
    let (even, odd) = table.split_at_mut(BUCKETS);
    let odd = &mut odd[..BUCKETS];
    let mut keys = [0u32; BLOCK];
    let mut collected = Vec::new();
    let mut range = KeyRange::EMPTY;
    for (block, (vb, cb)) in values.chunks(BLOCK).zip(costs.chunks(BLOCK)).enumerate() {
        let n = vb.len();
        let keys = &mut keys[..n];
        let (valid, block_range) = block_keys(vb, cb, keys);
        if !valid && let Some(e) = first_invalid(vb, cb, block * BLOCK) {
            return Err(e);
        }
        range = range.union(block_range);
        // Zeros fall in the unused top buckets with their cost, which no scan reads.
        for (k, c) in keys.chunks_exact(2).zip(cb.chunks_exact(2)) {
            even[(k[0] & KEY_MASK) as usize] += c[0];
            odd[(k[1] & KEY_MASK) as usize] += c[1];
        }
        if n % 2 == 1 {
            even[(keys[n - 1] & KEY_MASK) as usize] += cb[n - 1];
        }
        if let Some((lo, hi)) = window {
            let keys = &*keys;
            for_each_hit(
                n,
                |j| keys[j].wrapping_sub(lo) <= hi - lo,
                |j| {
                    collected.push(Item {
                        score: score_of(vb[j], cb[j]),
                        cost: cb[j],
                        index: block * BLOCK + j,
                    })
                },
            );
        }
    }
    for (e, o) in even[range.buckets()].iter_mut().zip(&odd[range.buckets()]) {
        *e += *o;
    }
    table.truncate(BUCKETS);
    Ok(Histogram {
        mass: table,
        range,
        window: collected,
    })
}

/// The highest bucket whose mass exceeds what the buckets above it leave of `capacity`, with
/// that remainder; `None` when everything fits.
fn boundary_bucket(histogram: &Histogram, capacity: f64) -> Option<(u32, f64)> {
    let mut remaining = capacity;
    for b in histogram.range.buckets().rev() {
        let m = histogram.mass[b];
        if m > remaining {
            return Some((b as u32, remaining));
        }
        remaining -= m;
    }
    None
}

/// The count, cost and value of the nonzero entries, read-only (when everything fits).
fn tally(values: &[f32], costs: &[f64]) -> (usize, f64, f64) {
    let mut sums = Sums::default();
    let mut block_mass = [0.0f64; BLOCK];
    let mut square = [0.0f64; BLOCK];
    for (vb, cb) in values.chunks(BLOCK).zip(costs.chunks(BLOCK)) {
        let n = vb.len();
        let (block_mass, square) = (&mut block_mass[..n], &mut square[..n]);
        for (((m, q), &v), &c) in block_mass.iter_mut().zip(square.iter_mut()).zip(vb).zip(cb) {
            sums.kept += usize::from(v != 0.0);
            *m = masked(c, v != 0.0);
            let w = f64::from(v);
            *q = w * w;
        }
        sums.add(block_mass, square);
    }
    (sums.kept, sums.consumed, sums.kept_value)
}

/// Running sums of the kept entries, in index order: with a `+0.0` for every dropped entry that
/// is the same rounding as summing over the kept indices in ascending order, which is what the
/// sorted reference does.
#[derive(Default)]
struct Sums {
    kept: usize,
    consumed: f64,
    kept_value: f64,
}

impl Sums {
    /// Adds a block's masked costs and squares; the masking ran vectorised beforehand, so this
    /// serial loop holds no select.
    #[inline(always)]
    fn add(&mut self, mass: &[f64], square: &[f64]) {
        for (&m, &q) in mass.iter().zip(square) {
            self.consumed += m;
            self.kept_value += q;
        }
    }
}

/// Last pass: keeps the nonzero entries of `values[..]` that precede `rejected` in [`order`]
/// (score above its score, or equal with a lower index), zeroes the rest, and sums what is kept.
#[multiversion(targets("x86_64+avx2"))]
fn keep_before(values: &mut [f32], costs: &[f64], rejected: Item) -> (usize, f64, f64) {
    let mut sums = Sums::default();
    // Below the rejected index a tie with its score is kept, from it on it is not.
    let (head, tail) = values.split_at_mut(rejected.index);
    let (head_costs, tail_costs) = costs.split_at(rejected.index);
    keep_above::<false>(head, head_costs, rejected.score, &mut sums);
    keep_above::<true>(tail, tail_costs, rejected.score, &mut sums);
    (sums.kept, sums.consumed, sums.kept_value)
}

/// Keeps the nonzero entries scoring above `threshold` (or equal, unless `STRICT`).
#[inline(always)]
fn keep_above<const STRICT: bool>(
    values: &mut [f32],
    costs: &[f64],
    threshold: f64,
    sums: &mut Sums,
) {
    let mut block_mass = [0.0f64; BLOCK];
    let mut square = [0.0f64; BLOCK];
    for (vb, cb) in values.chunks_mut(BLOCK).zip(costs.chunks(BLOCK)) {
        let n = vb.len();
        let (block_mass, square) = (&mut block_mass[..n], &mut square[..n]);
        for (((m, q), v), &c) in block_mass
            .iter_mut()
            .zip(square.iter_mut())
            .zip(vb.iter_mut())
            .zip(cb)
        {
            let s = score_of(*v, c);
            let keep = (*v != 0.0)
                & if STRICT {
                    s > threshold
                } else {
                    s >= threshold
                };
            *v = if keep { *v } else { 0.0 };
            sums.kept += usize::from(keep);
            *m = masked(c, keep);
            let w = f64::from(*v);
            *q = w * w;
        }
        sums.add(block_mass, square);
    }
}

/// The longest fitting prefix by a bucketed threshold search, in two streaming passes instead of
/// a sort: a cost histogram over score buckets, which also validates the input and collects the
/// entries of the buckets where a small sample says the capacity will run out; then, once the
/// boundary bucket is resolved exactly from those entries, a pass that zeroes everything after
/// the first rejected entry and sums what is kept. When the guess misses, one or two more
/// read-only passes find the boundary bucket's first rejected entry.
///
/// The order is exactly the sorted scan's. Its running cost is summed bucket by bucket rather
/// than item by item, which gives the same cut whenever the partial sums are exact (integer
/// costs below 2⁵³, as the ICLR'19 model's); with costs whose sums round, the cut can differ
/// from the sorted scan's only where the last-place rounding decides it. `consumed` and
/// `kept_value` are summed in index order, as the sorted scan sums them.
pub(super) fn prefix_bucketed(
    values: &mut [f32],
    costs: &[f64],
    capacity: f64,
) -> Result<ProjectionOutcome> {
    let mut table = vec![0.0f64; 2 * BUCKETS];
    let window = estimate_window(values, costs, capacity, &mut table);
    prefix_in_window(values, costs, capacity, window, table)
}

/// [`prefix_bucketed`] with a given window (`lo <= hi`), for tests: the window only decides how
/// the boundary bucket is found, never the result.
#[cfg(test)]
pub(crate) fn prefix_bucketed_with(
    values: &mut [f32],
    costs: &[f64],
    capacity: f64,
    window: Option<(u32, u32)>,
) -> Result<ProjectionOutcome> {
    prefix_in_window(values, costs, capacity, window, vec![0.0f64; 2 * BUCKETS])
}

/// The passes after the window estimate; `table` is a zeroed `2 * BUCKETS` scratch.
fn prefix_in_window(
    values: &mut [f32],
    costs: &[f64],
    capacity: f64,
    window: Option<(u32, u32)>,
    table: Vec<f64>,
) -> Result<ProjectionOutcome> {
    // The zero buckets never belong to a window.
    let window = window
        .filter(|&(lo, _)| lo < SCORED)
        .map(|(lo, hi)| (lo, hi.min(SCORED - 1)));
    let histogram = cost_histogram(values, costs, window, table)?;
    let Some((b, remaining)) = boundary_bucket(&histogram, capacity) else {
        let (kept, consumed, kept_value) = tally(values, costs);
        return Ok(ProjectionOutcome {
            kept,
            consumed,
            kept_value,
            first_rejected: None,
        });
    };
    let rejected = match window {
        Some((lo, hi)) if (lo..=hi).contains(&b) => {
            let mut items = histogram.window;
            items.retain(|i| key_of(i.score) == b);
            first_rejected_in(&items, remaining)
        }
        _ => match misfit_among_ties(values, costs, b, remaining) {
            Some(rejected) => rejected,
            None => first_rejected_in(&collect_bucket(values, costs, b), remaining),
        },
    };
    let (kept, consumed, kept_value) = keep_before(values, costs, rejected);
    Ok(ProjectionOutcome {
        kept,
        consumed,
        kept_value,
        first_rejected: Some(rejected.index),
    })
}
