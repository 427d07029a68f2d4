use super::*;
use crate::registry::RunKind;

fn ctx() -> RunContext {
    RunContext {
        device: DeviceKind::Cpu,
        data_dir: None,
        imagenet: false,
        init_from: Default::default(),
    }
}

#[test]
fn methods_add_one_technique_each_to_standard_training() {
    let full = E2TrainConfig::quick_cpu_resnet20();
    let base = E2Method::Baseline.config(&full);
    assert_eq!(base, full.baseline());
    for method in E2Method::ALL {
        let c = method.config(&full);
        assert!(c.clone().validate().is_ok(), "{}", method.name());
        assert_eq!(c.iterations, full.iterations);
        // How skipped blocks execute does not change standard training's ledger.
        let baseline = E2TrainConfig {
            skip: base.skip,
            ..c.baseline()
        };
        assert_eq!(baseline, base, "{}: one baseline for all", method.name());
        let on = (
            c.smd.is_some(),
            c.slu.is_some(),
            c.model.conv != base.model.conv,
        );
        assert_eq!(on, method.techniques(), "{}", method.name());
        // The run ids name the techniques the method runs.
        let named = |t| method.name().split('-').any(|part| part == t);
        assert_eq!(
            on,
            (named("smd"), named("slu"), named("psg")),
            "{}",
            method.name()
        );
        assert_eq!(
            c.stochastic_depth.is_some(),
            method == E2Method::StochasticDepth
        );
    }
    assert_eq!(E2Method::SmdSluPsg.config(&full), full);
}

#[test]
fn quick_profile_runs_the_paper_rows_and_slu_on_three_seeds() {
    let quick = runs(Experiment::E2trainMnist, Profile::Quick, &ctx());
    let ids: Vec<&str> = quick.iter().map(|r| r.id.as_str()).collect();
    let every = [
        "baseline",
        "stochastic-depth",
        "smd",
        "smd-slu",
        "smd-slu-psg",
        "slu",
    ];
    let expected: Vec<String> = [1, 2, 3]
        .iter()
        .flat_map(|seed| every.iter().map(move |v| format!("{v}-seed{seed}")))
        .collect();
    assert_eq!(ids, expected);
    let mut all = every.to_vec();
    all.extend(["smd-slu-gather", "smd-slu-psg-gather"]);
    assert_eq!(variant_ids().collect::<Vec<_>>(), all);
    for r in &quick {
        let RunKind::E2Train(s) = &r.kind else {
            panic!("unexpected run kind {:?}", r.kind);
        };
        // Every run of the experiment shares the schedule; the seed is the id's.
        assert_eq!(
            s.config.iterations,
            E2TrainConfig::quick_cpu_resnet20().iterations
        );
        assert!(r.id.ends_with(&format!("-seed{}", s.config.seed)));
        assert_eq!(s.config.model.depth, 20);
        assert_eq!(s.config.model.num_classes, s.dataset.num_classes());
        assert!(matches!(s.data, DataSource::Embedded));
        assert!(s.config.clone().validate().is_ok());
        // Stochastic depth and SLU alone skip blocks for real (SLU alone is the wall-clock
        // row, without a warm-up); the combinations train masked, as the reference does.
        match s.method {
            E2Method::StochasticDepth => assert_eq!(s.config.skip, SkipExecution::Gather),
            E2Method::Slu => {
                assert_eq!(s.config.skip, SkipExecution::Gather);
                assert_eq!(s.config.slu.map(|c| c.warmup), Some(0));
            }
            E2Method::SmdSlu | E2Method::SmdSluPsg => {
                assert_eq!(s.config.skip, SkipExecution::Masked, "{}", r.id);
                assert!(s.config.slu.is_some_and(|c| c.warmup > 0), "{}", r.id);
            }
            _ => {}
        }
    }
    assert!(runs(Experiment::E2trainMnist, Profile::Full, &ctx()).is_empty());
}

#[test]
fn standard_profile_runs_the_combinations_masked_and_gathered_on_two_seeds() {
    let standard = runs(Experiment::E2trainFashionMnist, Profile::Standard, &ctx());
    let rows = [
        "baseline",
        "smd",
        "smd-slu",
        "smd-slu-psg",
        "smd-slu-gather",
        "smd-slu-psg-gather",
    ];
    let ids: Vec<&str> = standard.iter().map(|r| r.id.as_str()).collect();
    let expected: Vec<String> = [1, 2]
        .iter()
        .flat_map(|seed| rows.iter().map(move |v| format!("{v}-seed{seed}")))
        .collect();
    assert_eq!(ids, expected);
    let spec = |id: &str| {
        let run = standard.iter().find(|r| r.id == id).unwrap();
        let RunKind::E2Train(s) = &run.kind else {
            panic!("unexpected run kind {:?}", run.kind);
        };
        (**s).clone()
    };
    for (masked, gathered) in [
        ("smd-slu-seed1", "smd-slu-gather-seed1"),
        ("smd-slu-psg-seed2", "smd-slu-psg-gather-seed2"),
    ] {
        let (m, g) = (spec(masked), spec(gathered));
        assert_eq!(m.config.skip, SkipExecution::Masked);
        assert_eq!(g.config.skip, SkipExecution::Gather);
        assert!(g.label().ends_with("(real skipping)"), "{}", g.label());
        // The gathered row is the masked one with real skipping, and says so in its spec.
        let config = E2TrainConfig {
            skip: SkipExecution::Masked,
            ..g.config.clone()
        };
        assert_eq!(config, m.config);
        assert_eq!(g.method, m.method);
        assert_eq!(g.deviations.len(), m.deviations.len() + 1);
        let added = g.deviations.last().unwrap();
        assert!(
            !m.deviations.contains(added),
            "{masked}: the gathering deviation belongs to the gathered row only"
        );
        assert!(g.config.clone().validate().is_ok());
    }
}

#[test]
fn full_profile_runs_the_paper_presets_once() {
    for (experiment, depth, dataset) in [
        (Experiment::E2trainCifar10Resnet74, 74, DatasetId::Cifar10),
        (
            Experiment::E2trainCifar100Resnet110,
            110,
            DatasetId::Cifar100,
        ),
    ] {
        assert!(runs(experiment, Profile::Quick, &ctx()).is_empty());
        let full = runs(experiment, Profile::Full, &ctx());
        let ids: Vec<&str> = full.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "baseline-seed1",
                "stochastic-depth-seed1",
                "smd-seed1",
                "smd-slu-seed1",
                "smd-slu-psg-seed1"
            ]
        );
        for r in &full {
            let RunKind::E2Train(s) = &r.kind else {
                panic!("unexpected run kind {:?}", r.kind);
            };
            assert_eq!(s.config.model.depth, depth);
            assert_eq!(s.dataset, dataset);
            assert_eq!(s.config.model.num_classes, dataset.num_classes());
            assert_eq!(s.data, DataSource::Full);
            assert_eq!(
                (s.train_records, s.val_records, s.batch),
                (45_000, 5_000, 128)
            );
        }
    }
}

#[test]
fn an_interrupted_run_resumes_from_its_epoch_checkpoint_to_the_same_metrics() {
    use crate::data::DataDir;
    use crate::registry::RunEnv;
    use crate::reporter::Silent;

    // The quick profile's SMD + SLU + PSG run, cut to two epochs of four batches of a ResNet-8
    // on the embedded Fashion-MNIST (1,000 test images).
    let quick = runs(Experiment::E2trainMnist, Profile::Quick, &ctx());
    let run = quick.iter().find(|r| r.id == "smd-slu-psg-seed1").unwrap();
    let RunKind::E2Train(spec) = &run.kind else {
        panic!("unexpected run kind {:?}", run.kind);
    };
    let mut spec = (**spec).clone();
    spec.dataset = DatasetId::FashionMnist;
    spec.config.model.depth = 8;
    spec.train_records = 64;
    spec.val_records = 32;
    spec.batch = 16;
    spec.config.iterations = 8;
    spec.config.eval_every = 0;
    if let Some(slu) = spec.config.slu.as_mut() {
        slu.warmup = 2;
    }
    let out = std::env::temp_dir().join(format!("e2-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let data = DataDir::default();
    let weights = crate::registry::InitFiles::new();
    let env = |resume| RunEnv {
        out: &out,
        checkpoints: out.join("checkpoints/run"),
        label: "e2-resume".into(),
        resume,
        data: &data,
        reporter: &Silent,
        init_files: &weights,
        device: tensor_core::DeviceSpec::Cpu,
    };
    let whole = run::run(&spec, &env(false)).unwrap();
    // The run left its checkpoint after the first epoch (none after the last iteration), as an
    // interrupted run in its second epoch would have.
    let ckpt = out.join("checkpoints/run/last.safetensors");
    let meta = crate::checkpoint::load(&ckpt, &tensor_core::Device::Cpu)
        .unwrap()
        .meta;
    assert_eq!(meta.epoch, 1);
    assert_eq!(meta.extra["e2_state"]["done"], 4);
    let resumed = run::run(&spec, &env(true)).unwrap();
    let comparable = |m: &E2TrainMetrics| {
        let mut v = serde_json::to_value(m).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("train_seconds");
        o.remove("train_process_cpu_seconds");
        v
    };
    assert_eq!(comparable(&resumed), comparable(&whole));
    assert!(resumed.train_seconds > 0.0);

    // A checkpoint of another spec is refused, naming the file.
    let mut other = spec.clone();
    other.config.seed = 2;
    let err = format!("{:#}", run::run(&other, &env(true)).unwrap_err());
    assert!(err.contains("belongs to a different run spec"), "{err}");
    assert!(err.contains("last.safetensors"), "{err}");
    std::fs::remove_dir_all(&out).unwrap();
}
