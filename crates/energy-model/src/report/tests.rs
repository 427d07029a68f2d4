use tensor_core::{EnergyModel, LayerId, LayerWorkload};

use super::*;
use crate::iclr19::Iclr19;
use crate::reference;

fn lenet5() -> Vec<LayerWorkload> {
    reference::LENET5
        .iter()
        .enumerate()
        .map(|(i, s)| LayerWorkload::dense(LayerId(i), format!("layer{i}"), s.geometry().unwrap()))
        .collect()
}

// docs/energy-models.md A.7: dense LeNet-5 costs 17,107,544 with floor 0.15227.
#[test]
fn totals_floor_and_provenance() {
    let ws = lenet5();
    let m = Iclr19::paper();
    let e = m.network_energy(&ws).unwrap();
    let gs: Vec<_> = ws.iter().map(|w| w.geometry).collect();
    let r = EnergyReport::new("lenet5", &ws, &e, 1)
        .unwrap()
        .with_normalization(m.normalization(&gs).unwrap());
    assert_eq!(r.total(), 17_107_544.0);
    assert_eq!(r.totals().total(), r.total());
    assert!((r.normalized_floor().unwrap() - 0.15227).abs() < 5e-6);
    assert_eq!(r.layers[0].macs, 117_600);
    assert_eq!(r.layers[2].kind, LayerKind::Fc);
    assert_eq!(
        r.caption(),
        "lenet5: energy modelled on iclr19/relaxed batch 1, in RF-access units"
    );
}

#[test]
fn mismatched_layers_are_errors() {
    let ws = lenet5();
    let e = Iclr19::paper().network_energy(&ws).unwrap();
    assert!(EnergyReport::new("x", &ws[..2], &e, 1).is_err());
    let mut shuffled = ws.clone();
    shuffled.swap(0, 1);
    assert!(EnergyReport::new("x", &shuffled, &e, 1).is_err());
}
