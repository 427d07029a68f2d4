//! How the library talks to its user without printing: a [`Reporter`] takes lines and hands out
//! an [`Observer`] per run. xtask implements it with terminal progress bars; tests use
//! [`Silent`].

use tensor_core::{NoopObserver, Observer};

/// The sink of everything a run loop has to say.
pub trait Reporter: Sync {
    /// A line for the user: a run finished or failed, a summary, a notice.
    fn line(&self, line: &str);

    /// An observer of one run's training events, labelled `label` (`iclr19-lenet5/b0.2-proj`).
    fn observer(&self, label: &str) -> Box<dyn Observer + '_>;

    /// The runs of an invocation start: `total` of them.
    fn runs_started(&self, total: usize) {
        let _ = total;
    }

    /// One run ended, recorded or failed.
    fn run_ended(&self) {}

    /// All runs ended.
    fn runs_finished(&self) {}

    /// Whether the user asked to stop: no further run starts (a running one stops through its
    /// observer).
    fn stop_requested(&self) -> bool {
        false
    }
}

/// A reporter that drops every line and observes nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn line(&self, _line: &str) {}

    fn observer(&self, _label: &str) -> Box<dyn Observer + '_> {
        Box::new(NoopObserver)
    }
}
