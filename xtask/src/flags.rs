//! Command-line flags: one subcommand per task, one args struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cnn_zoo::Arch;
use datasets::DatasetId;
use tensor_core::DeviceSpec;

use crate::experiments::Experiment;

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
    /// Check the workspace's dependency rules.
    Tidy,
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
    /// Import files you already have from this directory (same layout as the official archives)
    /// instead of downloading.
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
    /// Read the full dataset from this directory (default: the embedded subset).
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
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
}

/// Learning-rate schedules selectable on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScheduleArg {
    /// Constant rate.
    Constant,
    /// Cosine decay to 0.
    Cosine,
}

/// Experiment profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Offline, embedded data, CPU-sized; the default.
    Quick,
    /// Full datasets (downloaded or `--data-dir`), paper-sized; meant for a GPU machine.
    Full,
}

/// `cargo xtask reproduce`.
#[derive(Debug, Args)]
#[command(after_help = crate::experiments::registry_help())]
pub struct ReproduceArgs {
    /// Profile.
    #[arg(long, value_enum, default_value_t = Profile::Quick)]
    pub profile: Profile,
    /// Run only these experiments (default: every experiment of the profile).
    #[arg(long, value_enum, num_args = 1..)]
    pub only: Vec<Experiment>,
    /// Device: `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// Independent runs to execute in parallel.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Skip runs that already have a record; restart interrupted runs from their checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Output directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Directory with full datasets (full profile).
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// List the runs that would execute and exit.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_arch(s: &str) -> Result<Arch, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_dataset(s: &str) -> Result<DatasetId, String> {
    s.parse().map_err(|e| format!("{e}"))
}
