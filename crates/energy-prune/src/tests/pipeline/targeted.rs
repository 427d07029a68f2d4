//! [`prune_to_energy`] on the tiny network: the bisection on δ meets a reachable level at a
//! minimal δ, levels under the measuring model's floor fail before anything runs, levels the
//! largest δ misses fail with the ratio floor, and the layers are ordered by the run's model,
//! not the measuring one.

use tensor_core::{Event, RelativeBudget};

use super::*;

/// The tiny network's energy under [`Proxy`], dense.
const DENSE: f64 = 2840.0;

tensor_core::linear_energy_model!(
    /// A measuring model unlike [`Stand`]: 1 per input plus 5 per nonzero conv weight or 20 per
    /// nonzero FC weight, so the FC layer dominates here while the conv dominates under `Stand`.
    /// Dense inputs, the tiny network's floor is (36 + 64) / (36 + 5·36 + 64 + 20·128) =
    /// 100/2840.
    Proxy,
    "proxy",
    EnergyUnit::RfAccess,
    |g| match g.kind() {
        LayerKind::Conv => 5.0,
        LayerKind::Fc => 20.0,
    },
    1.0
);

/// Counts the batches read, to show a run that failed early read none.
struct Counting {
    inner: Data,
    reads: usize,
}

impl BatchSource for Counting {
    fn batches_per_epoch(&self) -> usize {
        self.inner.batches_per_epoch()
    }
    fn batch(&mut self, epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)> {
        self.reads += 1;
        self.inner.batch(epoch, index)
    }
}

/// Removal down to nothing and no restoration, judged on a noisy validation set: δ, not the
/// ratio ceiling, sets how far the layers are pruned.
fn tight() -> EnergyPruneConfig {
    EnergyPruneConfig {
        ratio_search: RatioSearch::Bisection {
            max_ratio: 1.0,
            iterations: 5,
        },
        restore: RestoreConfig {
            threshold: 1e-4,
            max_fraction: 0.0,
        },
        ..config()
    }
}

fn search(steps: usize) -> DropSearch {
    DropSearch {
        max_drop: 0.5,
        steps,
    }
}

fn targeted(
    net: &Tiny,
    config: &EnergyPruneConfig,
    level: f64,
    search: DropSearch,
    observer: &mut dyn Observer,
) -> Result<TargetedOutcome> {
    let val = Data::with_noise(64, 1, 0.9, 2);
    with_run_on(net, 64, val, |run| {
        prune_to_energy(
            run,
            config,
            &EnergyTarget {
                model: &Proxy,
                level: RelativeBudget::new(level).unwrap(),
                search,
            },
            observer,
        )
    })
}

fn bits(net: &Tiny) -> Vec<Vec<u32>> {
    net.host()
        .iter()
        .map(|w| w.iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn a_reachable_level_is_met_at_the_smallest_drop_the_bisection_resolves() {
    // The level at every δ of the bracket, from a search every δ passes (δ = 0 included).
    let curve = targeted(&trained(11), &tight(), 1.0, search(3), &mut NoopObserver).unwrap();
    let at = |d: f64| {
        curve
            .steps
            .iter()
            .find(|s| s.max_accuracy_drop == d)
            .unwrap()
            .level
    };
    assert!(curve.steps.iter().all(|s| s.met));
    assert_eq!(curve.chosen_drop, 0.0);
    let (dense_end, sparse_end) = (at(0.0), at(0.5));
    assert!(sparse_end < dense_end, "{curve:?}");
    // A level δ = 0 misses and δ_max meets.
    let level = 0.5 * (dense_end + sparse_end);
    let net = trained(11);
    let mut rec = RecordingObserver::default();
    let out = targeted(&net, &tight(), level, search(4), &mut rec).unwrap();
    let resolution = search(4).resolution();
    assert_eq!(resolution, 0.5 / 16.0);
    // Met: the energy measured before fine-tuning is at most the level, and stays there.
    assert!(out.reached() <= level, "{} > {level}", out.reached());
    assert!(out.target_energy_pruned <= level * out.target_energy_before);
    assert!(out.target_energy_after <= out.target_energy_pruned);
    assert_eq!(out.target_energy_before, DENSE);
    assert_eq!(out.floor, 100.0 / DENSE);
    let chosen = out.chosen_step().unwrap();
    assert_eq!(chosen.level, out.reached());
    // Minimal up to the resolution: the δ one resolution below was tried and missed, and every
    // δ tried below the chosen one missed.
    assert!(out.chosen_drop > 0.0);
    assert!(
        out.steps.iter().any(|s| !s.met
            && (s.max_accuracy_drop - (out.chosen_drop - resolution)).abs() < 1e-12),
        "{:?}",
        out.steps
    );
    for s in &out.steps {
        assert_eq!(s.met, s.level <= level);
        if s.max_accuracy_drop < out.chosen_drop {
            assert!(!s.met, "{s:?}");
        }
    }
    assert_eq!(out.steps[0].max_accuracy_drop, 0.5);
    assert!(out.steps.len() <= 6);
    // The outcome is prune_energy_aware's at the chosen δ, bit for bit: the same loop, the same
    // fine-tuning.
    assert_eq!(out.outcome.max_accuracy_drop, Some(out.chosen_drop));
    let same = trained(11);
    let (mut cal, mut train) = (Data::new(64, 1, 5), Data::new(128, 1, 1));
    let mut val = Data::with_noise(64, 1, 0.9, 2);
    let direct = prune_energy_aware(
        PruneRun {
            network: &same,
            params: same.params(),
            model: &Stand,
            calibration: &mut cal,
            val: &mut val,
            train: &mut train,
        },
        &EnergyPruneConfig {
            max_accuracy_drop: out.chosen_drop,
            ..tight()
        },
        &mut NoopObserver,
    )
    .unwrap();
    assert_eq!(out.outcome, direct);
    assert_eq!(bits(&net), bits(&same));
    let ratios: Vec<f64> = out.outcome.layers.iter().map(|l| l.ratio).collect();
    assert_eq!(ratios, chosen.ratios);
    // The search's evaluations carry their step; the fine-tuning's come once, unprefixed.
    let splits: Vec<&str> = rec
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Eval(s) => Some(s.split.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(splits[0], "search step 0 (δ 0.5): val after pruning conv");
    assert_eq!(splits.iter().filter(|s| **s == "val").count(), 1);
    assert_eq!(splits.len(), 2 * out.steps.len() + 1);
}

#[test]
fn a_level_under_the_floor_fails_before_anything_runs() {
    let net = trained(11);
    assert_eq!(weight_floor(&Proxy, &net).unwrap(), 100.0 / DENSE);
    let before = bits(&net);
    let (mut cal, mut train) = (Data::new(64, 1, 5), Data::new(128, 1, 1));
    let mut val = Counting {
        inner: Data::new(64, 1, 2),
        reads: 0,
    };
    let mut rec = RecordingObserver::default();
    let err = prune_to_energy(
        PruneRun {
            network: &net,
            params: net.params(),
            model: &Stand,
            calibration: &mut cal,
            val: &mut val,
            train: &mut train,
        },
        &tight(),
        &EnergyTarget {
            model: &Proxy,
            level: RelativeBudget::new(0.03).unwrap(),
            search: search(4),
        },
        &mut rec,
    )
    .unwrap_err();
    match err {
        Error::TargetBelowFloor {
            model,
            level,
            floor,
        } => {
            assert_eq!(
                (model.as_str(), level, floor),
                ("proxy", 0.03, 100.0 / DENSE)
            );
        }
        other => panic!("expected a level under the floor, got {other}"),
    }
    assert_eq!(val.reads, 0);
    assert!(rec.events.is_empty());
    assert_eq!(bits(&net), before);
}

#[test]
fn a_level_the_largest_drop_misses_names_the_ratio_floor() {
    // Steps of ρ up to 0.9 with a quarter restored: at best 4 of 36 conv and 13 of 128 FC
    // weights stay, (36 + 5·4 + 64 + 20·13) / 2840 of the energy.
    let net = trained(11);
    let before = bits(&net);
    let err = targeted(&net, &config(), 0.1, search(4), &mut NoopObserver).unwrap_err();
    match err {
        Error::TargetUnreached {
            model,
            level,
            reached,
            max_drop,
            max_ratio,
            ratio_floor,
        } => {
            assert_eq!(model, "proxy");
            assert_eq!((level, max_drop, max_ratio), (0.1, 0.5, 0.9));
            assert_eq!(ratio_floor, 380.0 / DENSE);
            assert!(reached > level && reached >= ratio_floor, "{reached}");
        }
        other => panic!("expected an unreached level, got {other}"),
    }
    // The network is handed back with its original weights.
    assert_eq!(bits(&net), before);
}

#[test]
fn layers_follow_the_ordering_models_energy_not_the_measuring_models() {
    // Dense activations: pruning a layer changes only its own energy, so the order is the one
    // the unpruned energies give.
    let cfg = EnergyPruneConfig {
        activation_density: ActivationDensity::Dense,
        ..tight()
    };
    let net = trained(4);
    let by_stand = energy_order(&layer_energies(&Stand, &net, None).unwrap());
    let by_proxy = energy_order(&layer_energies(&Proxy, &net, None).unwrap());
    assert_ne!(by_stand, by_proxy);
    let out = targeted(&net, &cfg, 0.5, search(2), &mut NoopObserver).unwrap();
    let expected: Vec<ProcessedLayer> = by_stand
        .iter()
        .map(|&i| ProcessedLayer {
            id: net.layers()[i].id,
            name: net.layers()[i].name.clone(),
        })
        .collect();
    assert_eq!(out.order, expected);
    let ids: Vec<LayerId> = out.order.iter().map(|l| l.id).collect();
    assert_eq!(ids, out.outcome.order);
    assert_eq!(out.outcome.energy_model, "stand-in");
    assert_eq!(
        (out.target_model.as_str(), out.target_unit),
        ("proxy", EnergyUnit::RfAccess)
    );
    assert_eq!(out.target_layers.len(), 2);
    let after: f64 = out.target_layers.iter().map(|l| l.energy_after).sum();
    assert_eq!(after, out.target_energy_after);
}

#[test]
fn drop_search_ranges_are_checked() {
    for bad in [
        DropSearch {
            max_drop: 1.5,
            steps: 3,
        },
        DropSearch {
            max_drop: -0.1,
            steps: 3,
        },
        DropSearch {
            max_drop: 0.5,
            steps: DropSearch::MAX_STEPS + 1,
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(Error::Config { .. })),
            "{bad:?}"
        );
    }
    fn serialisable<T: serde::Serialize + for<'de> serde::Deserialize<'de>>() {}
    serialisable::<TargetedOutcome>();
    serialisable::<DropSearch>();
}
