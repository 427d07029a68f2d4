//! Bench groups and the layer tables they share. energy-model may not depend on cnn-zoo, so the
//! geometry is listed here by hand from docs/energy-models.md A.7 (LeNet-5) and B.10 (AlexNet, Caffe
//! grouped layout); the integration tests check cnn-zoo against the same tables.

pub(crate) mod estimate;
pub(crate) mod eyeriss;

use tensor_core::ConvParams;
use tensor_core::{Bitmap, LayerGeometry, LayerId, LayerWorkload, Support};

fn workloads(layers: &[(&str, LayerGeometry)]) -> Vec<LayerWorkload> {
    layers
        .iter()
        .enumerate()
        .map(|(i, (name, g))| LayerWorkload::dense(LayerId(i), *name, *g))
        .collect()
}

fn conv(
    c: usize,
    hw: usize,
    d: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> LayerGeometry {
    LayerGeometry::conv(
        [c, hw, hw],
        d,
        ConvParams::square(k)
            .stride(stride)
            .padding(pad)
            .groups(groups),
    )
    .expect("hand-listed geometry is valid")
}

fn fc(c: usize, hw: usize, d: usize) -> LayerGeometry {
    LayerGeometry::fc(c, hw, hw, d).expect("hand-listed geometry is valid")
}

/// LeNet-5 on 1×32×32 (docs/energy-models.md A.7).
pub(crate) fn lenet5() -> Vec<LayerWorkload> {
    workloads(&[
        ("features.0", conv(1, 32, 6, 5, 1, 0, 1)),
        ("features.3", conv(6, 14, 16, 5, 1, 0, 1)),
        ("classifier.0", fc(16, 5, 120)),
        ("classifier.2", fc(120, 1, 84)),
        ("classifier.4", fc(84, 1, 10)),
    ])
}

/// AlexNet, Caffe grouped layout on 3×227×227 (docs/energy-models.md B.10).
pub(crate) fn alexnet_caffe() -> Vec<LayerWorkload> {
    workloads(&[
        ("conv1", conv(3, 227, 96, 11, 4, 0, 1)),
        ("conv2", conv(96, 27, 256, 5, 1, 2, 2)),
        ("conv3", conv(256, 13, 384, 3, 1, 1, 1)),
        ("conv4", conv(384, 13, 384, 3, 1, 1, 2)),
        ("conv5", conv(384, 13, 256, 3, 1, 1, 2)),
        ("fc6", fc(256, 6, 4096)),
        ("fc7", fc(4096, 1, 4096)),
        ("fc8", fc(4096, 1, 1000)),
    ])
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
