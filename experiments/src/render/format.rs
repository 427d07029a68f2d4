//! The one number formatter of the renderers: thousands separators for readers, short axis
//! labels, and the mean and standard deviation that every multi-seed table reports.

/// Thousands separators: 1234567 → `1,234,567`.
pub fn grouped(n: u64) -> String {
    group_digits(&n.to_string())
}

/// A value rounded to an integer with thousands separators: -1000.4 → `-1,000`.
pub fn grouped_f64(v: f64) -> String {
    let digits = group_digits(&format!("{:.0}", v.abs()));
    if v < 0.0 {
        format!("-{digits}")
    } else {
        digits
    }
}

fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Integers (and anything of 1,000 or more) grouped; other values with four decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 1000.0 {
        grouped_f64(v.round())
    } else {
        format!("{v:.4}")
    }
}

/// Axis labels: `0`, `500`, `1.5k`, `20M`, `2.5G`.
pub fn short(v: f64) -> String {
    let (div, suffix) = match v.abs() {
        a if a >= 1e12 => (1e12, "T"),
        a if a >= 1e9 => (1e9, "G"),
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let text = format!("{:.2}", v / div);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// Mean and sample standard deviation (0 for one value; NaN for none).
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// `true` or `false`, the spelling pandas reads as a boolean.
pub fn boolean(b: bool) -> String {
    b.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_and_short_labels() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(61_470), "61,470");
        assert_eq!(grouped(17_107_544), "17,107,544");
        assert_eq!(grouped_f64(1_234_567.0), "1,234,567");
        assert_eq!(grouped_f64(-1_000.0), "-1,000");
        assert_eq!(number(0.25), "0.2500");
        assert_eq!(number(1_500.6), "1,501");
        assert_eq!(short(2_500_000.0), "2.5M");
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1_500.0), "1.5k");
    }

    #[test]
    fn mean_and_sample_deviation() {
        assert_eq!(mean_sd(&[1.0]), (1.0, 0.0));
        let (m, sd) = mean_sd(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((sd - 1.0).abs() < 1e-12);
        assert!(mean_sd(&[]).0.is_nan());
    }
}
