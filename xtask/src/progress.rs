//! Terminal rendering of progress events: the only place that draws bars, and the
//! [`Reporter`] the experiments library reports through. With a TTY it shows an overall bar plus
//! a bar per run and epoch; without one (CI, pipes, a batch job's log) it prints a line per
//! epoch and, within a long epoch, one every [`HEARTBEAT`].

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use experiments::Reporter;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tensor_core::{BatchStats, EvalStats, Observer, ProjectionStats, RunStart};

/// Without a terminal, the longest a running epoch stays silent.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// Set by the Ctrl-C handler; observers turn it into a clean stop at the next batch.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Shared progress display for one xtask invocation.
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    tty: bool,
    /// The bar counting the runs of a `reproduce`.
    overall: Arc<Mutex<Option<ProgressBar>>>,
}

impl Progress {
    /// A display on stderr; bars only when stderr is a terminal.
    pub fn new() -> Self {
        let tty = std::io::stderr().is_terminal();
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            tty,
            overall: Arc::default(),
        }
    }

    /// Prints a line without tearing the bars.
    pub fn println(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        if self.tty {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// A bar counting `len` items with a label.
    pub fn bar(&self, len: u64, label: impl Into<String>) -> ProgressBar {
        let style = ProgressStyle::with_template(
            "{prefix:>24} [{bar:30}] {pos}/{len} {msg} ({elapsed_precise}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let pb = self.multi.add(ProgressBar::new(len));
        pb.set_style(style);
        pb.set_prefix(label.into());
        pb
    }

    /// A bar counting bytes.
    pub fn byte_bar(&self, len: u64, label: impl Into<String>) -> ProgressBar {
        let style = ProgressStyle::with_template(
            "{prefix:>24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let pb = self.multi.add(ProgressBar::new(len));
        pb.set_style(style);
        pb.set_prefix(label.into());
        pb
    }

    /// An observer rendering one training run.
    pub fn run_observer(&self, label: impl Into<String>) -> RunProgress {
        RunProgress {
            progress: self.clone(),
            label: label.into(),
            bar: None,
            epoch: 0,
            epochs: 0,
            loss_sum: 0.0,
            batches: 0,
            batches_per_epoch: 0,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }
}

impl Reporter for Progress {
    fn line(&self, line: &str) {
        self.println(line);
    }

    fn observer(&self, label: &str) -> Box<dyn Observer + '_> {
        Box::new(self.run_observer(label))
    }

    fn runs_started(&self, total: usize) {
        if let Ok(mut overall) = self.overall.lock() {
            *overall = Some(self.bar(total as u64, "reproduce"));
        }
    }

    fn run_ended(&self) {
        if let Ok(overall) = self.overall.lock()
            && let Some(bar) = overall.as_ref()
        {
            bar.inc(1);
        }
    }

    fn runs_finished(&self) {
        if let Ok(mut overall) = self.overall.lock()
            && let Some(bar) = overall.take()
        {
            bar.finish_and_clear();
        }
    }

    fn stop_requested(&self) -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }
}

/// Renders one run's events: a batch bar per epoch, a line per evaluation.
pub struct RunProgress {
    progress: Progress,
    label: String,
    bar: Option<ProgressBar>,
    epoch: usize,
    epochs: usize,
    loss_sum: f64,
    batches: usize,
    batches_per_epoch: usize,
    started: Instant,
    /// When the last line of this run was printed (for the heartbeat without a terminal).
    last_line: Instant,
}

impl RunProgress {
    fn finish_bar(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for RunProgress {
    fn drop(&mut self) {
        self.finish_bar();
    }
}

impl Observer for RunProgress {
    fn on_run_start(&mut self, start: &RunStart) {
        self.epochs = start.epochs;
        self.batches_per_epoch = start.batches_per_epoch;
        self.started = Instant::now();
        self.last_line = self.started;
        self.progress.println(format!(
            "{}: {} epochs x {} batches",
            self.label, start.epochs, start.batches_per_epoch
        ));
        self.bar = Some(
            self.progress
                .bar(start.batches_per_epoch as u64, self.label.clone()),
        );
    }

    fn on_epoch_start(&mut self, epoch: usize) {
        self.epoch = epoch;
        self.loss_sum = 0.0;
        self.batches = 0;
        if let Some(b) = &self.bar {
            b.reset();
            b.set_message(format!("epoch {}/{}", epoch + 1, self.epochs));
            b.enable_steady_tick(Duration::from_millis(500));
        }
    }

    fn on_batch_end(&mut self, stats: &BatchStats) -> ControlFlow<()> {
        self.loss_sum += stats.loss;
        self.batches += 1;
        if let Some(b) = &self.bar {
            b.inc(1);
            if self.batches.is_multiple_of(10) {
                b.set_message(format!(
                    "epoch {}/{} loss {:.4}",
                    stats.epoch + 1,
                    self.epochs,
                    self.loss_sum / self.batches as f64
                ));
            }
        }
        if !self.progress.tty && self.last_line.elapsed() >= HEARTBEAT {
            self.last_line = Instant::now();
            self.progress.println(format!(
                "{}: epoch {}/{} batch {}/{} train loss {:.4} ({:.0}s)",
                self.label,
                stats.epoch + 1,
                self.epochs,
                self.batches,
                self.batches_per_epoch,
                self.loss_sum / self.batches as f64,
                self.started.elapsed().as_secs_f64()
            ));
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn on_eval(&mut self, stats: &EvalStats) {
        self.last_line = Instant::now();
        let train_loss = if self.batches > 0 {
            format!(" train loss {:.4}", self.loss_sum / self.batches as f64)
        } else {
            String::new()
        };
        // Evaluations outside a training schedule (pruning steps) have no epoch count.
        let when = if self.epochs > 0 {
            format!("epoch {}/{}", stats.epoch + 1, self.epochs)
        } else {
            format!("evaluation {}", stats.epoch + 1)
        };
        self.progress.println(format!(
            "{}: {when}{} {} acc {:.2}% loss {:.4} ({} samples, {:.0}s)",
            self.label,
            train_loss,
            stats.split,
            100.0 * stats.accuracy,
            stats.loss,
            stats.samples,
            self.started.elapsed().as_secs_f64()
        ));
    }

    fn on_projection(&mut self, stats: &ProjectionStats) {
        if let Some(b) = &self.bar {
            b.set_message(format!(
                "energy {:.3} (budget {:.3}), {} nonzero",
                stats.relative_energy, stats.relative_budget, stats.nonzero_weights
            ));
        }
    }
}
