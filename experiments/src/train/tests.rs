use super::*;

/// `train` on the embedded data with no observer: what most tests here run.
fn train_quietly(spec: &TrainSpec, dir: &Path, resume: bool) -> Result<TrainOutcome> {
    train(
        spec,
        &DataDir::default(),
        dir,
        resume,
        &mut tensor_core::NoopObserver,
    )
}

/// The schedule keeps the shape committed records and checkpoints have (`{"kind": "cosine"}`),
/// and a warm-up, which that shape cannot hold, writes the whole schedule; both read back.
#[test]

fn schedule_keeps_its_stored_shape() {
    let spec = TrainSpec::recipe(Arch::Lenet5, DatasetId::Mnist);
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["schedule"], serde_json::json!({"kind": "cosine"}));
    assert_eq!(serde_json::from_value::<TrainSpec>(json).unwrap(), spec);
    let mut warm = spec.clone();
    warm.schedule = LrSchedule::new(LrDecay::Constant).with_warmup(10, 0.01);
    let json = serde_json::to_value(&warm).unwrap();
    assert_eq!(json["schedule"]["decay"]["kind"], "constant");
    assert_eq!(json["schedule"]["warmup"]["iterations"], 10);
    assert_eq!(serde_json::from_value::<TrainSpec>(json).unwrap(), warm);
}

fn small_spec(limit: usize, epochs: usize) -> TrainSpec {
    let mut spec = TrainSpec::recipe(Arch::Lenet5, DatasetId::Mnist);
    spec.train_limit = Some(limit);
    spec.epochs = epochs;
    spec.seed = 5;
    spec
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("experiments-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn model_tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let ckpt = checkpoint::load(path, &tensor_core::Device::Cpu).unwrap();
    let mut v: Vec<_> = ckpt
        .model
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// docs/datasets.md §6 suggests > 80% after 3 epochs on 2k images; one epoch on the embedded 10k
/// with momentum SGD measured 93.8% here (the spec's reference: 89.8–94.7% over 3 seeds).
#[test]
fn one_epoch_on_embedded_mnist_beats_85_percent() {
    let spec = small_spec(10_000, 1);
    let dir = scratch("one-epoch");
    let mut obs = tensor_core::RecordingObserver::default();
    let out = train(&spec, &DataDir::default(), &dir, false, &mut obs).unwrap();
    assert_eq!(out.test_samples, 10_000);
    assert!(out.final_accuracy > 0.85, "accuracy {}", out.final_accuracy);
    let meta = checkpoint::load(&out.checkpoint, &tensor_core::Device::Cpu)
        .unwrap()
        .meta;
    assert_eq!(
        (
            meta.arch.as_str(),
            meta.dataset.as_str(),
            meta.epoch,
            meta.seed
        ),
        ("lenet5", "mnist", 1, 5)
    );
    // Top-5 is ImageNet's measure: records of other datasets keep their form.
    let json = serde_json::to_value(&out).unwrap();
    assert!(json.get("final_top5").is_none(), "{json}");
    assert!(json["history"][0].get("test_top5").is_none(), "{json}");
    let _ = std::fs::remove_dir_all(dir);
}

/// ImageNet comes from its own folder: without one, or with a limit on its training records,
/// the run stops before building anything, saying what to give.
#[test]
fn imagenet_needs_its_folder_and_takes_no_limit() {
    let mut spec = TrainSpec::recipe(Arch::Squeezenet1_0, DatasetId::ImageNet);
    assert_eq!(
        (spec.batch, spec.epochs, spec.optimizer.lr),
        (256, 90, 0.01)
    );
    spec.data = DataSource::Full;
    let dir = scratch("imagenet-none");
    let err = format!("{:#}", train_quietly(&spec, &dir, false).unwrap_err());
    assert!(err.contains("--imagenet-dir"), "{err}");
    spec.train_limit = Some(10);
    let data = DataDir::default().with_imagenet(Some(dir.clone()));
    let err = train(&spec, &data, &dir, false, &mut tensor_core::NoopObserver).unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("training limit") && err.contains("imagenet"),
        "{err}"
    );
    spec.train_limit = None;
    let err = train(&spec, &data, &dir, false, &mut tensor_core::NoopObserver).unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("cannot read ImageNet in"), "{err}");
    assert!(!dir.join("last.safetensors").exists());
}

#[test]
fn interrupted_run_resumes_to_identical_weights() {
    let spec = small_spec(256, 2);
    let (a, b) = (scratch("straight"), scratch("resumed"));
    let straight = train_quietly(&spec, &a, false).unwrap();

    // Stop one batch into the second epoch: the checkpoint of epoch 1 must survive.
    let per_epoch = 256usize.div_ceil(spec.batch);
    let mut stopper = tensor_core::RecordingObserver {
        stop_after_batches: Some(per_epoch + 1),
        ..Default::default()
    };
    let err = train(&spec, &DataDir::default(), &b, false, &mut stopper).unwrap_err();
    assert!(
        format!("{err:#}").contains("interrupted after training, epoch 2 batch 1"),
        "{err:#}"
    );
    assert!(matches!(
        err.downcast_ref::<tensor_core::Error>(),
        Some(tensor_core::Error::Interrupted { .. })
    ));
    let ckpt = b.join("last.safetensors");
    assert_eq!(
        checkpoint::load(&ckpt, &tensor_core::Device::Cpu)
            .unwrap()
            .meta
            .epoch,
        1
    );

    let resumed = train_quietly(&spec, &b, true).unwrap();
    assert_eq!(
        model_tensors(&straight.checkpoint),
        model_tensors(&resumed.checkpoint)
    );
    assert_eq!(straight.history.len(), resumed.history.len());
    assert_eq!(straight.final_accuracy, resumed.final_accuracy);

    // A checkpoint of another spec is refused, not silently continued.
    let mut other = spec.clone();
    other.seed = 6;
    let err = train(
        &other,
        &DataDir::default(),
        &b,
        true,
        &mut tensor_core::NoopObserver,
    )
    .unwrap_err();
    assert!(format!("{err}").contains("different run spec"), "{err}");
    for d in [a, b] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn checkpoint_of_another_arch_is_a_clear_error() {
    let dir = scratch("arch");
    let spec = small_spec(64, 1);
    let out = train_quietly(&spec, &dir, false).unwrap();
    let ckpt = checkpoint::load(&out.checkpoint, &tensor_core::Device::Cpu).unwrap();
    let init = SeededInit::new(0);
    let vb = init.var_builder(DType::F32, &tensor_core::Device::Cpu);
    cnn_zoo::build(Arch::Lenet5Caffe, 10, 1, vb).unwrap();
    let err = checkpoint::restore_vars(&out.checkpoint, &ckpt, &init.named_vars()).unwrap_err();
    assert!(format!("{err}").contains("last.safetensors"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn diverging_loss_stops_with_the_step_named() {
    let mut spec = small_spec(512, 1);
    spec.optimizer.lr = 1e9;
    spec.schedule = LrSchedule::new(LrDecay::Constant);
    let dir = scratch("nan");
    let err = train_quietly(&spec, &dir, false).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<tensor_core::Error>(),
        Some(tensor_core::Error::Diverged { .. })
    ));
    let msg = format!("{err:#}");
    assert!(
        msg.contains("training loss became") && msg.contains("global step"),
        "{msg}"
    );
    assert!(msg.contains("no checkpoint was written"), "{msg}");
    assert!(!dir.join("last.safetensors").exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// Every batch's statistics as the observer saw them.
#[derive(Default)]
struct Seen(Vec<BatchStats>);

impl Observer for Seen {
    fn on_batch_end(&mut self, stats: &BatchStats) -> ControlFlow<()> {
        self.0.push(stats.clone());
        ControlFlow::Continue(())
    }
}

/// A fresh CPU run on the embedded data, reading its losses back every `readback` batches.
fn train_reading_back(
    spec: &TrainSpec,
    dir: &Path,
    observer: &mut dyn Observer,
    readback: usize,
) -> Result<TrainOutcome> {
    let data = DataDir::default();
    train_with_readback(
        spec,
        &data,
        None,
        DeviceSpec::Cpu,
        dir,
        false,
        observer,
        readback,
    )
}

/// A GPU run reads its losses back in groups: the same losses, checks and observer calls, in the
/// same order, and the same weights as a run that reads every batch's (two epochs of 5 batches
/// read in groups of 3, the last group of each epoch cut short by its end).
#[test]
fn deferred_loss_read_back_trains_and_reports_alike() {
    let spec = small_spec(320, 2);
    let run = |readback: usize, name: &str| {
        let dir = scratch(name);
        let mut seen = Seen::default();
        let out = train_reading_back(&spec, &dir, &mut seen, readback).unwrap();
        let weights = model_tensors(&out.checkpoint);
        let _ = std::fs::remove_dir_all(dir);
        (out.history, seen.0, weights)
    };
    let (history, seen, weights) = run(1, "readback-1");
    let (history3, seen3, weights3) = run(3, "readback-3");
    assert_eq!(seen.len(), 10);
    assert!(seen.iter().all(|s| s.loss.is_finite()));
    assert_eq!(seen3, seen);
    assert_eq!(weights3, weights);
    let strip = |h: Vec<EpochResult>| -> Vec<_> {
        h.into_iter()
            .map(|e| {
                (
                    e.epoch,
                    e.train_loss.to_bits(),
                    e.test_accuracy,
                    e.test_loss,
                )
            })
            .collect()
    };
    assert_eq!(strip(history3), strip(history));
}

/// A deferred divergence names the step whose loss was not finite, as an immediate one does.
#[test]
fn deferred_divergence_names_the_same_step() {
    let mut spec = small_spec(512, 1);
    spec.optimizer.lr = 1e9;
    spec.schedule = LrSchedule::new(LrDecay::Constant);
    let message = |readback: usize, name: &str| {
        let dir = scratch(name);
        let err =
            train_reading_back(&spec, &dir, &mut tensor_core::NoopObserver, readback).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<tensor_core::Error>(),
            Some(tensor_core::Error::Diverged { .. })
        ));
        let _ = std::fs::remove_dir_all(dir);
        format!("{err:#}")
    };
    let now = message(1, "nan-readback-1");
    assert!(now.contains("global step"), "{now}");
    assert_eq!(message(4, "nan-readback-4"), now);
}

/// Divergence in epoch 2 (the rate jumps to 1e30 when the first epoch's warm-up at the recipe's
/// rate ends): the error names the step, and the checkpoint of epoch 1 is kept exactly as a run
/// that stopped there would leave it.
#[test]
fn divergence_after_a_good_epoch_keeps_its_checkpoint() {
    let mut spec = small_spec(256, 2);
    let per_epoch = 256usize.div_ceil(spec.batch);
    spec.schedule = LrSchedule::new(LrDecay::Constant).with_warmup(per_epoch, spec.optimizer.lr);
    spec.optimizer.lr = 1e30;
    let dir = scratch("nan-epoch2");
    let err = train_quietly(&spec, &dir, false).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("epoch 2") && msg.contains("global step"),
        "{msg}"
    );
    assert!(
        msg.contains("last good checkpoint") && msg.contains("last.safetensors"),
        "{msg}"
    );
    let ckpt = dir.join("last.safetensors");
    let meta = checkpoint::load(&ckpt, &tensor_core::Device::Cpu)
        .unwrap()
        .meta;
    assert_eq!(meta.epoch, 1);
    let kept = model_tensors(&ckpt);
    assert!(kept.iter().all(|(_, v)| v.iter().all(|x| x.is_finite())));

    // Epoch 1 runs at the warm-up rate either way: a one-epoch run gives the same weights.
    let mut one = spec.clone();
    one.epochs = 1;
    let other = scratch("nan-epoch1-only");
    let straight = train(
        &one,
        &DataDir::default(),
        &other,
        false,
        &mut tensor_core::NoopObserver,
    )
    .unwrap();
    assert_eq!(kept, model_tensors(&straight.checkpoint));
    for d in [dir, other] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn non_finite_parameters_are_named() {
    let finite = tensor_core::Var::new(&[1.0f32, -2.0], &tensor_core::Device::Cpu).unwrap();
    let nan = tensor_core::Var::new(&[1.0f32, f32::NAN], &tensor_core::Device::Cpu).unwrap();
    let inf = tensor_core::Var::new(&[f32::NEG_INFINITY], &tensor_core::Device::Cpu).unwrap();
    let vars = |v: &[&tensor_core::Var]| -> Vec<(String, tensor_core::Var)> {
        v.iter()
            .enumerate()
            .map(|(i, v)| (format!("v{i}"), (*v).clone()))
            .collect()
    };
    assert_eq!(first_non_finite(&vars(&[&finite])).unwrap(), None);
    assert_eq!(
        first_non_finite(&vars(&[&finite, &nan]))
            .unwrap()
            .as_deref(),
        Some("v1")
    );
    assert_eq!(
        first_non_finite(&vars(&[&inf, &nan])).unwrap().as_deref(),
        Some("v0")
    );
}

/// Trains `spec` cut to one epoch into `dir`, then rewrites its checkpoint as if `spec` had
/// written it, with `edit` applied to the metadata and the model tensors.
fn forged_checkpoint(
    spec: &TrainSpec,
    dir: &Path,
    edit: impl FnOnce(&mut CheckpointMeta, &mut Vec<(String, tensor_core::Var)>),
) {
    let mut one = spec.clone();
    one.epochs = 1;
    train(
        &one,
        &DataDir::default(),
        dir,
        false,
        &mut tensor_core::NoopObserver,
    )
    .unwrap();
    let path = dir.join("last.safetensors");
    let ckpt = checkpoint::load(&path, &tensor_core::Device::Cpu).unwrap();
    let mut meta = ckpt.meta.clone();
    meta.spec = serde_json::to_value(spec).unwrap();
    let mut vars: Vec<(String, tensor_core::Var)> = ckpt
        .model
        .iter()
        .map(|(k, t)| (k.clone(), tensor_core::Var::from_tensor(t).unwrap()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut meta, &mut vars);
    checkpoint::save(&path, &meta, &vars, &[]).unwrap();
}

/// A checkpoint whose history disagrees with its epoch count is refused on resume: the record
/// would otherwise silently lose epochs.
#[test]
fn resume_refuses_a_checkpoint_with_a_short_history() {
    let spec = small_spec(64, 2);
    let dir = scratch("short-history");
    forged_checkpoint(&spec, &dir, |meta, _| {
        meta.extra.insert(HISTORY_KEY.into(), serde_json::json!([]));
    });
    let err = train_quietly(&spec, &dir, true).unwrap_err();
    assert!(
        format!("{err}").contains("history holds epochs []"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A checkpoint holding a NaN is refused on resume, naming the tensor, instead of surfacing
/// later as a diverged loss.
#[test]
fn resume_refuses_a_checkpoint_with_nan_weights() {
    let spec = small_spec(64, 2);
    let dir = scratch("nan-ckpt");
    forged_checkpoint(&spec, &dir, |_, vars| {
        let (name, var) = &vars[0];
        let mut v = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        v[0] = f32::NAN;
        let t = tensor_core::Tensor::from_vec(v, var.dims(), &tensor_core::Device::Cpu).unwrap();
        vars[0] = (name.clone(), tensor_core::Var::from_tensor(&t).unwrap());
    });
    let err = format!(
        "{:#}",
        train(
            &spec,
            &DataDir::default(),
            &dir,
            true,
            &mut tensor_core::NoopObserver
        )
        .unwrap_err()
    );
    assert!(err.contains("holds NaN or infinite values"), "{err}");
    assert!(err.contains("last.safetensors"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A model of `arch` (10 classes, 1 channel) drawn from `seed`, its variables written to `path`
/// as a state dict.
fn lenet5_weights(arch: Arch, seed: u64, path: &Path) -> Result<Box<dyn tensor_core::Network>> {
    let init = SeededInit::new(seed);
    let vb = init.var_builder(DType::F32, &tensor_core::Device::Cpu);
    let net = cnn_zoo::build(arch, 10, 1, vb)?;
    let tensors: std::collections::HashMap<String, Tensor> = init
        .named_vars()
        .into_iter()
        .map(|(name, var)| (name, var.as_tensor().clone()))
        .collect();
    std::fs::create_dir_all(path.parent().context("no parent")?)?;
    tensor_core::tensor::candle::safetensors::save(&tensors, path)?;
    Ok(net)
}

/// The spec of `small_spec` starting from the file at `path`.
fn spec_from(path: &Path) -> TrainSpec {
    let mut spec = small_spec(64, 1);
    spec.init_from = Some(InitFrom::of(path).unwrap());
    spec
}

/// Seeded specs are stored as before (no `init_from` key), and one with a file reads back.
#[test]
fn init_from_is_absent_from_seeded_specs() {
    let spec = TrainSpec::recipe(Arch::Lenet5, DatasetId::Mnist);
    let json = serde_json::to_value(&spec).unwrap();
    assert!(json.get("init_from").is_none(), "{json}");
    let mut from = spec.clone();
    from.init_from = Some(InitFrom {
        file: "lenet5.safetensors".into(),
        sha256: "ab".repeat(32),
    });
    let json = serde_json::to_value(&from).unwrap();
    assert_eq!(json["init_from"]["file"], "lenet5.safetensors");
    assert_eq!(serde_json::from_value::<TrainSpec>(json).unwrap(), from);
}

/// The first training loss is the loaded model's loss on the first batch: training starts from
/// the file's weights, not from the seed's.
#[test]
fn init_from_starts_training_from_the_files_weights() {
    let dir = scratch("init-from");
    let file = dir.join("weights").join("lenet5-seed99.safetensors");
    let loaded = lenet5_weights(Arch::Lenet5, 99, &file).unwrap();
    let spec = spec_from(&file);
    let first_loss = |spec: &TrainSpec, init: Option<&Path>, out: &str| -> f64 {
        let mut obs = tensor_core::RecordingObserver {
            stop_after_batches: Some(1),
            ..Default::default()
        };
        let err = train_from(
            spec,
            &DataDir::default(),
            init,
            tensor_core::DeviceSpec::Cpu,
            &dir.join(out),
            false,
            &mut obs,
        )
        .unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<tensor_core::Error>(),
                Some(tensor_core::Error::Interrupted { .. })
            ),
            "{err:#}"
        );
        obs.events
            .iter()
            .find_map(|e| match e {
                tensor_core::Event::BatchEnd(stats) => Some(stats.loss),
                _ => None,
            })
            .unwrap()
    };
    let from_file = first_loss(&spec, Some(&file), "from-file");

    // The trainer's first batch, through the loaded model.
    let train_set = SplitData::load(&spec, Split::Train, &DataDir::default()).unwrap();
    let mut shuffle = tensor_core::rng(spec.seed, "shuffle/0");
    let mut augment = tensor_core::rng(spec.seed, "augment/0");
    let order = tensor_core::seed::permutation(train_set.len(), &mut shuffle);
    let (xs, ys) = train_set
        .batch(
            &order[..spec.batch],
            Some(&mut augment),
            &tensor_core::Device::Cpu,
        )
        .unwrap();
    let expected = nn::loss::cross_entropy(&loaded.forward_t(&xs, true).unwrap(), &ys)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    assert_eq!(from_file, expected);

    let mut seeded = spec.clone();
    seeded.init_from = None;
    assert_ne!(first_loss(&seeded, None, "seeded"), from_file);
    let _ = std::fs::remove_dir_all(dir);
}

/// Weights of another architecture fail before training, naming a tensor; a file that is not
/// the spec's, or none, is refused, and so is a resume with another file.
#[test]
fn init_from_refuses_other_weights() {
    let dir = scratch("init-from-refused");
    let caffe = dir.join("lenet5-caffe.safetensors");
    lenet5_weights(Arch::Lenet5Caffe, 1, &caffe).unwrap();
    let quiet = &mut tensor_core::NoopObserver;
    let data = DataDir::default();
    let err = train_from(
        &spec_from(&caffe),
        &data,
        Some(&caffe),
        tensor_core::DeviceSpec::Cpu,
        &dir.join("a"),
        false,
        quiet,
    )
    .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("lenet5-caffe.safetensors") && message.contains("`classifier.0.bias`"),
        "{message}"
    );
    assert!(
        matches!(
            err.downcast_ref::<tensor_core::Error>(),
            Some(tensor_core::Error::MissingTensor { tensor, .. }) if tensor == "classifier.0.bias"
        ),
        "{message}"
    );
    assert!(!dir.join("a").join("last.safetensors").exists());

    let (one, two) = (dir.join("one.safetensors"), dir.join("two.safetensors"));
    lenet5_weights(Arch::Lenet5, 1, &one).unwrap();
    lenet5_weights(Arch::Lenet5, 2, &two).unwrap();
    let spec = spec_from(&one);
    let err = train_from(
        &spec,
        &data,
        Some(&two),
        tensor_core::DeviceSpec::Cpu,
        &dir.join("b"),
        false,
        quiet,
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("is not the weight file of this run spec"),
        "{err:#}"
    );
    let err = train_from(
        &spec,
        &data,
        None,
        tensor_core::DeviceSpec::Cpu,
        &dir.join("b"),
        false,
        quiet,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("none was given"), "{err:#}");

    let out = train_from(
        &spec,
        &data,
        Some(&one),
        tensor_core::DeviceSpec::Cpu,
        &dir.join("b"),
        false,
        quiet,
    )
    .unwrap();
    assert!(out.checkpoint.exists());
    let err = train_from(
        &spec_from(&two),
        &data,
        Some(&two),
        tensor_core::DeviceSpec::Cpu,
        &dir.join("b"),
        true,
        quiet,
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("belongs to a different run spec"),
        "{err:#}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Zero epochs with a weight file: the model is the file's, evaluated once and saved as the
/// run's checkpoint (how `reproduce --init-from` hands a pretrained dense model to the
/// compression runs); zero epochs without a file is refused.
#[test]
fn zero_epochs_from_a_file_is_the_files_model_evaluated() {
    let dir = scratch("init-zero");
    let file = dir.join("weights").join("lenet5-seed5.safetensors");
    let net = lenet5_weights(Arch::Lenet5, 5, &file).unwrap();
    let mut spec = spec_from(&file);
    spec.epochs = 0;
    let mut obs = tensor_core::NoopObserver;
    let out = train_from(
        &spec,
        &DataDir::default(),
        Some(&file),
        tensor_core::DeviceSpec::Cpu,
        &dir.join("run"),
        false,
        &mut obs,
    )
    .unwrap();
    assert!(out.history.is_empty());
    let test_set = SplitData::load(&spec, Split::Test, &DataDir::default()).unwrap();
    let mut batches = SplitBatches::in_order(&test_set, EVAL_BATCH, &tensor_core::Device::Cpu);
    let direct =
        tensor_core::evaluate("test", &mut batches, |xs| net.forward_t(xs, false)).unwrap();
    assert_eq!(out.final_accuracy, direct.accuracy);
    let saved = model_tensors(&out.checkpoint);
    let ckpt_of_file: Vec<(String, Vec<f32>)> = {
        let t = tensor_core::tensor::candle::safetensors::load(&file, &tensor_core::Device::Cpu)
            .unwrap();
        let mut v: Vec<_> = t
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(saved, ckpt_of_file);
    // Resuming the finished run evaluates the same model again.
    let again = train_from(
        &spec,
        &DataDir::default(),
        Some(&file),
        tensor_core::DeviceSpec::Cpu,
        &dir.join("run"),
        true,
        &mut obs,
    )
    .unwrap();
    assert_eq!(again.final_accuracy, out.final_accuracy);

    let mut seeded = small_spec(64, 1);
    seeded.epochs = 0;
    let e = train_quietly(&seeded, &dir.join("seeded"), false).unwrap_err();
    assert!(
        format!("{e:#}").contains("zero epochs need a weight file"),
        "{e:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
