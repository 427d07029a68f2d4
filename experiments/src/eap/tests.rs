use super::*;
use crate::registry::RunKind;
use cnn_zoo::Arch;

fn ctx() -> RunContext {
    RunContext {
        device: tensor_core::DeviceKind::Cpu,
        data_dir: None,
        imagenet: false,
        init_from: Default::default(),
    }
}

#[test]
fn lenet5_runs_share_the_dense_model_budget_and_finetuning() {
    let runs = runs(Experiment::EapLenet5, Profile::Quick, &ctx());
    let specs: Vec<&EapSpec> = runs
        .iter()
        .map(|r| match &r.kind {
            RunKind::Eap(s) => s.as_ref(),
            other => panic!("unexpected run kind {other:?}"),
        })
        .collect();
    assert!(specs.len() >= 2 && specs.len().is_multiple_of(2));
    for pair in specs.chunks(2) {
        let (
            EapMethod::EnergyAware(config),
            EapMethod::Magnitude {
                finetune,
                max_accuracy_drop,
                ..
            },
        ) = (&pair[0].method, &pair[1].method)
        else {
            panic!("expected an energy-aware then a magnitude run");
        };
        assert_eq!(pair[0].dense, pair[1].dense);
        assert_eq!(pair[0].energy, pair[1].energy);
        assert_eq!(config.finetune, *finetune);
        assert_eq!(config.max_accuracy_drop, *max_accuracy_drop);
        assert_eq!(pair[0].dense.train_limit, Some(9_000));
        assert_eq!(pair[0].val_records, 1_000);
    }
    let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), runs.len());
}

#[test]
fn han_densities_give_about_6_8_million_alexnet_weights() {
    let alex = crate::eap_estimates::geometry(Arch::AlexnetCaffe).unwrap();
    let kept: f64 = alex
        .iter()
        .map(|(name, g)| {
            let d = energy_model::reference::HAN_ALEXNET_DENSITIES
                .iter()
                .find(|(n, _)| n == name)
                .unwrap()
                .1;
            g.weights() as f64 * d
        })
        .sum();
    // docs/energy-aware-pruning.md §5: ≈ 6.8 M.
    assert!((6.7e6..6.9e6).contains(&kept), "{kept}");
}
