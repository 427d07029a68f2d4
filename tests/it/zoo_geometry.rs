//! Zoo models as the rest of the workspace sees them: layer lists, workloads and variables agree.

use cnn_zoo::Arch;
use integration_tests::seeded_model;
use tensor_core::{LayerId, LayerKind};

#[test]
fn layers_workloads_and_vars_agree_for_every_small_model() -> anyhow::Result<()> {
    for arch in [
        Arch::Lenet5,
        Arch::Lenet5Caffe,
        Arch::Resnet8,
        Arch::Resnet20,
    ] {
        let [c, _, _] = arch.input_shape();
        let (net, _) = seeded_model(arch, 10, c, 0)?;
        let workloads = net.workloads();
        assert_eq!(workloads.len(), net.layers().len());
        for (i, (l, w)) in net.layers().iter().zip(&workloads).enumerate() {
            assert_eq!(l.id, LayerId(i), "{arch}: layer ids are positions");
            assert_eq!(w.id, l.id);
            assert_eq!(w.geometry, l.geometry);
            assert_eq!(
                l.weight.dims(),
                l.geometry.weight_shape().as_slice(),
                "{arch} {}",
                l.name
            );
            assert_eq!(l.kind, l.geometry.kind());
        }
        assert_eq!(net.layers().last().map(|l| l.kind), Some(LayerKind::Fc));
    }
    Ok(())
}

#[test]
fn workloads_serialise_for_exchange() -> anyhow::Result<()> {
    let (net, _) = seeded_model(Arch::Lenet5, 10, 1, 0)?;
    let json = serde_json::to_string(&net.workloads())?;
    let back: Vec<tensor_core::LayerWorkload> = serde_json::from_str(&json)?;
    assert_eq!(back, net.workloads());
    let total: usize = back.iter().map(|w| w.geometry.weights()).sum();
    assert_eq!(total, 61_470);
    Ok(())
}
