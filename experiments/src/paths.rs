//! Where things live: the project root, the output tree, the dataset cache, and atomic writes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The workspace root (the parent of this crate's manifest directory).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Default output directory of `reproduce` and `train`.
pub fn default_out_dir() -> PathBuf {
    project_root().join("target").join("repro")
}

/// Dataset cache: `$ENERGY_DATA_DIR` or `<root>/.cache/datasets` (git-ignored).
pub fn dataset_cache() -> PathBuf {
    std::env::var_os("ENERGY_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join(".cache").join("datasets"))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed and synced,
/// then renamed over the target, so a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_via(path, bytes, |tmp| fs::File::create(tmp))
}

/// [`write_atomic`] with the temporary file opened by `open` (given the temporary path), so a
/// test can hand it a writer that fails like a full disk. Whatever fails, the target is left as
/// it was and the temporary file is removed.
fn write_atomic_via(
    path: &Path,
    bytes: &[u8],
    open: impl FnOnce(&Path) -> std::io::Result<fs::File>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}{TMP_MARK}{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = open(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| {
            format!(
                "cannot write {} ({} bytes for {})",
                tmp.display(),
                bytes.len(),
                path.display()
            )
        })?;
        f.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// What [`write_atomic`] puts between a file's name and the writer's process id.
const TMP_MARK: &str = ".tmp-";

/// Removes the temporary files that [`write_atomic`] calls of processes no longer running left
/// under `root` (a `kill -9` between create and rename), and returns how many. Files of live
/// processes are left alone, so a concurrent writer is not disturbed. Linux only (it asks
/// `/proc`); elsewhere nothing is removed.
pub fn remove_stale_temp_files(root: &Path) -> Result<usize> {
    if !Path::new("/proc/self").exists() || !root.is_dir() {
        return Ok(0);
    }
    let mut removed = 0;
    for path in files_under(root)? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let pid = name
            .as_deref()
            .filter(|n| n.starts_with('.'))
            .and_then(|n| n.rsplit_once(TMP_MARK))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            fs::remove_file(&path)
                .with_context(|| format!("cannot remove stale {}", path.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Every file under `dir`, recursively, sorted; empty when `dir` does not exist.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let path = entry
                .with_context(|| format!("cannot list {}", d.display()))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Creates `dir` if needed and checks that a file can be written in it, so a run fails before
/// hours of work rather than at its first checkpoint.
pub fn check_writable_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let probe = dir.join(format!(".write-probe{TMP_MARK}{}", std::process::id()));
    write_atomic(&probe, b"probe")
        .with_context(|| format!("output directory {} is not writable", dir.display()))?;
    fs::remove_file(&probe).with_context(|| format!("cannot remove {}", probe.display()))
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).context("cannot serialise JSON")?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// The current git revision of the project, with `-dirty` when the tree has changes, or
/// `unknown` outside a git checkout.
pub fn git_revision() -> String {
    let root = project_root();
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests;
