use super::*;

fn ctx() -> RunContext {
    RunContext {
        device: DeviceSpec::Cpu,
        data_dir: None,
    }
}

#[test]
fn methods_add_one_technique_each_to_standard_training() {
    let full = E2TrainConfig::quick_cpu_resnet8();
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
        let expected = match method {
            E2Method::Baseline | E2Method::StochasticDepth => (false, false, false),
            E2Method::Smd => (true, false, false),
            E2Method::Slu => (false, true, false),
            E2Method::Psg => (false, false, true),
            E2Method::SmdSluPsg => (true, true, true),
        };
        assert_eq!(on, expected, "{}", method.name());
        assert_eq!(
            c.stochastic_depth.is_some(),
            method == E2Method::StochasticDepth
        );
    }
    assert_eq!(E2Method::SmdSluPsg.config(&full), full);
}

#[test]
fn both_profiles_expand_to_the_same_seeded_runs() {
    let variants = [
        "baseline",
        "smd",
        "slu",
        "slu-gather",
        "psg",
        "smd-slu-psg",
        "stochastic-depth",
    ];
    for (profile, seeds) in [
        (Profile::Quick, &[1u64, 2, 3][..]),
        (Profile::Full, &[1][..]),
    ] {
        let runs = runs(Experiment::E2trainResnet, profile, &ctx());
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        let expected: Vec<String> = seeds
            .iter()
            .flat_map(|s| variants.iter().map(move |v| format!("{v}-seed{s}")))
            .collect();
        assert_eq!(ids, expected);
        assert_eq!(variants, VARIANTS);
        let specs: Vec<&E2TrainSpec> = runs
            .iter()
            .map(|r| match &r.kind {
                RunKind::E2Train(s) => s.as_ref(),
                other => panic!("unexpected run kind {other:?}"),
            })
            .collect();
        // Every variant of one seed shares the iterations and the seed.
        for (i, s) in specs.iter().enumerate() {
            let first = specs[i - i % variants.len()];
            assert_eq!(s.config.iterations, first.config.iterations);
            assert_eq!(s.config.seed, seeds[i / variants.len()]);
            assert_eq!(s.config.model.num_classes, s.dataset.num_classes());
            assert!(s.config.clone().validate().is_ok());
        }
        assert_eq!(specs[3].config.skip, SkipExecution::Gather);
        assert_eq!(specs[2].config.skip, SkipExecution::Masked);
        let full = matches!(specs[0].data, DataSource::Dir(_));
        assert_eq!(full, profile == Profile::Full);
    }
}
