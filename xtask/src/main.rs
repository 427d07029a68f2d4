//! `cargo xtask`: the project's automation, in Rust. Only this binary touches the network, the
//! terminal and result files; the libraries it composes stay pure.
// A binary has no public API: `pub` marks what modules share.
#![allow(clippy::print_stdout, clippy::print_stderr, unreachable_pub)]

mod checkpoint;
mod constrained;
mod data;
mod datasets;
mod dense;
mod e2train;
mod eap;
mod energy;
mod experiments;
mod flags;
mod paths;
mod progress;
mod reproduce;
mod tidy;
mod train;

use anyhow::Result;
use clap::Parser;

fn main() -> Result<()> {
    let flags = flags::Flags::parse();
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
        flags::Cmd::Train(args) => reproduce::train_one(&args),
        flags::Cmd::Reproduce(args) => reproduce::run(&args),
        flags::Cmd::Tidy => tidy::run(),
        flags::Cmd::Energy(args) => energy::run(&args),
    }
}
