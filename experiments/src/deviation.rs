//! Where a run departs from the paper's or the reference code's settings, and why. Every run spec
//! that departs carries its [`Deviation`]s, so the record says it, and every table prints them in
//! its caption next to the numbers.

use serde::{Deserialize, Serialize};

/// One setting that differs from the reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Deviation {
    /// The setting (`epochs per phase`).
    pub setting: String,
    /// The paper's or reference code's value.
    pub reference: String,
    /// This run's value.
    pub ours: String,
    /// Why (a measurement or a budget, not a preference).
    pub reason: String,
}

impl Deviation {
    /// `setting` is `ours` instead of the reference's `reference`, because `reason`.
    pub fn new(
        setting: impl Into<String>,
        reference: impl ToString,
        ours: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            setting: setting.into(),
            reference: reference.to_string(),
            ours: ours.to_string(),
            reason: reason.into(),
        }
    }
}

/// The deviations of a table's runs, each once, in first-seen order, as the caption's last
/// sentence: ` Deviations from the reference settings: epochs per phase 5 (reference 30): ...`,
/// with a leading space so it follows the caption's text directly; empty when there are none.
pub fn caption<'a>(deviations: impl IntoIterator<Item = &'a Deviation>) -> String {
    let mut seen: Vec<&Deviation> = Vec::new();
    for d in deviations {
        if !seen.contains(&d) {
            seen.push(d);
        }
    }
    if seen.is_empty() {
        return String::new();
    }
    let items: Vec<String> = seen
        .iter()
        .map(|d| {
            format!(
                "{} {} (reference {}): {}",
                d.setting, d.ours, d.reference, d.reason
            )
        })
        .collect();
    format!(
        " Deviations from the reference settings: {}.",
        items.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::{Deviation, caption};

    #[test]
    fn caption_lists_each_deviation_once() {
        let a = Deviation::new("epochs per phase", 30, 5, "time budget");
        let b = Deviation::new("batch", 128, 16, "memory");
        assert_eq!(caption([&a, &b, &a]).matches("epochs per phase").count(), 1);
        assert!(caption([&a]).starts_with(" Deviations from the reference settings: epochs"));
        assert_eq!(caption([]), "");
    }
}
