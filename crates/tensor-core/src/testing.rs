//! Test helpers (feature `testing`): a device macro, approximate comparisons with explicit
//! tolerances, host copies and seeded random tensors, and the test doubles the domain crates
//! share (stand-in energy models linear in the nonzero weights and inputs, a tiny trainable
//! network and a synthetic two-class data set).

use rand::Rng as _;

use crate::energy::LayerEnergy;
use crate::error::Result;
use crate::geometry::{ConvParams, LayerGeometry, LayerId, LayerKind};
use crate::network::{LayerInfo, Network, Taps};
use crate::sparsity::LayerSparsity;
use crate::tensor::{DType, Device, Tensor, Var};
use crate::train::BatchSource;

/// Generates one test per available device from a function `fn(&Device) -> anyhow::Result<()>`
/// (or any error type): `_cpu` always, `_cuda` with the `cuda` feature.
///
/// ```ignore
/// fn conv_shapes(dev: &Device) -> anyhow::Result<()> { /* ... */ Ok(()) }
/// tensor_core::test_device!(conv_shapes, conv_shapes_cpu, conv_shapes_cuda);
/// ```
#[macro_export]
macro_rules! test_device {
    ($fn_name:ident, $test_cpu:ident, $test_cuda:ident) => {
        #[test]
        fn $test_cpu() -> ::std::result::Result<(), Box<dyn ::std::error::Error>> {
            $fn_name(&$crate::tensor::Device::Cpu)?;
            Ok(())
        }

        #[cfg(feature = "cuda")]
        #[test]
        fn $test_cuda() -> ::std::result::Result<(), Box<dyn ::std::error::Error>> {
            $fn_name(&$crate::tensor::Device::new_cuda(0)?)?;
            Ok(())
        }
    };
}

/// Defines a unit struct implementing [`EnergyModel`](crate::EnergyModel) for tests, named
/// `$label` and counting in `$unit`: a layer's energy, all of it compute, is `$per_weight(g)`
/// (a function of the layer's geometry) per nonzero weight plus `$per_input` per nonzero input
/// ([`linear_energy`]).
///
/// ```text
/// tensor_core::linear_energy_model!(
///     /// Energy grows with the weight density.
///     Stand, "stand-in", EnergyUnit::Mac16, |g| 3.0 * g.out_positions() as f64, 1.0
/// );
/// ```
#[macro_export]
macro_rules! linear_energy_model {
    ($(#[$meta:meta])* $name:ident, $label:expr, $unit:expr, $per_weight:expr, $per_input:expr) => {
        $(#[$meta])*
        struct $name;

        impl $crate::EnergyModel for $name {
            fn name(&self) -> String {
                $label.into()
            }
            fn unit(&self) -> $crate::EnergyUnit {
                $unit
            }
            fn layer_energy(
                &self,
                geometry: &$crate::LayerGeometry,
                sparsity: &$crate::LayerSparsity,
                _precision: $crate::Precision,
            ) -> $crate::Result<$crate::LayerEnergy> {
                let per_weight: fn(&$crate::LayerGeometry) -> f64 = $per_weight;
                $crate::testing::linear_energy(geometry, sparsity, per_weight(geometry), $per_input)
            }
        }
    };
}

/// A layer energy of `per_weight` per nonzero weight plus `per_input` per nonzero input, all of
/// it compute, with the nonzero weights recorded.
pub fn linear_energy(
    geometry: &LayerGeometry,
    sparsity: &LayerSparsity,
    per_weight: f64,
    per_input: f64,
) -> Result<LayerEnergy> {
    let nz = sparsity.weights.nonzeros(geometry.weights())?;
    let inputs = sparsity.inputs.nonzeros(geometry.in_features())?;
    Ok(LayerEnergy {
        compute: per_weight * nz as f64 + per_input * inputs as f64,
        nonzero_weights: nz,
        ..LayerEnergy::default()
    })
}

/// Largest absolute difference between two same-shape tensors, computed in f64.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    let d = (a.to_dtype(DType::F64)? - b.to_dtype(DType::F64)?)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f64>()?;
    Ok(d)
}

/// Asserts `|a − b| ≤ atol + rtol·|b|`.
#[track_caller]
pub fn assert_close(a: f64, b: f64, atol: f64, rtol: f64) {
    assert!(
        (a - b).abs() <= atol + rtol * b.abs(),
        "{a} and {b} differ by {} (> atol {atol} + rtol {rtol} · |b|)",
        (a - b).abs()
    );
}

/// Asserts two tensors have the same shape and differ by at most `atol` anywhere.
#[track_caller]
pub fn assert_tensor_close(a: &Tensor, b: &Tensor, atol: f64) {
    assert_eq!(a.dims(), b.dims(), "tensor shapes differ");
    let d = match max_abs_diff(a, b) {
        Ok(d) => d,
        Err(e) => panic!("cannot compare tensors: {e}"),
    };
    assert!(d <= atol, "tensors differ by {d} (> atol {atol})");
}

/// A tensor's values, flattened, as `f32` on the host.
#[track_caller]
pub fn host(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1())
        .expect("host copy")
}

/// A tensor's values, flattened, as `f64` on the host.
#[track_caller]
pub fn host_f64(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(DType::F64))
        .and_then(|t| t.to_vec1())
        .expect("host copy")
}

/// A CPU tensor of `shape` with values uniform in `[−scale, scale)`, from the stream `test` of
/// `seed`.
pub fn random(shape: &[usize], seed: u64, scale: f32) -> Tensor {
    let mut rng = crate::rng(seed, "test");
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
}

/// Every layer's weights, flattened, on the host, in layer order.
pub fn layer_weights(net: &dyn Network) -> Vec<Vec<f32>> {
    net.layers()
        .iter()
        .map(|l| host(l.weight.as_tensor()))
        .collect()
}

/// conv (`c_in` → 4 filters, 3×3 over a 6×6 input, with bias) → ReLU → fc (→ 2 classes, with
/// bias): a network that learns [`TwoClassImages`] in a few epochs. Parameters are uniform,
/// drawn from the stream `tiny` of a seed.
pub struct TinyNet {
    layers: Vec<LayerInfo>,
    stride: usize,
    padding: usize,
    groups: usize,
}

impl TinyNet {
    /// The network over `c_in` channels with the conv's stride, padding and groups.
    pub fn new(seed: u64, c_in: usize, stride: usize, padding: usize, groups: usize) -> Self {
        let dev = Device::Cpu;
        let mut rng = crate::rng(seed, "tiny");
        let mut init = |dims: &[usize], scale: f32| {
            let n: usize = dims.iter().product();
            let v: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
            Var::from_tensor(&Tensor::from_vec(v, dims, &dev).expect("tensor")).expect("var")
        };
        let conv = LayerGeometry::conv(
            [c_in, 6, 6],
            4,
            ConvParams::square(3)
                .stride(stride)
                .padding(padding)
                .groups(groups),
        )
        .expect("valid conv");
        let fc = LayerGeometry::fc(4, conv.out_h(), conv.out_w(), 2).expect("valid fc");
        let layers = vec![
            LayerInfo {
                id: LayerId(0),
                name: "conv".into(),
                kind: LayerKind::Conv,
                geometry: conv,
                weight: init(&conv.weight_shape(), 0.5),
                bias: Some(init(&[4], 0.1)),
            },
            LayerInfo {
                id: LayerId(1),
                name: "fc".into(),
                kind: LayerKind::Fc,
                geometry: fc,
                weight: init(&fc.weight_shape(), 0.2),
                bias: Some(init(&[2], 0.1)),
            },
        ];
        Self {
            layers,
            stride,
            padding,
            groups,
        }
    }

    /// One input channel, stride 1, no padding, one group.
    pub fn plain(seed: u64) -> Self {
        Self::new(seed, 1, 1, 0, 1)
    }

    /// Weights and biases, layer by layer.
    pub fn params(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| [Some(l.weight.clone()), l.bias.clone()])
            .flatten()
            .collect()
    }

    /// Every layer's weights on the host ([`layer_weights`]).
    pub fn host(&self) -> Vec<Vec<f32>> {
        layer_weights(self)
    }
}

impl Network for TinyNet {
    fn arch(&self) -> &str {
        "tiny"
    }
    fn input_shape(&self) -> [usize; 3] {
        [self.layers[0].geometry.in_channels(), 6, 6]
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }
    fn forward_tapped(&self, xs: &Tensor, _train: bool, taps: &mut dyn Taps) -> Result<Tensor> {
        let mut xs = xs.clone();
        for l in &self.layers {
            if let Some(r) = taps.pre(l.id, &xs)? {
                xs = r;
            }
            let input = xs.clone();
            let b = l.bias.as_ref().map(|b| b.as_tensor()).expect("bias");
            let ys = match l.kind {
                LayerKind::Conv => xs
                    .conv2d(
                        l.weight.as_tensor(),
                        self.padding,
                        self.stride,
                        1,
                        self.groups,
                    )?
                    .broadcast_add(&b.reshape((1, 4, 1, 1))?)?,
                LayerKind::Fc => xs
                    .flatten_from(1)?
                    .matmul(&l.weight.as_tensor().t()?)?
                    .broadcast_add(b)?,
            };
            taps.post(l.id, &input, &ys)?;
            xs = if l.kind == LayerKind::Conv {
                ys.relu()?
            } else {
                ys
            };
        }
        Ok(xs)
    }
}

/// Synthetic 6×6 images of two classes, served in batches of 16 in order: class 1 is bright in
/// the centre, class 0 in the border, every channel alike, plus uniform noise. Labels alternate
/// 0, 1, 0, ...
pub struct TwoClassImages {
    xs: Tensor,
    ys: Tensor,
    batch: usize,
}

impl TwoClassImages {
    /// `n` images of `channels` channels with noise in `[−0.4, 0.4)`, drawn from the stream
    /// `data` of `seed`.
    pub fn new(n: usize, channels: usize, seed: u64) -> Self {
        Self::with_noise(n, channels, 0.4, seed)
    }

    /// `n` images of `channels` channels with noise in `[−noise, noise)`.
    pub fn with_noise(n: usize, channels: usize, noise: f32, seed: u64) -> Self {
        let mut rng = crate::rng(seed, "data");
        let mut xs = Vec::with_capacity(n * 36 * channels);
        let mut ys = Vec::with_capacity(n);
        for i in 0..n {
            let label = (i % 2) as u32;
            for _ in 0..channels {
                for r in 0..6 {
                    for c in 0..6 {
                        let centre = (1..5).contains(&r) && (1..5).contains(&c);
                        let on = centre == (label == 1);
                        xs.push(if on { 1.0 } else { 0.0 } + rng.random_range(-noise..noise));
                    }
                }
            }
            ys.push(label);
        }
        Self {
            xs: Tensor::from_vec(xs, (n, channels, 6, 6), &Device::Cpu).expect("images"),
            ys: Tensor::from_vec(ys, n, &Device::Cpu).expect("labels"),
            batch: 16,
        }
    }

    /// All images, as a list holding one `[n, channels, 6, 6]` tensor.
    pub fn images(&self) -> Vec<Tensor> {
        vec![self.xs.clone()]
    }
}

impl BatchSource for TwoClassImages {
    fn batches_per_epoch(&self) -> usize {
        self.ys.dims()[0].div_ceil(self.batch)
    }
    fn batch(&mut self, _epoch: usize, index: usize) -> Result<(Tensor, Tensor)> {
        let n = self.xs.dim(0)?;
        let start = index * self.batch;
        let len = self.batch.min(n - start);
        Ok((
            self.xs.narrow(0, start, len)?,
            self.ys.narrow(0, start, len)?,
        ))
    }
}
