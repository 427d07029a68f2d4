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
