//! Energy models priced on cnn-zoo geometry: the goldens of docs/energy-models.md A.7 and D.3 T5 on
//! layer tables derived from real forward passes rather than typed by hand.

use cnn_zoo::{Arch, build};
use energy_model::iclr19::{Evaluator, Iclr19};
use energy_model::reference;
use energy_model::training::TrainingModel;
use tensor_core::{
    DType, Device, EnergyModel, Gemm, LayerGeometry, LayerWork, Network, SeededInit,
    TrainingEnergyModel, WorkLedger,
};

fn net(arch: Arch) -> Box<dyn Network> {
    let init = SeededInit::new(0);
    let [c, _, _] = arch.input_shape();
    build(
        arch,
        arch.default_classes(),
        c,
        init.var_builder(DType::F32, &Device::Cpu),
    )
    .unwrap()
}

// docs/energy-models.md A.7: dense LeNet-5 costs 17,107,544 (exact = relaxed), Σ E_X = 2,604,944.
#[test]
fn lenet5_iclr19() {
    let n = net(Arch::Lenet5);
    for evaluator in [Evaluator::Relaxed, Evaluator::Exact] {
        let model = Iclr19::paper().with_evaluator(evaluator);
        assert_eq!(
            model.network_energy(&n.workloads()).unwrap().total(),
            reference::LENET5_DENSE_ENERGY
        );
    }
    let geometry: Vec<LayerGeometry> = n.layers().iter().map(|l| l.geometry).collect();
    let norm = Iclr19::paper().normalization(&geometry).unwrap();
    assert_eq!(norm.floor_energy, reference::LENET5_FLOOR_ENERGY);
}

// Every zoo model fits the ICLR'19 input cache row by row and prices with positive energy; the
// exact evaluator never exceeds the relaxed one (D.1 A4).
#[test]
fn zoo_prices_under_iclr19() {
    for arch in [
        Arch::AlexnetCaffe,
        Arch::Resnet20,
        Arch::Squeezenet1_0,
        Arch::MobilenetV2,
    ] {
        let ws = net(arch).workloads();
        let rel = Iclr19::paper().network_energy(&ws).unwrap().total();
        let ex = Iclr19::paper()
            .with_evaluator(Evaluator::Exact)
            .network_energy(&ws)
            .unwrap()
            .total();
        assert!(rel > 0.0 && ex <= rel, "{arch}: exact {ex} relaxed {rel}");
    }
}

// docs/energy-models.md D.3 T5: ResNet-74 training MACs per 32×32 image ≈ 3 × forward ≈ 0.51 G;
// ResNet-110 ≈ 0.76 G. At 16 × 16 bits the proxy prices one MAC at 1, so the priced energy of one
// sample is the MAC count. Tolerance 2%: the reference's constants are rounded.
#[test]
fn resnet_training_macs() {
    for (arch, expected) in [(Arch::Resnet74, 0.51e9), (Arch::Resnet110, 0.76e9)] {
        let full = |m: usize| Gemm {
            macs_per_sample: m as u64,
            a_bits: 16,
            b_bits: 16,
        };
        let work: Vec<LayerWork> = net(arch)
            .layers()
            .iter()
            .map(|l| LayerWork {
                layer: l.id,
                executed_fraction: 1.0,
                forward: full(l.geometry.macs()),
                // The gradient with respect to the images is not computed.
                input_grad: (l.id.0 > 0).then(|| full(l.geometry.macs())),
                weight_grad: Some(full(l.geometry.macs())),
                predictor: None,
                fallback_fraction: 0.0,
            })
            .collect();
        let mut ledger = WorkLedger::new();
        ledger.record_executed(1, work).unwrap();
        let e = TrainingModel::bit_product_proxy()
            .price_work(&ledger)
            .unwrap();
        assert!(e.proxy);
        assert!(
            (e.total() / expected - 1.0).abs() < 0.02,
            "{arch}: {}",
            e.total()
        );
    }
}
