use super::*;

fn ctx(imagenet: bool, init_from: &[Arch]) -> RunContext {
    RunContext {
        device: tensor_core::DeviceKind::Cpu,
        data_dir: None,
        imagenet,
        init_from: init_from.iter().copied().collect(),
    }
}

const IMAGENET: [Experiment; 4] = [
    Experiment::EapAlexnet,
    Experiment::EapGooglenet,
    Experiment::Iclr19Alexnet,
    Experiment::Iclr19Squeezenet,
];

#[test]
fn imagenet_experiments_run_in_the_full_profile_only_and_name_what_is_missing() {
    let all = [Arch::Alexnet, Arch::Googlenet, Arch::Squeezenet1_0];
    for e in IMAGENET {
        for profile in [Profile::Quick, Profile::Standard] {
            assert!(e.unavailable(profile, &ctx(false, &[])).is_none());
            assert!(runs(e, profile, &ctx(true, &all)).unwrap().is_empty());
        }
        let both = e.unavailable(Profile::Full, &ctx(false, &[])).unwrap();
        assert!(
            both.contains("--imagenet-dir") && both.contains("--init-from"),
            "{both}"
        );
        let folder = e.unavailable(Profile::Full, &ctx(false, &all)).unwrap();
        assert!(
            folder.contains("--imagenet-dir") && !folder.contains("--init-from"),
            "{folder}"
        );
        let weights = e.unavailable(Profile::Full, &ctx(true, &[])).unwrap();
        assert!(weights.contains(&arch(e).unwrap().to_string()), "{weights}");
        assert!(runs(e, Profile::Full, &ctx(true, &[])).unwrap().is_empty());
        assert!(e.unavailable(Profile::Full, &ctx(true, &all)).is_none());
        assert_eq!(runs(e, Profile::Full, &ctx(true, &all)).unwrap().len(), 2);
    }
    for e in [Experiment::EapLenet5, Experiment::Iclr19Lenet5] {
        assert!(e.unavailable(Profile::Full, &ctx(false, &[])).is_none());
    }
}

/// The constrained ImageNet runs keep every reference setting: their reasons are empty, so a
/// deviation would print none.
#[test]
fn constrained_imagenet_runs_keep_the_reference_settings() {
    let all = [Arch::Alexnet, Arch::Squeezenet1_0];
    for e in [Experiment::Iclr19Alexnet, Experiment::Iclr19Squeezenet] {
        let runs = runs(e, Profile::Full, &ctx(true, &all)).unwrap();
        let methods: Vec<&str> = runs
            .iter()
            .map(|r| match &r.kind {
                RunKind::Constrained(s) => {
                    assert!(s.deviations.is_empty(), "{:?}", s.deviations);
                    assert_eq!((s.batch, s.config.epochs), (128, 30));
                    assert_eq!(s.config.relative_budget.get(), 0.2);
                    assert_eq!(s.dense.arch, arch(e).unwrap());
                    s.method()
                }
                other => panic!("unexpected run kind {other:?}"),
            })
            .collect();
        assert_eq!(methods, ["energy-projection", "magnitude"]);
    }
}

/// Energy-aware and magnitude pruning share the dense model, the budget and the fine-tuning,
/// and say how they depart from the paper.
#[test]
fn pruning_runs_share_budget_and_finetuning_and_record_their_deviations() {
    let runs = runs(
        Experiment::EapGooglenet,
        Profile::Full,
        &ctx(true, &[Arch::Googlenet]),
    )
    .unwrap();
    let specs: Vec<&EapSpec> = runs
        .iter()
        .map(|r| match &r.kind {
            RunKind::Eap(s) => s.as_ref(),
            other => panic!("unexpected run kind {other:?}"),
        })
        .collect();
    let (
        EapMethod::EnergyAware(config),
        EapMethod::Magnitude {
            finetune,
            max_accuracy_drop,
            ..
        },
    ) = (&specs[0].method, &specs[1].method)
    else {
        panic!("expected an energy-aware then a magnitude run");
    };
    assert_eq!(config.finetune, *finetune);
    assert_eq!(config.max_accuracy_drop, *max_accuracy_drop);
    assert!(config.clone().validate().is_ok());
    assert_eq!(specs[0].dense, specs[1].dense);
    assert_eq!(specs[0].dense.dataset, DatasetId::ImageNet);
    // The whole dataset, and nothing for `reproduce` to locate among the record files.
    assert_eq!(specs[0].dense.data, crate::data::DataSource::Full);
    assert_eq!(runs[0].full_data(), None);
    for s in specs {
        assert_eq!(s.val_records, HELD_OUT);
        assert!(s.deviations.iter().any(|d| d.reference.contains("top-5")));
    }
}
