//! Bench groups and the layer tables they share. energy-model may not depend on cnn-zoo, so the
//! geometry comes from the tables of [`energy_model::reference`] (docs/energy-models.md A.7 for
//! LeNet-5, B.10 for AlexNet in Caffe's grouped layout); the integration tests check cnn-zoo
//! against the same tables.

pub(crate) mod estimate;
pub(crate) mod eyeriss;

use energy_model::reference::{self, Shape};
use tensor_core::{Bitmap, LayerId, LayerWorkload, Support};

fn workloads(layers: &[(&str, Shape)]) -> Vec<LayerWorkload> {
    layers
        .iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let g = shape.geometry().expect("hand-listed geometry is valid");
            LayerWorkload::dense(LayerId(i), *name, g)
        })
        .collect()
}

/// LeNet-5 on 1×32×32 (docs/energy-models.md A.7), named as its table names the layers.
pub(crate) fn lenet5() -> Vec<LayerWorkload> {
    let names = reference::LENET5_A7.map(|row| row.name);
    workloads(&names.into_iter().zip(reference::LENET5).collect::<Vec<_>>())
}

/// AlexNet, Caffe grouped layout on 3×227×227 (docs/energy-models.md B.10).
pub(crate) fn alexnet_caffe() -> Vec<LayerWorkload> {
    workloads(&reference::ALEXNET_CAFFE_LAYERS)
}

/// Every layer's weights replaced by a seeded random bitmap of about `density` (a 64-bit LCG:
/// the bench needs fixed inputs, not good randomness).
pub(crate) fn with_weight_bitmaps(
    mut layers: Vec<LayerWorkload>,
    density: f64,
    seed: u64,
) -> Vec<LayerWorkload> {
    let mut state = seed;
    for l in &mut layers {
        let bits: Vec<bool> = (0..l.geometry.weights())
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 11) as f64 / (1u64 << 53) as f64) < density
            })
            .collect();
        let bitmap = Bitmap::from_bools(&l.geometry.weight_shape(), &bits)
            .expect("bits match the weight shape");
        l.sparsity.weights = Support::Bitmap(bitmap);
    }
    layers
}
