//! Fault injection against the real `cargo xtask` binary: a `kill -9` in the middle of
//! `reproduce` followed by `--resume`, bit-identical records for a seed, two shard processes on
//! one output directory, unwritable outputs, corrupt dataset files and checkpoints. Each case says
//! what the user sees and what survives; TESTING.md tabulates them.
//!
//! The runs use `reproduce --smoke` (baseline runs shrunk to 256 records and 2 epochs) so the
//! whole file stays within seconds of training in the dev profile.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xtask-faults-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn xtask(args: &[&str]) -> Output {
    Command::new(XTASK)
        .args(args)
        .output()
        .expect("cannot start xtask")
}

/// `xtask` on one worker thread: the kernels' summation order must not depend on the count.
fn xtask_one_thread(args: &[&str]) -> Output {
    Command::new(XTASK)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("cannot start xtask")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_fails_cleanly(out: &Output, needles: &[&str]) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "expected a failure:\n{err}");
    // anyhow's `Error: ...` from main, exit code 1: never a panic (101) or a signal.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
    err
}

fn smoke_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "reproduce",
        "--only",
        "baseline-lenet5",
        "--smoke",
        "--jobs",
        "1",
        "--out",
        out,
    ];
    v.extend_from_slice(extra);
    v
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The record without what legitimately differs between two executions of the same run: wall
/// time, per-epoch seconds and the output paths.
fn without_timings(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in ["wall_seconds", "seconds", "checkpoint", "git_revision"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// The tensors of a safetensors file: name to (dtype, shape, bytes).
fn tensors(path: &Path) -> BTreeMap<String, (String, Vec<usize>, Vec<u8>)> {
    let bytes = fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                (
                    format!("{:?}", v.dtype()),
                    v.shape().to_vec(),
                    v.data().to_vec(),
                ),
            )
        })
        .collect()
}

/// The `energy` metadata of a checkpoint, as JSON.
fn checkpoint_meta(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let json = header.metadata().as_ref().unwrap()["energy"].clone();
    serde_json::from_str(&json).unwrap()
}

fn history(record: &Value) -> Vec<Value> {
    record["metrics"]["history"].as_array().unwrap().clone()
}

/// `kill -9` while the second of three runs trains, then `--resume`: the finished record is not
/// touched, the killed run continues from its epoch-1 checkpoint (its history keeps the epoch
/// timed before the kill), every run ends with exactly one record, the temporary file a killed
/// writer can leave is swept, and the resumed run's record and weights are bit-identical to an
/// uninterrupted run of the same seed on another thread count; the records say
/// `deterministic: true`.
#[test]
fn kill_during_reproduce_then_resume() {
    let root = scratch("kill");
    let (a, b) = (root.join("a"), root.join("b"));
    let (a_str, b_str) = (a.to_str().unwrap(), b.to_str().unwrap());
    let ckpt2 = a.join("checkpoints/baseline-lenet5/seed2/last.safetensors");

    let mut child = Command::new(XTASK)
        .args(smoke_args(a_str, &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !ckpt2.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "reproduce ended before the second run checkpointed"
        );
        assert!(started.elapsed() < Duration::from_secs(300), "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let records = a.join("records/baseline-lenet5");
    let seed1 = fs::read(records.join("seed1.json")).unwrap();
    assert!(!records.join("seed2.json").exists());
    // The checkpoint the kill left is whole, at epoch 1, with one history row.
    assert!(!tensors(&ckpt2).is_empty());
    let meta = checkpoint_meta(&ckpt2);
    assert_eq!(meta["epoch"], 1);
    let timed_before_kill = meta["extra"]["history"][0]["seconds"].clone();
    assert!(timed_before_kill.is_f64());
    // What a writer killed between create and rename leaves behind (pid 2^32-1 never runs).
    let stale = records.join(".seed2.json.tmp-4294967295");
    fs::write(&stale, b"{\"half\": ").unwrap();

    let out = xtask(&smoke_args(a_str, &["--resume"]));
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("2 runs to do, 1 already recorded")
            && log.contains("temporary file(s) left by an interrupted run"),
        "{log}"
    );

    assert_eq!(fs::read(records.join("seed1.json")).unwrap(), seed1);
    assert_eq!(
        files(&records),
        ["seed1.json", "seed2.json", "seed3.json"],
        "one record per run, nothing else"
    );
    assert!(
        files(&a).iter().all(|f| !f.contains(".tmp-")),
        "{:?}",
        files(&a)
    );
    let resumed = read_json(&records.join("seed2.json"));
    let rows = history(&resumed);
    let epochs: Vec<u64> = rows.iter().map(|r| r["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, [0, 1], "no duplicate or missing epoch rows");
    for seed in ["seed1", "seed2", "seed3"] {
        let r = read_json(&records.join(format!("{seed}.json")));
        assert_eq!(r["deterministic"], true, "{seed}");
        assert_eq!(r["spec"]["kind"]["kind"], "train");
        assert_eq!(r["spec"]["kind"]["train_limit"], 256);
    }

    // The same run without a kill, and on one thread: same record (timings aside), same
    // weights, bit for bit.
    let out = xtask_one_thread(&smoke_args(b_str, &["--filter", "seed2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let straight = read_json(&b.join("records/baseline-lenet5/seed2.json"));
    assert_eq!(without_timings(straight.clone()), without_timings(resumed));
    // Epoch 0 was timed before the kill: the resumed record carries that row, not a rerun.
    assert_eq!(rows[0]["seconds"], timed_before_kill);
    assert_eq!(
        tensors(&ckpt2),
        tensors(&b.join("checkpoints/baseline-lenet5/seed2/last.safetensors"))
    );

    // A damaged record is not taken as "done" by a resume, nor overwritten: it is named.
    fs::write(records.join("seed3.json"), b"{\"experiment\": ").unwrap();
    let out = xtask(&smoke_args(a_str, &["--resume"]));
    assert_fails_cleanly(&out, &["seed3.json is not a valid run record"]);
    assert_eq!(fs::read(records.join("seed1.json")).unwrap(), seed1);
    let _ = fs::remove_dir_all(root);
}

/// An output directory that cannot be created (its parent is a regular file: tests run as root,
/// which ignores permission bits) fails before any training, naming the directory.
#[test]
fn unwritable_output_fails_before_training() {
    let root = scratch("unwritable");
    let file = root.join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let out_dir = file.join("out");
    let o = out_dir.to_str().unwrap();
    let started = Instant::now();
    let out = xtask(&smoke_args(o, &[]));
    assert_fails_cleanly(&out, &["cannot create output directory", "not-a-dir/out"]);
    let out = xtask(&["train", "--train-limit", "64", "--epochs", "1", "--out", o]);
    assert_fails_cleanly(&out, &["cannot create output directory", "not-a-dir/out"]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(fs::read(&file).unwrap(), b"x");
    let _ = fs::remove_dir_all(root);
}

/// `bench --device` on a build without CUDA, or naming the CPU, fails once before any timing
/// (the xtask tests are built without the `cuda` feature, whatever the machine has).
#[test]
fn bench_on_a_device_this_build_cannot_use_fails_before_timing() {
    let out = xtask(&["bench", "--suite", "lenet", "--device", "cuda:0"]);
    assert_fails_cleanly(&out, &["cannot use the device cuda:0", "no CUDA support"]);
    let out = xtask(&["bench", "--suite", "lenet", "--device", "cpu"]);
    assert_fails_cleanly(&out, &["--device cpu", "GPU"]);
    let out = xtask(&[
        "bench-worker",
        "--suite",
        "conv",
        "--backend",
        "fast",
        "--device",
        "cuda:0",
    ]);
    assert_fails_cleanly(&out, &["conv suite times the CPU only"]);
}

/// A data directory whose MNIST training images are truncated, or whose labels are corrupt:
/// the error names the file and what is wrong with it, and no checkpoint or record is written.
#[test]
fn corrupt_dataset_files_are_named() {
    let root = scratch("data");
    let data = root.join("data");
    let mnist = data.join("mnist");
    fs::create_dir_all(&mnist).unwrap();
    let embedded = Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/data/mnist");
    for f in fs::read_dir(&embedded).unwrap() {
        let f = f.unwrap().path();
        fs::copy(&f, mnist.join(f.file_name().unwrap())).unwrap();
    }
    let images = mnist.join("train-images-idx3-ubyte.gz");
    let bytes = fs::read(&images).unwrap();
    fs::write(&images, &bytes[..bytes.len() / 2]).unwrap();
    let out_dir = root.join("out");
    let (d, o) = (data.to_str().unwrap(), out_dir.to_str().unwrap());
    let train = [
        "train",
        "--data-dir",
        d,
        "--train-limit",
        "64",
        "--epochs",
        "1",
        "--out",
        o,
    ];
    let out = xtask(&train);
    assert_fails_cleanly(&out, &["train-images-idx3-ubyte.gz", "corrupt gzip stream"]);

    // Restore the images; break the labels instead (raw IDX preferred over .gz: it is read).
    fs::write(&images, &bytes).unwrap();
    let mut labels = vec![0, 0, 8, 1, 0, 0, 0, 3];
    labels.extend([1, 2, 11]);
    fs::write(mnist.join("train-labels-idx1-ubyte"), &labels).unwrap();
    let out = xtask(&train);
    assert_fails_cleanly(
        &out,
        &[
            "train-labels-idx1-ubyte",
            "label 11 of record 2 is out of range 0..=9",
        ],
    );
    assert!(
        files(&out_dir)
            .iter()
            .all(|f| !f.ends_with(".safetensors") && !f.ends_with(".json"))
    );
    let _ = fs::remove_dir_all(root);
}

/// A checkpoint truncated behind the trainer's back (a copy gone wrong, not a crash: writes are
/// atomic) is refused on resume with its path; a complete one resumes to a no-op.
#[test]
fn truncated_checkpoint_is_refused_on_resume() {
    let root = scratch("ckpt");
    let o = root.to_str().unwrap();
    let train = [
        "train",
        "--train-limit",
        "64",
        "--epochs",
        "1",
        "--out",
        o,
        "--resume",
    ];
    let out = xtask(&train);
    assert!(out.status.success(), "{}", stderr(&out));
    let ckpt = root.join("train/lenet5-mnist-seed1/last.safetensors");
    let whole = fs::read(&ckpt).unwrap();
    fs::write(&ckpt, &whole[..whole.len() / 3]).unwrap();
    let out = xtask(&train);
    assert_fails_cleanly(&out, &["last.safetensors"]);
    // The file is left for the user to inspect, not replaced by a fresh run.
    assert_eq!(fs::read(&ckpt).unwrap().len(), whole.len() / 3);
    let _ = fs::remove_dir_all(root);
}

/// Specs that cannot train are refused before any data is read: no records (a mean over none
/// would be a NaN in the record), no epochs.
#[test]
fn empty_training_specs_are_refused() {
    let root = scratch("empty");
    let o = root.to_str().unwrap();
    let out = xtask(&["train", "--train-limit", "0", "--out", o]);
    assert_fails_cleanly(&out, &["at least one record"]);
    let out = xtask(&["train", "--epochs", "0", "--out", o]);
    assert_fails_cleanly(&out, &["epochs and batch size must be positive"]);
    let _ = fs::remove_dir_all(root);
}

/// Two shard processes started together on one `--out` record exactly what one process records:
/// the same files, and the same metrics run for run (the smoke baseline runs are deterministic).
#[test]
fn concurrent_shards_on_one_out_record_what_one_process_records() {
    let root = scratch("shards");
    let (single, shared) = (root.join("single"), root.join("shared"));
    let (single_str, shared_str) = (single.to_str().unwrap(), shared.to_str().unwrap());
    let with = |out: &str, extra: &[&str]| -> Vec<String> {
        let only = [
            "reproduce",
            "--only",
            "baseline-lenet5",
            "zoo-geometry",
            "--smoke",
        ];
        let rest = ["--jobs", "1", "--out", out];
        only.iter()
            .chain(&rest)
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let out = xtask(
        &with(single_str, &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let shards: Vec<_> = ["1/2", "2/2"]
        .iter()
        .map(|k| {
            Command::new(XTASK)
                .args(with(shared_str, &["--resume", "--shard", k]))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let logs: Vec<String> = shards
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let log = stderr(&out);
            assert!(out.status.success(), "{log}");
            log
        })
        .collect();
    // Each shard executed its own half: no run is done twice.
    let done = |log: &str| -> Vec<String> {
        log.lines()
            .filter_map(|l| l.strip_prefix("done "))
            .map(|l| l.split(" in ").next().unwrap().to_string())
            .collect()
    };
    let (a, b) = (done(&logs[0]), done(&logs[1]));
    assert!(!a.is_empty() && !b.is_empty(), "{logs:?}");
    assert!(a.iter().all(|r| !b.contains(r)), "{a:?} / {b:?}");

    let records = |d: &Path| files(&d.join("records"));
    assert_eq!(records(&single), records(&shared));
    assert_eq!(records(&single).len(), a.len() + b.len());
    for f in records(&single) {
        assert_eq!(
            without_timings(read_json(&single.join("records").join(&f))),
            without_timings(read_json(&shared.join("records").join(&f))),
            "{f}"
        );
    }
    fs::remove_dir_all(&root).unwrap();
}
