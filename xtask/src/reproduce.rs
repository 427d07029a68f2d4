//! `cargo xtask reproduce` and `cargo xtask train`: expand the registry into runs, execute them
//! (in parallel with `--jobs`), and write one JSON record per run atomically.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use serde::{Deserialize, Serialize};
use tensor_core::{DType, Device, SeededInit};

use crate::data::DataSource;
use crate::experiments::{Experiment, RunContext, RunKind, RunSpec};
use crate::flags::{ReproduceArgs, ScheduleArg, TrainArgs};
use crate::paths::{
    check_writable_dir, default_out_dir, git_revision, remove_stale_temp_files, write_json_atomic,
};
use crate::progress::Progress;
use crate::train::{self, LrSchedule, TrainSpec};

/// Everything a finished run leaves behind.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// Experiment name.
    pub experiment: String,
    /// Run id within the experiment.
    pub run: String,
    /// The exact spec that ran.
    pub spec: RunSpec,
    /// The run's seed.
    pub seed: u64,
    /// Git revision of the code.
    pub git_revision: String,
    /// Version of the toolkit.
    pub version: String,
    /// Whether the run is bit-for-bit reproducible from its seed on this device.
    pub deterministic: bool,
    /// Experiment-specific results.
    pub metrics: serde_json::Value,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
}

/// Training records and epochs of a baseline run under `--smoke`.
const SMOKE_RECORDS: usize = 256;
const SMOKE_EPOCHS: usize = 2;

/// `cargo xtask reproduce`.
pub fn run(args: &ReproduceArgs) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(default_out_dir);
    let ctx = RunContext {
        device: args.device,
        data_dir: args.data_dir.clone(),
    };
    let experiments: Vec<Experiment> = if args.only.is_empty() {
        Experiment::ALL.to_vec()
    } else {
        args.only.clone()
    };
    let runs: Vec<RunSpec> = experiments
        .iter()
        .flat_map(|e| e.runs(args.profile, &ctx))
        .filter(|r| {
            args.filter
                .as_ref()
                .is_none_or(|f| r.id.contains(f.as_str()))
        })
        .map(|mut r| {
            if args.smoke
                && let RunKind::Train(spec) = &mut r.kind
            {
                spec.train_limit = Some(SMOKE_RECORDS);
                spec.epochs = spec.epochs.min(SMOKE_EPOCHS);
            }
            r
        })
        .collect();
    let mut done = Vec::new();
    let mut todo = Vec::new();
    for r in runs {
        if args.resume && recorded(&out, &r)? {
            done.push(r);
        } else {
            todo.push(r);
        }
    }
    if args.dry_run {
        for r in &todo {
            println!("run  {} / {}", r.experiment, r.id);
        }
        for r in &done {
            println!("skip {} / {} (recorded)", r.experiment, r.id);
        }
        return Ok(());
    }
    // Fail before any training if results could not be written; after a kill, clear the
    // temporary files the killed process left (records and checkpoints themselves are whole).
    check_writable_dir(&out)?;
    let progress = Progress::new();
    if args.resume {
        let removed = remove_stale_temp_files(&out)?;
        if removed > 0 {
            progress.println(format!(
                "removed {removed} temporary file(s) left by an interrupted run"
            ));
        }
    }
    progress.println(format!(
        "reproduce ({:?} profile): {} runs to do, {} already recorded, output in {}",
        args.profile,
        todo.len(),
        done.len(),
        out.display()
    ));
    let overall = progress.bar(todo.len() as u64, "reproduce");
    let queue = Mutex::new(todo.iter());
    let failures = Mutex::new(Vec::new());
    // Runs share nothing but the dense-model cache (which has its own lock): one per core.
    let jobs = requested_jobs(args).clamp(1, todo.len().max(1));
    let threads = threads_per_job(args);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                // Each job's parallel loops (convolutions, GEMMs) run in a pool of its own. A
                // thread outside rayon's pool hands every loop to the shared workers and sleeps
                // until they finish: two e2train runs sharing the global pool took 130 ms per
                // iteration against 85 ms as two processes.
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("reproduce-job-{i}"))
                    .build();
                let work = || loop {
                    let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some(run) = next else { break };
                    if crate::progress::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    if let Err(e) = execute(run, &out, args.resume, &progress) {
                        progress.println(format!("FAILED {} / {}: {e:#}", run.experiment, run.id));
                        if let Ok(mut f) = failures.lock() {
                            f.push(format!("{} / {}", run.experiment, run.id));
                        }
                    }
                    overall.inc(1);
                };
                match pool {
                    Ok(pool) => pool.install(work),
                    // Without a pool of its own the job still runs, on the shared one.
                    Err(_) => work(),
                }
            });
        }
    });
    overall.finish_and_clear();
    let failures = failures.into_inner().unwrap_or_default();
    for r in done.iter().chain(&todo) {
        if let Some(line) = summary_line(&out, r) {
            progress.println(line);
        }
    }
    progress.println(format!(
        "records: {}\ncheckpoints: {}",
        out.join("records").display(),
        out.join("checkpoints").display()
    ));
    if !failures.is_empty() {
        bail!("{} run(s) failed: {}", failures.len(), failures.join(", "));
    }
    Ok(())
}

/// Parallel runs keep every core busy already. candle's elementwise thread pool serialises its
/// calls behind one lock and spin-waits for its workers, so two runs sharing it spent a quarter
/// of their CPU time spinning: with more than one job the pool gets no extra threads, unless
/// `CANDLE_NUM_THREADS` says otherwise. candle's GEMMs split their work for `RAYON_NUM_THREADS`
/// threads (all cores when unset, read from the system on every call), so that is set to a
/// job's share of the cores, the size of its own pool (see [`run`]). Must run before any tensor
/// work (candle sizes its pool once) and before other threads exist.
pub fn limit_threads_per_job(args: &ReproduceArgs) {
    if requested_jobs(args) <= 1 {
        return;
    }
    // SAFETY: called first thing in `main`, while this is the only thread.
    unsafe {
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            std::env::set_var("RAYON_NUM_THREADS", threads_per_job(args).to_string());
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `--jobs`, or one job per core.
fn requested_jobs(args: &ReproduceArgs) -> usize {
    args.jobs.unwrap_or_else(cores).max(1)
}

/// Threads of each job's pool: its share of the cores, at least one.
fn threads_per_job(args: &ReproduceArgs) -> usize {
    (cores() / requested_jobs(args)).max(1)
}

/// One line on a recorded run's headline result, if it has a record.
fn summary_line(out: &Path, run: &RunSpec) -> Option<String> {
    let text = std::fs::read_to_string(record_path(out, run)).ok()?;
    let record: RunRecord = serde_json::from_str(&text).ok()?;
    let m = &record.metrics;
    let what = match &run.kind {
        RunKind::Geometry { .. } => format!(
            "{} weights, {} MACs (batch 1, biases excluded)",
            m["total_weights"], m["total_macs"]
        ),
        RunKind::EnergyValidation { .. } => format!(
            "{} of {} cells {} of {} ({})",
            m["cells_within"],
            m["cells"],
            m["tolerance"].as_str()?,
            m["source"].as_str()?,
            m["energy_model"].as_str()?
        ),
        RunKind::Train(spec) => format!(
            "{} on {}: test accuracy {:.2}% on {} images after {} epochs, seed {}",
            spec.arch,
            spec.dataset,
            100.0 * m["final_accuracy"].as_f64()?,
            m["test_samples"],
            spec.epochs,
            spec.seed
        ),
        RunKind::Constrained(spec) => format!(
            "{}: energy {:.4} of dense (exact {:.4}, modelled on iclr19), {} of {} weights, \
             test accuracy {:.2}% (dense {:.2}%)",
            spec.method(),
            m["relative_energy_relaxed"].as_f64()?,
            m["relative_energy_exact"].as_f64()?,
            m["nonzero_weights"],
            m["total_weights"],
            100.0 * m["test_accuracy"].as_f64()?,
            100.0 * m["dense_test_accuracy"].as_f64()?,
        ),
        RunKind::E2Train(spec) => format!(
            "{}: test accuracy {:.2}%, {} {:.4e} MAC16, saving {:.1}% vs baseline, \
             {}/{} iterations executed, {:.0}s training ({}s process CPU)",
            spec.label(),
            100.0 * m["test_accuracy"].as_f64()?,
            m["energy_label"].as_str()?,
            m["training_energy"]["forward"].as_f64()?
                + m["training_energy"]["input_grad"].as_f64()?
                + m["training_energy"]["weight_grad"].as_f64()?,
            100.0 * m["saving_vs_baseline"].as_f64()?,
            m["executed_iterations"],
            m["iterations"],
            m["train_seconds"].as_f64()?,
            m["train_process_cpu_seconds"]
                .as_f64()
                .map_or("?".into(), |s| format!("{s:.0}")),
        ),
        RunKind::Eap(_) => crate::eap::summary(m)?,
        RunKind::EapEstimate(_) => crate::eap::estimate_summary(m)?,
        RunKind::EapImagenet { .. } => return None,
    };
    Some(format!(
        "{:<34} {what}",
        format!("{}/{}", run.experiment, run.id)
    ))
}

/// Whether `run` has a record a resume may skip: one that parses and belongs to the same spec.
/// A damaged or foreign record is an error naming it, never silently kept or overwritten.
fn recorded(out: &Path, run: &RunSpec) -> Result<bool> {
    let path = record_path(out, run);
    if !path.exists() {
        return Ok(false);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let record: RunRecord = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid run record; delete it to run {} again",
            path.display(),
            run.id
        )
    })?;
    if record.spec != *run {
        bail!(
            "{} records another spec of {} / {}; delete it or use another --out",
            path.display(),
            run.experiment,
            run.id
        );
    }
    Ok(true)
}

fn record_path(out: &Path, run: &RunSpec) -> PathBuf {
    out.join("records")
        .join(run.experiment.name())
        .join(format!("{}.json", run.id))
}

fn execute(run: &RunSpec, out: &Path, resume: bool, progress: &Progress) -> Result<()> {
    let started = Instant::now();
    let label = format!("{}/{}", run.experiment, run.id);
    let (metrics, deterministic) = match &run.kind {
        RunKind::Geometry { arch } => (geometry_metrics(*arch)?, true),
        RunKind::EnergyValidation { check } => {
            (serde_json::to_value(crate::validation::run(*check)?)?, true)
        }
        RunKind::Train(spec) => {
            let dir = out
                .join("checkpoints")
                .join(run.experiment.name())
                .join(&run.id);
            let mut obs = progress.run_observer(label.clone());
            let outcome = train::train(spec, &dir, resume, &mut obs)?;
            (
                serde_json::to_value(&outcome)?,
                spec.device == tensor_core::DeviceSpec::Cpu && !spec.arch.uses_dropout(),
            )
        }
        RunKind::Constrained(spec) => {
            let dir = out
                .join("checkpoints")
                .join(run.experiment.name())
                .join(&run.id);
            let metrics = crate::constrained::run(spec, out, &dir, &label, progress)?;
            (
                serde_json::to_value(&metrics)?,
                spec.dense.device == tensor_core::DeviceSpec::Cpu
                    && !spec.dense.arch.uses_dropout(),
            )
        }
        RunKind::E2Train(spec) => {
            let metrics = crate::e2train::run(spec, &label, progress)?;
            // Every random stream of e2-train (drops, gates, stochastic depth) and of the data
            // (shuffling, augmentation) is drawn from the run's seed.
            (
                serde_json::to_value(&metrics)?,
                spec.device == tensor_core::DeviceSpec::Cpu,
            )
        }
        RunKind::Eap(spec) => {
            let dir = out
                .join("checkpoints")
                .join(run.experiment.name())
                .join(&run.id);
            let metrics = crate::eap::run(spec, out, &dir, &label, progress)?;
            // Fine-tuning is seeded and the least squares are deterministic across threads.
            (
                serde_json::to_value(&metrics)?,
                spec.dense.device == tensor_core::DeviceSpec::Cpu
                    && !spec.dense.arch.uses_dropout(),
            )
        }
        RunKind::EapEstimate(spec) => (serde_json::to_value(crate::eap::estimate(spec)?)?, true),
        RunKind::EapImagenet { arch } => {
            crate::eap::imagenet(*arch)?;
            (serde_json::Value::Null, false)
        }
    };
    let record = RunRecord {
        experiment: run.experiment.name().into(),
        run: run.id.clone(),
        spec: run.clone(),
        seed: run.seed(),
        git_revision: git_revision(),
        version: env!("CARGO_PKG_VERSION").into(),
        deterministic,
        metrics,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_json_atomic(&record_path(out, run), &record)?;
    progress.println(format!("done {label} in {:.1}s", record.wall_seconds));
    Ok(())
}

/// Per-layer geometry of a model and its totals, checked against the exact totals the specs give.
fn geometry_metrics(arch: Arch) -> Result<serde_json::Value> {
    let init = SeededInit::new(0);
    let vb = init.var_builder(DType::F32, &Device::Cpu);
    let [c, _, _] = arch.input_shape();
    let net = cnn_zoo::build(arch, arch.default_classes(), c, vb)
        .with_context(|| format!("cannot build {arch}"))?;
    let layers: Vec<serde_json::Value> = net
        .layers()
        .iter()
        .map(|l| {
            serde_json::json!({
                "name": l.name, "geometry": l.geometry,
                "weights": l.geometry.weights(), "macs": l.geometry.macs(),
            })
        })
        .collect();
    let weights: usize = net.layers().iter().map(|l| l.geometry.weights()).sum();
    let macs: usize = net.layers().iter().map(|l| l.geometry.macs()).sum();
    // energy-models.md B.10 and A.7 (biases excluded).
    let expected = match arch {
        Arch::AlexnetCaffe => Some((60_954_656, 724_406_816)),
        Arch::Googlenet => Some((6_990_272, 1_582_671_872)),
        Arch::Squeezenet1_0 => Some((1_244_448, 832_667_936)),
        _ => None,
    };
    if let Some((w, m)) = expected
        && (w, m) != (weights, macs)
    {
        bail!("{arch}: {weights} weights / {macs} MACs, the spec says {w} / {m}");
    }
    Ok(serde_json::json!({
        "arch": arch.to_string(), "layers": layers,
        "total_weights": weights, "total_macs": macs,
        "expected": expected.map(|(w, m)| serde_json::json!({"weights": w, "macs": m})),
    }))
}

/// `cargo xtask train`.
pub fn train_one(args: &TrainArgs) -> Result<()> {
    let mut spec = TrainSpec::recipe(args.arch, args.dataset);
    if let Some(dir) = &args.data_dir {
        spec.data = DataSource::Dir(dir.clone());
    }
    spec.train_limit = args.train_limit;
    if let Some(e) = args.epochs {
        spec.epochs = e;
    }
    if let Some(b) = args.batch {
        spec.batch = b;
    }
    if let Some(lr) = args.lr {
        spec.optimizer.lr = lr;
    }
    spec.schedule = match args.schedule {
        ScheduleArg::Constant => LrSchedule::Constant,
        ScheduleArg::Cosine => LrSchedule::Cosine,
    };
    spec.seed = args.seed;
    spec.device = args.device;
    let out = args.out.clone().unwrap_or_else(default_out_dir);
    let id = format!("{}-{}-seed{}", spec.arch, spec.dataset, spec.seed);
    let dir = out.join("train").join(&id);
    check_writable_dir(&dir)?;
    let progress = Progress::new();
    let started = Instant::now();
    let mut obs = progress.run_observer(id.clone());
    let outcome = train::train(&spec, &dir, args.resume, &mut obs)?;
    drop(obs);
    let record = serde_json::json!({
        "spec": spec, "outcome": outcome, "git_revision": git_revision(),
        "wall_seconds": started.elapsed().as_secs_f64(),
    });
    write_json_atomic(&dir.join("record.json"), &record)?;
    println!(
        "{id}: test accuracy {:.2}% on {} test images after {} epochs ({} training images, {:.0}s); \
         checkpoint {}",
        100.0 * outcome.final_accuracy,
        outcome.test_samples,
        spec.epochs,
        outcome.train_samples,
        started.elapsed().as_secs_f64(),
        outcome.checkpoint.display()
    );
    Ok(())
}
