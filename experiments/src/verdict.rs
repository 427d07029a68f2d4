//! How the tables judge results: a run at chance accuracy is failed, and one method is "ahead"
//! of another only when the difference of their means exceeds both methods' seed spread.

use crate::render::format::mean_sd;

/// Whether `accuracy` (in [0, 1]) is no better than guessing among `classes`: less than a fifth
/// of the way from the guessing rate to a perfect score (28% for ten classes, 60% for two).
/// Such a run is labelled failed wherever it appears.
pub fn at_chance(accuracy: f64, classes: usize) -> bool {
    let guess = 1.0 / classes.max(1) as f64;
    accuracy < guess + (1.0 - guess) / 5.0
}

/// One method's accuracies over seeds, summarised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one seed).
    pub sd: f64,
    /// Seeds summarised.
    pub n: usize,
}

impl Spread {
    /// The mean and spread of `xs`.
    pub fn of(xs: &[f64]) -> Self {
        let (mean, sd) = mean_sd(xs);
        Self {
            mean,
            sd,
            n: xs.len(),
        }
    }

    /// A fraction as a Markdown cell: `92.14% ± 0.25`, or `92.08% (one seed)` where there is no
    /// spread to show (a zero would read as a measured one).
    pub fn percent(&self) -> String {
        if self.n < 2 {
            format!("{:.2}% (one seed)", 100.0 * self.mean)
        } else {
            format!("{:.2}% ± {:.2}", 100.0 * self.mean, 100.0 * self.sd)
        }
    }

    /// The standard deviation in percentage points as a CSV cell: empty for one seed.
    pub fn sd_percent_csv(&self) -> String {
        if self.n < 2 {
            String::new()
        } else {
            format!("{:.4}", 100.0 * self.sd)
        }
    }
}

/// How two methods compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The first is ahead by more than either method's spread.
    Ahead,
    /// The first is behind by more than either method's spread.
    Behind,
    /// The difference is within the seed spread.
    Within,
    /// One of the two has a single seed, so there is no spread to judge against.
    Undetermined,
}

impl Verdict {
    /// `a` against `b`.
    pub fn of(a: Spread, b: Spread) -> Self {
        if a.n < 2 || b.n < 2 {
            return Verdict::Undetermined;
        }
        let d = a.mean - b.mean;
        let spread = a.sd.max(b.sd);
        if d > spread {
            Verdict::Ahead
        } else if -d > spread {
            Verdict::Behind
        } else {
            Verdict::Within
        }
    }

    /// `ahead`, `behind`, `not ahead: within the seed spread`.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Ahead => "ahead",
            Verdict::Behind => "behind",
            Verdict::Within => "within the seed spread",
            Verdict::Undetermined => "not judged (a single seed has no spread)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Spread, Verdict, at_chance};

    #[test]
    fn ahead_needs_more_than_either_spread() {
        let a = Spread {
            mean: 0.784,
            sd: 0.0896,
            n: 3,
        };
        let b = Spread {
            mean: 0.678,
            sd: 0.1348,
            n: 3,
        };
        // +10.6 points, but one method's spread is 13.5 points.
        assert_eq!(Verdict::of(a, b), Verdict::Within);
        let c = Spread {
            mean: 0.99,
            sd: 0.001,
            n: 3,
        };
        let d = Spread {
            mean: 0.97,
            sd: 0.002,
            n: 3,
        };
        assert_eq!(Verdict::of(c, d), Verdict::Ahead);
        assert_eq!(Verdict::of(d, c), Verdict::Behind);
        // One seed: no spread, no verdict.
        assert_eq!(Verdict::of(Spread::of(&[0.99]), d), Verdict::Undetermined);
    }

    #[test]
    fn chance_is_below_twice_the_guessing_rate() {
        assert!(at_chance(0.0998, 10));
        assert!(at_chance(0.25, 10));
        assert!(!at_chance(0.5, 10));
        assert!(at_chance(0.55, 2));
        assert!(!at_chance(0.995, 2));
    }
}
