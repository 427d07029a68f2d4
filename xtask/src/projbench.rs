//! `cargo xtask bench-projection`: the weighted sparse projection kernel against numpy's and
//! torch's argsort versions (`xtask/peer/sparse_proj.py`), alternating ours and the
//! peer in one run, same definition and input distribution: keep the largest `w²/c` while the
//! cumulative cost stays within half the total cost.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use experiments::paths::{project_root, write_atomic, write_json_atomic};
use serde::Serialize;
use sparse_proj::{GreedyVariant, project_weighted_l0};

use crate::bench::peer_script;
use crate::flags::ProjectionBenchArgs;

#[derive(Debug, Serialize)]
struct Row {
    n: usize,
    ours_ms: f64,
    sort_ms: f64,
    numpy_ms: Option<f64>,
    torch_ms: Option<f64>,
    memcpy_ms: Option<f64>,
}

/// Seeded inputs with the peer's distribution: `w ~ U(-1, 1)`, `c ~ 0.1 + U(0, 1)`.
fn inputs(n: usize) -> (Vec<f32>, Vec<f64>) {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let w = (0..n).map(|_| uniform() * 2.0 - 1.0).collect();
    let c = (0..n).map(|_| f64::from(0.1 + uniform())).collect();
    (w, c)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn time_ours(w: &[f32], c: &[f64], budget: f64, iters: usize, sorted: bool) -> Result<f64> {
    let mut times = Vec::with_capacity(iters);
    let mut buf = w.to_vec();
    for _ in 0..iters + 1 {
        buf.copy_from_slice(w);
        let t = Instant::now();
        if sorted {
            sparse_proj::project_prefix_sorted(&mut buf, c, budget)?;
        } else {
            project_weighted_l0(&mut buf, c, budget, GreedyVariant::Prefix)?;
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.remove(0);
    Ok(median(times))
}

fn run_peer(python: &Path, script: &Path, n: usize) -> Result<Vec<(String, f64)>> {
    let out = Command::new(python)
        .arg(script)
        .arg(n.to_string())
        .args(["--threads", "1"])
        .env("OMP_NUM_THREADS", "1")
        .output()
        .with_context(|| format!("cannot run {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut results = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix("RESULT ") else {
            continue;
        };
        let kv: Vec<(&str, &str)> = rest.split(' ').filter_map(|p| p.split_once('=')).collect();
        let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        if let (Some(name), Some(ms)) = (get("impl"), get("ms").and_then(|v| v.parse().ok())) {
            results.push((name.to_string(), ms));
        }
    }
    Ok(results)
}

/// Runs the comparison and writes `target/bench/projection.{md,json}`.
pub fn run(args: &ProjectionBenchArgs) -> Result<()> {
    let root = project_root();
    let script: PathBuf = args
        .peer_script
        .clone()
        .unwrap_or_else(|| peer_script("sparse_proj.py"));
    let mut rows = Vec::new();
    for &n in &args.sizes {
        let (w, c) = inputs(n);
        let budget = c.iter().sum::<f64>() * 0.5;
        let iters = if n >= 10_000_000 { 3 } else { 7 };
        let (mut ours, mut sorted, mut peer) = (Vec::new(), Vec::new(), Vec::new());
        // Alternate ours and the peer so both see the same machine state.
        for _ in 0..args.rounds {
            ours.push(time_ours(&w, &c, budget, iters, false)?);
            sorted.push(time_ours(&w, &c, budget, iters.min(3), true)?);
            if let Some(python) = &args.peer {
                peer.extend(run_peer(python, &script, n)?);
            }
        }
        let peer_median = |name: &str| {
            let xs: Vec<f64> = peer
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| *v)
                .collect();
            (!xs.is_empty()).then(|| median(xs))
        };
        let row = Row {
            n,
            ours_ms: median(ours),
            sort_ms: median(sorted),
            numpy_ms: peer_median("numpy_argsort"),
            torch_ms: peer_median("torch_argsort"),
            memcpy_ms: peer_median("np_memcpy"),
        };
        println!(
            "n={n}: ours {:.2} ms, full sort {:.2} ms, numpy {:?} ms",
            row.ours_ms, row.sort_ms, row.numpy_ms
        );
        rows.push(row);
    }
    let mut md = String::from(
        "Weighted sparse projection, 1 thread, medians over alternating rounds. Input bytes as the \
         peer counts them (4-byte weight + 4-byte cost per entry; ours reads an 8-byte cost).\n\n\
         | n | ours ms | ours GB/s | full sort ms | numpy argsort ms | torch argsort ms | numpy / ours | memcpy ms |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let opt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}"));
    for r in &rows {
        let gbs = 8.0 * r.n as f64 / (r.ours_ms * 1e-3) / 1e9;
        md.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} |\n",
            r.n,
            r.ours_ms,
            gbs,
            r.sort_ms,
            opt(r.numpy_ms),
            opt(r.torch_ms),
            r.numpy_ms
                .map_or("-".to_string(), |v| format!("{:.1}x", v / r.ours_ms)),
            opt(r.memcpy_ms),
        ));
    }
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(&dir.join("projection.md"), md.as_bytes())?;
    write_json_atomic(&dir.join("projection.json"), &rows)?;
    println!("{md}");
    println!("written: {}", dir.join("projection.md").display());
    Ok(())
}
