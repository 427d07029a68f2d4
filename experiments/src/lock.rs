//! Advisory file locks that hold across processes and machines sharing an output directory (a
//! Slurm job array's shards on one `--out`), so that a dense model is trained once and a run is
//! executed and recorded by one process.
//!
//! Built on the standard library's `File::lock` / `File::try_lock` (`flock(2)` on Linux, which
//! NFSv4 and Lustre clients honour across machines; `LockFileEx` on Windows). The kernel drops a
//! lock when its holder dies, so a killed shard never leaves a stale lock: the lock files
//! themselves stay and are harmless.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the order explicit.
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}

/// Waits for the exclusive lock on `path` (created if missing).
pub fn exclusive(path: &Path) -> Result<FileLock> {
    let file = open(path)?;
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(FileLock {
        file,
        path: path.to_path_buf(),
    })
}

/// The exclusive lock on `path` if no one holds it, else `None` at once.
pub fn try_exclusive(path: &Path) -> Result<Option<FileLock>> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(FileLock {
            file,
            path: path.to_path_buf(),
        })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Where the locks of an output directory live: `OUT/locks/<kind>/<name>.lock`.
pub fn path(out: &Path, kind: &str, name: &str) -> PathBuf {
    out.join("locks").join(kind).join(format!("{name}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_until_released_even_within_one_process() {
        let dir = std::env::temp_dir().join(format!("lock-test-{}", std::process::id()));
        let p = path(&dir, "runs", "a");
        let held = exclusive(&p).unwrap();
        assert_eq!(held.path(), p);
        // A second open file is a second holder, as another process would be.
        assert!(try_exclusive(&p).unwrap().is_none());
        drop(held);
        let again = try_exclusive(&p).unwrap();
        assert!(again.is_some());
        drop(again);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_under_a_regular_file_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("lock-file-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("locks"), b"not a directory").unwrap();
        let err = exclusive(&path(&dir, "runs", "a")).unwrap_err();
        assert!(format!("{err:#}").contains("locks"), "{err:#}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
