use super::*;

#[test]
fn cosine_schedule_runs_from_base_to_zero() {
    let s = LrSchedule::Cosine;
    assert_eq!(s.rate(0.1, 0, 0, 100), 0.1);
    assert!((s.rate(0.1, 0, 50, 100) - 0.05).abs() < 1e-12);
    assert!(s.rate(0.1, 0, 100, 100).abs() < 1e-12);
    let mut prev = f64::INFINITY;
    for i in 0..=100 {
        let r = s.rate(0.1, 0, i, 100);
        assert!(r <= prev);
        prev = r;
    }
}

#[test]
fn step_schedule_multiplies_at_milestones() {
    let s = LrSchedule::Step {
        milestones: vec![2, 4],
        gamma: 0.1,
    };
    let r: Vec<f64> = (0..6).map(|e| s.rate(1.0, e, 0, 1)).collect();
    for (got, want) in r.iter().zip([1.0, 1.0, 0.1, 0.1, 0.01, 0.01]) {
        assert!((got - want).abs() < 1e-12, "{r:?}");
    }
}
