//! Invariants of `docs/energy-aware-pruning.md` §7 (numbered as there) on the pure least
//! squares and the schedule, checked against brute-force oracles on small random systems; the
//! network-level checks and an end-to-end run live in `tests/pipeline.rs`.

#![allow(clippy::needless_range_loop)]

use proptest::prelude::*;

use crate::restore::{LeastSquares, Matrix, RestoreRule, SolveOptions};
use crate::*;

/// A small system: `K` rows, `n` columns, entries in [-3, 3], a support, a bias flag and λ.
#[derive(Clone, Debug)]
struct System {
    x: Matrix,
    y: Vec<f64>,
    support: Vec<bool>,
    bias: bool,
    lambda: f64,
}

fn system(max_rows: usize, max_cols: usize) -> impl Strategy<Value = System> {
    (
        1..=max_rows,
        1..=max_cols,
        any::<bool>(),
        prop_oneof![Just(0.0), 0.01f64..2.0],
    )
        .prop_flat_map(|(k, n, bias, lambda)| {
            (
                proptest::collection::vec(-3.0f64..3.0, k * n),
                proptest::collection::vec(-3.0f64..3.0, k),
                proptest::collection::vec(any::<bool>(), n),
            )
                .prop_map(move |(x, y, support)| System {
                    x: Matrix::new(k, n, x).expect("sizes match"),
                    y,
                    support,
                    bias,
                    lambda,
                })
        })
}

fn opts(lambda: f64) -> SolveOptions {
    SolveOptions {
        lambda,
        max_condition: 1e10,
    }
}

/// `‖y − X·w − b‖² + λ‖w‖²` evaluated directly.
fn objective(s: &System, w: &[f64], b: f64) -> f64 {
    let mut e = 0.0;
    for r in 0..s.x.rows() {
        let pred: f64 = s.x.row(r).iter().zip(w).map(|(a, w)| a * w).sum::<f64>() + b;
        e += (s.y[r] - pred).powi(2);
    }
    e + s.lambda * w.iter().map(|w| w * w).sum::<f64>()
}

/// Brute-force dense solve of the normal equations by Gaussian elimination with partial
/// pivoting; `None` when a pivot vanishes.
fn oracle(s: &System) -> Option<(Vec<f64>, f64)> {
    let mut cols: Vec<usize> = (0..s.x.cols()).filter(|&j| s.support[j]).collect();
    if s.bias {
        cols.push(usize::MAX);
    }
    let p = cols.len();
    let a = |r: usize, j: usize| if j == usize::MAX { 1.0 } else { s.x.get(r, j) };
    let mut m = vec![vec![0.0; p + 1]; p];
    for i in 0..p {
        for j in 0..p {
            m[i][j] = (0..s.x.rows()).map(|r| a(r, cols[i]) * a(r, cols[j])).sum();
        }
        if cols[i] != usize::MAX {
            m[i][i] += s.lambda;
        }
        m[i][p] = (0..s.x.rows()).map(|r| a(r, cols[i]) * s.y[r]).sum();
    }
    for c in 0..p {
        let piv = (c..p).max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))?;
        if m[piv][c].abs() < 1e-9 {
            return None;
        }
        m.swap(c, piv);
        for i in 0..p {
            if i != c {
                let f = m[i][c] / m[c][c];
                for j in c..=p {
                    m[i][j] -= f * m[c][j];
                }
            }
        }
    }
    let mut w = vec![0.0; s.x.cols()];
    let mut b = 0.0;
    for (i, &j) in cols.iter().enumerate() {
        let v = m[i][p] / m[i][i];
        if j == usize::MAX {
            b = v;
        } else {
            w[j] = v;
        }
    }
    Some((w, b))
}

proptest! {
    /// R1: the fit never does worse than any weights on the same support (here random ones and
    /// the brute-force optimum), for the regularised objective.
    #[test]
    fn r1_fit_minimises_on_its_support(
        s in system(10, 5),
        start in proptest::collection::vec(-3.0f64..3.0, 6),
    ) {
        let ls = LeastSquares::new(&s.x, s.bias);
        let t = ls.target(&s.y).unwrap();
        let Ok(fit) = ls.fit(&t, &s.support, opts(s.lambda)) else { return Ok(()) };
        let w0: Vec<f64> = (0..s.x.cols())
            .map(|j| if s.support[j] { start[j] } else { 0.0 })
            .collect();
        let b0 = if s.bias { start[5] } else { 0.0 };
        let direct = objective(&s, &fit.weights, fit.bias);
        prop_assert!((direct - fit.objective).abs() <= 1e-8 * (1.0 + direct));
        prop_assert!(fit.objective <= objective(&s, &w0, b0) + 1e-8 * (1.0 + fit.objective));
        if let Some((w, b)) = oracle(&s) {
            let best = objective(&s, &w, b);
            prop_assert!((fit.objective - best).abs() <= 1e-7 * (1.0 + best),
                "{} vs oracle {}", fit.objective, best);
        }
    }

    /// R2: the normal-equation residual `X_Sᵀ(y − X_S·w − b) = λ·w` (and `1ᵀr = 0` with a bias),
    /// and R4: entries outside the support are exactly 0.
    #[test]
    fn r2_r4_normal_equations_hold_and_pruned_entries_are_zero(s in system(12, 6)) {
        let ls = LeastSquares::new(&s.x, s.bias);
        let t = ls.target(&s.y).unwrap();
        let Ok(fit) = ls.fit(&t, &s.support, opts(s.lambda)) else { return Ok(()) };
        let r: Vec<f64> = (0..s.x.rows())
            .map(|i| {
                s.y[i] - fit.bias
                    - s.x.row(i).iter().zip(&fit.weights).map(|(a, w)| a * w).sum::<f64>()
            })
            .collect();
        let scale = 1.0 + fit.weights.iter().map(|w| w.abs()).fold(0.0, f64::max);
        for j in 0..s.x.cols() {
            if s.support[j] {
                let g: f64 = (0..s.x.rows()).map(|i| s.x.get(i, j) * r[i]).sum();
                prop_assert!((g - s.lambda * fit.weights[j]).abs() <= 1e-7 * scale * 100.0,
                    "column {j}: {g} vs {}", s.lambda * fit.weights[j]);
            } else {
                prop_assert_eq!(fit.weights[j].to_bits(), 0.0f64.to_bits());
            }
        }
        if s.bias {
            prop_assert!(r.iter().sum::<f64>().abs() <= 1e-7 * scale * 100.0);
        } else {
            prop_assert_eq!(fit.bias, 0.0);
        }
    }

    /// R3 and R4: restoration only grows the support, re-admits candidates only, respects the
    /// count limit and never increases the objective; R8: it is bit-for-bit repeatable.
    #[test]
    fn r3_restore_never_increases_the_error(
        s in system(12, 6),
        removed in proptest::collection::vec(any::<bool>(), 6),
        threshold in prop_oneof![Just(0.0), 0.0f64..0.1],
        max_count in 0usize..6,
    ) {
        let ls = LeastSquares::new(&s.x, s.bias);
        let t = ls.target(&s.y).unwrap();
        let n = s.x.cols();
        let mut support: Vec<bool> =
            (0..n).map(|j| s.support[j] && !removed[j]).collect();
        let candidates: Vec<usize> = (0..n).filter(|&j| !support[j] && removed[j]).collect();
        let before_support = support.clone();
        let Ok(before) = ls.fit(&t, &support, opts(s.lambda)) else { return Ok(()) };
        let rule = RestoreRule { threshold, max_count };
        let (fit, restored) =
            ls.restore(&t, &mut support, &candidates, opts(s.lambda), rule).unwrap();
        prop_assert!(fit.objective <= before.objective + 1e-9 * (1.0 + before.objective));
        prop_assert!(restored.len() <= max_count);
        for j in 0..n {
            prop_assert!(!before_support[j] || support[j], "support shrank at {j}");
            if support[j] && !before_support[j] {
                prop_assert!(restored.contains(&j) && candidates.contains(&j));
            }
            if !support[j] {
                prop_assert_eq!(fit.weights[j].to_bits(), 0.0f64.to_bits());
            }
        }
        let mut again = before_support.clone();
        let (fit2, restored2) =
            ls.restore(&t, &mut again, &candidates, opts(s.lambda), rule).unwrap();
        prop_assert_eq!(restored, restored2);
        prop_assert_eq!(
            fit.weights.iter().map(|w| w.to_bits()).collect::<Vec<_>>(),
            fit2.weights.iter().map(|w| w.to_bits()).collect::<Vec<_>>()
        );
    }

    /// R9: with the full support and λ = 0, targets generated by weights `w` (and a bias) are
    /// fitted back to `w` whenever `[X 1]` has full column rank.
    #[test]
    fn r9_full_rank_fit_reproduces_the_generating_weights(
        n in 1usize..6,
        extra in 2usize..6,
        bias in any::<bool>(),
        seed_x in proptest::collection::vec(-3.0f64..3.0, 64),
        w in proptest::collection::vec(-2.0f64..2.0, 6),
        b in -1.0f64..1.0,
    ) {
        let k = n + extra;
        let x = Matrix::new(k, n, (0..k * n).map(|i| seed_x[i % 64] + (i / 64) as f64).collect())
            .unwrap();
        let b = if bias { b } else { 0.0 };
        let y: Vec<f64> = (0..k)
            .map(|r| x.row(r).iter().zip(&w).map(|(a, w)| a * w).sum::<f64>() + b)
            .collect();
        let ls = LeastSquares::new(&x, bias);
        let t = ls.target(&y).unwrap();
        match ls.fit(&t, &vec![true; n], opts(0.0)) {
            Ok(fit) => {
                for j in 0..n {
                    prop_assert!((fit.weights[j] - w[j]).abs() <= 1e-6 * (1.0 + w[j].abs()),
                        "weight {j}: {} vs {}", fit.weights[j], w[j]);
                }
                prop_assert!((fit.bias - b).abs() <= 1e-6);
            }
            // Rank-deficient draws are reported, never solved into garbage.
            Err(e) => prop_assert!(e.cond > 1e6, "singular with cond {}", e.cond),
        }
    }

    /// R5: each pick is the unprocessed layer of highest current energy (ties to the lower
    /// index), with energies re-estimated between picks.
    #[test]
    fn r5_each_pick_has_the_highest_current_energy(
        initial in proptest::collection::vec(prop_oneof![0.0f64..10.0, (0u8..4).prop_map(f64::from)], 1..8),
        cuts in proptest::collection::vec(0.0f64..1.0, 8),
    ) {
        let mut e = initial.clone();
        let mut done = vec![false; e.len()];
        let mut steps = 0;
        while let Some(i) = next_layer(&e, &done) {
            prop_assert!(!done[i]);
            for j in 0..e.len() {
                if !done[j] {
                    prop_assert!(e[i] > e[j] || (e[i] == e[j] && i <= j));
                }
            }
            done[i] = true;
            // Pruning a layer lowers its own energy only.
            e[i] *= cuts[steps];
            steps += 1;
        }
        prop_assert_eq!(steps, initial.len());
        prop_assert_eq!(energy_order(&initial).len(), initial.len());
    }
}

#[test]
fn rank_deficient_unregularised_system_is_singular_not_garbage() {
    // Column 1 = 2·column 0.
    let x = Matrix::new(4, 2, vec![1.0, 2.0, 2.0, 4.0, -1.0, -2.0, 3.0, 6.0]).unwrap();
    let y = [1.0, 2.0, 3.0, 4.0];
    let r = fit_support(&x, &y, &[true, true], false, opts(0.0)).unwrap();
    assert!(r.is_err(), "{r:?}");
    // A ridge makes it well posed.
    let fit = fit_support(&x, &y, &[true, true], false, opts(0.1))
        .unwrap()
        .unwrap();
    assert!(fit.weights.iter().all(|w| w.is_finite()));
    // Fewer equations than unknowns.
    let x = Matrix::new(1, 3, vec![1.0, 2.0, 3.0]).unwrap();
    let r = fit_support(&x, &[1.0], &[true; 3], false, opts(0.0)).unwrap();
    assert_eq!(r.unwrap_err().cond, f64::INFINITY);
}

#[test]
fn ill_conditioned_systems_fall_back_to_qr() {
    // Nearly collinear columns: the normal equations lose too many digits for Cholesky.
    let eps = 1e-7;
    let x = Matrix::new(3, 2, vec![1.0, 1.0, 1.0, 1.0 + eps, 1.0, 1.0 - eps]).unwrap();
    let y = [2.0, 2.0 + eps, 2.0 - eps];
    let fit = fit_support(&x, &y, &[true, true], false, opts(0.0))
        .unwrap()
        .unwrap();
    assert_eq!(fit.solver, Solver::Qr);
    assert!((fit.weights[0] - 1.0).abs() < 1e-6 && (fit.weights[1] - 1.0).abs() < 1e-6);
}

#[test]
fn empty_support_fits_the_bias_alone() {
    let x = Matrix::new(3, 2, vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
    let fit = fit_support(&x, &[1.0, 2.0, 3.0], &[false, false], true, opts(0.0))
        .unwrap()
        .unwrap();
    assert_eq!(fit.weights, vec![0.0, 0.0]);
    assert!((fit.bias - 2.0).abs() < 1e-12);
    let none = fit_support(&x, &[1.0, 2.0, 3.0], &[false, false], false, opts(0.0))
        .unwrap()
        .unwrap();
    assert_eq!(none.solver, Solver::None);
    assert_eq!(none.sq_error, 14.0);
}

#[test]
fn budget_splits_follow_their_definitions() {
    let (delta, layers) = (0.04, 4);
    assert!(
        (BudgetSplit::Uniform.allowed_total_drop(delta, 2, layers, 0.005, 0.5) - 0.015).abs()
            < 1e-15
    );
    assert!(
        (BudgetSplit::Cumulative.allowed_total_drop(delta, 3, layers, 0.0, 0.5) - 0.03).abs()
            < 1e-15
    );
    assert!(
        (BudgetSplit::EnergyWeighted.allowed_total_drop(delta, 1, layers, 0.01, 0.25) - 0.02).abs()
            < 1e-15
    );
    // After the last layer the cumulative split allows exactly δ.
    assert_eq!(
        BudgetSplit::Cumulative.allowed_total_drop(delta, 4, layers, 0.0, 0.0),
        delta
    );
}

#[test]
fn ties_go_to_the_lower_index() {
    assert_eq!(
        energy_order(&[1.0, 3.0, 3.0, 2.0, f64::NAN]),
        vec![1, 2, 3, 0, 4]
    );
    assert_eq!(next_layer(&[], &[]), None);
}

#[test]
fn config_validation_rejects_bad_ranges() {
    let ok = EnergyPruneConfig::reconstruction_lenet5_mnist();
    assert!(ok.clone().validate().is_ok());
    let bad = [
        EnergyPruneConfig {
            calibration_images: 0,
            ..ok.clone()
        },
        EnergyPruneConfig {
            ridge_lambda: -1.0,
            ..ok.clone()
        },
        EnergyPruneConfig {
            max_accuracy_drop: 1.5,
            ..ok.clone()
        },
        EnergyPruneConfig {
            ratio_search: RatioSearch::Step {
                step: 0.0,
                max_ratio: 0.5,
            },
            ..ok.clone()
        },
        EnergyPruneConfig {
            restore: RestoreConfig {
                threshold: 0.0,
                max_fraction: 2.0,
            },
            ..ok.clone()
        },
        EnergyPruneConfig {
            max_condition: 0.5,
            ..ok.clone()
        },
    ];
    for c in bad {
        assert!(matches!(c.validate(), Err(Error::Config { .. })));
    }
    // The config and the outcome are plain serialisable data, for run records.
    fn serialisable<T: serde::Serialize + for<'de> serde::Deserialize<'de>>() {}
    serialisable::<EnergyPruneConfig>();
    serialisable::<PruneOutcome>();
}

mod pipeline;
