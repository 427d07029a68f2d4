use super::*;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xtask-datasets-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A one-file dataset entry whose raw checksums are those of `good`.
fn entry(good: &[u8]) -> DatasetEntry {
    DatasetEntry {
        id: DatasetId::Mnist,
        dir: "mnist".into(),
        licence: "test".into(),
        mirrors: vec![],
        archive: None,
        files: vec![FileEntry {
            name: "t10k-labels-idx1-ubyte".into(),
            raw: Checksums {
                bytes: Some(good.len() as u64),
                md5: None,
                sha256: Some(datasets::sha256_hex(good)),
            },
            gz: None,
        }],
    }
}

#[test]
fn import_verifies_gzip_content_and_caches_raw() {
    let gz = datasets::embedded_file("mnist/t10k-labels-idx1-ubyte.gz").unwrap();
    let raw = maybe_inflate("labels", gz.to_vec()).unwrap();
    let (src, cache) = (scratch("src-ok"), scratch("cache-ok"));
    std::fs::write(src.join("t10k-labels-idx1-ubyte.gz"), gz).unwrap();
    let e = entry(&raw);
    import(&e, &src, &cache).unwrap();
    assert_eq!(
        std::fs::read(cache.join("mnist/t10k-labels-idx1-ubyte")).unwrap(),
        raw
    );
    verify_cached(&e, &cache).unwrap();
}

#[test]
fn corrupt_import_names_the_file_and_caches_nothing() {
    let gz = datasets::embedded_file("mnist/t10k-labels-idx1-ubyte.gz").unwrap();
    let mut raw = maybe_inflate("labels", gz.to_vec()).unwrap();
    let e = entry(&raw);
    raw[100] ^= 1;
    let (src, cache) = (scratch("src-bad"), scratch("cache-bad"));
    std::fs::create_dir_all(src.join("mnist")).unwrap();
    let bad = src.join("mnist/t10k-labels-idx1-ubyte");
    std::fs::write(&bad, &raw).unwrap();
    let err = format!("{:#}", import(&e, &src, &cache).unwrap_err());
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(
        !cache.join("mnist").exists()
            || std::fs::read_dir(cache.join("mnist")).unwrap().count() == 0
    );
    // Truncated: the size check speaks first.
    std::fs::write(&bad, &raw[..50]).unwrap();
    let err = format!("{:#}", import(&e, &src, &cache).unwrap_err());
    assert!(err.contains("failed verification"), "{err}");
    assert!(verify_cached(&e, &cache).is_err());
}

#[test]
fn missing_import_lists_where_it_looked() {
    let e = entry(b"x");
    let err = format!(
        "{:#}",
        import(&e, &scratch("empty"), &scratch("cache-empty")).unwrap_err()
    );
    assert!(err.contains("t10k-labels-idx1-ubyte not found"), "{err}");
}

/// What a scripted server does with one request.
enum Reply {
    /// 200 with the whole body, the connection closed after `n` bytes of it.
    CutAfter(usize),
    /// 206 with the body from the requested offset (200 and the whole body without `Range`).
    Ranged,
    /// 200 with the whole body, ignoring any `Range`.
    Whole,
}

/// A one-thread HTTP server on 127.0.0.1 answering one request per reply, in order; returns its
/// address and a handle yielding the request heads it saw.
fn serve(body: Vec<u8>, replies: Vec<Reply>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let mut heads = Vec::new();
        for reply in replies {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            let from = head
                .lines()
                .find_map(|l| l.strip_prefix("Range: bytes="))
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
            let (status, start, end) = match (&reply, from) {
                (Reply::CutAfter(n), _) => ("200 OK", 0, *n),
                (Reply::Ranged, Some(f)) => ("206 Partial Content", f, body.len()),
                _ => ("200 OK", 0, body.len()),
            };
            let mut out = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n",
                body.len() - start
            );
            if status.starts_with("206") {
                out.push_str(&format!(
                    "Content-Range: bytes {start}-{}/{}\r\n",
                    body.len() - 1,
                    body.len()
                ));
            }
            out.push_str("Connection: close\r\n\r\n");
            stream.write_all(out.as_bytes()).unwrap();
            stream.write_all(&body[start..end]).unwrap();
            heads.push(head);
        }
        heads
    });
    (addr, handle)
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn an_interrupted_download_resumes_from_its_part_file() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (addr, server) = serve(body.clone(), vec![Reply::CutAfter(70_000), Reply::Ranged]);
    let url = format!("http://{addr}/train-labels-idx1-ubyte.gz");
    let part = scratch("resume").join("mnist/train-labels-idx1-ubyte.gz.part");
    let progress = Progress::new();
    let err = format!(
        "{:#}",
        fetch::fetch_resumable(&url, &part, &progress, no_env).unwrap_err()
    );
    assert!(err.contains("interrupted after 70000 bytes"), "{err}");
    assert!(err.contains("run the command again to resume"), "{err}");
    assert_eq!(std::fs::read(&part).unwrap(), body[..70_000]);
    let got = fetch::fetch_resumable(&url, &part, &progress, no_env).unwrap();
    assert_eq!(got, body);
    let heads = server.join().unwrap();
    assert!(!heads[0].contains("Range:"), "{}", heads[0]);
    assert!(heads[1].contains("Range: bytes=70000-"), "{}", heads[1]);
}

#[test]
fn a_server_ignoring_the_range_restarts_the_download() {
    let body = b"the whole file, served from its first byte again".to_vec();
    let (addr, server) = serve(body.clone(), vec![Reply::Whole]);
    let part = scratch("no-range").join("f.part");
    std::fs::write(&part, b"stale bytes").unwrap();
    let url = format!("http://{addr}/f");
    let got = fetch::fetch_resumable(&url, &part, &Progress::new(), no_env).unwrap();
    assert_eq!(got, body);
    assert!(server.join().unwrap()[0].contains("Range: bytes=11-"));
}

#[test]
fn downloads_go_through_the_proxy_the_environment_names() {
    let (addr, server) = serve(b"via proxy".to_vec(), vec![Reply::Whole]);
    let env = |k: &str| (k == "HTTP_PROXY").then(|| format!("http://{addr}"));
    let part = scratch("proxy").join("f.part");
    let url = "http://mirror.example.invalid/mnist/f";
    let got = fetch::fetch_resumable(url, &part, &Progress::new(), env).unwrap();
    assert_eq!(got, b"via proxy");
    // A proxy receives the absolute URL in the request line.
    let head = &server.join().unwrap()[0];
    assert!(head.starts_with(&format!("GET {url} HTTP/1.1")), "{head}");
}

#[test]
fn the_proxy_is_chosen_by_scheme_and_no_proxy() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let both = env(&[("HTTPS_PROXY", "http://s:1"), ("http_proxy", "http://p:2")]);
    assert_eq!(
        fetch::proxy_for("https://a.org/x", both),
        Some(("HTTPS_PROXY", "http://s:1".into()))
    );
    assert_eq!(
        fetch::proxy_for("http://a.org/x", both),
        Some(("http_proxy", "http://p:2".into()))
    );
    let all = env(&[
        ("ALL_PROXY", "http://all:3"),
        ("NO_PROXY", "localhost, .example.org"),
    ]);
    assert_eq!(
        fetch::proxy_for("https://a.org/x", all),
        Some(("ALL_PROXY", "http://all:3".into()))
    );
    assert_eq!(fetch::proxy_for("https://example.org/x", all), None);
    assert_eq!(fetch::proxy_for("https://cdn.example.org/x", all), None);
    assert_eq!(fetch::proxy_for("http://localhost:8080/x", all), None);
    assert_eq!(
        fetch::proxy_for("https://notexample.org/x", all),
        Some(("ALL_PROXY", "http://all:3".into()))
    );
    let star = env(&[("https_proxy", "http://s:1"), ("no_proxy", "*")]);
    assert_eq!(fetch::proxy_for("https://a.org/x", star), None);
    assert_eq!(fetch::proxy_for("https://a.org/x", no_env), None);
    let bad = env(&[("HTTPS_PROXY", "ftp://nope")]);
    let part = scratch("bad-proxy").join("f.part");
    let err = format!(
        "{:#}",
        fetch::fetch_resumable("https://a.org/x", &part, &Progress::new(), bad).unwrap_err()
    );
    assert!(err.contains("HTTPS_PROXY=ftp://nope"), "{err}");
}
