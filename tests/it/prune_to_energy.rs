//! energy-prune's energy-targeted run on the zoo's LeNet-5 with embedded MNIST, the layers
//! ordered by energy-model's Eyeriss model and the level measured by its ICLR'19 model: the
//! measuring floor is the ICLR'19 floor of docs/energy-models.md A.7, a level under it fails
//! before anything runs, and a reachable level is met at the energy the ICLR'19 model prices
//! (docs/energy-aware-pruning.md §2).

use cnn_zoo::Arch;
use datasets::DatasetId;
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_model::iclr19::Iclr19;
use energy_model::reference;
use energy_prune::{
    DropSearch, EnergyPruneConfig, EnergyTarget, Error, PruneRun, RatioSearch, layer_energies,
    prune_to_energy, weight_floor,
};
use experiments::data::{DataDir, Split, SplitData, TensorBatches};
use experiments::train::TrainSpec;
use tensor_core::{Device, EnergyModel, NoopObserver, RelativeBudget};

use integration_tests::seeded_model;

#[test]
fn lenet5_weight_floor_is_the_iclr19_floor() {
    let (net, _init) = seeded_model(Arch::Lenet5, 10, 1, 11).unwrap();
    let floor = weight_floor(&Iclr19::paper(), net.as_ref()).unwrap();
    assert_eq!(
        floor,
        reference::LENET5_FLOOR_ENERGY / reference::LENET5_DENSE_ENERGY
    );
    assert!((floor - reference::LENET5_FLOOR).abs() < 5e-6, "{floor}");
}

#[test]
fn lenet5_pruned_to_an_iclr19_level_in_eyeriss_order() {
    let spec = TrainSpec::recipe(Arch::Lenet5, DatasetId::Mnist);
    let data = SplitData::load(&spec, Split::Train, &DataDir::new(None)).unwrap();
    let batches = |from: usize, n: usize, batch: usize| {
        let indices: Vec<usize> = (from..from + n).collect();
        TensorBatches::new(&data, &indices, batch, 0, false, &Device::Cpu).unwrap()
    };
    let (mut train, mut cal, mut val) = (
        batches(0, 300, 50),
        batches(0, 200, 100),
        batches(300, 100, 100),
    );
    let (net, init) = seeded_model(Arch::Lenet5, 10, 1, 11).unwrap();
    let eyeriss = Eyeriss::preset(Preset::Chip, 16).unwrap();
    let iclr19 = Iclr19::paper();
    let mut config = EnergyPruneConfig::reconstruction_lenet5_mnist();
    config.calibration_images = 200;
    // One ratio per layer when it is accepted (the untrained network's accuracy is noise).
    config.ratio_search = RatioSearch::Bisection {
        max_ratio: 0.75,
        iterations: 1,
    };
    config.finetune.epochs = 1;
    let search = DropSearch {
        max_drop: 0.05,
        steps: 1,
    };
    let eyeriss_before = layer_energies(&eyeriss, net.as_ref(), None).unwrap();
    let mut run = |level: f64| {
        prune_to_energy(
            PruneRun {
                network: net.as_ref(),
                params: init.named_vars().into_iter().map(|(_, v)| v).collect(),
                model: &eyeriss,
                calibration: &mut cal,
                val: &mut val,
                train: &mut train,
            },
            &config,
            &EnergyTarget {
                model: &iclr19,
                level: RelativeBudget::new(level).unwrap(),
                search,
            },
            &mut NoopObserver,
        )
    };
    match run(0.15) {
        Err(Error::TargetBelowFloor { floor, .. }) => {
            assert!((floor - reference::LENET5_FLOOR).abs() < 5e-6, "{floor}");
        }
        other => panic!("expected a level under the floor, got {other:?}"),
    }
    let out = run(0.6).unwrap();
    assert_eq!(out.target_model, iclr19.name());
    assert_eq!(out.outcome.energy_model, eyeriss.name());
    assert_eq!(out.target_energy_before, reference::LENET5_DENSE_ENERGY);
    assert!(out.reached() <= 0.6, "{}", out.reached());
    assert!(out.target_energy_after <= 0.6 * reference::LENET5_DENSE_ENERGY);
    assert!(out.steps.iter().any(|s| s.met));
    // The first layer processed had the highest Eyeriss energy (measured input densities), the
    // order covers every layer, and the masks priced by the ICLR'19 model give the final energy.
    let first = &out.outcome.layers[out.order[0].id.0];
    let highest = out
        .outcome
        .layers
        .iter()
        .map(|l| l.energy_before)
        .fold(0.0, f64::max);
    assert_eq!(first.energy_at_selection, Some(highest));
    assert_eq!(out.order.len(), net.layers().len());
    let iclr19_after: f64 = layer_energies(&iclr19, net.as_ref(), None)
        .unwrap()
        .iter()
        .sum();
    assert_eq!(iclr19_after, out.target_energy_after);
    let eyeriss_after = layer_energies(&eyeriss, net.as_ref(), None).unwrap();
    assert!(eyeriss_after.iter().sum::<f64>() < eyeriss_before.iter().sum::<f64>());
}
