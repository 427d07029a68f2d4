//! HTTP downloads for `cargo xtask datasets`: through the proxy the environment names, and
//! resumable. A download streams into a `.part` file beside the cache; an interrupted one keeps
//! what arrived, and the next attempt asks the server for the rest (`Range`), starting over when
//! the server does not honour it. The bytes are checked by the caller before anything reaches
//! the cache, and a part that fails the check is deleted.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::progress::Progress;

/// Upper bound on one download, far above the largest archive (CIFAR-100, ≈ 161 MB).
const MAX_DOWNLOAD: u64 = 512 << 20;

/// The proxy for `url` from environment variables read through `var`, as curl and most tools
/// read them: `HTTPS_PROXY` for https URLs, `HTTP_PROXY` for http ones, `ALL_PROXY` for both
/// (each name in upper or lower case, lower case first), none when `NO_PROXY` lists the host
/// (a comma-separated list of host names or domain suffixes, `*` for every host). Returns the
/// variable's name with its value.
pub(super) fn proxy_for(
    url: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Option<(&'static str, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host_port.split(':').next().unwrap_or(host_port),
    }
    .to_ascii_lowercase();
    let get = |name: &'static str| {
        var(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    };
    let bypass = get("no_proxy").or_else(|| get("NO_PROXY"));
    if let Some((_, list)) = bypass {
        let listed = list.split(',').map(str::trim).any(|entry| {
            let entry = entry.trim_start_matches('.').to_ascii_lowercase();
            entry == "*"
                || (!entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}"))))
        });
        if listed {
            return None;
        }
    }
    let specific: [&'static str; 2] = if scheme.eq_ignore_ascii_case("https") {
        ["https_proxy", "HTTPS_PROXY"]
    } else {
        ["http_proxy", "HTTP_PROXY"]
    };
    specific
        .into_iter()
        .chain(["all_proxy", "ALL_PROXY"])
        .find_map(get)
}

fn agent_for(url: &str, var: impl Fn(&str) -> Option<String>) -> Result<ureq::Agent> {
    let mut builder = ureq::AgentBuilder::new().timeout(Duration::from_secs(600));
    if let Some((name, value)) = proxy_for(url, var) {
        let proxy = ureq::Proxy::new(&value)
            .with_context(|| format!("{name}={value} is not a proxy ureq can use"))?;
        builder = builder.proxy(proxy);
    }
    Ok(builder.build())
}

/// Downloads `url` into `part`, resuming from the bytes already in it, and returns the whole
/// body. `var` reads the environment (the proxy variables).
pub(super) fn fetch_resumable(
    url: &str,
    part: &Path,
    progress: &Progress,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Vec<u8>> {
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let have = std::fs::metadata(part).map_or(0, |m| m.len());
    let mut request = agent_for(url, var)?.get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        // The part already holds the whole file (the last attempt failed after the body).
        Err(ureq::Error::Status(416, _)) if have > 0 => return read_part(part),
        Err(e) => return Err(e).with_context(|| format!("GET {url}")),
    };
    let resumed = response.status() == 206;
    if resumed {
        let range = response.header("Content-Range").unwrap_or("");
        if !range.starts_with(&format!("bytes {have}-")) {
            bail!("{url} answered the range from byte {have} with `Content-Range: {range}`");
        }
    }
    let len: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.parse().ok());
    let start = if resumed { have } else { 0 };
    let total = len.map(|l| l + start);
    if total.is_some_and(|t| t > MAX_DOWNLOAD) {
        bail!(
            "{url} announces {} bytes, more than any dataset file",
            total.unwrap_or(0)
        );
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(part)
        .with_context(|| format!("cannot write {}", part.display()))?;
    let name = url.rsplit('/').next().unwrap_or(url).to_string();
    let bar = progress.byte_bar(total.unwrap_or(0), name);
    bar.set_position(start);
    let mut reader = bar.wrap_read(response.into_reader().take(MAX_DOWNLOAD + 1 - start));
    let copied = copy_flushing(&mut reader, &mut file);
    bar.finish_and_clear();
    let got = start + copied.as_ref().map_or_else(|(n, _)| *n, |n| *n);
    if let Err((_, e)) = copied {
        return Err(e).with_context(|| {
            format!(
                "download of {url} was interrupted after {got} bytes, kept in {}; run the \
                 command again to resume",
                part.display()
            )
        });
    }
    if got > MAX_DOWNLOAD {
        bail!("{url} is larger than any dataset file");
    }
    read_part(part)
}

/// Copies everything from `reader` into `file`, flushing what arrived even when reading fails;
/// returns the bytes written, and on failure the error with them.
fn copy_flushing(
    reader: &mut impl Read,
    file: &mut File,
) -> std::result::Result<u64, (u64, std::io::Error)> {
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                file.write_all(&buf[..k]).map_err(|e| (n, e))?;
                n += k as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = file.flush();
                return Err((n, e));
            }
        }
    }
    file.flush().map_err(|e| (n, e))?;
    Ok(n)
}

fn read_part(part: &Path) -> Result<Vec<u8>> {
    std::fs::read(part).with_context(|| format!("cannot read {}", part.display()))
}
