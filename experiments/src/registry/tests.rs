use super::*;

fn ctx() -> RunContext {
    RunContext {
        device: DeviceKind::Cpu,
        data_dir: None,
        imagenet: false,
        init_from: Default::default(),
    }
}

#[test]
fn names_parse_back_and_the_help_lists_every_experiment() {
    let help = registry_help();
    for e in Experiment::ALL {
        assert_eq!(e.name().parse::<Experiment>().unwrap(), e);
        assert_eq!(serde_json::to_value(e).unwrap(), e.name());
        assert!(help.contains(e.name()), "{help}");
        assert!(Experiment::READING_ORDER.contains(&e));
    }
    assert!("nonsense".parse::<Experiment>().is_err());
    for p in Profile::ALL {
        assert_eq!(p.name().parse::<Profile>().unwrap(), p);
    }
}

#[test]
fn run_ids_are_unique_within_each_experiment_and_profile() {
    for profile in Profile::ALL {
        for e in Experiment::ALL {
            let runs = e.runs(profile, &ctx()).unwrap();
            let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), runs.len(), "{e} {profile:?}");
            assert!(runs.iter().all(|r| r.experiment == e));
        }
    }
    let quick: usize = Experiment::ALL
        .iter()
        .map(|e| e.runs(Profile::Quick, &ctx()).unwrap().len())
        .sum();
    assert_eq!(quick, 15 + 2 + 3 + 36 + 18 + 6 + 2);
}
