//! The projection's invariants (docs/sparse-projection.md §11) as checkers a user can run on
//! their own inputs, for example inside their own property tests (the `proptest` feature adds
//! [`crate::strategies`] that generate valid instances).
//!
//! Each checker returns `Ok(())` or an [`InvariantError`] that names the invariant and the entry
//! or figure that breaks it:
//!
//! - [`check_within_budget`]: a projected vector spends at most the capacity and keeps its
//!   nonzero entries unchanged (hard thresholding);
//! - [`check_greedy_prefix`]: the kept set is the longest prefix of the greedy order
//!   (`w²/κ` descending, index ascending, zeros excluded) whose cost fits;
//! - [`check_idempotent`]: projecting a projected vector changes nothing;
//! - [`check_monotone_in_budget`]: a larger capacity keeps a superset and no less value;
//! - [`check_optimality_bound`]: against [`exact_optimum`], the prefix rule is exact at the
//!   capacity it consumes and loses at most the first rejected entry's `w²`, and the ½ variants
//!   keep at least half of the optimum.
//!
//! Integer costs summing below 2⁵³, as the ICLR'19 model gives, are compared exactly: every
//! partial sum is exact in any order. Other costs are compared with a rounding allowance of `n·ε`
//! times the total of the `n` costs involved, so that summing in a different order than the
//! kernel cannot produce a false violation.
//!
//! ```
//! use sparse_proj::invariants::{check_greedy_prefix, check_optimality_bound, check_within_budget};
//! use sparse_proj::{project_weighted_l0, GreedyVariant};
//! let (before, costs) = (vec![3.0f32, -1.0, 2.0, 0.5], vec![2.0, 1.0, 1.0, 1.0]);
//! let mut after = before.clone();
//! project_weighted_l0(&mut after, &costs, 3.0, GreedyVariant::Prefix)?;
//! check_within_budget(&before, &after, &costs, 3.0)?;
//! check_greedy_prefix(&before, &after, &costs, 3.0)?;
//! check_optimality_bound(&before, &costs, 3.0, GreedyVariant::Prefix)?;
//! // Keeping an entry outside the fitting prefix is reported, with the entry named.
//! let err = check_greedy_prefix(&before, &[3.0, -1.0, 0.0, 0.0], &costs, 3.0).unwrap_err();
//! assert!(err.to_string().contains("greedy prefix"));
//! # Ok::<(), sparse_proj::invariants::InvariantError>(())
//! ```

use std::fmt;

use crate::error::Error;
use crate::projection::{GreedyVariant, ProjectionOutcome, project_weighted_l0};

/// The most nonzero entries [`exact_optimum`] searches (2²⁰ subsets at worst).
pub const EXACT_MAX: usize = 20;

/// Which invariant a check found broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Invariant {
    /// The kept entries' costs fit the capacity.
    WithinBudget,
    /// Kept entries are unchanged and only nonzero entries are kept.
    ValuesKept,
    /// The kept set is the longest fitting prefix of the greedy order.
    GreedyPrefix,
    /// A second projection changes nothing.
    Idempotent,
    /// A larger capacity keeps a superset with no less value.
    MonotoneInBudget,
    /// The variant's guarantee against the exact optimum.
    OptimalityBound,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WithinBudget => "within budget",
            Self::ValuesKept => "kept values unchanged",
            Self::GreedyPrefix => "greedy prefix",
            Self::Idempotent => "idempotent",
            Self::MonotoneInBudget => "monotone in the budget",
            Self::OptimalityBound => "optimality bound",
        })
    }
}

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvariantError {
    /// The invariant does not hold on this input.
    #[error("invariant \"{invariant}\" violated: {detail}")]
    Violated {
        /// The broken invariant.
        invariant: Invariant,
        /// What breaks it, naming the entry or the figures compared.
        detail: String,
    },
    /// The input is not one the projection accepts (lengths, non-finite values, costs or
    /// capacity), as the projection itself reports it.
    #[error(transparent)]
    Input(#[from] Error),
    /// [`exact_optimum`] was asked for more nonzero entries than it searches.
    #[error("the exact optimum searches at most {max} nonzero entries; this input has {nonzero}")]
    TooLarge {
        /// Nonzero entries of the input.
        nonzero: usize,
        /// [`EXACT_MAX`].
        max: usize,
    },
}

/// Result of a checker.
pub type Check<T = ()> = std::result::Result<T, InvariantError>;

fn violated(invariant: Invariant, detail: String) -> InvariantError {
    InvariantError::Violated { invariant, detail }
}

/// The checks of the projection's own input, so that a checker never judges what the projection
/// would refuse.
fn validate(values: &[f32], costs: &[f64], capacity: f64) -> Check {
    if values.len() != costs.len() {
        return Err(Error::LengthMismatch {
            values: values.len(),
            costs: costs.len(),
        }
        .into());
    }
    if !capacity.is_finite() || capacity < 0.0 {
        return Err(Error::InvalidCapacity { capacity }.into());
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "weights".into(),
            index,
        }
        .into());
    }
    if let Some(index) = costs.iter().position(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(Error::InvalidCost {
            index,
            cost: costs[index],
        }
        .into());
    }
    Ok(())
}

/// Rounding allowance of a sum of these costs: none when they are integers summing below 2⁵³
/// (every partial sum is exact, whatever the order), else `n·ε` times their total.
fn slack(costs: impl Iterator<Item = f64>) -> f64 {
    let (mut n, mut total, mut integers) = (0usize, 0.0f64, true);
    for c in costs {
        n += 1;
        total += c;
        integers &= c.fract() == 0.0;
    }
    if integers && total < 2f64.powi(53) {
        0.0
    } else {
        n as f64 * f64::EPSILON * total
    }
}

fn square(v: f32) -> f64 {
    let w = f64::from(v);
    w * w
}

/// Indices of the nonzero entries in the greedy order: score `w²/κ` descending (the same `f64`
/// quotient as the kernel), ties by index ascending.
pub fn greedy_order(values: &[f32], costs: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len().min(costs.len()))
        .filter(|&i| values[i] != 0.0)
        .collect();
    let score = |i: usize| square(values[i]) / costs[i];
    order.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    order
}

/// `after` is a projection of `before` within `capacity`: the same length, every nonzero entry
/// of `after` equal to the entry of `before` (which is nonzero), and the kept entries' costs
/// summing to at most `capacity`.
pub fn check_within_budget(before: &[f32], after: &[f32], costs: &[f64], capacity: f64) -> Check {
    validate(before, costs, capacity)?;
    if after.len() != before.len() {
        return Err(Error::LengthMismatch {
            values: after.len(),
            costs: costs.len(),
        }
        .into());
    }
    let kept_costs = || {
        after
            .iter()
            .zip(costs)
            .filter(|(a, _)| **a != 0.0)
            .map(|(_, c)| *c)
    };
    for (i, (&a, &b)) in after.iter().zip(before).enumerate() {
        if a == 0.0 {
            continue;
        }
        if a != b {
            return Err(violated(
                Invariant::ValuesKept,
                format!("entry {i} is {a} after the projection but {b} before"),
            ));
        }
    }
    let spent: f64 = kept_costs().sum();
    let kept = kept_costs().count();
    if spent > capacity + slack(kept_costs()) {
        return Err(violated(
            Invariant::WithinBudget,
            format!("the {kept} kept entries cost {spent}, more than the capacity {capacity}"),
        ));
    }
    Ok(())
}

/// The kept set of `after` is exactly the longest prefix of [`greedy_order`]`(before, costs)`
/// whose cumulative cost fits `capacity` (the rule of [`GreedyVariant::Prefix`]).
pub fn check_greedy_prefix(before: &[f32], after: &[f32], costs: &[f64], capacity: f64) -> Check {
    check_within_budget(before, after, costs, capacity)?;
    let order = greedy_order(before, costs);
    let kept = after.iter().filter(|v| **v != 0.0).count();
    if let Some((rank, &i)) = order[..kept]
        .iter()
        .enumerate()
        .find(|&(_, &i)| after[i] == 0.0)
    {
        return Err(violated(
            Invariant::GreedyPrefix,
            format!(
                "{kept} entries are kept but entry {i}, at rank {rank} of the greedy order, is not"
            ),
        ));
    }
    if let Some(&next) = order.get(kept) {
        let prefix_costs = || order[..=kept].iter().map(|&i| costs[i]);
        let prefix: f64 = prefix_costs().sum();
        if prefix <= capacity - slack(prefix_costs()) {
            return Err(violated(
                Invariant::GreedyPrefix,
                format!(
                    "entry {next}, next in the greedy order after the {kept} kept, also fits: the \
                     prefix through it costs {prefix} of the capacity {capacity}"
                ),
            ));
        }
    }
    Ok(())
}

/// Projecting with `variant` and projecting the result again gives the same vector.
pub fn check_idempotent(
    values: &[f32],
    costs: &[f64],
    capacity: f64,
    variant: GreedyVariant,
) -> Check {
    validate(values, costs, capacity)?;
    let mut once = values.to_vec();
    project_weighted_l0(&mut once, costs, capacity, variant)?;
    let mut twice = once.clone();
    project_weighted_l0(&mut twice, costs, capacity, variant)?;
    match once.iter().zip(&twice).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(violated(
            Invariant::Idempotent,
            format!(
                "{variant:?}: entry {i} is {} after one projection and {} after two",
                once[i], twice[i]
            ),
        )),
    }
}

/// Under [`GreedyVariant::Prefix`], a capacity `larger ≥ smaller` keeps every entry `smaller`
/// keeps, and no less value. (The ½ variants are not monotone: a larger capacity can make one
/// heavy entry win over the prefix.)
pub fn check_monotone_in_budget(values: &[f32], costs: &[f64], smaller: f64, larger: f64) -> Check {
    validate(values, costs, smaller)?;
    validate(values, costs, larger)?;
    if larger < smaller {
        return Err(Error::Config {
            field: "capacities",
            reason: format!("the larger capacity {larger} is below the smaller {smaller}"),
        }
        .into());
    }
    let (mut small, mut large) = (values.to_vec(), values.to_vec());
    let os = project_weighted_l0(&mut small, costs, smaller, GreedyVariant::Prefix)?;
    let ol = project_weighted_l0(&mut large, costs, larger, GreedyVariant::Prefix)?;
    if let Some(i) = (0..values.len()).find(|&i| small[i] != 0.0 && large[i] == 0.0) {
        return Err(violated(
            Invariant::MonotoneInBudget,
            format!("entry {i} is kept at capacity {smaller} but not at {larger}"),
        ));
    }
    if os.kept_value > ol.kept_value {
        return Err(violated(
            Invariant::MonotoneInBudget,
            format!(
                "kept value {} at capacity {smaller} exceeds {} at {larger}",
                os.kept_value, ol.kept_value
            ),
        ));
    }
    Ok(())
}

/// The best `Σ w²` over subsets of the entries whose costs sum to at most `capacity`, by
/// searching the subsets of the nonzero entries (at most [`EXACT_MAX`] of them) depth first.
pub fn exact_optimum(values: &[f32], costs: &[f64], capacity: f64) -> Check<f64> {
    validate(values, costs, capacity)?;
    let items: Vec<(f64, f64)> = values
        .iter()
        .zip(costs)
        .filter(|(v, _)| **v != 0.0)
        .map(|(v, c)| (square(*v), *c))
        .collect();
    if items.len() > EXACT_MAX {
        return Err(InvariantError::TooLarge {
            nonzero: items.len(),
            max: EXACT_MAX,
        });
    }
    // Suffix sums of the values bound what the rest of a branch can add.
    let mut rest = vec![0.0; items.len() + 1];
    for i in (0..items.len()).rev() {
        rest[i] = rest[i + 1] + items[i].0;
    }
    let mut best = 0.0f64;
    search(&items, &rest, 0, 0.0, 0.0, capacity, &mut best);
    Ok(best)
}

/// Depth-first over include/exclude of `items[i..]`, summing in index order; branches that
/// overspend or cannot beat `best` are cut, so only promising feasible subsets are visited.
fn search(
    items: &[(f64, f64)],
    rest: &[f64],
    i: usize,
    cost: f64,
    value: f64,
    capacity: f64,
    best: &mut f64,
) {
    *best = best.max(value);
    if i == items.len() || value + rest[i] <= *best {
        return;
    }
    let (v, c) = items[i];
    if cost + c <= capacity {
        search(items, rest, i + 1, cost + c, value + v, capacity, best);
    }
    search(items, rest, i + 1, cost, value, capacity, best);
}

/// The guarantee of `variant` against [`exact_optimum`]: for [`GreedyVariant::Prefix`], the kept
/// value is optimal for the capacity it consumes and at most the first rejected entry's `w²`
/// below the optimum; for the ½ variants, at least half of the optimum, and
/// [`GreedyVariant::FillOrBestSingle`] keeps no less than the prefix. Inputs of at most
/// [`EXACT_MAX`] nonzero entries.
pub fn check_optimality_bound(
    values: &[f32],
    costs: &[f64],
    capacity: f64,
    variant: GreedyVariant,
) -> Check {
    let opt = exact_optimum(values, costs, capacity)?;
    let tolerance = 1e-12 * opt.max(1.0);
    let project = |variant| -> Check<(Vec<f32>, ProjectionOutcome)> {
        let mut p = values.to_vec();
        let out = project_weighted_l0(&mut p, costs, capacity, variant)?;
        Ok((p, out))
    };
    let (_, out) = project(variant)?;
    match variant {
        GreedyVariant::Prefix => {
            let at_consumed = exact_optimum(values, costs, out.consumed)?;
            if out.kept_value < at_consumed - tolerance {
                return Err(violated(
                    Invariant::OptimalityBound,
                    format!(
                        "the prefix keeps {} but {at_consumed} fits the {} it consumes",
                        out.kept_value, out.consumed
                    ),
                ));
            }
            let rejected = out.first_rejected.map_or(0.0, |i| square(values[i]));
            if out.kept_value < opt - rejected - tolerance {
                return Err(violated(
                    Invariant::OptimalityBound,
                    format!(
                        "the prefix keeps {}, more than the first rejected entry's {rejected} \
                         below the optimum {opt}",
                        out.kept_value
                    ),
                ));
            }
        }
        GreedyVariant::PrefixOrBestSingle | GreedyVariant::FillOrBestSingle => {
            if out.kept_value < opt / 2.0 - tolerance {
                return Err(violated(
                    Invariant::OptimalityBound,
                    format!(
                        "{variant:?} keeps {}, less than half of the optimum {opt}",
                        out.kept_value
                    ),
                ));
            }
            if variant == GreedyVariant::FillOrBestSingle {
                let (_, prefix) = project(GreedyVariant::Prefix)?;
                if out.kept_value < prefix.kept_value - tolerance {
                    return Err(violated(
                        Invariant::OptimalityBound,
                        format!(
                            "the fill keeps {}, less than the prefix's {}",
                            out.kept_value, prefix.kept_value
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Every checker that applies to one instance: each variant's projection is within budget and
/// idempotent, the prefix rule's kept set is the greedy prefix and monotone up to `larger`, and,
/// when the input has at most [`EXACT_MAX`] nonzero entries, every variant meets its bound.
pub fn check_all(values: &[f32], costs: &[f64], capacity: f64, larger: f64) -> Check {
    for variant in [
        GreedyVariant::Prefix,
        GreedyVariant::PrefixOrBestSingle,
        GreedyVariant::FillOrBestSingle,
    ] {
        let mut after = values.to_vec();
        project_weighted_l0(&mut after, costs, capacity, variant)?;
        check_within_budget(values, &after, costs, capacity)?;
        if variant == GreedyVariant::Prefix {
            check_greedy_prefix(values, &after, costs, capacity)?;
        }
        check_idempotent(values, costs, capacity, variant)?;
        if values.iter().filter(|v| **v != 0.0).count() <= EXACT_MAX {
            check_optimality_bound(values, costs, capacity, variant)?;
        }
    }
    check_monotone_in_budget(values, costs, capacity, larger)
}
