use super::*;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("experiments-paths-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Disk full, simulated: the temporary file's writes go to `/dev/full` (ENOSPC). The target keeps
/// its old bytes and no temporary file is left behind.
#[test]
fn full_disk_leaves_the_old_file_whole() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let dir = scratch("full");
    let target = dir.join("record.json");
    fs::write(&target, b"old").unwrap();
    let err = write_atomic_via(&target, b"new contents", |_| {
        fs::OpenOptions::new().write(true).open("/dev/full")
    })
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("No space left on device"), "{msg}");
    assert!(msg.contains("record.json"), "{msg}");
    assert_eq!(fs::read(&target).unwrap(), b"old");
    assert_eq!(names(&dir), ["record.json"]);
    let _ = fs::remove_dir_all(dir);
}

/// An unwritable output, simulated without permissions (tests run as root, which ignores them):
/// the directory's parent is a regular file, so creating it fails.
#[test]
fn output_under_a_regular_file_is_a_clear_error() {
    let dir = scratch("notdir");
    let file = dir.join("plain-file");
    fs::write(&file, b"x").unwrap();
    let out = file.join("out");
    let err = check_writable_dir(&out).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("cannot create output directory"), "{msg}");
    assert!(msg.contains("plain-file/out"), "{msg}");
    let err = write_atomic(&out.join("r.json"), b"{}").unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot create directory"),
        "{err:#}"
    );
    assert_eq!(fs::read(&file).unwrap(), b"x");
    check_writable_dir(&dir.join("fresh")).unwrap();
    assert!(names(&dir.join("fresh")).is_empty());
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn stale_temp_files_of_dead_processes_are_removed() {
    let dir = scratch("stale");
    fs::create_dir_all(dir.join("records/x")).unwrap();
    let dead = dir.join(format!("records/x/.seed1.json{TMP_MARK}{}", u32::MAX));
    let live = dir.join(format!(
        "records/x/.seed2.json{TMP_MARK}{}",
        std::process::id()
    ));
    let record = dir.join("records/x/seed3.json");
    for p in [&dead, &live, &record] {
        fs::write(p, b"{}").unwrap();
    }
    let removed = remove_stale_temp_files(&dir).unwrap();
    if Path::new("/proc/self").exists() {
        assert_eq!(removed, 1);
        assert!(!dead.exists());
    }
    assert!(live.exists() && record.exists());
    let _ = fs::remove_dir_all(dir);
}
