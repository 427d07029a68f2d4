//! Published numbers the models are checked against, as plain constants in one place: the unit
//! tests of this crate, the workspace's integration tests and the `energy-validation`,
//! `eap-estimates` and `zoo-geometry` experiments all read them from here. Each item cites the
//! section of `docs/` that quotes it.

use tensor_core::{ConvParams, LayerGeometry, Result};

/// One row of the LeNet-5 table of docs/energy-models.md A.7 (ICLR'19 model, one sample, dense,
/// RF-access units; every value an exact integer, exact = relaxed evaluator).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lenet5Golden {
    /// Layer name as the table prints it.
    pub name: &'static str,
    /// Weights.
    pub weights: u64,
    /// Input energy `E_X`.
    pub e_x: f64,
    /// Weight energy `E_W` (dense).
    pub e_w: f64,
    /// Compute energy `E_C` (dense).
    pub e_c: f64,
    /// The per-weight input cost `κ_in`.
    pub kappa_in: f64,
}

const fn lenet5_row(
    name: &'static str,
    weights: u64,
    e_x: f64,
    e_w: f64,
    e_c: f64,
    kappa_in: f64,
) -> Lenet5Golden {
    Lenet5Golden {
        name,
        weights,
        e_x,
        e_w,
        e_c,
        kappa_in,
    }
}

/// docs/energy-models.md A.7: LeNet-5 (1×32×32 input; conv 1→6 k5, conv 6→16 k5, FC 400→120→84→10)
/// layer by layer.
pub const LENET5_A7: [Lenet5Golden; 5] = [
    lenet5_row("conv1", 150, 1_380_800.0, 207_000.0, 352_800.0, 3_732.0),
    lenet5_row("conv2", 2_400, 975_200.0, 849_600.0, 720_000.0, 654.0),
    lenet5_row("fc1", 48_000, 173_600.0, 9_936_000.0, 144_000.0, 210.0),
    lenet5_row("fc2", 10_080, 55_200.0, 2_086_560.0, 30_240.0, 210.0),
    lenet5_row("fc3", 840, 20_144.0, 173_880.0, 2_520.0, 210.0),
];

/// docs/energy-models.md A.7: the LeNet-5 layers [`LENET5_A7`] prices, in order (1×32×32 input,
/// no padding, 2×2 pooling between the convs).
pub const LENET5: [Shape; 5] = [
    conv(1, 32, 6, 5, 1, 0, 1),
    conv(6, 14, 16, 5, 1, 0, 1),
    fc(16, 5, 120),
    fc(120, 1, 84),
    fc(84, 1, 10),
];

/// docs/energy-models.md A.7: dense LeNet-5 energy `E_dense`, RF-access units.
pub const LENET5_DENSE_ENERGY: f64 = 17_107_544.0;

/// docs/energy-models.md A.7: LeNet-5's `Σ E_X`, the energy no weight pruning removes.
pub const LENET5_FLOOR_ENERGY: f64 = 2_604_944.0;

/// docs/energy-models.md A.7: the floor `Σ E_X / E_dense`, to the five decimals the table prints.
pub const LENET5_FLOOR: f64 = 0.15227;

/// A layer's shape as a paper states it: square kernels, strides and paddings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A convolution of a `c × hw × hw` input to `d` filters.
    Conv {
        /// Input channels.
        c: usize,
        /// Input height and width.
        hw: usize,
        /// Filters.
        d: usize,
        /// Kernel size.
        k: usize,
        /// Stride.
        s: usize,
        /// Padding.
        p: usize,
        /// Groups.
        g: usize,
    },
    /// A fully connected layer fed by a `c × hw × hw` producer.
    Fc {
        /// Producer channels.
        c: usize,
        /// Producer height and width.
        hw: usize,
        /// Outputs.
        d: usize,
    },
}

impl Shape {
    /// The checked geometry.
    pub fn geometry(self) -> Result<LayerGeometry> {
        match self {
            Shape::Conv {
                c,
                hw,
                d,
                k,
                s,
                p,
                g,
            } => LayerGeometry::conv(
                [c, hw, hw],
                d,
                ConvParams::square(k).stride(s).padding(p).groups(g),
            ),
            Shape::Fc { c, hw, d } => LayerGeometry::fc(c, hw, hw, d),
        }
    }
}

/// One layer of Fig. 10 of Chen, Emer, Sze, ISCA 2016 (docs/energy-models.md B.10): AlexNet under
/// the ISCA'16 Eyeriss configuration, batch [`FIG10_BATCH`], dense 16-bit, in 10⁹ MAC energies
/// for the whole batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fig10Layer {
    /// Layer name.
    pub name: &'static str,
    /// The layer as the figure prices it (one tower).
    pub shape: Shape,
    /// Towers that each compute this shape (2 for conv1, 1 otherwise).
    pub towers: f64,
    /// ALU (compute) energy.
    pub alu: f64,
    /// DRAM energy.
    pub dram: f64,
    /// Register-file energy.
    pub rf: f64,
}

/// A convolution as papers list it: `c × hw × hw` input, `d` filters of `k × k`, stride `s`,
/// padding `p`, `g` groups.
pub const fn conv(c: usize, hw: usize, d: usize, k: usize, s: usize, p: usize, g: usize) -> Shape {
    Shape::Conv {
        c,
        hw,
        d,
        k,
        s,
        p,
        g,
    }
}

/// A fully connected layer to `d` outputs fed by a `c × hw × hw` producer.
pub const fn fc(c: usize, hw: usize, d: usize) -> Shape {
    Shape::Fc { c, hw, d }
}

const fn fig10(
    name: &'static str,
    shape: Shape,
    towers: f64,
    alu: f64,
    dram: f64,
    rf: f64,
) -> Fig10Layer {
    Fig10Layer {
        name,
        shape,
        towers,
        alu,
        dram,
        rf,
    }
}

/// Batch size of Fig. 10.
pub const FIG10_BATCH: usize = 16;

/// Fig. 10 per layer. The figure prices AlexNet in Krizhevsky's two-tower layout: conv1 is two
/// independent 48-filter convolutions that each read the whole 3-channel image (the layout of
/// nn_dataflow's `alex_net.py`, which reproduces the figure); the other layers match the Caffe
/// grouped layout of B.10.
#[rustfmt::skip] // one layer per line, as the figure's table reads
pub const EYERISS_FIG10: [Fig10Layer; 8] = [
    fig10("conv1", conv(3, 227, 48, 11, 4, 0, 1), 2.0, 1.69, 2.46, 6.75),
    fig10("conv2", conv(96, 27, 256, 5, 1, 2, 2), 1.0, 3.58, 2.27, 14.33),
    fig10("conv3", conv(256, 13, 384, 3, 1, 1, 1), 1.0, 2.39, 2.02, 9.57),
    fig10("conv4", conv(384, 13, 384, 3, 1, 1, 2), 1.0, 1.79, 1.57, 7.18),
    fig10("conv5", conv(384, 13, 256, 3, 1, 1, 2), 1.0, 1.20, 1.05, 4.78),
    fig10("fc6", fc(256, 6, 4096), 1.0, 0.60, 7.78, 2.42),
    fig10("fc7", fc(4096, 1, 4096), 1.0, 0.27, 3.39, 1.07),
    fig10("fc8", fc(4096, 1, 1000), 1.0, 0.07, 0.84, 0.26),
];

/// Whether a Fig. 10 cell is reproduced: within 5% of the figure, or within half a unit of its
/// last printed digit (the figure rounds to 0.01: fc8's ALU is 16 × 4,096,000 = 0.0655·10⁹,
/// printed as 0.07).
pub fn within_fig10(ours: f64, paper: f64) -> bool {
    (ours - paper).abs() <= (0.05 * paper).max(0.005)
}

/// Exact weight and MAC totals of a network (batch 1, biases excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Weights.
    pub weights: u64,
    /// Multiply-accumulates of one sample.
    pub macs: u64,
}

/// docs/energy-models.md B.10: AlexNet in Caffe's grouped layout (227×227 input).
pub const ALEXNET_CAFFE: Totals = Totals {
    weights: 60_954_656,
    macs: 724_406_816,
};

/// docs/energy-models.md B.10: the layers [`ALEXNET_CAFFE`] totals, named as in Caffe.
#[rustfmt::skip] // one layer per line
pub const ALEXNET_CAFFE_LAYERS: [(&str, Shape); 8] = [
    ("conv1", conv(3, 227, 96, 11, 4, 0, 1)),
    ("conv2", conv(96, 27, 256, 5, 1, 2, 2)),
    ("conv3", conv(256, 13, 384, 3, 1, 1, 1)),
    ("conv4", conv(384, 13, 384, 3, 1, 1, 2)),
    ("conv5", conv(384, 13, 256, 3, 1, 1, 2)),
    ("fc6", fc(256, 6, 4096)),
    ("fc7", fc(4096, 1, 4096)),
    ("fc8", fc(4096, 1, 1000)),
];

/// docs/energy-models.md B.10: GoogLeNet v1 as nn_dataflow defines it (224 input, no auxiliary heads).
pub const GOOGLENET: Totals = Totals {
    weights: 6_990_272,
    macs: 1_582_671_872,
};

/// docs/energy-models.md B.10: SqueezeNet v1.0 (227 input).
pub const SQUEEZENET1_0: Totals = Totals {
    weights: 1_244_448,
    macs: 832_667_936,
};

/// docs/energy-aware-pruning.md §5: the per-layer weight densities Han et al. (NIPS 2015) leave in
/// AlexNet after magnitude pruning (unverified against the paper, so an input of estimates, never
/// an assertion about it).
pub const HAN_ALEXNET_DENSITIES: [(&str, f64); 8] = [
    ("conv1", 0.84),
    ("conv2", 0.38),
    ("conv3", 0.35),
    ("conv4", 0.37),
    ("conv5", 0.37),
    ("fc6", 0.09),
    ("fc7", 0.09),
    ("fc8", 0.25),
];
