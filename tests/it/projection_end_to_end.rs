//! sparse-proj with energy-model's iclr19 costs on real zoo geometry: the projection's guarantee
//! checked by the energy model itself (docs/sparse-projection.md §11 item 1 and §10).

use cnn_zoo::Arch;
use energy_model::iclr19::{Evaluator, Iclr19};
use sparse_proj::{GreedyVariant, project_layers, project_layers_magnitude, weight_costs};
use tensor_core::testing::layer_weights;
use tensor_core::{Bitmap, EnergyModel, LayerSparsity, LayerWorkload, Network, Precision, Support};

use integration_tests::seeded_model;

fn workloads(net: &dyn Network, weights: &[Vec<f32>]) -> Vec<LayerWorkload> {
    net.layers()
        .iter()
        .zip(weights)
        .map(|(l, w)| LayerWorkload {
            id: l.id,
            name: l.name.clone(),
            geometry: l.geometry,
            sparsity: LayerSparsity {
                weights: Support::Bitmap(Bitmap::from_values(l.weight.dims(), w).unwrap()),
                inputs: Support::Dense,
                outputs: Support::Dense,
            },
            precision: Precision::default(),
        })
        .collect()
}

#[test]
fn projected_lenet5_is_within_budget_under_both_evaluators() {
    let (net, _init) = seeded_model(Arch::Lenet5, 10, 1, 3).unwrap();
    let model = Iclr19::paper();
    let costs = weight_costs(&model, net.as_ref(), None).unwrap();
    let dense = layer_weights(net.as_ref());
    // docs/energy-models.md A.7: E_dense = 17,107,544 and floor 2,604,944, exactly.
    let e_dense = model
        .network_energy(&workloads(net.as_ref(), &dense))
        .unwrap()
        .total();
    assert_eq!(e_dense, 17_107_544.0);
    assert_eq!(sparse_proj::floor_energy(&costs), 2_604_944.0);
    for b in [0.9, 0.5, 0.3, 0.2, 0.16] {
        for magnitude in [false, true] {
            let mut w = dense.clone();
            let mut slices: Vec<&mut [f32]> = w.iter_mut().map(Vec::as_mut_slice).collect();
            let out = if magnitude {
                project_layers_magnitude(&mut slices, &costs, b * e_dense, &[]).unwrap()
            } else {
                project_layers(&mut slices, &costs, b * e_dense, GreedyVariant::Prefix, &[])
                    .unwrap()
            };
            let loads = workloads(net.as_ref(), &w);
            let relaxed = model.network_energy(&loads).unwrap().total();
            let exact = model
                .with_evaluator(Evaluator::Exact)
                .network_energy(&loads)
                .unwrap()
                .total();
            assert!(
                relaxed <= b * e_dense,
                "b {b} magnitude {magnitude}: {relaxed}"
            );
            assert_eq!(relaxed, out.energy, "b {b} magnitude {magnitude}");
            assert!(exact <= relaxed);
        }
    }
    // Below the floor: a typed error naming it.
    let mut w = dense.clone();
    let mut slices: Vec<&mut [f32]> = w.iter_mut().map(Vec::as_mut_slice).collect();
    match project_layers(
        &mut slices,
        &costs,
        0.15 * e_dense,
        GreedyVariant::Prefix,
        &[],
    ) {
        Err(sparse_proj::Error::BudgetInfeasible { floor, .. }) => assert_eq!(floor, 2_604_944.0),
        other => panic!("expected an infeasible budget, got {other:?}"),
    }
}
