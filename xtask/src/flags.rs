//! Command-line flags: one subcommand per task, one args struct per subcommand.

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cnn_zoo::Arch;
use datasets::DatasetId;
use experiments::energy::{EnergyRequest, Format, ModelKind, Subject};
use experiments::runner::{ReproduceOptions, TrainOptions};
use experiments::{Experiment, Profile};
use tensor_core::{DeviceSpec, LrDecay, OpsBackend};

/// Project automation: data, training, the papers' experiments, hygiene.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
pub struct Flags {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Download, verify or import datasets into the cache.
    Datasets(DatasetsArgs),
    /// Train one model on one dataset with the baseline recipe.
    Train(TrainArgs),
    /// Run the experiment registry and write one record per run.
    Reproduce(ReproduceArgs),
    /// Regenerate the result tables, plots and README section from the run records.
    Tables(TablesArgs),
    /// Check the workspace's dependency rules.
    Tidy,
    /// Price a model's layers with an energy model and render the per-layer report.
    Energy(EnergyArgs),
    /// Time training steps, eval and convs: fast ops vs candle's stock ops (and PyTorch).
    Bench(BenchArgs),
    /// One benchmark suite in this process (what `bench` runs for each measurement).
    #[command(hide = true)]
    BenchWorker(BenchWorkerArgs),
    /// Time the weighted sparse projection against numpy's and torch's argsort versions.
    BenchProjection(ProjectionBenchArgs),
}

/// `cargo xtask tables`.
#[derive(Debug, Args)]
pub struct TablesArgs {
    /// First copy the records of `reproduce` output directories (e.g. `target/repro`, or the
    /// `--out` of each shard) into `results/records/`, replacing records of the same runs.
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub import: Vec<PathBuf>,
    /// Write nothing; fail if any generated file or the README section is stale.
    #[arg(long, conflicts_with = "import")]
    pub check: bool,
    /// Write nothing; compare the records of a `reproduce` output directory with the committed
    /// ones, metric by metric (timings and checkpoint paths aside), and fail on any difference.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["import", "check"])]
    pub compare: Option<PathBuf>,
}

/// `cargo xtask bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Python interpreter with torch: also run `bench_torch.py`, alternating with ours. A bare
    /// name (`python3`) is looked up in the project's `.venv/bin` first, then on the PATH.
    #[arg(long, value_name = "PYTHON")]
    pub peer: Option<PathBuf>,
    /// The PyTorch script (default: `xtask/peer/bench_torch.py`).
    #[arg(long, value_name = "PATH")]
    pub peer_script: Option<PathBuf>,
    /// Suites to run (default: all of lenet, resnet, conv).
    #[arg(long, value_enum, num_args = 1..)]
    pub suite: Vec<Suite>,
    /// Thread counts, each measured in its own processes.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
    pub threads: Vec<usize>,
    /// Alternating rounds (PyTorch, fast, candle) per thread count.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Timed iterations per run (ResNet at most 8, convs at most 7, as in `bench_torch.py`).
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Untimed warm-up iterations per run.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Skip candle's stock ops (their ResNet-20 step takes seconds).
    #[arg(long)]
    pub no_candle: bool,
    /// ResNet-20 training steps of the memory check per thread count (0 skips it).
    #[arg(long, default_value_t = 100)]
    pub memory_steps: usize,
    /// Also time the LeNet-5 and ResNet-20 steps on this GPU (`cuda:N`, a CUDA build), next to
    /// the fast ops on the CPU.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<DeviceSpec>,
}

/// `cargo xtask bench-worker`.
#[derive(Debug, Args)]
pub struct BenchWorkerArgs {
    /// The suite.
    #[arg(long, value_enum)]
    pub suite: Suite,
    /// Ops backend.
    #[arg(long, value_parser = parse_backend)]
    pub backend: OpsBackend,
    /// Timed iterations (training steps for `memory`).
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Device of the LeNet-5 and ResNet-20 suites: `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

/// Benchmark suites, named as `bench_torch.py`'s modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// LeNet-5 (Caffe 20-50-500-10, 1x28x28) batch 64: train step and eval forward.
    Lenet,
    /// CIFAR ResNet-20 batch 128: train step and eval forward.
    Resnet,
    /// Per-layer conv forward and forward+backward.
    Conv,
    /// ResNet-20 peak and resident memory over many training steps.
    Memory,
}

impl Suite {
    /// The name on the command line and in `bench_torch.py`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Lenet => "lenet",
            Suite::Resnet => "resnet",
            Suite::Conv => "conv",
            Suite::Memory => "memory",
        }
    }
}

/// `cargo xtask bench-projection`.
#[derive(Debug, Args)]
pub struct ProjectionBenchArgs {
    /// Python interpreter with numpy and torch: also run `sparse_proj.py`, alternating with ours.
    #[arg(long, value_name = "PYTHON")]
    pub peer: Option<PathBuf>,
    /// The peer script (default: `xtask/peer/sparse_proj.py`).
    #[arg(long, value_name = "PATH")]
    pub peer_script: Option<PathBuf>,
    /// Numbers of weights.
    #[arg(long, value_delimiter = ',', default_values_t = [60_000, 1_000_000, 10_000_000])]
    pub sizes: Vec<usize>,
    /// Alternating rounds (ours, peer) per size.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
}

fn parse_backend(s: &str) -> Result<OpsBackend, String> {
    s.parse().map_err(|e| format!("{e}"))
}

/// `cargo xtask datasets`.
#[derive(Debug, Args)]
pub struct DatasetsArgs {
    /// Datasets to fetch (all when omitted).
    #[arg(long, value_parser = parse_dataset, num_args = 1..)]
    pub only: Vec<DatasetId>,
    /// Only check what is in the cache against the manifest's hashes.
    #[arg(long)]
    pub verify: bool,
    /// Never touch the network: verify the embedded subsets instead.
    #[arg(long)]
    pub offline: bool,
    /// Import files you already have from this directory instead of downloading: the cache's
    /// layout, torchvision's (`MNIST/raw/`), a flat folder of the files, or the CIFAR archive.
    #[arg(long, value_name = "PATH")]
    pub from_dir: Option<PathBuf>,
}

/// `cargo xtask train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Architecture.
    #[arg(long, value_parser = parse_arch, default_value = "lenet5")]
    pub arch: Arch,
    /// Dataset.
    #[arg(long, value_parser = parse_dataset, default_value = "mnist")]
    pub dataset: DatasetId,
    /// Train on the full dataset, found in this directory: the download cache's layout,
    /// torchvision's (`MNIST/raw/`), or a flat folder of the official files (default: the
    /// embedded subset).
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// ImageNet (`--dataset imagenet`): the ILSVRC-2012 folder, `train/` and `val/` each with one
    /// sub-folder of JPEGs per class (the validation images sorted into class folders). The
    /// validation images are the test split.
    #[arg(long, value_name = "PATH")]
    pub imagenet_dir: Option<PathBuf>,
    /// Epochs (default: the recipe's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size (default: the recipe's).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Base learning rate (default: the recipe's).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = ScheduleArg::Cosine)]
    pub schedule: ScheduleArg,
    /// Use only the first N training records.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Device: `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// Output directory (checkpoint and record go to `<out>/train/<run>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the run's last checkpoint if there is one.
    #[arg(long)]
    pub resume: bool,
    /// Start from this PyTorch state dict (safetensors or `torch.save` .pth, torchvision's
    /// parameter names) instead of the seeded initialisation; the run spec records the file's
    /// name and SHA-256.
    #[arg(long, value_name = "FILE")]
    pub init_from: Option<PathBuf>,
}

/// Learning-rate schedules selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScheduleArg {
    /// Constant rate.
    Constant,
    /// Cosine decay to 0.
    Cosine,
}

impl ScheduleArg {
    /// The decay it selects.
    fn decay(self) -> LrDecay {
        match self {
            ScheduleArg::Constant => LrDecay::Constant,
            ScheduleArg::Cosine => LrDecay::Cosine,
        }
    }
}

impl TrainArgs {
    /// The library's options for these flags.
    pub fn options(&self) -> TrainOptions {
        TrainOptions {
            arch: self.arch,
            dataset: self.dataset,
            data_dir: self.data_dir.clone(),
            imagenet_dir: self.imagenet_dir.clone(),
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr,
            decay: self.schedule.decay(),
            train_limit: self.train_limit,
            seed: self.seed,
            device: self.device,
            out: self
                .out
                .clone()
                .unwrap_or_else(experiments::paths::default_out_dir),
            resume: self.resume,
            init_from: self.init_from.clone(),
        }
    }
}

/// The registry's experiments as command-line values, each with its one-line description.
fn experiment_parser() -> impl TypedValueParser<Value = Experiment> {
    PossibleValuesParser::new(Experiment::ALL.map(|e| PossibleValue::new(e.name()).help(e.about())))
        .try_map(|s| s.parse::<Experiment>())
}

fn profile_parser() -> impl TypedValueParser<Value = Profile> {
    PossibleValuesParser::new(Profile::ALL.map(|p| PossibleValue::new(p.name()).help(p.about())))
        .try_map(|s| s.parse::<Profile>())
}

/// `cargo xtask reproduce`.
#[derive(Debug, Args)]
#[command(after_help = experiments::registry::registry_help())]
pub struct ReproduceArgs {
    /// Profile.
    #[arg(long, value_parser = profile_parser(), default_value = "quick")]
    pub profile: Profile,
    /// Run only these experiments (default: every experiment of the profile).
    #[arg(long, value_parser = experiment_parser(), num_args = 1..)]
    pub only: Vec<Experiment>,
    /// Device: `cpu`, `cuda:N`, or several GPUs `cuda:0,cuda:1` (the runs are spread over
    /// them, one job per GPU by default; specs record only `cuda`).
    #[arg(
        long,
        default_value = "cpu",
        value_delimiter = ',',
        value_name = "DEVICE"
    )]
    pub device: Vec<DeviceSpec>,
    /// Independent runs to execute in parallel (default: the number of CPU cores on the CPU,
    /// one on a GPU).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Skip runs that already have a record; restart interrupted runs from their checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Output directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Directory with full datasets for the full profile, in any layout `train --data-dir` reads
    /// (default: the download cache).
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// The ILSVRC-2012 folder (`train/` and `val/`, one sub-folder of JPEGs per class) of the
    /// full profile's ImageNet experiments, which also need their architecture's `--init-from`
    /// weights; without both they are skipped, saying which is missing.
    #[arg(long, value_name = "PATH")]
    pub imagenet_dir: Option<PathBuf>,
    /// List the runs that would execute and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only the runs whose id contains this text (e.g. `seed1`, `b0.2-proj`).
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Run only shard K of N (1 <= K <= N): every N-th run of the list `--only` and `--filter`
    /// select, starting at the K-th. For job arrays: N processes with the same flags and
    /// `--out` (and `--resume`) split the profile; file locks keep them from training a dense
    /// model or executing a run twice.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<experiments::runner::Shard>,
    /// Start the dense models of ARCH from this PyTorch state dict (safetensors or `.pth`,
    /// torchvision's parameter names) and use them as they are, untrained: the compression and
    /// pruning runs start from them. Repeatable, one file per architecture; the run specs record
    /// each file's name and SHA-256.
    #[arg(long, value_name = "ARCH=FILE", value_parser = parse_init)]
    pub init_from: Vec<(Arch, PathBuf)>,
    /// Shrink every baseline training run to 256 records and 2 epochs: for the fault-injection
    /// tests, which kill and resume real runs (the records' specs show the shrinking).
    #[arg(long, hide = true)]
    pub smoke: bool,
}

impl ReproduceArgs {
    /// The library's options for these flags.
    pub fn options(&self) -> ReproduceOptions {
        ReproduceOptions {
            profile: self.profile,
            only: self.only.clone(),
            devices: self.device.clone(),
            jobs: self.jobs,
            resume: self.resume,
            out: self
                .out
                .clone()
                .unwrap_or_else(experiments::paths::default_out_dir),
            data_dir: self.data_dir.clone(),
            imagenet_dir: self.imagenet_dir.clone(),
            filter: self.filter.clone(),
            shard: self.shard,
            init_from: self.init_from.iter().cloned().collect(),
            smoke: self.smoke,
        }
    }
}

/// `cargo xtask energy`.
#[derive(Debug, Args)]
pub struct EnergyArgs {
    /// Architecture whose geometry is priced (from cnn-zoo).
    #[arg(long, value_parser = parse_arch, required_unless_present_any = ["tool_file", "onnx"])]
    pub arch: Option<Arch>,
    /// Price the layers of an MIT energy-estimation-tool file instead of a zoo model.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["arch", "onnx"])]
    pub tool_file: Option<PathBuf>,
    /// Price the conv and FC layers of an ONNX model, each with the zeros of its weights.
    #[arg(long, value_name = "MODEL", conflicts_with = "arch")]
    pub onnx: Option<PathBuf>,
    /// ONNX: the input of one sample as C,H,W, for a model whose input size is symbolic.
    #[arg(long, value_name = "C,H,W", requires = "onnx", value_parser = parse_chw)]
    pub input_shape: Option<[usize; 3]>,
    /// ONNX: price every weight as nonzero (also reads a model exported without its weights).
    #[arg(long, requires = "onnx")]
    pub dense: bool,
    /// Energy model.
    #[arg(long, value_enum, default_value_t = EnergyModelArg::Iclr19)]
    pub model: EnergyModelArg,
    /// Hardware preset of the eyeriss model (default isca16).
    #[arg(long, value_enum)]
    pub preset: Option<EnergyPreset>,
    /// Batch size (eyeriss; default 16). The iclr19 model prices one sample.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Take each layer's weight support (and input mask, if saved) from this checkpoint.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "density")]
    pub density_from: Option<PathBuf>,
    /// Price every layer at this weight density in [0, 1] instead of dense weights.
    #[arg(long, allow_negative_numbers = true)]
    pub density: Option<f64>,
    /// iclr19: count exact MACs (nonzero weight and input pairs) instead of the relaxed bound.
    #[arg(long)]
    pub exact: bool,
    /// Output format (`mit` writes the layer table in the MIT tool's format).
    #[arg(long, value_enum, default_value_t = EnergyFormat::Table)]
    pub format: EnergyFormat,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Energy models selectable on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EnergyModelArg {
    /// ICLR'19 systolic-array model (RF-access units, one sample).
    Iclr19,
    /// Eyeriss row-stationary model (16-bit-MAC units).
    Eyeriss,
}

/// Eyeriss hardware presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EnergyPreset {
    /// ISCA'16 analysis configuration: 16x16 PEs, 128 kB buffer.
    Isca16,
    /// The JSSC'17 chip: 12x14 PEs, 108 kB buffer.
    Chip,
}

impl EnergyArgs {
    /// The library's request for these flags.
    pub fn request(&self) -> anyhow::Result<EnergyRequest> {
        // clap's `requires` does not hold a set-true flag back, so both are checked here.
        if self.onnx.is_none() && (self.dense || self.input_shape.is_some()) {
            anyhow::bail!("--dense and --input-shape apply to --onnx MODEL only");
        }
        let subject = match (&self.tool_file, &self.onnx, self.arch) {
            (Some(path), _, _) => Subject::ToolFile(path.clone()),
            (None, Some(path), _) => Subject::Onnx {
                path: path.clone(),
                options: energy_model::onnx::OnnxOptions {
                    input: self.input_shape,
                    dense: self.dense,
                },
            },
            (None, None, Some(arch)) => Subject::Arch(arch),
            (None, None, None) => {
                anyhow::bail!("give --arch ARCH, --tool-file FILE or --onnx MODEL")
            }
        };
        Ok(EnergyRequest {
            subject,
            model: match self.model {
                EnergyModelArg::Iclr19 => ModelKind::Iclr19,
                EnergyModelArg::Eyeriss => ModelKind::Eyeriss,
            },
            preset: self.preset.map(|p| match p {
                EnergyPreset::Isca16 => energy_model::eyeriss::Preset::Isca16,
                EnergyPreset::Chip => energy_model::eyeriss::Preset::Chip,
            }),
            batch: self.batch,
            density_from: self.density_from.clone(),
            density: self.density,
            exact: self.exact,
            format: match self.format {
                EnergyFormat::Table => Format::Table,
                EnergyFormat::Json => Format::Json,
                EnergyFormat::Csv => Format::Csv,
                EnergyFormat::Svg => Format::Svg,
                EnergyFormat::Mit => Format::Mit,
            },
        })
    }
}

/// Report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EnergyFormat {
    /// Aligned text table.
    Table,
    /// JSON, one object per layer.
    Json,
    /// CSV, one row per layer.
    Csv,
    /// Stacked per-layer bar chart.
    Svg,
    /// The MIT estimation tool's layer format (geometry, zero counts, widths; no energies).
    Mit,
}

fn parse_init(s: &str) -> Result<(Arch, PathBuf), String> {
    let (arch, file) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not ARCH=FILE"))?;
    Ok((parse_arch(arch)?, PathBuf::from(file)))
}

fn parse_chw(s: &str) -> Result<[usize; 3], String> {
    let dims: Vec<usize> = s
        .split(',')
        .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("`{s}` is not three positive sizes C,H,W"))?;
    <[usize; 3]>::try_from(dims).map_err(|_| format!("`{s}` is not three sizes C,H,W"))
}

fn parse_arch(s: &str) -> Result<Arch, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_dataset(s: &str) -> Result<DatasetId, String> {
    s.parse().map_err(|e| format!("{e}"))
}
