//! Progress events as plain data. Libraries report through an [`Observer`] and never render
//! anything; binaries decide how (progress bars, log lines, nothing).

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

/// A run is starting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    /// A label for the run (experiment and seed).
    pub name: String,
    /// Epochs the run plans.
    pub epochs: usize,
    /// Batches per epoch.
    pub batches_per_epoch: usize,
}

/// One optimisation step finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchStats {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Batch within the epoch (0-based).
    pub batch: usize,
    /// Training loss of the batch.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Samples in the batch.
    pub samples: usize,
}

/// An evaluation finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalStats {
    /// Epoch after which the evaluation ran (0-based).
    pub epoch: usize,
    /// Which split (`val`, `test`, `train`).
    pub split: String,
    /// Top-1 accuracy in `[0, 1]`.
    pub accuracy: f64,
    /// Mean loss.
    pub loss: f64,
    /// Samples evaluated.
    pub samples: usize,
}

/// A projection (pruning) step finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionStats {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Batch within the epoch.
    pub batch: usize,
    /// Nonzero weights kept.
    pub nonzero_weights: u64,
    /// Energy after the projection relative to the dense model.
    pub relative_energy: f64,
    /// The budget it was projected to, relative to the dense model.
    pub relative_budget: f64,
}

/// Receives progress events from a long-running library call.
pub trait Observer {
    /// A run is starting.
    fn on_run_start(&mut self, start: &RunStart) {
        let _ = start;
    }

    /// An epoch is starting.
    fn on_epoch_start(&mut self, epoch: usize) {
        let _ = epoch;
    }

    /// A batch finished; returning `Break` stops the run cleanly at this point.
    fn on_batch_end(&mut self, stats: &BatchStats) -> ControlFlow<()> {
        let _ = stats;
        ControlFlow::Continue(())
    }

    /// An evaluation finished.
    fn on_eval(&mut self, stats: &EvalStats) {
        let _ = stats;
    }

    /// A projection finished.
    fn on_projection(&mut self, stats: &ProjectionStats) {
        let _ = stats;
    }
}

/// Ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// See [`Observer::on_run_start`].
    RunStart(RunStart),
    /// See [`Observer::on_epoch_start`].
    EpochStart(usize),
    /// See [`Observer::on_batch_end`].
    BatchEnd(BatchStats),
    /// See [`Observer::on_eval`].
    Eval(EvalStats),
    /// See [`Observer::on_projection`].
    Projection(ProjectionStats),
}

/// Keeps every event, for tests and run records; can stop a run after a number of batches.
#[derive(Clone, Debug, Default)]
pub struct RecordingObserver {
    /// Events in arrival order.
    pub events: Vec<Event>,
    /// Stop after this many batches, if set.
    pub stop_after_batches: Option<usize>,
}

impl Observer for RecordingObserver {
    fn on_run_start(&mut self, start: &RunStart) {
        self.events.push(Event::RunStart(start.clone()));
    }
    fn on_epoch_start(&mut self, epoch: usize) {
        self.events.push(Event::EpochStart(epoch));
    }
    fn on_batch_end(&mut self, stats: &BatchStats) -> ControlFlow<()> {
        self.events.push(Event::BatchEnd(stats.clone()));
        let batches = self
            .events
            .iter()
            .filter(|e| matches!(e, Event::BatchEnd(_)))
            .count();
        match self.stop_after_batches {
            Some(n) if batches >= n => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
    fn on_eval(&mut self, stats: &EvalStats) {
        self.events.push(Event::Eval(stats.clone()));
    }
    fn on_projection(&mut self, stats: &ProjectionStats) {
        self.events.push(Event::Projection(stats.clone()));
    }
}
