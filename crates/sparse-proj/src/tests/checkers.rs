//! The invariant checkers catch what they check: each is shown a broken result and must name it.

use crate::invariants::*;
use crate::{GreedyVariant, project_weighted_l0};

const BEFORE: [f32; 4] = [3.0, -1.0, 2.0, 0.5];
const COSTS: [f64; 4] = [2.0, 1.0, 1.0, 1.0];

fn invariant(err: InvariantError) -> Invariant {
    match err {
        InvariantError::Violated { invariant, .. } => invariant,
        other => panic!("expected a violation, got {other}"),
    }
}

#[test]
fn a_correct_projection_passes_every_check() {
    check_all(&BEFORE, &COSTS, 3.0, 4.0).unwrap();
    let mut after = BEFORE;
    project_weighted_l0(&mut after, &COSTS, 3.0, GreedyVariant::Prefix).unwrap();
    check_greedy_prefix(&BEFORE, &after, &COSTS, 3.0).unwrap();
}

#[test]
fn overspending_and_changed_values_are_named() {
    // Scores 4.5, 1, 4, 0.25: the fitting prefix at capacity 3 is {0, 2}.
    let err = check_within_budget(&BEFORE, &[3.0, -1.0, 2.0, 0.0], &COSTS, 3.0).unwrap_err();
    assert_eq!(invariant(err), Invariant::WithinBudget);
    let err = check_within_budget(&BEFORE, &[3.0, 0.0, 2.5, 0.0], &COSTS, 3.0).unwrap_err();
    assert!(err.to_string().contains("entry 2"), "{err}");
    assert_eq!(invariant(err), Invariant::ValuesKept);
}

#[test]
fn a_set_that_is_not_the_fitting_prefix_is_named() {
    // Within budget but skipping entry 2 (second in the order) for entry 1.
    let err = check_greedy_prefix(&BEFORE, &[3.0, -1.0, 0.0, 0.0], &COSTS, 3.0).unwrap_err();
    assert!(err.to_string().contains("entry 2"), "{err}");
    assert_eq!(invariant(err), Invariant::GreedyPrefix);
    // A prefix, but one entry short of the longest that fits.
    let err = check_greedy_prefix(&BEFORE, &[3.0, 0.0, 0.0, 0.0], &COSTS, 3.0).unwrap_err();
    assert!(err.to_string().contains("also fits"), "{err}");
    assert_eq!(invariant(err), Invariant::GreedyPrefix);
}

#[test]
fn the_exact_optimum_searches_small_inputs_only() {
    // Zeros do not count against the limit.
    let mut values = vec![0.0f32; 40];
    values[..EXACT_MAX].fill(1.0);
    let costs = vec![1.0; 40];
    assert_eq!(exact_optimum(&values, &costs, 5.0).unwrap(), 5.0);
    values[EXACT_MAX] = 1.0;
    assert!(matches!(
        exact_optimum(&values, &costs, 5.0),
        Err(InvariantError::TooLarge {
            nonzero: 21,
            max: EXACT_MAX
        })
    ));
}

#[test]
fn bad_inputs_are_the_projections_errors() {
    assert!(matches!(
        check_idempotent(&[1.0, f32::NAN], &[1.0, 1.0], 1.0, GreedyVariant::Prefix),
        Err(InvariantError::Input(crate::Error::NonFinite {
            index: 1,
            ..
        }))
    ));
    assert!(matches!(
        check_monotone_in_budget(&BEFORE, &COSTS, 3.0, 2.0),
        Err(InvariantError::Input(crate::Error::Config { .. }))
    ));
    assert!(matches!(
        check_within_budget(&BEFORE, &[1.0], &COSTS, 3.0),
        Err(InvariantError::Input(crate::Error::LengthMismatch { .. }))
    ));
}

#[test]
fn the_prefix_bound_is_the_additive_one() {
    // docs/sparse-projection.md §5: w² 1 and 100, costs 0.1 and 11, capacity 11. The prefix keeps
    // 1 of an optimum 100: within the first rejected entry's 100, so the bound holds; the
    // best-single variants keep the 100.
    for variant in [
        GreedyVariant::Prefix,
        GreedyVariant::PrefixOrBestSingle,
        GreedyVariant::FillOrBestSingle,
    ] {
        check_optimality_bound(&[1.0, 10.0], &[0.1, 11.0], 11.0, variant).unwrap();
    }
}

#[test]
fn the_exact_optimum_beats_the_greedy_where_greedy_is_not_optimal() {
    // w² 16, 9, 9 at costs 8, 5, 5 and capacity 10: the prefix takes the best score (16) and
    // stops; the two others together (18) are the optimum.
    let (values, costs) = ([4.0f32, 3.0, 3.0], [8.0, 5.0, 5.0]);
    assert_eq!(exact_optimum(&values, &costs, 10.0).unwrap(), 18.0);
    let mut after = values;
    let out = project_weighted_l0(&mut after, &costs, 10.0, GreedyVariant::Prefix).unwrap();
    assert_eq!(out.kept_value, 16.0);
    check_optimality_bound(&values, &costs, 10.0, GreedyVariant::Prefix).unwrap();
}
