//! `cargo xtask bench`: training-step, eval and conv timings of the fast ops against candle's
//! stock ops and, with `--peer`, against PyTorch on the same machine in the same run.
//!
//! Every measurement runs in a fresh worker process (this binary's hidden `bench-worker`) with
//! `RAYON_NUM_THREADS` set, so thread counts never share a pool and each process reports its own
//! peak memory. Contenders alternate (PyTorch, fast, candle, PyTorch, fast, ...) because the
//! machine is shared: a slow phase then hits all of them. Each worker prints the timing lines
//! of `bench_torch.py` (`RESULT key=value ...`, median of its iterations); the report takes the
//! median over rounds of those medians and writes `target/bench/ratios.{md,json}`.
//!
//! `--device cuda:N` adds a contender: our training step and evaluation on that GPU (the
//! LeNet-5 and ResNet-20 suites), next to the same on the CPU, as the GPU smoke's time per step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cnn_zoo::Arch;
use experiments::paths::{project_root, write_atomic, write_json_atomic};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use tensor_core::ops;
use tensor_core::tensor::nn;
use tensor_core::{
    ConvParams, DType, Device, MomentumSgd, OpsBackend, SeededInit, SgdConfig, Tensor, Var,
};

use crate::flags::{BenchArgs, BenchWorkerArgs, Suite};

/// A conv micro-benchmark: `(label, [batch, c_in, c_out, hw, kernel, padding, stride])`.
type ConvCase = (&'static str, [usize; 7]);

/// The conv micro-benchmarks of `bench_torch.py`'s `conv` mode.
const CONV_CASES: [ConvCase; 5] = [
    ("lenet_c1", [64, 1, 20, 28, 5, 0, 1]),
    ("lenet_c2", [64, 20, 50, 12, 5, 0, 1]),
    ("res_16x32", [128, 16, 16, 32, 3, 1, 1]),
    ("res_32x16", [128, 32, 32, 16, 3, 1, 1]),
    ("res_64x8", [128, 64, 64, 8, 3, 1, 1]),
];

/// A contender of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Contender {
    Torch,
    Fast,
    Candle,
    /// The fast ops' models on the `--device` GPU (candle's CUDA ops do the work there).
    Gpu,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Torch => "torch",
            Contender::Fast => "fast",
            Contender::Candle => "candle",
            Contender::Gpu => "gpu",
        }
    }
}

/// One table row: a workload at a thread count.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
struct RowKey {
    threads: usize,
    workload: String,
    case: String,
}

#[derive(Debug, Serialize)]
struct Row {
    #[serde(flatten)]
    key: RowKey,
    /// Median over rounds of each contender's per-run median, in ms.
    median_ms: BTreeMap<Contender, f64>,
    /// Runs behind each median.
    rounds: BTreeMap<Contender, usize>,
    /// Throughput ratio fast / PyTorch (> 1: ours is faster).
    fast_vs_torch: Option<f64>,
    /// Throughput ratio fast / stock candle (> 1: the fast ops are faster).
    fast_vs_candle: Option<f64>,
    /// Throughput ratio GPU / fast CPU ops (> 1: the GPU is faster).
    #[serde(skip_serializing_if = "Option::is_none")]
    gpu_vs_fast: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Memory {
    threads: usize,
    /// `(step, VmHWM kB, VmRSS kB)` after selected training steps.
    samples: Vec<(usize, u64, u64)>,
}

/// A peer script shipped with xtask (`xtask/peer/`): the PyTorch and numpy sides of the
/// comparisons.
pub fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peer")
        .join(name)
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    torch: Option<String>,
    /// The GPU of the `gpu` contender.
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    rows: Vec<Row>,
    memory: Vec<Memory>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot locate the xtask binary")?;
    let peer = match &args.peer {
        None => None,
        Some(python) => {
            let script = args
                .peer_script
                .clone()
                .unwrap_or_else(|| peer_script("bench_torch.py"));
            if !script.is_file() {
                bail!(
                    "peer script {} not found (see --peer-script)",
                    script.display()
                );
            }
            Some((resolve_python(python), script))
        }
    };
    let suites: Vec<Suite> = if args.suite.is_empty() {
        vec![Suite::Lenet, Suite::Resnet, Suite::Conv]
    } else {
        args.suite.clone()
    };
    let mut contenders = Vec::new();
    if peer.is_some() {
        contenders.push(Contender::Torch);
    }
    contenders.push(Contender::Fast);
    if !args.no_candle {
        contenders.push(Contender::Candle);
    }
    if let Some(d) = args.device {
        if d.kind() != tensor_core::DeviceKind::Cuda {
            bail!("--device {d}: the extra contender is a GPU (cuda:N); the CPU is always timed");
        }
        // Fail once, before any timing, when this binary has no CUDA or the GPU does not open.
        d.to_device()
            .with_context(|| format!("cannot use the device {d}"))?;
        contenders.push(Contender::Gpu);
    }
    let mut samples: BTreeMap<(RowKey, Contender), Vec<f64>> = BTreeMap::new();
    let mut torch_version = None;
    let started = Instant::now();
    for &threads in &args.threads {
        for round in 0..args.rounds {
            for &suite in &suites {
                for &who in &contenders {
                    // The conv suite times the CPU kernels against candle's CPU ops.
                    if who == Contender::Gpu && suite == Suite::Conv {
                        continue;
                    }
                    let t0 = Instant::now();
                    let (stdout, stderr) = match who {
                        Contender::Torch => {
                            let (python, script) = peer.as_ref().context("no peer")?;
                            let mut cmd = Command::new(python);
                            cmd.arg(script).arg(suite.name());
                            cmd.args(["--threads", &threads.to_string()]);
                            cmd.args(["--iters", &args.iters.to_string()]);
                            cmd.args(["--warmup", &args.warmup.to_string()]);
                            run_child(cmd, threads)?
                        }
                        Contender::Fast | Contender::Candle | Contender::Gpu => {
                            let mut cmd = Command::new(&exe);
                            if who == Contender::Fast {
                                // The fast ops parallelise through rayon; what is left to candle
                                // (element-wise adds, the loss) runs inline rather than on its
                                // spin-waiting pool, which competes with rayon for the cores.
                                cmd.env("CANDLE_NUM_THREADS", "1");
                            }
                            cmd.args(["bench-worker", "--suite", suite.name()]);
                            let backend = match who {
                                Contender::Candle => OpsBackend::Candle,
                                _ => OpsBackend::Fast,
                            };
                            cmd.args(["--backend", backend.name()]);
                            if let (Contender::Gpu, Some(d)) = (who, args.device) {
                                cmd.args(["--device", &d.to_string()]);
                            }
                            cmd.args(["--iters", &worker_iters(args, suite, who).to_string()]);
                            cmd.args(["--warmup", &args.warmup.to_string()]);
                            run_child(cmd, threads)?
                        }
                    };
                    if who == Contender::Torch && torch_version.is_none() {
                        torch_version = stderr
                            .lines()
                            .find(|l| l.starts_with("torch "))
                            .map(str::to_string);
                    }
                    let mut n = 0;
                    for line in stdout.lines() {
                        if let Some((key, ms)) = parse_result(line, threads) {
                            samples.entry((key, who)).or_default().push(ms);
                            n += 1;
                        }
                    }
                    if n == 0 {
                        bail!(
                            "{} {} printed no RESULT lines:\n{stdout}\n{stderr}",
                            who.name(),
                            suite.name()
                        );
                    }
                    eprintln!(
                        "[{:>5.0}s] threads {threads} round {}/{} {:<6} {:<6} {n} results in {:.1}s",
                        started.elapsed().as_secs_f64(),
                        round + 1,
                        args.rounds,
                        suite.name(),
                        who.name(),
                        t0.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
    let mut memory = Vec::new();
    if args.memory_steps > 0 {
        for &threads in &args.threads {
            let mut cmd = Command::new(&exe);
            cmd.args(["bench-worker", "--suite", "memory", "--backend", "fast"]);
            cmd.args(["--iters", &args.memory_steps.to_string()]);
            let (stdout, _) = run_child(cmd, threads)?;
            let samples = stdout
                .lines()
                .filter_map(|l| {
                    let kv = key_values(l.strip_prefix("MEMORY ")?);
                    Some((
                        kv.get("step")?.parse().ok()?,
                        kv.get("vm_hwm_kb")?.parse().ok()?,
                        kv.get("vm_rss_kb")?.parse().ok()?,
                    ))
                })
                .collect();
            memory.push(Memory { threads, samples });
        }
    }
    let rows = summarise(samples);
    let report = Report {
        machine: machine_description(),
        torch: torch_version,
        device: args.device.map(|d| d.to_string()),
        rows,
        memory,
    };
    let dir = project_root().join("target").join("bench");
    write_json_atomic(&dir.join("ratios.json"), &report)?;
    let md = render(&report);
    write_atomic(&dir.join("ratios.md"), md.as_bytes())?;
    println!("{md}");
    println!("written to {}", dir.display());
    Ok(())
}

/// Stock candle's ResNet-20 step takes seconds: fewer iterations keep a run in minutes.
fn worker_iters(args: &BenchArgs, suite: Suite, who: Contender) -> usize {
    match (suite, who) {
        (Suite::Resnet, _) => args.iters.min(8),
        (Suite::Conv, _) => args.iters.min(7),
        _ => args.iters,
    }
}

/// A bare interpreter name prefers the project's `.venv`, where the README installs torch.
fn resolve_python(python: &Path) -> PathBuf {
    if python.components().count() == 1 {
        let venv = project_root().join(".venv").join("bin").join(python);
        if venv.is_file() {
            return venv;
        }
    }
    python.to_path_buf()
}

fn run_child(mut cmd: Command, threads: usize) -> Result<(String, String)> {
    let t = threads.to_string();
    cmd.env("RAYON_NUM_THREADS", &t).env("OMP_NUM_THREADS", &t);
    if cmd.get_envs().all(|(k, _)| k != "CANDLE_NUM_THREADS") {
        cmd.env("CANDLE_NUM_THREADS", &t);
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{cmd:?} failed with {}:\n{stdout}\n{stderr}", out.status);
    }
    Ok((stdout, stderr))
}

fn key_values(s: &str) -> BTreeMap<&str, &str> {
    s.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// A `RESULT` line as a row key and its median in ms.
fn parse_result(line: &str, threads: usize) -> Option<(RowKey, f64)> {
    let kv = key_values(line.strip_prefix("RESULT ")?);
    let workload = kv.get("model").or_else(|| kv.get("conv"))?;
    let case = kv.get("case")?;
    // PyTorch's bwd_input / bwd_weight have no counterpart here: candle always differentiates
    // both operands of its conv.
    if case.starts_with("bwd_") {
        return None;
    }
    let ms = kv.get("median_ms")?.parse().ok()?;
    let key = RowKey {
        threads,
        workload: workload.to_string(),
        case: case.to_string(),
    };
    Some((key, ms))
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn summarise(samples: BTreeMap<(RowKey, Contender), Vec<f64>>) -> Vec<Row> {
    let mut rows: BTreeMap<RowKey, Row> = BTreeMap::new();
    for ((key, who), ms) in samples {
        let row = rows.entry(key.clone()).or_insert_with(|| Row {
            key,
            median_ms: BTreeMap::new(),
            rounds: BTreeMap::new(),
            fast_vs_torch: None,
            fast_vs_candle: None,
            gpu_vs_fast: None,
        });
        row.median_ms.insert(who, median(&ms));
        row.rounds.insert(who, ms.len());
    }
    rows.into_values()
        .map(|mut row| {
            let get = |c| row.median_ms.get(&c).copied();
            if let Some(fast) = get(Contender::Fast) {
                row.fast_vs_torch = get(Contender::Torch).map(|t| t / fast);
                row.fast_vs_candle = get(Contender::Candle).map(|c| c / fast);
                row.gpu_vs_fast = get(Contender::Gpu).map(|g| fast / g);
            }
            row
        })
        .collect()
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cpu}, {cores} cores available, {}", std::env::consts::ARCH)
}

/// A markdown table row: the row's key, then `cells`.
fn md_row(key: &RowKey, cells: &[String]) -> String {
    format!(
        "| {} | {} | {} | {} |\n",
        key.threads,
        key.workload,
        key.case,
        cells.join(" | ")
    )
}

fn render(report: &Report) -> String {
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
    let ratio = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}x"));
    let mut s = String::new();
    s.push_str(&format!("Machine: {}", report.machine));
    if let Some(t) = &report.torch {
        s.push_str(&format!("; peer: {t}"));
    }
    s.push_str(
        ".\n\nMedians in ms (median over alternating rounds of each run's median). Ratios are \
         throughput ratios: > 1 means the fast ops are faster.\n\n",
    );
    s.push_str(
        "| threads | workload | case | PyTorch ms | fast ms | candle ms | fast / PyTorch | fast / candle |\n",
    );
    s.push_str("|---|---|---|---:|---:|---:|---:|---:|\n");
    let gpu = report.rows.iter().any(|r| r.gpu_vs_fast.is_some());
    for row in &report.rows {
        let get = |c| row.median_ms.get(&c).copied();
        s.push_str(&md_row(
            &row.key,
            &[
                fmt(get(Contender::Torch)),
                fmt(get(Contender::Fast)),
                fmt(get(Contender::Candle)),
                ratio(row.fast_vs_torch),
                ratio(row.fast_vs_candle),
            ],
        ));
    }
    if gpu {
        s.push_str(&format!(
            "\nOn the GPU ({}): our training step and evaluation, against the fast ops on this \
             CPU at each thread count (> 1: the GPU is faster).\n\n\
             | threads | workload | case | CPU ms | GPU ms | GPU / CPU |\n|---|---|---|---:|---:|---:|\n",
            report.device.as_deref().unwrap_or("?")
        ));
        for row in report.rows.iter().filter(|r| r.gpu_vs_fast.is_some()) {
            let get = |c| row.median_ms.get(&c).copied();
            s.push_str(&md_row(
                &row.key,
                &[
                    fmt(get(Contender::Fast)),
                    fmt(get(Contender::Gpu)),
                    ratio(row.gpu_vs_fast),
                ],
            ));
        }
    }
    for m in &report.memory {
        s.push_str(&format!(
            "\nMemory, ResNet-20 batch 128 training steps (fast ops, {} thread(s)):\n\n",
            m.threads
        ));
        s.push_str("| after step | VmHWM MiB | VmRSS MiB |\n|---:|---:|---:|\n");
        for (step, hwm, rss) in &m.samples {
            s.push_str(&format!(
                "| {step} | {:.0} | {:.0} |\n",
                *hwm as f64 / 1024.0,
                *rss as f64 / 1024.0
            ));
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// The worker: one suite on one backend, timed like bench_torch.py's `time_it`.
// ---------------------------------------------------------------------------------------------

pub fn worker(args: &BenchWorkerArgs) -> Result<()> {
    let fw = args.backend.name();
    if matches!(args.suite, Suite::Conv | Suite::Memory)
        && args.device.kind() != tensor_core::DeviceKind::Cpu
    {
        bail!(
            "the {} suite times the CPU only (--device {})",
            args.suite.name(),
            args.device
        );
    }
    match args.suite {
        Suite::Lenet => bench_model(Arch::Lenet5Caffe, "lenet5", 64, args),
        Suite::Resnet => bench_model(Arch::Resnet20, "resnet20", 128, args),
        Suite::Conv => bench_conv(args, fw),
        Suite::Memory => memory(args),
    }
}

/// Median, min and max in ms of `iters` timed calls after `warmup` untimed ones.
fn time_it(warmup: usize, iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<[f64; 3]> {
    for _ in 0..warmup {
        f()?;
    }
    let mut ts = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        f()?;
        ts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let min = ts.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ts.iter().copied().fold(0.0, f64::max);
    Ok([median(&ts), min, max])
}

fn randn(seed: u64, stream: &str, dims: &[usize]) -> Result<Tensor> {
    let mut rng = tensor_core::rng(seed, stream);
    let n = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    Ok(Tensor::from_vec(v, dims, &Device::Cpu)?)
}

/// A model with its optimiser, a fixed batch and labels.
struct Bench {
    net: Box<dyn tensor_core::Network>,
    opt: MomentumSgd,
    xs: Tensor,
    ys: Tensor,
}

impl Bench {
    fn new(arch: Arch, batch: usize, backend: OpsBackend, device: &Device) -> Result<Self> {
        let init = SeededInit::new(0);
        let vb = init.var_builder(DType::F32, device);
        let [c, h, w] = arch.input_shape();
        let net = cnn_zoo::build_with(arch, 10, c, vb, backend)?;
        let vars: Vec<Var> = init.named_vars().into_iter().map(|(_, v)| v).collect();
        let config = SgdConfig {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 0.0,
        };
        let opt = MomentumSgd::with_config(vars, config)?;
        let xs = randn(0, "bench/x", &[batch, c, h, w])?.to_device(device)?;
        let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
        let ys = Tensor::from_vec(labels, batch, device)?;
        Ok(Self { net, opt, xs, ys })
    }

    /// Forward, cross-entropy, backward, momentum SGD, and the loss read back.
    fn train_step(&mut self) -> Result<f32> {
        let logits = self.net.forward_t(&self.xs, true)?;
        let loss = nn::loss::cross_entropy(&logits, &self.ys)?;
        let grads = loss.backward()?;
        self.opt.step_grads(&grads)?;
        Ok(loss.to_scalar::<f32>()?)
    }

    fn eval(&self) -> Result<f32> {
        Ok(self
            .net
            .forward_t(&self.xs, false)?
            .sum_all()?
            .to_scalar::<f32>()?)
    }
}

fn bench_model(arch: Arch, name: &str, batch: usize, args: &BenchWorkerArgs) -> Result<()> {
    let fw = args.backend.name();
    let device = args
        .device
        .to_device()
        .with_context(|| format!("cannot use the device {}", args.device))?;
    let mut bench = Bench::new(arch, batch, args.backend, &device)?;
    let report = |case: &str, t: [f64; 3]| {
        println!(
            "RESULT fw={fw} model={name} case={case} batch={batch} median_ms={:.2} min_ms={:.2} \
             max_ms={:.2} imgs_per_s={:.1}",
            t[0],
            t[1],
            t[2],
            batch as f64 / t[0] * 1e3
        );
    };
    let warmup = if name == "resnet20" {
        args.warmup.min(2)
    } else {
        args.warmup
    };
    let t = time_it(warmup, args.iters, || bench.train_step().map(drop))?;
    report("train_step", t);
    let t = time_it(warmup, args.iters, || bench.eval().map(drop))?;
    report("forward_eval", t);
    Ok(())
}

fn bench_conv(args: &BenchWorkerArgs, fw: &str) -> Result<()> {
    for (label, [b, cin, cout, hw, k, pad, stride]) in CONV_CASES {
        let xs = randn(1, "bench/conv/x", &[b, cin, hw, hw])?;
        let ws = (randn(1, "bench/conv/w", &[cout, cin, k, k])? * 0.1)?;
        let params = ConvParams::square(k).stride(stride).padding(pad);
        let y0 = ops::conv2d(&xs, &ws, None, params, args.backend)?;
        let oh = y0.dim(2)?;
        let flops = 2.0 * (b * cout * oh * oh * cin * k * k) as f64;
        let (x, w) = (Var::from_tensor(&xs)?, Var::from_tensor(&ws)?);
        let fwd = || -> Result<()> {
            ops::conv2d(&xs, &ws, None, params, args.backend)?;
            Ok(())
        };
        // candle seeds the backward pass of a non-scalar with ones: the same work as
        // PyTorch's `backward(gout)` without an extra product and reduction in the graph.
        let fb = || -> Result<()> {
            ops::conv2d(x.as_tensor(), w.as_tensor(), None, params, args.backend)?.backward()?;
            Ok(())
        };
        for (what, mult, t) in [
            ("fwd", 1.0, time_it(2, args.iters, fwd)?),
            ("fwd+bwd", 3.0, time_it(2, args.iters, fb)?),
        ] {
            println!(
                "RESULT fw={fw} conv={label} case={what} median_ms={:.3} min_ms={:.3} gflops={:.1}",
                t[0],
                t[1],
                mult * flops / t[0] / 1e6
            );
        }
    }
    Ok(())
}

/// Peak and current resident memory from `/proc/self/status`, in kB.
fn vm_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// ResNet-20 batch 128 training steps, printing memory after steps 1, 10, 50, ..., `iters`.
fn memory(args: &BenchWorkerArgs) -> Result<()> {
    let mut bench = Bench::new(Arch::Resnet20, 128, args.backend, &Device::Cpu)?;
    for step in 1..=args.iters {
        bench.train_step()?;
        if [1, 2, 10, 50].contains(&step) || step == args.iters {
            let (hwm, rss) = vm_kb();
            println!("MEMORY step={step} vm_hwm_kb={hwm} vm_rss_kb={rss}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
