//! `cargo xtask`: the project's automation. Flags, progress and the network live here; the
//! experiments, records and tables are the `experiments` library's.
// A binary has no public API: `pub` marks what modules share.
#![allow(clippy::print_stdout, clippy::print_stderr, unreachable_pub)]

mod bench;
mod commands;
mod datasets;
mod flags;
mod progress;
mod projbench;
mod relaunch;
mod tidy;

use anyhow::Result;
use clap::Parser;

fn main() -> Result<()> {
    keep_freed_memory();
    let flags = flags::Flags::parse();
    // Training commands start themselves again with candle's thread configuration when it is
    // not set (experiments::runner::thread_env says why).
    match &flags.cmd {
        flags::Cmd::Reproduce(args) if !args.dry_run => {
            relaunch::with_thread_env(&args.options().thread_env())?;
        }
        flags::Cmd::Train(_) => {
            relaunch::with_thread_env(&experiments::runner::thread_env(1, 1))?;
        }
        _ => {}
    }
    // A first Ctrl-C asks running loops to stop at the next batch (checkpoints and records stay
    // whole); a second one exits at once.
    let _ = ctrlc::set_handler(|| {
        if progress::INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("interrupt: finishing the current step, press Ctrl-C again to abort");
    });
    match flags.cmd {
        flags::Cmd::Datasets(args) => datasets::run(&args),
        flags::Cmd::Train(args) => commands::train(&args),
        flags::Cmd::Reproduce(args) => commands::reproduce(&args),
        flags::Cmd::Tables(args) => commands::tables(&args),
        flags::Cmd::Tidy => tidy::run(),
        flags::Cmd::Energy(args) => commands::energy(&args),
        flags::Cmd::Bench(args) => bench::run(&args),
        flags::Cmd::BenchProjection(args) => projbench::run(&args),
        flags::Cmd::BenchWorker(args) => bench::worker(&args),
    }
}

/// Training frees and reallocates the same multi-megabyte activation buffers every step. By
/// default glibc returns such blocks to the kernel (mmap above 128 KiB, heap trimming), so every
/// step pays for fresh zeroed pages: a quarter of a conv's backward time. Serving blocks up to
/// 32 MiB (glibc's maximum) from the heap and never trimming it keeps them for reuse. Parallel
/// runs allocate from one arena: a thread's own arena unmaps each of its 64 MiB heaps as soon as
/// it empties, whatever the trim threshold, and every batch then faulted in fresh pages again.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; it is called before any other thread
    // exists and with documented parameter values.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
