//! `cargo xtask datasets`: download (or import) the full datasets into the cache, verifying every
//! file against the manifest's checksums before anything is written; `--verify` re-checks the
//! cache; `--offline` checks the embedded subsets. Writes are atomic, so the cache never holds a
//! partial or unverified file under a dataset file's name; downloads go through the proxy the
//! environment names and resume from their `.part` files ([`fetch`]).

use std::io::Read;
use std::path::{Path, PathBuf};

mod fetch;

use anyhow::{Context, Result, bail};
use datasets::{Checksums, DatasetEntry, DatasetId, FileEntry, Layout, Manifest};
use experiments::paths::{dataset_cache, write_atomic};
use flate2::read::GzDecoder;

use crate::flags::DatasetsArgs;
use crate::progress::Progress;

/// `cargo xtask datasets`.
pub fn run(args: &DatasetsArgs) -> Result<()> {
    if args.offline {
        datasets::verify_embedded().context("embedded data failed verification")?;
        for f in datasets::embedded_files() {
            println!("ok  embedded {}", f.path);
        }
        return Ok(());
    }
    let manifest = Manifest::canonical()?;
    let ids: Vec<DatasetId> = if args.only.is_empty() {
        DatasetId::ALL.to_vec()
    } else {
        args.only.clone()
    };
    if let Some(id) = ids.iter().find(|id| !id.has_records()) {
        bail!(
            "{} is not downloadable (ILSVRC-2012 needs an account): keep it as train/ and val/ \
             class folders and give them with --imagenet-dir",
            id.title()
        );
    }
    let cache = dataset_cache();
    let progress = Progress::new();
    for id in ids {
        let entry = manifest.dataset(id)?;
        if args.verify {
            verify_cached(entry, &cache)?;
            println!(
                "ok  {id}: every file in {} verifies",
                cache.join(&entry.dir).display()
            );
        } else if let Some(dir) = &args.from_dir {
            import(entry, dir, &cache)?;
            println!(
                "ok  {id}: imported from {} into {}",
                dir.display(),
                cache.display()
            );
        } else {
            download(entry, &cache, &progress)?;
            println!("ok  {id}: {}", cache.join(&entry.dir).display());
        }
    }
    Ok(())
}

fn cached_path(entry: &DatasetEntry, cache: &Path, file: &FileEntry) -> PathBuf {
    cache.join(&entry.dir).join(&file.name)
}

/// Checks every cached file of `entry` against its raw checksums.
pub fn verify_cached(entry: &DatasetEntry, cache: &Path) -> Result<()> {
    for f in &entry.files {
        let path = cached_path(entry, cache, f);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "{} is missing; run `cargo xtask datasets --only {}`",
                path.display(),
                entry.id
            )
        })?;
        f.raw
            .verify(&path.display().to_string(), &bytes)
            .with_context(|| {
                format!(
                    "cached file {} is corrupt; delete it and fetch again",
                    path.display()
                )
            })?;
    }
    Ok(())
}

fn all_cached(entry: &DatasetEntry, cache: &Path) -> bool {
    verify_cached(entry, cache).is_ok()
}

/// Decompresses gzip data when it starts with the gzip magic.
fn maybe_inflate(name: &str, bytes: Vec<u8>) -> Result<Vec<u8>> {
    if !datasets::idx::is_gzip(&bytes) {
        return Ok(bytes);
    }
    // The library's inflater caps the output, so a gzip bomb is an error, not an OOM kill.
    let out = datasets::idx::inflate(name, &bytes)
        .with_context(|| format!("{name} is not a valid gzip file"))?;
    Ok(out.into_owned())
}

/// Verifies `raw` against the file's raw checksums and writes it into the cache atomically.
fn store(
    entry: &DatasetEntry,
    cache: &Path,
    f: &FileEntry,
    origin: &str,
    raw: &[u8],
) -> Result<()> {
    f.raw.verify(origin, raw).with_context(|| {
        // MNIST and Fashion-MNIST share their file names: say which file it is instead.
        let what = Manifest::canonical()
            .ok()
            .and_then(|m| m.identify(raw))
            .map(|k| format!(" (it is {k})"))
            .unwrap_or_default();
        format!("{origin} failed verification{what}; nothing was cached")
    })?;
    write_atomic(&cached_path(entry, cache, f), raw)
}

/// Downloads every file of `entry` not already cached and verified.
fn download(entry: &DatasetEntry, cache: &Path, progress: &Progress) -> Result<()> {
    if all_cached(entry, cache) {
        return Ok(());
    }
    match &entry.archive {
        Some(archive) => {
            let part = part_path(entry, cache, &archive.name);
            let urls = entry.urls(&archive.name);
            let bytes = fetch_any(&urls, &archive.checksums, &part, progress)?;
            report_unpublished_sha256(&archive.name, &archive.checksums, &bytes);
            unpack(entry, cache, &archive.prefix, &archive.name, &bytes)?;
            remove_part(&part)
        }
        None => {
            for f in &entry.files {
                if f.raw
                    .verify(
                        "",
                        &std::fs::read(cached_path(entry, cache, f)).unwrap_or_default(),
                    )
                    .is_ok()
                    && f.raw.has_digest()
                {
                    continue;
                }
                let (name, checks) = match &f.gz {
                    Some(gz) => (f.gz_name(), gz.clone()),
                    None => (f.name.clone(), f.raw.clone()),
                };
                let part = part_path(entry, cache, &name);
                let bytes = fetch_any(&entry.urls(&name), &checks, &part, progress)?;
                let raw = maybe_inflate(&f.name, bytes)?;
                store(entry, cache, f, &f.name, &raw)?;
                remove_part(&part)?;
            }
            Ok(())
        }
    }
}

/// Prints the sha256 of a verified archive whose manifest entry lacks one (CIFAR-100 publishes
/// only an md5), so it can be recorded in the manifest.
fn report_unpublished_sha256(name: &str, checks: &Checksums, bytes: &[u8]) {
    if checks.sha256.is_none() {
        println!(
            "note: {name} verified by md5; its sha256 is {} (record it in datasets/manifest.toml)",
            datasets::sha256_hex(bytes)
        );
    }
}

/// Extracts the manifest's files from a verified tar.gz into the cache.
fn unpack(
    entry: &DatasetEntry,
    cache: &Path,
    prefix: &str,
    name: &str,
    bytes: &[u8],
) -> Result<()> {
    let mut archive = tar::Archive::new(GzDecoder::new(bytes));
    let mut found = Vec::new();
    for member in archive
        .entries()
        .with_context(|| format!("cannot read {name}"))?
    {
        let mut member = member.with_context(|| format!("corrupt member in {name}"))?;
        let path = member.path()?.to_string_lossy().to_string();
        let Some(file) = path.strip_prefix(prefix).and_then(|n| entry.file(n)) else {
            continue;
        };
        let mut raw = Vec::new();
        member
            .read_to_end(&mut raw)
            .with_context(|| format!("cannot read {path} from {name}"))?;
        store(entry, cache, file, &format!("{name}:{path}"), &raw)?;
        found.push(file.name.clone());
    }
    let missing: Vec<&str> = entry
        .files
        .iter()
        .filter(|f| !found.contains(&f.name))
        .map(|f| f.name.as_str())
        .collect();
    if !missing.is_empty() {
        bail!("{name} lacks {} under {prefix}", missing.join(", "));
    }
    Ok(())
}

/// Where the download of `name` (a dataset file, its `.gz`, or an archive) collects its bytes
/// until they verify: beside the cached files, under a name no dataset file has.
fn part_path(entry: &DatasetEntry, cache: &Path, name: &str) -> PathBuf {
    cache.join(&entry.dir).join(format!("{name}.part"))
}

fn remove_part(part: &Path) -> Result<()> {
    match std::fs::remove_file(part) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", part.display()))
        }
        _ => Ok(()),
    }
}

/// Tries each URL in order, resuming from `part` (the mirrors serve the same bytes); returns the
/// first body that passes `checks`. A body that fails them is deleted, so the next mirror
/// starts afresh.
fn fetch_any(
    urls: &[String],
    checks: &Checksums,
    part: &Path,
    progress: &Progress,
) -> Result<Vec<u8>> {
    let mut errors = Vec::new();
    for url in urls {
        let got = fetch::fetch_resumable(url, part, progress, |k| std::env::var(k).ok());
        match got.and_then(|b| match checks.verify(url, &b) {
            Ok(()) => Ok(b),
            Err(e) => {
                remove_part(part)?;
                Err(e.into())
            }
        }) {
            Ok(b) => return Ok(b),
            Err(e) => {
                progress.println(format!("{url}: {e:#}"));
                errors.push(format!("{url}: {e:#}"));
            }
        }
    }
    bail!("every mirror failed:\n  {}", errors.join("\n  "))
}

/// Imports files a user already has, from any folder of a [`Layout`] under `dir` (the cache's
/// `<dir>/<dataset dir>/`, torchvision's, or `dir` itself; IDX files raw or `.gz`), or the
/// dataset's archive in `<dir>`.
pub fn import(entry: &DatasetEntry, dir: &Path, cache: &Path) -> Result<()> {
    if let Some(archive) = &entry.archive {
        let path = dir.join(&archive.name);
        if path.exists() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let origin = path.display().to_string();
            archive
                .checksums
                .verify(&origin, &bytes)
                .with_context(|| format!("{origin} failed verification; nothing was cached"))?;
            return unpack(entry, cache, &archive.prefix, &origin, &bytes);
        }
    }
    for f in &entry.files {
        let candidates: Vec<PathBuf> = Layout::ALL
            .iter()
            .flat_map(|l| l.folders(dir, entry.id))
            .flat_map(|d| [d.join(&f.name), d.join(f.gz_name())])
            .collect();
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            bail!(
                "{} not found in {} (looked for {})",
                f.name,
                dir.display(),
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {origin}"))?;
        let raw = maybe_inflate(&origin, bytes)?;
        store(entry, cache, f, &origin, &raw)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
