//! The run loop of `cargo xtask reproduce` and the single run of `cargo xtask train`: expand the
//! registry into runs, skip the recorded ones on resume, execute the rest in parallel jobs, and
//! write one record per run atomically.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use datasets::DatasetId;
use serde::Serialize;
use tensor_core::{DeviceKind, DeviceSpec, LrDecay, LrSchedule};

use crate::data::{DataDir, DataSource};
use crate::lock::{self, FileLock};
use crate::paths::{check_writable_dir, git_revision, remove_stale_temp_files, write_json_atomic};
use crate::record::{self, RunRecord};
use crate::registry::{
    self, Experiment, InitFiles, Metrics, Profile, RunContext, RunEnv, RunKind, RunSpec,
};
use crate::reporter::Reporter;
use crate::train::{self, InitFrom, TrainOutcome, TrainSpec};

/// What `reproduce` runs and where.
#[derive(Clone, Debug)]
pub struct ReproduceOptions {
    /// Profile.
    pub profile: Profile,
    /// Only these experiments (every experiment when empty).
    pub only: Vec<Experiment>,
    /// Devices of the training runs, all of one kind (`cpu`, or GPUs): job `j` runs on device
    /// `j mod n`. Run specs record the kind only, so a run has one spec on any of them.
    pub devices: Vec<DeviceSpec>,
    /// Runs executed in parallel (one per core when `None`).
    pub jobs: Option<usize>,
    /// Skip recorded runs and continue interrupted ones from their checkpoints.
    pub resume: bool,
    /// Output directory.
    pub out: PathBuf,
    /// Directory with full datasets (full profile).
    pub data_dir: Option<PathBuf>,
    /// The ILSVRC-2012 folder (`train/`, `val/`) of the full profile's ImageNet experiments.
    pub imagenet_dir: Option<PathBuf>,
    /// Only the runs whose id contains this text.
    pub filter: Option<String>,
    /// Only this deterministic slice of the run list (a job array's task).
    pub shard: Option<Shard>,
    /// Dense models of these architectures start from these weight files (PyTorch state dicts)
    /// and are used as they are, not trained: the compression and pruning runs start from them.
    pub init_from: InitFiles,
    /// Shrink every baseline training run to [`SMOKE_RECORDS`] records and [`SMOKE_EPOCHS`]
    /// epochs (the fault-injection tests kill and resume real runs; the specs show it).
    pub smoke: bool,
}

/// Training records of a baseline run under `smoke`.
pub const SMOKE_RECORDS: usize = 256;
/// Most epochs of a baseline run under `smoke`.
pub const SMOKE_EPOCHS: usize = 2;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl ReproduceOptions {
    /// Parallel jobs: as asked, else one per core on the CPU and one on a GPU (jobs sharing one
    /// GPU would contend for it); at least one.
    pub fn jobs(&self) -> usize {
        let default = || match self.kind() {
            DeviceKind::Cpu => cores(),
            DeviceKind::Cuda => self.devices.len(),
        };
        self.jobs.unwrap_or_else(default).max(1)
    }

    /// The kind of the devices (the CPU when none are given).
    pub fn kind(&self) -> DeviceKind {
        self.devices.first().map_or(DeviceKind::Cpu, |d| d.kind())
    }

    /// The device job `job` runs on.
    pub fn device_of_job(&self, job: usize) -> DeviceSpec {
        match self.devices.len() {
            0 => DeviceSpec::Cpu,
            n => self.devices[job % n],
        }
    }

    /// Devices given twice or of two kinds are an error.
    fn check_devices(&self) -> Result<()> {
        for (i, d) in self.devices.iter().enumerate() {
            if d.kind() != self.kind() {
                bail!(
                    "--device mixes {} and {d}: give devices of one kind",
                    self.devices[0]
                );
            }
            if self.devices[..i].contains(d) {
                bail!("--device names {d} twice");
            }
        }
        Ok(())
    }

    /// Threads of each job's pool: its share of the cores, at least one.
    pub fn threads_per_job(&self) -> usize {
        (cores() / self.jobs()).max(1)
    }

    /// The environment candle needs for these jobs, of the variables not already set: a process
    /// that sets them must start with them, because candle reads them itself (see
    /// [`thread_env`]).
    pub fn thread_env(&self) -> Vec<(&'static str, String)> {
        thread_env(self.jobs(), self.threads_per_job())
    }
}

/// The thread configuration of training, as environment variables, leaving out those the user
/// set. candle's elementwise thread pool spin-waits for its workers between calls, and those
/// spinning threads take the cores from the kernels' own rayon pool: one E2-Train job of the
/// quick profile (`slu-seed1`, two cores) spent 78% of its CPU samples spinning; with the pool
/// at one thread it trained in 106 s and 119 s against 122 s and 130 s at two threads (two
/// alternating pairs on a machine other jobs shared; user CPU 1 min 45 s against 3 min 18 s in
/// the first), with the same records. So the pool never gets extra threads
/// (`CANDLE_NUM_THREADS=1`; candle sizes it once, at its first tensor operation). candle's GEMMs
/// split their work for `RAYON_NUM_THREADS` threads (all cores when unset, read on every call),
/// so with several jobs that is a job's share of the cores, the size of its own pool. Both are
/// read by candle from the process environment, which only the process's creator can set
/// safely: the binary starts itself again with them.
pub fn thread_env(jobs: usize, threads_per_job: usize) -> Vec<(&'static str, String)> {
    let mut env = vec![("CANDLE_NUM_THREADS", "1".to_string())];
    if jobs > 1 {
        env.push(("RAYON_NUM_THREADS", threads_per_job.to_string()));
    }
    env.into_iter()
        .filter(|(k, _)| std::env::var_os(k).is_none())
        .collect()
}

/// Shard `index` of `count` (`K/N` on the command line, 1 ≤ K ≤ N): the runs at positions
/// `K−1, K−1+N, K−1+2N, …` of the run list, which is the registry's order after `--only` and
/// `--filter`. Every shard of one command line sees the same list, whatever is recorded, so the
/// N shards partition it; dealing round-robin spreads each experiment's seeds over the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// Shard `index` (1-based) of `count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index == 0 || index > count {
            bail!("shard {index}/{count}: expected K/N with 1 <= K <= N");
        }
        Ok(Self { index, count })
    }

    /// Whether the run at `position` of the run list (from 0) belongs to this shard.
    pub fn holds(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let parse = |part: &str| {
            part.trim()
                .parse::<usize>()
                .with_context(|| format!("shard {s:?}: {part:?} is not a whole number"))
        };
        match s.split_once('/') {
            Some((k, n)) => Self::new(parse(k)?, parse(n)?),
            None => bail!("shard {s:?}: expected K/N, e.g. 3/8"),
        }
    }
}

/// The runs of an invocation: those to execute and those a resume skips.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Runs to execute, in registry order.
    pub todo: Vec<RunSpec>,
    /// Runs with a record of the same spec (only on resume).
    pub done: Vec<RunSpec>,
    /// Experiments this build cannot run in the profile, with the reason.
    pub skipped: Vec<(Experiment, String)>,
}

/// Expands the registry for `opts`. A resume reads the existing records: a damaged or foreign
/// one is an error naming it, never silently kept or overwritten.
pub fn plan(opts: &ReproduceOptions) -> Result<Plan> {
    opts.check_devices()?;
    let ctx = context(opts);
    let experiments: Vec<Experiment> = if opts.only.is_empty() {
        Experiment::ALL.to_vec()
    } else {
        opts.only.clone()
    };
    let mut plan = Plan {
        todo: Vec::new(),
        done: Vec::new(),
        skipped: Vec::new(),
    };
    // Hashed once: every spec starting from a file names it by content.
    let inits = opts
        .init_from
        .iter()
        .map(|(arch, path)| Ok((*arch, InitFrom::of(path)?)))
        .collect::<Result<std::collections::BTreeMap<Arch, InitFrom>>>()?;
    let mut used = std::collections::BTreeSet::new();
    let mut position = 0;
    for e in experiments {
        if let Some(why) = e.unavailable(opts.profile, &ctx) {
            // Its weights were given for it: the reason says what else is missing.
            used.extend(crate::imagenet::arch(e));
            plan.skipped.push((e, why));
            continue;
        }
        for mut r in e.runs(opts.profile, &ctx)? {
            if opts
                .filter
                .as_ref()
                .is_some_and(|f| !r.id.contains(f.as_str()))
            {
                continue;
            }
            position += 1;
            if opts.shard.is_some_and(|shard| !shard.holds(position - 1)) {
                continue;
            }
            if opts.smoke
                && let RunKind::Train(spec) = &mut r.kind
            {
                spec.train_limit = Some(SMOKE_RECORDS);
                spec.epochs = spec.epochs.min(SMOKE_EPOCHS);
            }
            if let Some(dense) = r.dense_mut()
                && let Some(named) = inits.get(&dense.arch)
            {
                used.insert(dense.arch);
                dense.init_from = Some(named.clone());
                dense.epochs = 0;
            }
            if opts.resume && recorded(&opts.out, &r)? {
                plan.done.push(r);
            } else {
                plan.todo.push(r);
            }
        }
    }
    if let Some(arch) = inits.keys().find(|a| !used.contains(a)) {
        bail!(
            "--init-from {arch}=…: no selected run starts from a dense {arch} (compression and \
             pruning runs do; baseline and E2-Train runs train from scratch)"
        );
    }
    Ok(plan)
}

fn context(opts: &ReproduceOptions) -> RunContext {
    RunContext {
        device: opts.kind(),
        data_dir: opts.data_dir.clone(),
        imagenet: opts.imagenet_dir.is_some(),
        init_from: opts.init_from.keys().copied().collect(),
    }
}

/// Whether `run` has a record of the same spec under `out`.
fn recorded(out: &Path, run: &RunSpec) -> Result<bool> {
    let path = record::path(out, run);
    if !path.exists() {
        return Ok(false);
    }
    let record = RunRecord::read(&path).with_context(|| {
        format!(
            "cannot resume {}: delete the record to run it again",
            run.label()
        )
    })?;
    if record.spec != *run {
        bail!(
            "{} records another spec of {}; delete it or use another --out",
            path.display(),
            run.label()
        );
    }
    Ok(true)
}

/// Executes `plan` under `opts.out`, reporting to `reporter`; fails if any run failed.
pub fn reproduce(opts: &ReproduceOptions, plan: &Plan, reporter: &dyn Reporter) -> Result<()> {
    let out = &opts.out;
    // A device this build or machine cannot open fails the invocation once, before any run,
    // rather than every run in turn.
    if !plan.todo.is_empty() {
        for d in &opts.devices {
            d.to_device()
                .with_context(|| format!("cannot use the device {d}"))?;
        }
    }
    // Fail before any training if results could not be written; after a kill, clear the
    // temporary files the killed process left (records and checkpoints themselves are whole).
    check_writable_dir(out)?;
    if opts.resume {
        let removed = remove_stale_temp_files(out)?;
        if removed > 0 {
            reporter.line(&format!(
                "removed {removed} temporary file(s) left by an interrupted run"
            ));
        }
    }
    for (e, why) in &plan.skipped {
        reporter.line(&format!("skipped {e}: {why}"));
    }
    reporter.line(&format!(
        "reproduce ({} profile): {} runs to do, {} already recorded, output in {}",
        opts.profile.name(),
        plan.todo.len(),
        plan.done.len(),
        out.display()
    ));
    let data = context(opts)
        .data()
        .with_imagenet(opts.imagenet_dir.clone());
    let mut full: Vec<DatasetId> = Vec::new();
    for dataset in plan.todo.iter().filter_map(RunSpec::full_data) {
        if !full.contains(&dataset) {
            full.push(dataset);
        }
    }
    for dataset in full {
        // Said once up front; a run that cannot read its data fails with the cause.
        match data.locate(dataset) {
            Ok(found) => reporter.line(&format!("data: {found}")),
            Err(e) => reporter.line(&format!("data: {e:#}")),
        }
    }
    reporter.runs_started(plan.todo.len());
    let queue = Mutex::new(plan.todo.iter());
    let failures = Mutex::new(Vec::new());
    let stopped = AtomicBool::new(false);
    // Runs share nothing but the dense-model cache (which has its own lock); each run is
    // claimed by a file lock, so processes sharing `out` never execute the same run at once.
    let jobs = opts.jobs().clamp(1, plan.todo.len().max(1));
    let threads = opts.threads_per_job();
    std::thread::scope(|s| {
        for job in 0..jobs {
            let (queue, failures, stopped, data) = (&queue, &failures, &stopped, &data);
            let device = opts.device_of_job(job);
            s.spawn(move || {
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
                    if reporter.stop_requested() {
                        stopped.store(true, Ordering::SeqCst);
                        break;
                    }
                    // The lock is held for the whole run: `_lock` lives to the end of its arm.
                    let result = match claim(out, run, opts.resume) {
                        Ok(Some(_lock)) => {
                            let job = Job {
                                out,
                                resume: opts.resume,
                                data,
                                init_files: &opts.init_from,
                                device,
                                reporter,
                            };
                            execute(opts.profile, run, &job)
                        }
                        Ok(None) => {
                            reporter.line(&format!(
                                "skipped {}: another process runs or has recorded it",
                                run.label()
                            ));
                            Ok(())
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        reporter.line(&format!("FAILED {}: {e:#}", run.label()));
                        if let Ok(mut f) = failures.lock() {
                            f.push(run.label());
                        }
                    }
                    reporter.run_ended();
                };
                match pool {
                    Ok(pool) => pool.install(work),
                    // Without a pool of its own the job still runs, on the shared one.
                    Err(_) => work(),
                }
            });
        }
    });
    reporter.runs_finished();
    let failures = failures.into_inner().unwrap_or_default();
    for r in plan.done.iter().chain(&plan.todo) {
        if let Some(line) = RunRecord::read(&record::path(out, r))
            .ok()
            .and_then(|rec| registry::summary(&rec))
        {
            reporter.line(&line);
        }
    }
    reporter.line(&format!(
        "records: {}\ncheckpoints: {}",
        out.join("records").display(),
        out.join("checkpoints").display()
    ));
    if !failures.is_empty() {
        bail!("{} run(s) failed: {}", failures.len(), failures.join(", "));
    }
    if stopped.into_inner() {
        bail!("stopped on request; `--resume` continues where the runs left off");
    }
    Ok(())
}

/// The lock of `run` under `out` if this process is to execute it: `None` when another process
/// (a shard sharing `out`) holds it, or, on resume, has recorded the run since the plan was made.
fn claim(out: &Path, run: &RunSpec, resume: bool) -> Result<Option<FileLock>> {
    let Some(lock) = lock::try_exclusive(&lock::path(out, run.experiment.name(), &run.id))? else {
        return Ok(None);
    };
    if resume && recorded(out, run)? {
        return Ok(None);
    }
    Ok(Some(lock))
}

/// What a job hands every run it executes.
struct Job<'a> {
    out: &'a Path,
    resume: bool,
    data: &'a DataDir,
    init_files: &'a InitFiles,
    device: DeviceSpec,
    reporter: &'a dyn Reporter,
}

fn execute(profile: Profile, run: &RunSpec, job: &Job<'_>) -> Result<()> {
    let Job {
        out,
        resume,
        data,
        init_files,
        device,
        reporter,
    } = *job;
    let started = Instant::now();
    let env = RunEnv {
        out,
        checkpoints: out
            .join("checkpoints")
            .join(run.experiment.name())
            .join(&run.id),
        label: run.label(),
        resume,
        data,
        reporter,
        init_files,
        device,
    };
    let (metrics, deterministic) = match registry::execute(run, &env) {
        Ok(done) => done,
        // A run that diverged or could not reach its target is a result the tables show as
        // failed, not a fault of the tool: it is recorded, and the invocation goes on.
        Err(e) => match registry::FailedRun::of(&e) {
            Some(failed) => {
                reporter.line(&format!("failed {} (recorded): {e:#}", env.label));
                (Metrics::Failed(failed), true)
            }
            None => return Err(e),
        },
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    let record = RunRecord::new(
        profile,
        run,
        metrics,
        deterministic,
        git_revision(),
        wall_seconds,
    );
    record.write(out)?;
    reporter.line(&format!("done {} in {wall_seconds:.1}s", env.label));
    Ok(())
}

/// What `cargo xtask train` trains: the baseline recipe of a model on a dataset, overridden
/// where set.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Model.
    pub arch: Arch,
    /// Dataset.
    pub dataset: DatasetId,
    /// Train on the full dataset, read from this directory in any layout
    /// [`datasets::locate`] accepts (the embedded subset when `None`).
    pub data_dir: Option<PathBuf>,
    /// ImageNet's folder (`train/` and `val/` of class folders), for `dataset` ImageNet.
    pub imagenet_dir: Option<PathBuf>,
    /// Epochs.
    pub epochs: Option<usize>,
    /// Batch size.
    pub batch: Option<usize>,
    /// Base learning rate.
    pub lr: Option<f64>,
    /// How the rate decays from the base rate.
    pub decay: LrDecay,
    /// Only the first records of the training split.
    pub train_limit: Option<usize>,
    /// Seed.
    pub seed: u64,
    /// Device.
    pub device: DeviceSpec,
    /// Output directory (the run goes to `<out>/train/<run>/`).
    pub out: PathBuf,
    /// Continue from the run's checkpoint.
    pub resume: bool,
    /// Start from this PyTorch `state_dict` (safetensors or `.pth`) instead of the seeded
    /// initialisation; the spec records its name and SHA-256.
    pub init_from: Option<PathBuf>,
}

/// The record `cargo xtask train` leaves next to its checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct TrainRecord {
    /// The spec that ran.
    pub spec: TrainSpec,
    /// What it reached.
    pub outcome: TrainOutcome,
    /// Git revision of the code.
    pub git_revision: String,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
}

/// Trains one model and writes its record; returns the run's id and record.
pub fn train_one(opts: &TrainOptions, reporter: &dyn Reporter) -> Result<(String, TrainRecord)> {
    let mut spec = TrainSpec::recipe(opts.arch, opts.dataset);
    let data = DataDir::new(opts.data_dir.clone()).with_imagenet(opts.imagenet_dir.clone());
    if !opts.dataset.has_records() {
        spec.data = DataSource::Full;
        let dir = data.imagenet()?;
        let classes = dir.train.classes().len();
        reporter.line(&format!(
            "data: {} in {}: {classes} classes, {} training and {} validation images",
            opts.dataset.title(),
            dir.train
                .dir()
                .parent()
                .unwrap_or(dir.train.dir())
                .display(),
            dir.train.len(),
            dir.val.len()
        ));
        let all = opts.dataset.num_classes();
        if classes < all {
            reporter.line(&format!(
                "note: {classes} of {all} class folders: labels are the folders' ranks, which \
                 match a pretrained {all}-class model's only with every class present"
            ));
        }
    } else if opts.data_dir.is_some() {
        spec.data = DataSource::Full;
        reporter.line(&format!("data: {}", data.locate(opts.dataset)?));
    }
    spec.train_limit = opts.train_limit;
    if let Some(e) = opts.epochs {
        spec.epochs = e;
    }
    if let Some(b) = opts.batch {
        spec.batch = b;
    }
    if let Some(lr) = opts.lr {
        spec.optimizer.lr = lr;
    }
    spec.schedule = LrSchedule::new(opts.decay.clone());
    spec.seed = opts.seed;
    spec.device = opts.device.kind();
    if let Some(path) = &opts.init_from {
        let named = InitFrom::of(path)?;
        reporter.line(&format!(
            "initial weights: {} (sha256 {})",
            path.display(),
            named.sha256
        ));
        spec.init_from = Some(named);
    }
    let id = format!("{}-{}-seed{}", spec.arch, spec.dataset, spec.seed);
    let dir = opts.out.join("train").join(&id);
    check_writable_dir(&dir)?;
    let started = Instant::now();
    let mut obs = reporter.observer(&id);
    let init = opts.init_from.as_deref();
    let outcome = train::train_from(
        &spec,
        &data,
        init,
        opts.device,
        &dir,
        opts.resume,
        obs.as_mut(),
    )?;
    drop(obs);
    let record = TrainRecord {
        spec,
        outcome,
        git_revision: git_revision(),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_json_atomic(&dir.join("record.json"), &record)?;
    Ok((id, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One job on the CPU, nothing resumed, filtered, sharded or shrunk; tests change what they
    /// exercise with struct-update syntax.
    fn options(profile: Profile, only: Vec<Experiment>, out: PathBuf) -> ReproduceOptions {
        ReproduceOptions {
            profile,
            only,
            devices: vec![DeviceSpec::Cpu],
            jobs: Some(1),
            resume: false,
            out,
            data_dir: None,
            imagenet_dir: None,
            filter: None,
            shard: None,
            init_from: InitFiles::new(),
            smoke: false,
        }
    }

    fn nowhere() -> PathBuf {
        std::env::temp_dir().join("experiments-runner-no-such-dir")
    }

    #[test]
    fn each_gpu_gets_one_job_unless_asked() {
        let mut opts = ReproduceOptions {
            devices: vec![DeviceSpec::Cuda(0)],
            jobs: None,
            ..options(Profile::Quick, Vec::new(), PathBuf::new())
        };
        assert_eq!(opts.jobs(), 1);
        opts.jobs = Some(3);
        assert_eq!(opts.jobs(), 3);
        opts.devices = vec![DeviceSpec::Cuda(1), DeviceSpec::Cuda(0)];
        opts.jobs = None;
        assert_eq!(opts.jobs(), 2);
        let of_jobs: Vec<DeviceSpec> = (0..4).map(|j| opts.device_of_job(j)).collect();
        assert_eq!(
            of_jobs,
            [1, 0, 1, 0].map(DeviceSpec::Cuda),
            "round-robin over the devices given"
        );
        opts.devices = vec![DeviceSpec::Cpu];
        assert_eq!(opts.jobs(), cores());
    }

    /// Specs record the device kind only: the runs of `--device cuda:0` and `--device
    /// cuda:1,cuda:0` are the same specs, and mixed or repeated devices are refused.
    #[test]
    fn specs_do_not_depend_on_which_gpu() {
        let specs = |devices: Vec<DeviceSpec>| -> Vec<RunSpec> {
            let opts = ReproduceOptions {
                devices,
                ..options(Profile::Quick, vec![Experiment::BaselineLenet5], nowhere())
            };
            plan(&opts).unwrap().todo
        };
        let one = specs(vec![DeviceSpec::Cuda(0)]);
        assert_eq!(one, specs(vec![DeviceSpec::Cuda(1), DeviceSpec::Cuda(0)]));
        let RunKind::Train(t) = &one[0].kind else {
            panic!("not a training run")
        };
        assert_eq!(serde_json::to_value(t).unwrap()["device"], "cuda");
        for bad in [
            vec![DeviceSpec::Cpu, DeviceSpec::Cuda(0)],
            vec![DeviceSpec::Cuda(1), DeviceSpec::Cuda(1)],
        ] {
            let opts = ReproduceOptions {
                devices: bad,
                ..options(Profile::Quick, vec![Experiment::BaselineLenet5], nowhere())
            };
            assert!(plan(&opts).is_err());
        }
    }

    #[test]
    fn candles_pool_gets_no_extra_threads_and_jobs_share_the_cores() {
        let one = thread_env(1, 4);
        assert!(
            one.iter().all(|(k, _)| *k == "CANDLE_NUM_THREADS"),
            "{one:?}"
        );
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            assert_eq!(one, [("CANDLE_NUM_THREADS", "1".to_string())]);
        }
        let env = thread_env(2, 3);
        for (k, v) in [("CANDLE_NUM_THREADS", "1"), ("RAYON_NUM_THREADS", "3")] {
            // A variable the user set is left as it is.
            if std::env::var_os(k).is_none() {
                assert!(env.iter().any(|(ek, ev)| *ek == k && ev == v), "{env:?}");
            }
        }
    }

    /// `--smoke` shrinks the baseline runs and says so in their specs; a resume of a directory
    /// without records has everything to do.
    #[test]
    fn plans_shrink_smoke_runs_and_filter_by_id() {
        let opts = ReproduceOptions {
            resume: true,
            filter: Some("seed2".into()),
            smoke: true,
            ..options(
                Profile::Quick,
                vec![Experiment::BaselineLenet5, Experiment::ZooGeometry],
                nowhere(),
            )
        };
        let plan = plan(&opts).unwrap();
        assert!(plan.done.is_empty());
        let ids: Vec<String> = plan.todo.iter().map(RunSpec::label).collect();
        assert_eq!(ids, ["baseline-lenet5/seed2"]);
        let RunKind::Train(spec) = &plan.todo[0].kind else {
            panic!("not a training run");
        };
        assert_eq!(
            (spec.train_limit, spec.epochs),
            (Some(SMOKE_RECORDS), SMOKE_EPOCHS)
        );
    }

    /// `--init-from ARCH=FILE` starts every dense model of ARCH from the file, untrained, and
    /// names the file in the spec by content; an architecture no selected run uses is an error.
    #[test]
    fn init_files_become_untrained_dense_models_of_their_architecture() {
        let dir = std::env::temp_dir().join(format!("runner-init-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("lenet5.safetensors");
        std::fs::write(&file, b"weights").unwrap();
        let opts = ReproduceOptions {
            init_from: [(Arch::Lenet5, file.clone())].into_iter().collect(),
            ..options(
                Profile::Quick,
                vec![Experiment::Iclr19Lenet5, Experiment::BaselineLenet5],
                nowhere(),
            )
        };
        let mut plan = plan(&opts).unwrap();
        let named = InitFrom::of(&file).unwrap();
        let mut dense = 0;
        for r in &mut plan.todo {
            if let Some(spec) = r.dense_mut() {
                assert_eq!((spec.init_from.as_ref(), spec.epochs), (Some(&named), 0));
                dense += 1;
            } else if let RunKind::Train(spec) = &r.kind {
                assert_eq!(spec.init_from, None, "baselines train from scratch");
            }
        }
        assert!(dense > 0);
        let opts = ReproduceOptions {
            init_from: [(Arch::Resnet20, file)].into_iter().collect(),
            ..opts
        };
        let e = plan_err(&opts);
        assert!(
            e.contains("no selected run starts from a dense resnet20"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn plan_err(opts: &ReproduceOptions) -> String {
        match plan(opts) {
            Ok(_) => panic!("planned"),
            Err(e) => format!("{e:#}"),
        }
    }

    /// The shards of one command line partition its run list, round-robin, whatever is recorded.
    #[test]
    fn shards_partition_the_run_list() {
        let opts = |shard| ReproduceOptions {
            shard,
            ..options(Profile::Quick, vec![Experiment::Iclr19Lenet5], nowhere())
        };
        let all: Vec<String> = plan(&opts(None))
            .unwrap()
            .todo
            .iter()
            .map(RunSpec::label)
            .collect();
        assert!(all.len() > 3, "{all:?}");
        let mut seen = Vec::new();
        for k in 1..=3 {
            let part = plan(&opts(Some(Shard::new(k, 3).unwrap()))).unwrap();
            let ids: Vec<String> = part.todo.iter().map(RunSpec::label).collect();
            let expect: Vec<String> = all.iter().skip(k - 1).step_by(3).cloned().collect();
            assert_eq!(ids, expect, "shard {k}/3");
            seen.extend(ids);
        }
        seen.sort();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(seen, sorted);
    }

    /// The ImageNet experiments run with the folder and their architecture's weights, and are
    /// otherwise listed as skipped with what is missing, not run to fail.
    #[test]
    fn the_full_profile_runs_imagenet_with_folder_and_weights_and_skips_it_saying_why() {
        let imagenet = [
            Experiment::EapAlexnet,
            Experiment::EapGooglenet,
            Experiment::Iclr19Alexnet,
            Experiment::Iclr19Squeezenet,
        ];
        let bare = plan(&options(Profile::Full, imagenet.to_vec(), nowhere())).unwrap();
        assert!(bare.todo.is_empty());
        let skipped: Vec<Experiment> = bare.skipped.iter().map(|(e, _)| *e).collect();
        assert_eq!(skipped, imagenet);
        for (_, why) in &bare.skipped {
            assert!(
                why.contains("--imagenet-dir") && why.contains("--init-from"),
                "{why}"
            );
        }

        let weights = std::env::temp_dir().join(format!("runner-alexnet-{}", std::process::id()));
        std::fs::write(&weights, b"stand-in weights: only hashed when planning").unwrap();
        let opts = ReproduceOptions {
            imagenet_dir: Some(nowhere()),
            init_from: [(Arch::Alexnet, weights.clone())].into_iter().collect(),
            ..options(Profile::Full, imagenet.to_vec(), nowhere())
        };
        let planned = plan(&opts).unwrap();
        // Weights without the folder: skipped saying so, not an unused --init-from.
        let no_folder = plan(&ReproduceOptions {
            imagenet_dir: None,
            ..opts.clone()
        })
        .unwrap();
        assert!(no_folder.todo.is_empty());
        assert!(
            no_folder
                .skipped
                .iter()
                .all(|(_, why)| why.contains("--imagenet-dir"))
        );
        std::fs::remove_file(&weights).unwrap();
        let why: Vec<(Experiment, &str)> = planned
            .skipped
            .iter()
            .map(|(e, why)| (*e, why.as_str()))
            .collect();
        assert_eq!(why.len(), 2, "{why:?}");
        for (e, why) in why {
            assert!(
                matches!(e, Experiment::EapGooglenet | Experiment::Iclr19Squeezenet),
                "{e}"
            );
            assert!(
                why.contains("--init-from") && !why.contains("--imagenet-dir"),
                "{why}"
            );
        }
        let ran: std::collections::BTreeSet<Experiment> =
            planned.todo.iter().map(|r| r.experiment).collect();
        assert_eq!(
            ran.into_iter().collect::<Vec<_>>(),
            [Experiment::EapAlexnet, Experiment::Iclr19Alexnet]
        );
        for r in &planned.todo {
            let dense = match &r.kind {
                RunKind::Eap(s) => &s.dense,
                RunKind::Constrained(s) => &s.dense,
                other => panic!("unexpected run kind {other:?}"),
            };
            // Pretrained and evaluated only: never trained from scratch on ImageNet.
            assert_eq!((dense.epochs, dense.dataset), (0, DatasetId::ImageNet));
            assert!(dense.init_from.is_some(), "{}", r.id);
        }
    }

    /// Without CUDA in this build, `--device cuda:0` fails once, before any run or output.
    #[test]
    #[cfg(not(feature = "cuda"))]
    fn an_unusable_device_fails_before_the_first_run() {
        let out = std::env::temp_dir().join(format!("runner-device-{}", std::process::id()));
        let opts = ReproduceOptions {
            devices: vec![DeviceSpec::Cuda(0)],
            ..options(Profile::Quick, vec![Experiment::ZooGeometry], out.clone())
        };
        let plan = plan(&opts).unwrap();
        let err = reproduce(&opts, &plan, &crate::reporter::Silent).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("cannot use the device cuda:0"), "{text}");
        assert!(text.contains("no CUDA support"), "{text}");
        assert!(!out.exists());
    }

    #[test]
    fn shard_flags_are_checked() {
        assert_eq!("2/5".parse::<Shard>().unwrap(), Shard::new(2, 5).unwrap());
        assert_eq!(Shard::new(2, 5).unwrap().to_string(), "2/5");
        for bad in ["0/3", "4/3", "1/0", "3", "a/3", "1/b"] {
            let err = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(err.contains("shard"), "{bad}: {err}");
        }
    }

    /// A run whose lock another process holds is not claimed; on resume, neither is a run
    /// recorded meanwhile (here: the lock is free but the record exists).
    #[test]
    fn a_run_locked_elsewhere_is_not_claimed() {
        let out = std::env::temp_dir().join(format!("runner-claim-{}", std::process::id()));
        let run = plan(&options(
            Profile::Quick,
            vec![Experiment::ZooGeometry],
            out.clone(),
        ))
        .unwrap()
        .todo
        .remove(0);
        let elsewhere = lock::exclusive(&lock::path(&out, run.experiment.name(), &run.id)).unwrap();
        assert!(claim(&out, &run, false).unwrap().is_none());
        drop(elsewhere);
        assert!(claim(&out, &run, true).unwrap().is_some());
        let job = Job {
            out: &out,
            resume: false,
            data: &DataDir::default(),
            init_files: &InitFiles::new(),
            device: DeviceSpec::Cpu,
            reporter: &crate::reporter::Silent,
        };
        execute(Profile::Quick, &run, &job).unwrap();
        assert!(claim(&out, &run, true).unwrap().is_none());
        assert!(claim(&out, &run, false).unwrap().is_some());
        std::fs::remove_dir_all(&out).unwrap();
    }
}
