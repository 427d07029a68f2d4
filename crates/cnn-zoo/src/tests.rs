use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use expect_test::{Expect, expect};
use tensor_core::tensor::nn::{self, Init};
use tensor_core::tensor::{Optimizer, candle};
use tensor_core::{
    DType, Device, Error, LayerId, LayerKind, Network, OpsBackend, Result, SeededInit, Taps, Tensor,
};

use crate::pool::{adaptive_avg_pool2d, max_pool2d};
use crate::*;

/// Every architecture built once (seed 0, reference classes and channels) and shared by the
/// tests that only run evaluation-mode forward passes, which leave the models untouched.
fn shared(arch: Arch) -> &'static dyn Network {
    static NETS: OnceLock<Vec<OnceLock<Box<dyn Network>>>> = OnceLock::new();
    let nets = NETS.get_or_init(|| Arch::ALL.iter().map(|_| OnceLock::new()).collect());
    let slot = Arch::ALL
        .iter()
        .position(|&a| a == arch)
        .unwrap_or_default();
    nets[slot]
        .get_or_init(|| {
            let init = SeededInit::new(0);
            let vb = init.var_builder(DType::F32, &Device::Cpu);
            build(arch, arch.default_classes(), arch.input_shape()[0], vb)
                .unwrap_or_else(|e| panic!("cannot build {arch}: {e}"))
        })
        .as_ref()
}

/// Reproducible standard-normal data of `shape`, drawn through a seeded store of its own.
fn randn(seed: u64, shape: &[usize]) -> Result<Tensor> {
    let store = SeededInit::new(seed);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    Ok(vb
        .get_with_hints(
            shape,
            "data",
            Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?
        .detach())
}

fn batch(arch: Arch, b: usize, seed: u64) -> Result<Tensor> {
    let [c, h, w] = arch.input_shape();
    randn(seed, &[b, c, h, w])
}

fn check_summary(arch: Arch, expect: Expect) {
    expect.assert_eq(&summary(shared(arch)));
}

// ---------------------------------------------------------------------------------------------
// Totals: docs/energy-models.md B.10 (AlexNet Caffe layout, GoogLeNet v1 as in nn_dataflow,
// SqueezeNet 1.0 at 227) and docs/sparse-projection.md §8 (LeNet-5), biases excluded. The GoogLeNet
// and SqueezeNet totals were re-derived independently with this Python sum over the layer table
// of `nn_dataflow/nns/googlenet.py` and of torchvision's SqueezeNet 1.0 at 227:
//
//     W = M = 0
//     def conv(c, d, k, o):
//         global W, M; w = d * c * k * k; W += w; M += w * o * o
//     conv(3, 64, 7, 112); conv(64, 64, 1, 56); conv(64, 192, 3, 56)
//     def inc(s, ci, a, r3, b3, r5, b5, p):
//         conv(ci, a, 1, s); conv(ci, r3, 1, s); conv(r3, b3, 3, s)
//         conv(ci, r5, 1, s); conv(r5, b5, 5, s); conv(ci, p, 1, s)
//     inc(28, 192, 64, 96, 128, 16, 32, 32); ...; conv(1024, 1000, 1, 1)  # -> 6990272 1582671872
// ---------------------------------------------------------------------------------------------

#[test]
fn alexnet_caffe_totals_match_eyeriss_table() {
    let t = Totals::of(shared(Arch::AlexnetCaffe));
    assert_eq!(t.weights, 60_954_656);
    assert_eq!(t.macs, 724_406_816);
}

#[test]
fn googlenet_totals_match_nn_dataflow() {
    let t = Totals::of(shared(Arch::Googlenet));
    assert_eq!(t.weights, 6_990_272);
    assert_eq!(t.macs, 1_582_671_872);
}

#[test]
fn squeezenet_totals_match_spec() {
    let t = Totals::of(shared(Arch::Squeezenet1_0));
    assert_eq!(t.weights, 1_244_448);
    assert_eq!(t.macs, 832_667_936);
}

#[test]
fn lenet5_has_61470_weights() {
    let t = Totals::of(shared(Arch::Lenet5));
    assert_eq!(t.weights, 61_470);
    // docs/energy-models.md A.7: conv1 has P = 784 output positions.
    assert_eq!(shared(Arch::Lenet5).layers()[0].geometry.macs(), 150 * 784);
}

#[test]
fn resnet_layer_counts_follow_depth() {
    for arch in Arch::ALL {
        let Some(depth) = arch.resnet_depth() else {
            continue;
        };
        let net = shared(arch);
        // Stem, 2 convs per block, 2 downsample convs, FC: depth + 2 prunable layers.
        assert_eq!(net.layers().len(), depth + 2, "{arch}");
        let n = (depth - 2) / 6;
        // 3x3 convs: 16·c_in·9 for the stem, then 9·(in·out + out·out) per block; 1x1
        // shortcuts 16·32 + 32·64; FC 64·10.
        let c_in = 3;
        let stem = 16 * c_in * 9;
        let stage = |c_in: usize, c: usize| 9 * (c_in * c + c * c) + (n - 1) * 9 * 2 * c * c;
        let convs = stage(16, 16) + stage(16, 32) + stage(32, 64);
        let expected = stem + convs + 16 * 32 + 32 * 64 + 64 * 10;
        assert_eq!(Totals::of(net).weights, expected, "{arch}");
    }
}

// ---------------------------------------------------------------------------------------------
// Summaries (geometry from the real batch-1 forward pass). Update with UPDATE_EXPECT=1.
// ---------------------------------------------------------------------------------------------

#[test]
fn summary_lenet5() {
    check_summary(
        Arch::Lenet5,
        expect![[r#"
            lenet5: input 1x32x32, 10 classes, 5 layers
            id  name          kind  input    output    kernel  stride  pad  groups  weights    MACs
             0  features.0    conv  1x32x32  6x28x28   5x5     1x1     0x0  1           150  117600
             1  features.3    conv  6x14x14  16x10x10  5x5     1x1     0x0  1          2400  240000
             2  classifier.0  fc    16x5x5   120       5x5     1x1     0x0  1         48000   48000
             3  classifier.2  fc    120x1x1  84        1x1     1x1     0x0  1         10080   10080
             4  classifier.4  fc    84x1x1   10        1x1     1x1     0x0  1           840     840
                total                                                                 61470  416520
        "#]],
    );
}

#[test]
fn summary_lenet5_caffe() {
    check_summary(
        Arch::Lenet5Caffe,
        expect![[r#"
            lenet5-caffe: input 1x28x28, 10 classes, 4 layers
            id  name   kind  input     output    kernel  stride  pad  groups  weights     MACs
             0  c1     conv  1x28x28   20x24x24  5x5     1x1     0x0  1           500   288000
             1  c2     conv  20x12x12  50x8x8    5x5     1x1     0x0  1         25000  1600000
             2  f1     fc    50x4x4    500       4x4     1x1     0x0  1        400000   400000
             3  f2     fc    500x1x1   10        1x1     1x1     0x0  1          5000     5000
                total                                                          430500  2293000
        "#]],
    );
}

#[test]
fn summary_resnet8() {
    check_summary(
        Arch::Resnet8,
        expect![[r#"
            resnet8: input 3x32x32, 10 classes, 10 layers
            id  name                   kind  input     output    kernel  stride  pad  groups  weights      MACs
             0  conv1                  conv  3x32x32   16x32x32  3x3     1x1     1x1  1           432    442368
             1  layer1.0.conv1         conv  16x32x32  16x32x32  3x3     1x1     1x1  1          2304   2359296
             2  layer1.0.conv2         conv  16x32x32  16x32x32  3x3     1x1     1x1  1          2304   2359296
             3  layer2.0.conv1         conv  16x32x32  32x16x16  3x3     2x2     1x1  1          4608   1179648
             4  layer2.0.conv2         conv  32x16x16  32x16x16  3x3     1x1     1x1  1          9216   2359296
             5  layer2.0.downsample.0  conv  16x32x32  32x16x16  1x1     2x2     0x0  1           512    131072
             6  layer3.0.conv1         conv  32x16x16  64x8x8    3x3     2x2     1x1  1         18432   1179648
             7  layer3.0.conv2         conv  64x8x8    64x8x8    3x3     1x1     1x1  1         36864   2359296
             8  layer3.0.downsample.0  conv  32x16x16  64x8x8    1x1     2x2     0x0  1          2048    131072
             9  fc                     fc    64x1x1    10        1x1     1x1     0x0  1           640       640
                total                                                                           77360  12501632
        "#]],
    );
}

#[test]
fn summary_resnet20() {
    check_summary(
        Arch::Resnet20,
        expect![[r#"
            resnet20: input 3x32x32, 10 classes, 22 layers
            id  name                   kind  input     output    kernel  stride  pad  groups  weights      MACs
             0  conv1                  conv  3x32x32   16x32x32  3x3     1x1     1x1  1           432    442368
             1  layer1.0.conv1         conv  16x32x32  16x32x32  3x3     1x1     1x1  1          2304   2359296
             2  layer1.0.conv2         conv  16x32x32  16x32x32  3x3     1x1     1x1  1          2304   2359296
             3  layer1.1.conv1         conv  16x32x32  16x32x32  3x3     1x1     1x1  1          2304   2359296
             4  layer1.1.conv2         conv  16x32x32  16x32x32  3x3     1x1     1x1  1          2304   2359296
             5  layer1.2.conv1         conv  16x32x32  16x32x32  3x3     1x1     1x1  1          2304   2359296
             6  layer1.2.conv2         conv  16x32x32  16x32x32  3x3     1x1     1x1  1          2304   2359296
             7  layer2.0.conv1         conv  16x32x32  32x16x16  3x3     2x2     1x1  1          4608   1179648
             8  layer2.0.conv2         conv  32x16x16  32x16x16  3x3     1x1     1x1  1          9216   2359296
             9  layer2.0.downsample.0  conv  16x32x32  32x16x16  1x1     2x2     0x0  1           512    131072
            10  layer2.1.conv1         conv  32x16x16  32x16x16  3x3     1x1     1x1  1          9216   2359296
            11  layer2.1.conv2         conv  32x16x16  32x16x16  3x3     1x1     1x1  1          9216   2359296
            12  layer2.2.conv1         conv  32x16x16  32x16x16  3x3     1x1     1x1  1          9216   2359296
            13  layer2.2.conv2         conv  32x16x16  32x16x16  3x3     1x1     1x1  1          9216   2359296
            14  layer3.0.conv1         conv  32x16x16  64x8x8    3x3     2x2     1x1  1         18432   1179648
            15  layer3.0.conv2         conv  64x8x8    64x8x8    3x3     1x1     1x1  1         36864   2359296
            16  layer3.0.downsample.0  conv  32x16x16  64x8x8    1x1     2x2     0x0  1          2048    131072
            17  layer3.1.conv1         conv  64x8x8    64x8x8    3x3     1x1     1x1  1         36864   2359296
            18  layer3.1.conv2         conv  64x8x8    64x8x8    3x3     1x1     1x1  1         36864   2359296
            19  layer3.2.conv1         conv  64x8x8    64x8x8    3x3     1x1     1x1  1         36864   2359296
            20  layer3.2.conv2         conv  64x8x8    64x8x8    3x3     1x1     1x1  1         36864   2359296
            21  fc                     fc    64x1x1    10        1x1     1x1     0x0  1           640       640
                total                                                                          270896  40813184
        "#]],
    );
}

#[test]
fn summary_alexnet() {
    check_summary(
        Arch::Alexnet,
        expect![[r#"
            alexnet: input 3x224x224, 1000 classes, 8 layers
            id  name          kind  input      output     kernel  stride  pad  groups   weights       MACs
             0  features.0    conv  3x224x224  64x55x55   11x11   4x4     2x2  1          23232   70276800
             1  features.3    conv  64x27x27   192x27x27  5x5     1x1     2x2  1         307200  223948800
             2  features.6    conv  192x13x13  384x13x13  3x3     1x1     1x1  1         663552  112140288
             3  features.8    conv  384x13x13  256x13x13  3x3     1x1     1x1  1         884736  149520384
             4  features.10   conv  256x13x13  256x13x13  3x3     1x1     1x1  1         589824   99680256
             5  classifier.1  fc    256x6x6    4096       6x6     1x1     0x0  1       37748736   37748736
             6  classifier.4  fc    4096x1x1   4096       1x1     1x1     0x0  1       16777216   16777216
             7  classifier.6  fc    4096x1x1   1000       1x1     1x1     0x0  1        4096000    4096000
                total                                                                  61090496  714188480
        "#]],
    );
}

#[test]
fn summary_alexnet_caffe() {
    check_summary(
        Arch::AlexnetCaffe,
        expect![[r#"
            alexnet-caffe: input 3x227x227, 1000 classes, 8 layers
            id  name   kind  input      output     kernel  stride  pad  groups   weights       MACs
             0  conv1  conv  3x227x227  96x55x55   11x11   4x4     0x0  1          34848  105415200
             1  conv2  conv  96x27x27   256x27x27  5x5     1x1     2x2  2         307200  223948800
             2  conv3  conv  256x13x13  384x13x13  3x3     1x1     1x1  1         884736  149520384
             3  conv4  conv  384x13x13  384x13x13  3x3     1x1     1x1  2         663552  112140288
             4  conv5  conv  384x13x13  256x13x13  3x3     1x1     1x1  2         442368   74760192
             5  fc6    fc    256x6x6    4096       6x6     1x1     0x0  1       37748736   37748736
             6  fc7    fc    4096x1x1   4096       1x1     1x1     0x0  1       16777216   16777216
             7  fc8    fc    4096x1x1   1000       1x1     1x1     0x0  1        4096000    4096000
                total                                                           60954656  724406816
        "#]],
    );
}

#[test]
fn summary_squeezenet1_0() {
    check_summary(
        Arch::Squeezenet1_0,
        expect![[r#"
            squeezenet1_0: input 3x227x227, 1000 classes, 26 layers
            id  name                   kind  input      output      kernel  stride  pad  groups  weights       MACs
             0  features.0             conv  3x227x227  96x111x111  7x7     2x2     0x0  1         14112  173873952
             1  features.3.squeeze     conv  96x55x55   16x55x55    1x1     1x1     0x0  1          1536    4646400
             2  features.3.expand1x1   conv  16x55x55   64x55x55    1x1     1x1     0x0  1          1024    3097600
             3  features.3.expand3x3   conv  16x55x55   64x55x55    3x3     1x1     1x1  1          9216   27878400
             4  features.4.squeeze     conv  128x55x55  16x55x55    1x1     1x1     0x0  1          2048    6195200
             5  features.4.expand1x1   conv  16x55x55   64x55x55    1x1     1x1     0x0  1          1024    3097600
             6  features.4.expand3x3   conv  16x55x55   64x55x55    3x3     1x1     1x1  1          9216   27878400
             7  features.5.squeeze     conv  128x55x55  32x55x55    1x1     1x1     0x0  1          4096   12390400
             8  features.5.expand1x1   conv  32x55x55   128x55x55   1x1     1x1     0x0  1          4096   12390400
             9  features.5.expand3x3   conv  32x55x55   128x55x55   3x3     1x1     1x1  1         36864  111513600
            10  features.7.squeeze     conv  256x27x27  32x27x27    1x1     1x1     0x0  1          8192    5971968
            11  features.7.expand1x1   conv  32x27x27   128x27x27   1x1     1x1     0x0  1          4096    2985984
            12  features.7.expand3x3   conv  32x27x27   128x27x27   3x3     1x1     1x1  1         36864   26873856
            13  features.8.squeeze     conv  256x27x27  48x27x27    1x1     1x1     0x0  1         12288    8957952
            14  features.8.expand1x1   conv  48x27x27   192x27x27   1x1     1x1     0x0  1          9216    6718464
            15  features.8.expand3x3   conv  48x27x27   192x27x27   3x3     1x1     1x1  1         82944   60466176
            16  features.9.squeeze     conv  384x27x27  48x27x27    1x1     1x1     0x0  1         18432   13436928
            17  features.9.expand1x1   conv  48x27x27   192x27x27   1x1     1x1     0x0  1          9216    6718464
            18  features.9.expand3x3   conv  48x27x27   192x27x27   3x3     1x1     1x1  1         82944   60466176
            19  features.10.squeeze    conv  384x27x27  64x27x27    1x1     1x1     0x0  1         24576   17915904
            20  features.10.expand1x1  conv  64x27x27   256x27x27   1x1     1x1     0x0  1         16384   11943936
            21  features.10.expand3x3  conv  64x27x27   256x27x27   3x3     1x1     1x1  1        147456  107495424
            22  features.12.squeeze    conv  512x13x13  64x13x13    1x1     1x1     0x0  1         32768    5537792
            23  features.12.expand1x1  conv  64x13x13   256x13x13   1x1     1x1     0x0  1         16384    2768896
            24  features.12.expand3x3  conv  64x13x13   256x13x13   3x3     1x1     1x1  1        147456   24920064
            25  classifier.1           conv  512x13x13  1000x13x13  1x1     1x1     0x0  1        512000   86528000
                total                                                                            1244448  832667936
        "#]],
    );
}

#[test]
fn summary_googlenet() {
    check_summary(
        Arch::Googlenet,
        expect![[r#"
            googlenet: input 3x224x224, 1000 classes, 58 layers
            id  name                   kind  input      output      kernel  stride  pad  groups  weights        MACs
             0  conv1                  conv  3x224x224  64x112x112  7x7     2x2     3x3  1          9408   118013952
             1  conv2                  conv  64x56x56   64x56x56    1x1     1x1     0x0  1          4096    12845056
             2  conv3                  conv  64x56x56   192x56x56   3x3     1x1     1x1  1        110592   346816512
             3  inception3a.branch1    conv  192x28x28  64x28x28    1x1     1x1     0x0  1         12288     9633792
             4  inception3a.branch2.0  conv  192x28x28  96x28x28    1x1     1x1     0x0  1         18432    14450688
             5  inception3a.branch2.1  conv  96x28x28   128x28x28   3x3     1x1     1x1  1        110592    86704128
             6  inception3a.branch3.0  conv  192x28x28  16x28x28    1x1     1x1     0x0  1          3072     2408448
             7  inception3a.branch3.1  conv  16x28x28   32x28x28    5x5     1x1     2x2  1         12800    10035200
             8  inception3a.branch4.1  conv  192x28x28  32x28x28    1x1     1x1     0x0  1          6144     4816896
             9  inception3b.branch1    conv  256x28x28  128x28x28   1x1     1x1     0x0  1         32768    25690112
            10  inception3b.branch2.0  conv  256x28x28  128x28x28   1x1     1x1     0x0  1         32768    25690112
            11  inception3b.branch2.1  conv  128x28x28  192x28x28   3x3     1x1     1x1  1        221184   173408256
            12  inception3b.branch3.0  conv  256x28x28  32x28x28    1x1     1x1     0x0  1          8192     6422528
            13  inception3b.branch3.1  conv  32x28x28   96x28x28    5x5     1x1     2x2  1         76800    60211200
            14  inception3b.branch4.1  conv  256x28x28  64x28x28    1x1     1x1     0x0  1         16384    12845056
            15  inception4a.branch1    conv  480x14x14  192x14x14   1x1     1x1     0x0  1         92160    18063360
            16  inception4a.branch2.0  conv  480x14x14  96x14x14    1x1     1x1     0x0  1         46080     9031680
            17  inception4a.branch2.1  conv  96x14x14   208x14x14   3x3     1x1     1x1  1        179712    35223552
            18  inception4a.branch3.0  conv  480x14x14  16x14x14    1x1     1x1     0x0  1          7680     1505280
            19  inception4a.branch3.1  conv  16x14x14   48x14x14    5x5     1x1     2x2  1         19200     3763200
            20  inception4a.branch4.1  conv  480x14x14  64x14x14    1x1     1x1     0x0  1         30720     6021120
            21  inception4b.branch1    conv  512x14x14  160x14x14   1x1     1x1     0x0  1         81920    16056320
            22  inception4b.branch2.0  conv  512x14x14  112x14x14   1x1     1x1     0x0  1         57344    11239424
            23  inception4b.branch2.1  conv  112x14x14  224x14x14   3x3     1x1     1x1  1        225792    44255232
            24  inception4b.branch3.0  conv  512x14x14  24x14x14    1x1     1x1     0x0  1         12288     2408448
            25  inception4b.branch3.1  conv  24x14x14   64x14x14    5x5     1x1     2x2  1         38400     7526400
            26  inception4b.branch4.1  conv  512x14x14  64x14x14    1x1     1x1     0x0  1         32768     6422528
            27  inception4c.branch1    conv  512x14x14  128x14x14   1x1     1x1     0x0  1         65536    12845056
            28  inception4c.branch2.0  conv  512x14x14  128x14x14   1x1     1x1     0x0  1         65536    12845056
            29  inception4c.branch2.1  conv  128x14x14  256x14x14   3x3     1x1     1x1  1        294912    57802752
            30  inception4c.branch3.0  conv  512x14x14  24x14x14    1x1     1x1     0x0  1         12288     2408448
            31  inception4c.branch3.1  conv  24x14x14   64x14x14    5x5     1x1     2x2  1         38400     7526400
            32  inception4c.branch4.1  conv  512x14x14  64x14x14    1x1     1x1     0x0  1         32768     6422528
            33  inception4d.branch1    conv  512x14x14  112x14x14   1x1     1x1     0x0  1         57344    11239424
            34  inception4d.branch2.0  conv  512x14x14  144x14x14   1x1     1x1     0x0  1         73728    14450688
            35  inception4d.branch2.1  conv  144x14x14  288x14x14   3x3     1x1     1x1  1        373248    73156608
            36  inception4d.branch3.0  conv  512x14x14  32x14x14    1x1     1x1     0x0  1         16384     3211264
            37  inception4d.branch3.1  conv  32x14x14   64x14x14    5x5     1x1     2x2  1         51200    10035200
            38  inception4d.branch4.1  conv  512x14x14  64x14x14    1x1     1x1     0x0  1         32768     6422528
            39  inception4e.branch1    conv  528x14x14  256x14x14   1x1     1x1     0x0  1        135168    26492928
            40  inception4e.branch2.0  conv  528x14x14  160x14x14   1x1     1x1     0x0  1         84480    16558080
            41  inception4e.branch2.1  conv  160x14x14  320x14x14   3x3     1x1     1x1  1        460800    90316800
            42  inception4e.branch3.0  conv  528x14x14  32x14x14    1x1     1x1     0x0  1         16896     3311616
            43  inception4e.branch3.1  conv  32x14x14   128x14x14   5x5     1x1     2x2  1        102400    20070400
            44  inception4e.branch4.1  conv  528x14x14  128x14x14   1x1     1x1     0x0  1         67584    13246464
            45  inception5a.branch1    conv  832x7x7    256x7x7     1x1     1x1     0x0  1        212992    10436608
            46  inception5a.branch2.0  conv  832x7x7    160x7x7     1x1     1x1     0x0  1        133120     6522880
            47  inception5a.branch2.1  conv  160x7x7    320x7x7     3x3     1x1     1x1  1        460800    22579200
            48  inception5a.branch3.0  conv  832x7x7    32x7x7      1x1     1x1     0x0  1         26624     1304576
            49  inception5a.branch3.1  conv  32x7x7     128x7x7     5x5     1x1     2x2  1        102400     5017600
            50  inception5a.branch4.1  conv  832x7x7    128x7x7     1x1     1x1     0x0  1        106496     5218304
            51  inception5b.branch1    conv  832x7x7    384x7x7     1x1     1x1     0x0  1        319488    15654912
            52  inception5b.branch2.0  conv  832x7x7    192x7x7     1x1     1x1     0x0  1        159744     7827456
            53  inception5b.branch2.1  conv  192x7x7    384x7x7     3x3     1x1     1x1  1        663552    32514048
            54  inception5b.branch3.0  conv  832x7x7    48x7x7      1x1     1x1     0x0  1         39936     1956864
            55  inception5b.branch3.1  conv  48x7x7     128x7x7     5x5     1x1     2x2  1        153600     7526400
            56  inception5b.branch4.1  conv  832x7x7    128x7x7     1x1     1x1     0x0  1        106496     5218304
            57  fc                     fc    1024x1x1   1000        1x1     1x1     0x0  1       1024000     1024000
                total                                                                            6990272  1582671872
        "#]],
    );
}

#[test]
fn summary_mobilenet_v2() {
    check_summary(
        Arch::MobilenetV2,
        expect![[r#"
            mobilenet_v2: input 3x224x224, 1000 classes, 53 layers
            id  name                  kind  input       output      kernel  stride  pad  groups  weights       MACs
             0  features.0.0          conv  3x224x224   32x112x112  3x3     2x2     1x1  1           864   10838016
             1  features.1.conv.0.0   conv  32x112x112  32x112x112  3x3     1x1     1x1  32          288    3612672
             2  features.1.conv.1     conv  32x112x112  16x112x112  1x1     1x1     0x0  1           512    6422528
             3  features.2.conv.0.0   conv  16x112x112  96x112x112  1x1     1x1     0x0  1          1536   19267584
             4  features.2.conv.1.0   conv  96x112x112  96x56x56    3x3     2x2     1x1  96          864    2709504
             5  features.2.conv.2     conv  96x56x56    24x56x56    1x1     1x1     0x0  1          2304    7225344
             6  features.3.conv.0.0   conv  24x56x56    144x56x56   1x1     1x1     0x0  1          3456   10838016
             7  features.3.conv.1.0   conv  144x56x56   144x56x56   3x3     1x1     1x1  144        1296    4064256
             8  features.3.conv.2     conv  144x56x56   24x56x56    1x1     1x1     0x0  1          3456   10838016
             9  features.4.conv.0.0   conv  24x56x56    144x56x56   1x1     1x1     0x0  1          3456   10838016
            10  features.4.conv.1.0   conv  144x56x56   144x28x28   3x3     2x2     1x1  144        1296    1016064
            11  features.4.conv.2     conv  144x28x28   32x28x28    1x1     1x1     0x0  1          4608    3612672
            12  features.5.conv.0.0   conv  32x28x28    192x28x28   1x1     1x1     0x0  1          6144    4816896
            13  features.5.conv.1.0   conv  192x28x28   192x28x28   3x3     1x1     1x1  192        1728    1354752
            14  features.5.conv.2     conv  192x28x28   32x28x28    1x1     1x1     0x0  1          6144    4816896
            15  features.6.conv.0.0   conv  32x28x28    192x28x28   1x1     1x1     0x0  1          6144    4816896
            16  features.6.conv.1.0   conv  192x28x28   192x28x28   3x3     1x1     1x1  192        1728    1354752
            17  features.6.conv.2     conv  192x28x28   32x28x28    1x1     1x1     0x0  1          6144    4816896
            18  features.7.conv.0.0   conv  32x28x28    192x28x28   1x1     1x1     0x0  1          6144    4816896
            19  features.7.conv.1.0   conv  192x28x28   192x14x14   3x3     2x2     1x1  192        1728     338688
            20  features.7.conv.2     conv  192x14x14   64x14x14    1x1     1x1     0x0  1         12288    2408448
            21  features.8.conv.0.0   conv  64x14x14    384x14x14   1x1     1x1     0x0  1         24576    4816896
            22  features.8.conv.1.0   conv  384x14x14   384x14x14   3x3     1x1     1x1  384        3456     677376
            23  features.8.conv.2     conv  384x14x14   64x14x14    1x1     1x1     0x0  1         24576    4816896
            24  features.9.conv.0.0   conv  64x14x14    384x14x14   1x1     1x1     0x0  1         24576    4816896
            25  features.9.conv.1.0   conv  384x14x14   384x14x14   3x3     1x1     1x1  384        3456     677376
            26  features.9.conv.2     conv  384x14x14   64x14x14    1x1     1x1     0x0  1         24576    4816896
            27  features.10.conv.0.0  conv  64x14x14    384x14x14   1x1     1x1     0x0  1         24576    4816896
            28  features.10.conv.1.0  conv  384x14x14   384x14x14   3x3     1x1     1x1  384        3456     677376
            29  features.10.conv.2    conv  384x14x14   64x14x14    1x1     1x1     0x0  1         24576    4816896
            30  features.11.conv.0.0  conv  64x14x14    384x14x14   1x1     1x1     0x0  1         24576    4816896
            31  features.11.conv.1.0  conv  384x14x14   384x14x14   3x3     1x1     1x1  384        3456     677376
            32  features.11.conv.2    conv  384x14x14   96x14x14    1x1     1x1     0x0  1         36864    7225344
            33  features.12.conv.0.0  conv  96x14x14    576x14x14   1x1     1x1     0x0  1         55296   10838016
            34  features.12.conv.1.0  conv  576x14x14   576x14x14   3x3     1x1     1x1  576        5184    1016064
            35  features.12.conv.2    conv  576x14x14   96x14x14    1x1     1x1     0x0  1         55296   10838016
            36  features.13.conv.0.0  conv  96x14x14    576x14x14   1x1     1x1     0x0  1         55296   10838016
            37  features.13.conv.1.0  conv  576x14x14   576x14x14   3x3     1x1     1x1  576        5184    1016064
            38  features.13.conv.2    conv  576x14x14   96x14x14    1x1     1x1     0x0  1         55296   10838016
            39  features.14.conv.0.0  conv  96x14x14    576x14x14   1x1     1x1     0x0  1         55296   10838016
            40  features.14.conv.1.0  conv  576x14x14   576x7x7     3x3     2x2     1x1  576        5184     254016
            41  features.14.conv.2    conv  576x7x7     160x7x7     1x1     1x1     0x0  1         92160    4515840
            42  features.15.conv.0.0  conv  160x7x7     960x7x7     1x1     1x1     0x0  1        153600    7526400
            43  features.15.conv.1.0  conv  960x7x7     960x7x7     3x3     1x1     1x1  960        8640     423360
            44  features.15.conv.2    conv  960x7x7     160x7x7     1x1     1x1     0x0  1        153600    7526400
            45  features.16.conv.0.0  conv  160x7x7     960x7x7     1x1     1x1     0x0  1        153600    7526400
            46  features.16.conv.1.0  conv  960x7x7     960x7x7     3x3     1x1     1x1  960        8640     423360
            47  features.16.conv.2    conv  960x7x7     160x7x7     1x1     1x1     0x0  1        153600    7526400
            48  features.17.conv.0.0  conv  160x7x7     960x7x7     1x1     1x1     0x0  1        153600    7526400
            49  features.17.conv.1.0  conv  960x7x7     960x7x7     3x3     1x1     1x1  960        8640     423360
            50  features.17.conv.2    conv  960x7x7     320x7x7     1x1     1x1     0x0  1        307200   15052800
            51  features.18.0         conv  320x7x7     1280x7x7    1x1     1x1     0x0  1        409600   20070400
            52  classifier.1          fc    1280x1x1    1000        1x1     1x1     0x0  1       1280000    1280000
                total                                                                            3469760  300774272
        "#]],
    );
}

// ---------------------------------------------------------------------------------------------
// Parameter names are the reference state_dict keys.
// ---------------------------------------------------------------------------------------------

fn state_dict_keys(arch: Arch) -> Result<String> {
    let init = SeededInit::new(0);
    build(
        arch,
        arch.default_classes(),
        arch.input_shape()[0],
        init.var_builder(DType::F32, &Device::Cpu),
    )?;
    let keys: Vec<String> = init
        .named_vars()
        .into_iter()
        .map(|(name, var)| format!("{name} {:?}", var.dims()))
        .collect();
    Ok(keys.join("\n") + "\n")
}

#[test]
fn state_dict_keys_lenet5() -> Result<()> {
    expect![[r#"
        classifier.0.bias [120]
        classifier.0.weight [120, 400]
        classifier.2.bias [84]
        classifier.2.weight [84, 120]
        classifier.4.bias [10]
        classifier.4.weight [10, 84]
        features.0.bias [6]
        features.0.weight [6, 1, 5, 5]
        features.3.bias [16]
        features.3.weight [16, 6, 5, 5]
    "#]]
    .assert_eq(&state_dict_keys(Arch::Lenet5)?);
    Ok(())
}

#[test]
fn state_dict_keys_resnet8() -> Result<()> {
    expect![[r#"
        bn1.bias [16]
        bn1.running_mean [16]
        bn1.running_var [16]
        bn1.weight [16]
        conv1.weight [16, 3, 3, 3]
        fc.bias [10]
        fc.weight [10, 64]
        layer1.0.bn1.bias [16]
        layer1.0.bn1.running_mean [16]
        layer1.0.bn1.running_var [16]
        layer1.0.bn1.weight [16]
        layer1.0.bn2.bias [16]
        layer1.0.bn2.running_mean [16]
        layer1.0.bn2.running_var [16]
        layer1.0.bn2.weight [16]
        layer1.0.conv1.weight [16, 16, 3, 3]
        layer1.0.conv2.weight [16, 16, 3, 3]
        layer2.0.bn1.bias [32]
        layer2.0.bn1.running_mean [32]
        layer2.0.bn1.running_var [32]
        layer2.0.bn1.weight [32]
        layer2.0.bn2.bias [32]
        layer2.0.bn2.running_mean [32]
        layer2.0.bn2.running_var [32]
        layer2.0.bn2.weight [32]
        layer2.0.conv1.weight [32, 16, 3, 3]
        layer2.0.conv2.weight [32, 32, 3, 3]
        layer2.0.downsample.0.weight [32, 16, 1, 1]
        layer2.0.downsample.1.bias [32]
        layer2.0.downsample.1.running_mean [32]
        layer2.0.downsample.1.running_var [32]
        layer2.0.downsample.1.weight [32]
        layer3.0.bn1.bias [64]
        layer3.0.bn1.running_mean [64]
        layer3.0.bn1.running_var [64]
        layer3.0.bn1.weight [64]
        layer3.0.bn2.bias [64]
        layer3.0.bn2.running_mean [64]
        layer3.0.bn2.running_var [64]
        layer3.0.bn2.weight [64]
        layer3.0.conv1.weight [64, 32, 3, 3]
        layer3.0.conv2.weight [64, 64, 3, 3]
        layer3.0.downsample.0.weight [64, 32, 1, 1]
        layer3.0.downsample.1.bias [64]
        layer3.0.downsample.1.running_mean [64]
        layer3.0.downsample.1.running_var [64]
        layer3.0.downsample.1.weight [64]
    "#]]
    .assert_eq(&state_dict_keys(Arch::Resnet8)?);
    Ok(())
}

#[test]
fn state_dict_keys_mobilenet_v2_first_blocks() -> Result<()> {
    let keys = state_dict_keys(Arch::MobilenetV2)?;
    let first: Vec<&str> = keys
        .lines()
        .filter(|k| {
            k.starts_with("features.0.")
                || k.starts_with("features.1.")
                || k.starts_with("features.2.")
        })
        .collect();
    expect![[r#"
        features.0.0.weight [32, 3, 3, 3]
        features.0.1.bias [32]
        features.0.1.running_mean [32]
        features.0.1.running_var [32]
        features.0.1.weight [32]
        features.1.conv.0.0.weight [32, 1, 3, 3]
        features.1.conv.0.1.bias [32]
        features.1.conv.0.1.running_mean [32]
        features.1.conv.0.1.running_var [32]
        features.1.conv.0.1.weight [32]
        features.1.conv.1.weight [16, 32, 1, 1]
        features.1.conv.2.bias [16]
        features.1.conv.2.running_mean [16]
        features.1.conv.2.running_var [16]
        features.1.conv.2.weight [16]
        features.2.conv.0.0.weight [96, 16, 1, 1]
        features.2.conv.0.1.bias [96]
        features.2.conv.0.1.running_mean [96]
        features.2.conv.0.1.running_var [96]
        features.2.conv.0.1.weight [96]
        features.2.conv.1.0.weight [96, 1, 3, 3]
        features.2.conv.1.1.bias [96]
        features.2.conv.1.1.running_mean [96]
        features.2.conv.1.1.running_var [96]
        features.2.conv.1.1.weight [96]
        features.2.conv.2.weight [24, 96, 1, 1]
        features.2.conv.3.bias [24]
        features.2.conv.3.running_mean [24]
        features.2.conv.3.running_var [24]
        features.2.conv.3.weight [24]
    "#]]
    .assert_eq(&(first.join("\n") + "\n"));
    Ok(())
}

#[test]
fn layer_names_are_state_dict_prefixes() {
    for arch in Arch::ALL {
        let init = SeededInit::new(0);
        let vb = init.var_builder(DType::F32, &Device::Cpu);
        let [c, _, _] = arch.input_shape();
        // Small models only: the big ones are covered by their summaries.
        if arch.default_classes() == 1000 {
            continue;
        }
        let net = build(arch, 10, c, vb).unwrap_or_else(|e| panic!("{arch}: {e}"));
        let vars = init.named_vars();
        for layer in net.layers() {
            let key = format!("{}.weight", layer.name);
            let (_, var) = vars
                .iter()
                .find(|(name, _)| *name == key)
                .unwrap_or_else(|| panic!("{arch}: no variable {key}"));
            // The LayerInfo weight is the very variable of the store.
            assert_eq!(var.as_tensor().id(), layer.weight.as_tensor().id(), "{key}");
        }
    }
}

#[test]
fn same_seed_same_parameters() -> Result<()> {
    let build_with = |seed| -> Result<Vec<f32>> {
        let init = SeededInit::new(seed);
        let net = lenet5(10, 1, init.var_builder(DType::F32, &Device::Cpu))?;
        Ok(net.layers()[2]
            .weight
            .as_tensor()
            .flatten_all()?
            .to_vec1()?)
    };
    assert_eq!(build_with(5)?, build_with(5)?);
    assert_ne!(build_with(5)?, build_with(6)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Forward passes and taps.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_model_maps_a_batch_to_logits() -> Result<()> {
    for arch in Arch::ALL {
        let net = shared(arch);
        assert_eq!(net.arch(), arch.name());
        assert_eq!(net.input_shape(), arch.input_shape());
        assert_eq!(net.num_classes(), arch.default_classes());
        let ys = net.forward_t(&batch(arch, 2, 1)?, false)?;
        assert_eq!(ys.dims(), [2, arch.default_classes()], "{arch}");
        let finite = ys.abs()?.max_all()?.to_scalar::<f32>()?.is_finite();
        assert!(finite, "{arch} produced non-finite logits");
    }
    Ok(())
}

#[test]
fn training_mode_forward_with_batch_norm_and_dropout() -> Result<()> {
    // Fresh models: training mode updates batch-norm running statistics.
    for arch in [Arch::Resnet8, Arch::MobilenetV2, Arch::Squeezenet1_0] {
        let init = SeededInit::new(3);
        let net = build(arch, 7, 1, init.var_builder(DType::F32, &Device::Cpu))?;
        let [_, h, w] = arch.input_shape();
        assert_eq!(net.input_shape(), [1, h, w]);
        let xs = randn(4, &[2, 1, h, w])?;
        let train = net.forward_t(&xs, true)?;
        let eval = net.forward_t(&xs, false)?;
        assert_eq!(train.dims(), [2, 7], "{arch}");
        assert_eq!(eval.dims(), [2, 7], "{arch}");
    }
    let init = SeededInit::new(3);
    let net = resnet(8, 10, 3, init.var_builder(DType::F32, &Device::Cpu))?;
    let mean = |init: &SeededInit| -> Result<f32> {
        let vars = init.named_vars();
        let (_, v) = vars
            .iter()
            .find(|(n, _)| n == "bn1.running_mean")
            .ok_or_else(|| Error::Unsupported {
                what: "no bn1.running_mean".into(),
            })?;
        Ok(v.as_tensor().abs()?.sum_all()?.to_scalar::<f32>()?)
    };
    assert_eq!(mean(&init)?, 0.0);
    net.forward_t(&batch(Arch::Resnet8, 4, 5)?, false)?;
    assert_eq!(
        mean(&init)?,
        0.0,
        "evaluation must not touch running statistics"
    );
    net.forward_t(&batch(Arch::Resnet8, 4, 5)?, true)?;
    assert!(
        mean(&init)? > 0.0,
        "training must update running statistics"
    );
    Ok(())
}

#[test]
fn wrong_input_shape_is_an_error() -> Result<()> {
    let xs = Tensor::zeros((2, 1, 28, 28), DType::F32, &Device::Cpu)?;
    match shared(Arch::Lenet5).forward_t(&xs, false) {
        Err(Error::Shape { expected, got, .. }) => {
            assert_eq!(expected, [2, 1, 32, 32]);
            assert_eq!(got, [2, 1, 28, 28]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    Ok(())
}

/// Records every tap call: `(pre?, layer, input dims)`.
#[derive(Default)]
struct Recorder {
    calls: Vec<(bool, usize, Vec<usize>)>,
}

impl Taps for Recorder {
    fn pre(&mut self, id: LayerId, input: &Tensor) -> Result<Option<Tensor>> {
        self.calls.push((true, id.0, input.dims().to_vec()));
        Ok(None)
    }

    fn post(&mut self, id: LayerId, input: &Tensor, output: &Tensor) -> Result<()> {
        assert_eq!(output.dim(0)?, input.dim(0)?);
        self.calls.push((false, id.0, input.dims().to_vec()));
        Ok(())
    }
}

#[test]
fn taps_see_every_layer_once_in_order() -> Result<()> {
    for arch in Arch::ALL {
        let net = shared(arch);
        let mut rec = Recorder::default();
        net.forward_tapped(&batch(arch, 1, 2)?, false, &mut rec)?;
        let expected: Vec<(bool, usize)> = (0..net.layers().len())
            .flat_map(|i| [(true, i), (false, i)])
            .collect();
        let got: Vec<(bool, usize)> = rec.calls.iter().map(|(p, i, _)| (*p, *i)).collect();
        assert_eq!(got, expected, "{arch}");
        for (layer, (_, _, dims)) in net.layers().iter().zip(rec.calls.iter().step_by(2)) {
            let g = &layer.geometry;
            let want = match (g.kind(), dims.len()) {
                (LayerKind::Fc, 2) => vec![1, g.in_features()],
                _ => vec![1, g.in_channels(), g.in_h(), g.in_w()],
            };
            assert_eq!(*dims, want, "{arch} {}", layer.name);
        }
        for (i, layer) in net.layers().iter().enumerate() {
            assert_eq!(layer.id, LayerId(i));
        }
    }
    Ok(())
}

#[test]
fn fc_after_a_feature_map_sees_it_unflattened() -> Result<()> {
    let input_dims = |arch: Arch, name: &str| -> Result<Vec<usize>> {
        let net = shared(arch);
        let mut rec = Recorder::default();
        net.forward_tapped(&batch(arch, 1, 2)?, false, &mut rec)?;
        let id = net
            .layers()
            .iter()
            .position(|l| l.name == name)
            .unwrap_or_else(|| panic!("{arch} has no {name}"));
        Ok(rec
            .calls
            .iter()
            .find(|(pre, i, _)| !pre && *i == id)
            .map(|(_, _, d)| d.clone())
            .unwrap_or_default())
    };
    assert_eq!(input_dims(Arch::AlexnetCaffe, "fc6")?, [1, 256, 6, 6]);
    assert_eq!(input_dims(Arch::AlexnetCaffe, "fc7")?, [1, 4096]);
    assert_eq!(input_dims(Arch::Alexnet, "classifier.1")?, [1, 256, 6, 6]);
    assert_eq!(input_dims(Arch::Lenet5, "classifier.0")?, [1, 16, 5, 5]);
    assert_eq!(input_dims(Arch::Lenet5Caffe, "f1")?, [1, 50, 4, 4]);
    assert_eq!(input_dims(Arch::Resnet20, "fc")?, [1, 64, 1, 1]);
    assert_eq!(input_dims(Arch::Googlenet, "fc")?, [1, 1024, 1, 1]);
    assert_eq!(
        input_dims(Arch::MobilenetV2, "classifier.1")?,
        [1, 1280, 1, 1]
    );
    let fc6 = shared(Arch::AlexnetCaffe).layers()[5].geometry;
    assert_eq!(
        (fc6.in_channels(), fc6.in_h(), fc6.in_w(), fc6.kernel()),
        (256, 6, 6, (6, 6))
    );
    Ok(())
}

/// Replaces the input of one layer with zeros and records what the post-tap saw.
struct ZeroInput {
    layer: usize,
    seen_zero: Option<bool>,
}

impl Taps for ZeroInput {
    fn pre(&mut self, id: LayerId, input: &Tensor) -> Result<Option<Tensor>> {
        Ok((id.0 == self.layer)
            .then(|| input.zeros_like())
            .transpose()?)
    }

    fn post(&mut self, id: LayerId, input: &Tensor, _output: &Tensor) -> Result<()> {
        if id.0 == self.layer {
            let max = input.abs()?.max_all()?.to_scalar::<f32>()?;
            self.seen_zero = Some(max == 0.0);
        }
        Ok(())
    }
}

#[test]
fn pre_tap_replacement_changes_the_output() -> Result<()> {
    for (arch, layer) in [(Arch::Lenet5, 1), (Arch::Lenet5, 2), (Arch::Googlenet, 20)] {
        let net = shared(arch);
        let xs = batch(arch, 2, 9)?;
        let plain = net.forward_t(&xs, false)?;
        let mut taps = ZeroInput {
            layer,
            seen_zero: None,
        };
        let masked = net.forward_tapped(&xs, false, &mut taps)?;
        assert_eq!(
            taps.seen_zero,
            Some(true),
            "{arch}: post-tap must see the replaced input"
        );
        let diff = (plain - masked)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            diff > 0.0,
            "{arch} layer {layer}: replacing the input changed nothing"
        );
    }
    Ok(())
}

#[test]
fn pre_tap_replacement_of_another_shape_is_an_error() -> Result<()> {
    struct Shrink;
    impl Taps for Shrink {
        fn pre(&mut self, _id: LayerId, input: &Tensor) -> Result<Option<Tensor>> {
            Ok(Some(input.narrow(0, 0, 1)?))
        }
    }
    let err = shared(Arch::Lenet5).forward_tapped(&batch(Arch::Lenet5, 2, 1)?, false, &mut Shrink);
    assert!(matches!(err, Err(Error::Shape { .. })), "{err:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Construction errors and the Arch vocabulary.
// ---------------------------------------------------------------------------------------------

#[test]
fn resnet_depth_must_be_6n_plus_2() {
    let init = SeededInit::new(0);
    for depth in [0, 2, 7, 21, 100] {
        let r = resnet(depth, 10, 3, init.var_builder(DType::F32, &Device::Cpu));
        assert!(matches!(r, Err(Error::OutOfRange { .. })), "depth {depth}");
    }
    let net = resnet(26, 10, 3, init.var_builder(DType::F32, &Device::Cpu));
    assert_eq!(
        net.map(|n| (n.depth(), n.arch().to_string())).ok(),
        Some((26, "resnet26".into()))
    );
}

#[test]
fn zero_classes_is_an_error() {
    let init = SeededInit::new(0);
    let r = lenet5(0, 1, init.var_builder(DType::F32, &Device::Cpu));
    assert!(matches!(r, Err(Error::Geometry { .. })));
}

#[test]
fn arch_names_round_trip() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let names: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
    expect![[r#"
        [
            "lenet5",
            "lenet5-caffe",
            "resnet8",
            "resnet14",
            "resnet20",
            "resnet32",
            "resnet44",
            "resnet56",
            "resnet74",
            "resnet110",
            "alexnet",
            "alexnet-caffe",
            "squeezenet1_0",
            "googlenet",
            "mobilenet_v2",
        ]
    "#]]
    .assert_debug_eq(&names);
    for arch in Arch::ALL {
        assert_eq!(arch.to_string().parse::<Arch>()?, arch);
        let json = serde_json::to_string(&arch)?;
        assert_eq!(json, format!("\"{arch}\""));
        assert_eq!(serde_json::from_str::<Arch>(&json)?, arch);
    }
    assert!(matches!("vgg16".parse::<Arch>(), Err(Error::Parse { .. })));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pooling and the depthwise convolution against brute force.
// ---------------------------------------------------------------------------------------------

/// PyTorch's max-pool on one `h × w` plane, by definition.
fn brute_max_pool(
    xs: &[Vec<f32>],
    k: usize,
    s: usize,
    p: usize,
    out: (usize, usize),
) -> Vec<Vec<f32>> {
    (0..out.0)
        .map(|y| {
            (0..out.1)
                .map(|x| {
                    let mut m = f32::NEG_INFINITY;
                    for i in 0..k {
                        for j in 0..k {
                            let (r, c) = (
                                (y * s + i) as isize - p as isize,
                                (x * s + j) as isize - p as isize,
                            );
                            if r >= 0
                                && c >= 0
                                && (r as usize) < xs.len()
                                && (c as usize) < xs[0].len()
                            {
                                m = m.max(xs[r as usize][c as usize]);
                            }
                        }
                    }
                    m
                })
                .collect()
        })
        .collect()
}

#[test]
fn max_pool_matches_pytorch_semantics() -> Result<()> {
    let xs = Tensor::arange(0f32, 36f32, &Device::Cpu)?.reshape((1, 1, 6, 6))?;
    let ceil = max_pool2d(&xs, 3, 2, 0, true)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert_eq!(ceil, [14., 16., 17., 26., 28., 29., 32., 34., 35.]);
    let floor = max_pool2d(&xs, 3, 2, 0, false)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert_eq!(floor, [14., 16., 26., 28.]);

    let xs = randn(11, &[1, 2, 7, 8])?;
    // (kernel, stride, padding, ceil, expected out)
    for (k, s, p, ceil, out) in [
        (3, 2, 0, false, (3, 3)),
        (3, 2, 0, true, (3, 4)),
        (3, 2, 1, true, (4, 5)),
        (3, 1, 1, true, (7, 8)),
        (2, 2, 0, false, (3, 4)),
        (2, 2, 0, true, (4, 4)),
    ] {
        let ys = max_pool2d(&xs, k, s, p, ceil)?;
        assert_eq!(
            ys.dims(),
            [1, 2, out.0, out.1],
            "k{k} s{s} p{p} ceil {ceil}"
        );
        for ch in 0..2 {
            let plane: Vec<Vec<f32>> = xs.get(0)?.get(ch)?.to_vec2()?;
            let want = brute_max_pool(&plane, k, s, p, out);
            let got: Vec<Vec<f32>> = ys.get(0)?.get(ch)?.to_vec2()?;
            assert_eq!(got, want, "k{k} s{s} p{p} ceil {ceil}");
        }
    }
    Ok(())
}

#[test]
fn overlapping_max_pool_routes_gradient_to_each_argmax() -> Result<()> {
    let var = tensor_core::Var::from_tensor(&randn(12, &[1, 1, 9, 9])?)?;
    let ys = max_pool2d(var.as_tensor(), 3, 2, 1, true)?;
    let grads = ys.sum_all()?.backward()?;
    let g = grads
        .get(var.as_tensor())
        .map(|g| g.sum_all())
        .transpose()?;
    let total = g.map(|g| g.to_scalar::<f32>()).transpose()?;
    // One unit of gradient per output window (no ties in normal data).
    assert_eq!(total, Some(ys.elem_count() as f32));
    Ok(())
}

#[test]
fn adaptive_avg_pool_uses_pytorch_bins() -> Result<()> {
    let xs = Tensor::arange(0f32, 25f32, &Device::Cpu)?.reshape((1, 1, 5, 5))?;
    let ys = adaptive_avg_pool2d(&xs, 2, 2)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert_eq!(ys, [6., 8., 16., 18.]);
    Ok(())
}

#[test]
fn depthwise_conv_matches_grouped_conv() -> Result<()> {
    let xs = randn(13, &[2, 6, 9, 9])?;
    let w = randn(14, &[6, 1, 3, 3])?;
    for stride in [1, 2] {
        let fast = crate::layer::depthwise_conv2d(&xs, &w, 1, stride)?;
        let slow = xs.conv2d(&w, 1, stride, 1, 6)?;
        assert_eq!(fast.dims(), slow.dims());
        // Sums of 9 products of unit normals in f32: agreement to 1e-5 absolute.
        let diff = (fast - slow)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "stride {stride}: max difference {diff}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Training smoke test.
// ---------------------------------------------------------------------------------------------

#[test]
fn lenet5_gradient_descent_lowers_the_loss() -> Result<()> {
    // 16 noisy images whose class k lights up rows 3k..3k+3: learnable in a few steps.
    let labels: Vec<u32> = (0..16).map(|i| i % 10).collect();
    let mut signal = vec![0f32; 16 * 32 * 32];
    for (i, &k) in labels.iter().enumerate() {
        let rows = 3 * k as usize..3 * k as usize + 3;
        for r in rows {
            signal[i * 1024 + r * 32..i * 1024 + (r + 1) * 32].fill(2.0);
        }
    }
    let signal = Tensor::from_vec(signal, (16, 1, 32, 32), &Device::Cpu)?;
    let xs = (batch(Arch::Lenet5, 16, 21)? * 0.5 + signal)?;
    let ys = Tensor::new(labels.as_slice(), &Device::Cpu)?;

    let init = SeededInit::new(1);
    let net = lenet5(10, 1, init.var_builder(DType::F32, &Device::Cpu))?;
    let vars = init.named_vars().into_iter().map(|(_, v)| v).collect();
    let mut sgd = nn::SGD::new(vars, 0.3)?;
    let loss =
        || -> Result<Tensor> { Ok(nn::loss::cross_entropy(&net.forward_t(&xs, true)?, &ys)?) };
    let before = loss()?.to_scalar::<f32>()?;
    for _ in 0..20 {
        sgd.backward_step(&loss()?)?;
    }
    let after = loss()?.to_scalar::<f32>()?;
    assert!(after < 0.5 * before, "loss {before} -> {after}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Ops backends.
// ---------------------------------------------------------------------------------------------

/// Logits, loss gradients and updated running statistics of one training-mode pass.
fn train_pass(arch: Arch, backend: OpsBackend) -> Result<(Tensor, Vec<(String, Tensor)>)> {
    let init = SeededInit::new(5);
    let net = build_with(
        arch,
        10,
        arch.input_shape()[0],
        init.var_builder(DType::F32, &Device::Cpu),
        backend,
    )?;
    let xs = batch(arch, 4, 9)?;
    let ys = Tensor::new(&[1u32, 4, 7, 9], &Device::Cpu)?;
    let logits = net.forward_t(&xs, true)?;
    let grads = nn::loss::cross_entropy(&logits, &ys)?.backward()?;
    let named = init
        .named_vars()
        .into_iter()
        .map(|(name, var)| {
            // Running statistics have no gradient: compare their updated values instead.
            let t = grads
                .get(&var)
                .cloned()
                .unwrap_or_else(|| var.as_tensor().clone());
            (name, t)
        })
        .collect();
    Ok((logits, named))
}

#[test]
fn fast_and_candle_backends_agree() -> Result<()> {
    // Same seed, same batch: logits and every gradient agree to f32 summation-order noise,
    // max |fast − candle| ≤ 1e-3 · (1 + max |candle|) per tensor.
    for arch in [Arch::Lenet5Caffe, Arch::Lenet5, Arch::Resnet8] {
        let (fast_logits, fast) = train_pass(arch, OpsBackend::Fast)?;
        let (stock_logits, stock) = train_pass(arch, OpsBackend::Candle)?;
        let close = |what: &str, a: &Tensor, b: &Tensor| -> Result<()> {
            let diff = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            let scale = b.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(
                diff <= 1e-3 * (1.0 + scale),
                "{arch} {what}: |diff| {diff}, |candle| {scale}"
            );
            Ok(())
        };
        close("logits", &fast_logits, &stock_logits)?;
        assert_eq!(fast.len(), stock.len());
        for ((name, a), (_, b)) in fast.iter().zip(&stock) {
            close(name, a, b)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Weights in from PyTorch state dicts: small files written here, torchvision's in tests/it.
// ---------------------------------------------------------------------------------------------

/// A model of `arch` with parameters drawn from `seed` and its store.
fn seeded(arch: Arch, classes: usize, seed: u64) -> Result<(Box<dyn Network>, SeededInit)> {
    let init = SeededInit::new(seed);
    let vb = init.var_builder(DType::F32, &Device::Cpu);
    let net = build(arch, classes, arch.input_shape()[0], vb)?;
    Ok((net, init))
}

/// Every variable of a store as a state dict, in `dtype`.
fn state_dict(init: &SeededInit, dtype: DType) -> Result<HashMap<String, Tensor>> {
    init.named_vars()
        .into_iter()
        .map(|(name, var)| Ok((name, var.as_tensor().to_dtype(dtype)?)))
        .collect()
}

/// A scratch directory of one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cnn-zoo-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Self(dir)
    }

    /// Writes `tensors` as safetensors to `<name>.safetensors`.
    fn weights(&self, name: &str, tensors: &HashMap<String, Tensor>) -> Result<PathBuf> {
        let path = self.0.join(format!("{name}.safetensors"));
        candle::safetensors::save(tensors, &path)?;
        Ok(path)
    }

    fn bytes(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn values(init: &SeededInit) -> Result<Vec<(String, Vec<f32>)>> {
    init.named_vars()
        .into_iter()
        .map(|(name, var)| Ok((name, var.as_tensor().flatten_all()?.to_vec1::<f32>()?)))
        .collect()
}

/// A ResNet-8 state dict (batch-norm running statistics and PyTorch's `num_batches_tracked`
/// counters included) loads into a model drawn from another seed, which then computes the
/// source's evaluation-mode logits; an f64 file converts.
#[test]
fn state_dict_round_trips_with_running_stats() -> Result<()> {
    let (source, source_init) = seeded(Arch::Resnet8, 10, 1)?;
    // Running statistics away from their initial 0 and 1, so loading them shows in the logits.
    for (name, var) in source_init.named_vars() {
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            var.set(&(var.as_tensor().affine(0.5, 0.25)?))?;
        }
    }
    let scratch = Scratch::new("round-trip");
    let xs = batch(Arch::Resnet8, 2, 7)?;
    let expected = source
        .forward_t(&xs, false)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    for dtype in [DType::F32, DType::F64] {
        let mut tensors = state_dict(&source_init, dtype)?;
        tensors.insert(
            "bn1.num_batches_tracked".into(),
            Tensor::new(3i64, &Device::Cpu)?,
        );
        let path = scratch.weights(&format!("resnet8-{dtype:?}"), &tensors)?;
        let (target, target_init) = seeded(Arch::Resnet8, 10, 2)?;
        load_state_dict(&path, target_init.var_map())?;
        assert_eq!(values(&target_init)?, values(&source_init)?);
        let got = target
            .forward_t(&xs, false)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(got, expected, "{dtype:?}");
    }
    Ok(())
}

#[test]
fn state_dict_mismatches_name_the_tensor_and_leave_the_model_alone() -> Result<()> {
    let (_, source) = seeded(Arch::Lenet5, 10, 1)?;
    let good = state_dict(&source, DType::F32)?;
    let (_, target) = seeded(Arch::Lenet5, 10, 2)?;
    let before = values(&target)?;
    let scratch = Scratch::new("mismatches");
    let fails = |name: &str, tensors: &HashMap<String, Tensor>| -> Result<(PathBuf, Error)> {
        let path = scratch.weights(name, tensors)?;
        let err = load_state_dict(&path, target.var_map())
            .err()
            .unwrap_or_else(|| panic!("{name} loaded"));
        Ok((path, err))
    };

    let mut missing = good.clone();
    missing.remove("features.3.weight");
    let (path, err) = fails("missing", &missing)?;
    assert!(
        matches!(&err, Error::MissingTensor { file, tensor } if *file == path && tensor == "features.3.weight"),
        "{err}"
    );

    let (_, five) = seeded(Arch::Lenet5, 5, 1)?;
    let (path, err) = fails("five-classes", &state_dict(&five, DType::F32)?)?;
    let Error::TensorShape {
        file,
        tensor,
        expected,
        got,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (file, tensor.as_str(), &expected[..], &got[..]),
        (&path, "classifier.4.bias", &[10][..], &[5][..])
    );
    let message = err.to_string();
    for part in [
        "five-classes.safetensors",
        "classifier.4.bias",
        "[10]",
        "[5]",
    ] {
        assert!(message.contains(part), "{message}");
    }

    let mut extra = good.clone();
    extra.insert(
        "features.6.weight".into(),
        Tensor::zeros(3, DType::F32, &Device::Cpu)?,
    );
    extra.insert(
        "features.0.num_batches_tracked".into(),
        Tensor::new(0i64, &Device::Cpu)?,
    );
    let (_, err) = fails("extra", &extra)?;
    assert!(
        matches!(&err, Error::UnexpectedTensor { tensor, .. } if tensor == "features.6.weight"),
        "{err}"
    );

    // One NaN deep inside a tensor sorted after others: values are checked before any copy.
    let mut nan = good.clone();
    let w = &nan["features.3.weight"];
    let poisoned = w.flatten_all()?.to_vec1::<f32>()?;
    let poisoned: Vec<f32> = poisoned
        .iter()
        .enumerate()
        .map(|(i, &v)| if i == 17 { f32::NAN } else { v })
        .collect();
    let poisoned = Tensor::from_vec(poisoned, w.dims(), &Device::Cpu)?;
    nan.insert("features.3.weight".into(), poisoned);
    let (_, err) = fails("nan", &nan)?;
    assert!(
        matches!(&err, Error::NonFinite { what } if what.contains("`features.3.weight`")),
        "{err}"
    );
    let mut inf = good.clone();
    inf.insert(
        "classifier.0.bias".into(),
        Tensor::full(f32::INFINITY, 120, &Device::Cpu)?.to_dtype(DType::F16)?,
    );
    let (_, err) = fails("inf", &inf)?;
    assert!(
        matches!(&err, Error::NonFinite { what } if what.contains("`classifier.0.bias`")),
        "{err}"
    );

    assert_eq!(values(&target)?, before, "a failed load changed the model");
    load_state_dict(&scratch.weights("good", &good)?, target.var_map())?;
    assert_eq!(values(&target)?, values(&source)?);
    Ok(())
}

#[test]
fn unreadable_weight_files_are_errors_naming_the_file() -> Result<()> {
    let (_, target) = seeded(Arch::Lenet5, 10, 2)?;
    let scratch = Scratch::new("unreadable");
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "garbage.bin",
            b"not a tensor file at all",
            "neither safetensors",
        ),
        // A pickle protocol marker: torch.save before PyTorch 1.6.
        ("legacy.pth", b"\x80\x02\x8a\x0alz\xfc", "legacy"),
        (
            "empty.safetensors",
            b"\x02\x00\x00\x00\x00\x00\x00\x00{}",
            "no tensors",
        ),
    ];
    for (name, bytes, says) in cases {
        let path = scratch.bytes(name, bytes);
        let err = load_state_dict(&path, target.var_map()).err();
        let Some(err @ Error::WeightFile { file, .. }) = &err else {
            panic!("{name}: {err:?}")
        };
        assert_eq!(file, &path);
        let message = err.to_string();
        assert!(
            message.contains(name) && message.contains(says),
            "{message}"
        );
    }
    let missing = scratch.0.join("no-such-file.safetensors");
    assert!(matches!(
        load_state_dict(&missing, target.var_map()),
        Err(Error::WeightFile { .. })
    ));
    Ok(())
}
