//! E2-Train's ledger priced with data movement (docs/training-energy-dataflow.md): the baseline
//! ledger e2-train writes for a gated ResNet-8, priced by energy-model's dataflow pricer from the
//! geometry cnn-zoo probed, next to the bit-product proxy and the executed MACs.

use e2_train::{ConvMode, E2TrainConfig};
use energy_model::eyeriss::{Eyeriss, Preset};
use energy_model::training::dataflow::DataflowTraining;
use energy_model::training::{TrainingModel, savings};
use integration_tests::gated;
use tensor_core::{Iteration, Network, SeededInit, WorkLedger};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

#[test]
fn dataflow_prices_an_e2_train_ledger() -> anyhow::Result<()> {
    let mut config = E2TrainConfig::quick_cpu_resnet8();
    config.model.conv = ConvMode::quantized8();
    config.iterations = 4;
    let init = SeededInit::new(0);
    let net = gated(config.model, &init)?;
    let base = e2_train::baseline_ledger(&net, &config, &|_| 8)?;
    let geometry = net.layers().iter().map(|l| (l.id, l.geometry));
    let model = DataflowTraining::new(Eyeriss::preset(Preset::Chip, 8)?, geometry)?;
    let d = model.price(&base)?;
    // The gated network names every ledger id it can write, gates and control included, and
    // prices standard training exactly as the backbone's layers alone do.
    let layers = net.pricing_layers()?;
    let ids: Vec<usize> = layers.iter().map(|(id, _)| id.0).collect();
    assert_eq!(ids, (0..=net.control_layer_id().0).collect::<Vec<_>>());
    let with_gates = DataflowTraining::new(Eyeriss::preset(Preset::Chip, 8)?, layers)?;
    assert_eq!(with_gates.price(&base)?.energy, d.energy);
    assert_eq!(d.energy.model, "training/eyeriss-chip dataflow batch 8");
    assert!(!d.energy.proxy);
    // Every product of a CIFAR-sized ResNet maps; none fell back.
    assert!(d.fallbacks.is_empty(), "{d}");
    // The computation part is the bit-product proxy, class by class (same MACs, same widths).
    let p = TrainingModel::bit_product_proxy().price(&base)?.energy;
    assert!(close(d.products.forward.compute, p.forward));
    assert!(close(d.products.input_grad.compute, p.input_grad));
    assert!(close(d.products.weight_grad.compute, p.weight_grad));
    assert!(d.products.data() > d.products.compute());

    // Every other iteration dropped: half of every measure.
    let mut half = WorkLedger::new();
    for (i, it) in base.iterations().iter().enumerate() {
        match it {
            Iteration::Executed { batch, layers } if i % 2 == 0 => {
                half.record_executed(*batch, layers.clone())?
            }
            _ => half.record_dropped(),
        }
    }
    let dh = model.price(&half)?;
    assert!(close(savings(&dh.energy, &d.energy)?, 0.5));
    assert!(close(dh.macs.total(), d.macs.total() / 2.0));
    Ok(())
}
