//! Thread configuration of parallel runs without touching this process's environment.
//!
//! candle reads `CANDLE_NUM_THREADS` (once, sizing its elementwise pool) and `RAYON_NUM_THREADS`
//! (on every GEMM, sizing its split) from the process environment itself, so the only way to
//! configure it is the environment. Changing a running process's environment is unsound once
//! other threads may read it, so when `reproduce` or `train` starts and the variables are not
//! set, the command starts itself again, once, with them set through `Command::env`, and exits
//! with the child's status. The child finds them set and runs.

use std::process::{Command, ExitStatus};

use anyhow::{Context, Result};

/// Runs this command again with `env` added and exits with its status; returns at once when
/// `env` is empty (nothing to set).
pub fn with_thread_env(env: &[(&'static str, String)]) -> Result<()> {
    if env.is_empty() {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot locate the xtask binary")?;
    // The child shares the terminal's process group, so it receives Ctrl-C and stops cleanly;
    // this process only waits for it.
    let _ = ctrlc::set_handler(|| {});
    let status = Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    std::process::exit(exit_code(status))
}

/// The child's exit code, or 128 + the signal that ended it (the shell's convention).
fn exit_code(status: ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    status.code().unwrap_or(1)
}
