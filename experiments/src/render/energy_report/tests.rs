use energy_model::iclr19::Iclr19;
use energy_model::reference;
use expect_test::expect;
use tensor_core::{EnergyModel, LayerId, LayerWorkload};

use super::*;

fn lenet5() -> Vec<LayerWorkload> {
    let names = [
        "features.0",
        "features.3",
        "classifier.0",
        "classifier.2",
        "classifier.4",
    ];
    reference::LENET5
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (s, n))| LayerWorkload::dense(LayerId(i), n, s.geometry().unwrap()))
        .collect()
}

/// `ws` priced by the relaxed ICLR'19 model, with its normalisation.
fn iclr19_report(subject: &str, ws: &[LayerWorkload]) -> EnergyReport {
    let m = Iclr19::paper();
    let e = m.network_energy(ws).unwrap();
    let gs: Vec<_> = ws.iter().map(|w| w.geometry).collect();
    EnergyReport::new(subject, ws, &e, 1)
        .unwrap()
        .with_normalization(m.normalization(&gs).unwrap())
}

fn report() -> EnergyReport {
    iclr19_report("lenet5", &lenet5())
}

// docs/energy-models.md A.7: the LeNet-5 table (E_dense 17,107,544, floor 0.15227) as rendered.
#[test]
fn lenet5_table_snapshot() {
    expect![[r#"
        lenet5: energy modelled on iclr19/relaxed batch 1, in RF-access units
        layer         kind  MACs/sample  nonzero W  eff. MACs    compute        DRAM   buffer  array       RF     weights     inputs    outputs       total   share
        -----------------------------------------------------------------------------------------------------------------------------------------------------------
        features.0    conv      117,600        150    117,600    352,800   1,175,600  177,000      0  235,200     207,000    440,000    940,800   1,940,600   11.3%
        features.3    conv      240,000      2,400    240,000    720,000   1,035,200  309,600      0  480,000     849,600    655,200    320,000   2,544,800   14.9%
        classifier.0  fc         48,000     48,000     48,000    144,000   9,704,000  309,600      0   96,000   9,936,000    149,600     24,000  10,253,600   59.9%
        classifier.2  fc         10,080     10,080     10,080     30,240   2,056,800   64,800      0   20,160   2,086,560     38,400     16,800   2,172,000   12.7%
        classifier.4  fc            840        840        840      2,520     186,800    5,544      0    1,680     173,880     18,144      2,000     196,544    1.1%
        -----------------------------------------------------------------------------------------------------------------------------------------------------------
        total                   416,520     61,470    416,520  1,249,560  14,158,400  866,544      0  833,040  13,253,040  1,301,344  1,303,600  17,107,544  100.0%
        dense energy 17,107,544 and floor 2,604,944 (modelled on iclr19/relaxed batch 1): normalized floor 0.15227
    "#]]
    .assert_eq(&table(&report()));
}

#[test]
fn json_fields_and_totals() {
    let v = json(&report());
    assert_eq!(v["total"], 17_107_544.0);
    assert_eq!(v["model"], "iclr19/relaxed batch 1");
    assert_eq!(v["unit"], "rf-access");
    assert!((v["normalized_floor"].as_f64().unwrap() - 0.15227).abs() < 5e-6);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 5);
    for key in [
        "name",
        "macs",
        "weights_nonzero",
        "compute",
        "data",
        "total",
    ] {
        assert!(layers[0].get(key).is_some(), "{key}");
    }
    assert_eq!(layers[0]["total"], 1_940_600.0);
    assert_eq!(layers[2]["data"]["by_level"]["dram"], 9_704_000.0);
    assert_eq!(layers[2]["data"]["by_type"]["weight"], 9_936_000.0);
    let sum: f64 = layers.iter().map(|l| l["total"].as_f64().unwrap()).sum();
    assert_eq!(sum, 17_107_544.0);
}

#[test]
fn csv_rows() {
    let csv = csv(&report()).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 7);
    let cols = rows[0].split(',').count();
    assert!(rows.iter().all(|r| r.split(',').count() == cols));
    assert!(rows[6].starts_with("lenet5,iclr19/relaxed batch 1,RF-access units,1,total,"));
    assert!(rows[6].ends_with(",17107544"));
}

#[test]
fn svg_names_subject_model_unit_and_escapes_names() {
    let mut r = report();
    r.layers[0].name = "odd <name> & \"quotes\"".into();
    for stack in [Stack::ByLevel, Stack::ByOperand] {
        let svg = svg(&r, stack).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("lenet5: energy per layer"));
        assert!(svg.contains("modelled on iclr19/relaxed batch 1"));
        assert!(svg.contains("energy (RF-access units)"));
        assert!(svg.contains("&lt;name&gt; &amp;"), "names are escaped");
        assert!(!svg.contains("<name>"));
        for name in ["features.3", "classifier.0", "classifier.2", "classifier.4"] {
            assert!(svg.contains(&format!("\n{name}\n")), "one label per layer");
        }
    }
    // The array level carries nothing in this model, so it is not in the legend.
    assert!(!svg(&r, Stack::ByLevel).unwrap().contains("\narray\n"));
    assert!(svg(&r, Stack::ByLevel).unwrap().contains("\nDRAM\n"));
}

/// AlexNet, Caffe grouped layout (docs/energy-models.md B.10), every layer at weight density 0.3.
fn alexnet_at_density_03() -> Vec<LayerWorkload> {
    let d = tensor_core::Density::new(0.3).unwrap();
    reference::ALEXNET_CAFFE_LAYERS
        .iter()
        .enumerate()
        .map(|(i, (n, shape))| LayerWorkload {
            sparsity: tensor_core::LayerSparsity::with_weight_density(d),
            ..LayerWorkload::dense(LayerId(i), *n, shape.geometry().unwrap())
        })
        .collect()
}

// AlexNet at weight density 0.3 under the relaxed ICLR'19 model: conv1's 154,587 input values
// overflow the input cache, so its DRAM input reads include the row overlap.
#[test]
fn alexnet_density_snapshot() {
    let r = iclr19_report(
        "alexnet-caffe (weight density 0.3)",
        &alexnet_at_density_03(),
    );
    expect![[r#"
        alexnet-caffe (weight density 0.3): energy modelled on iclr19/relaxed batch 1, in RF-access units
        layer  kind  MACs/sample   nonzero W    eff. MACs      compute           DRAM       buffer  array           RF        weights         inputs      outputs          total   share
        --------------------------------------------------------------------------------------------------------------------------------------------------------------------------------
        conv1  conv  105,415,200      10,454   31,623,350   94,870,050    414,391,600   61,988,322      0  137,038,550    370,026,522    185,311,950   58,080,000    708,288,522    7.9%
        conv2  conv  223,948,800      92,160   67,184,640  201,553,920  1,128,595,200  129,582,720      0  271,669,248  1,176,115,200    316,407,168   37,324,800  1,731,401,088   19.4%
        conv3  conv  149,520,384     265,421   44,856,149  134,568,447    806,426,200   82,765,842      0  179,434,325    853,538,239    202,108,928   12,979,200  1,203,194,814   13.4%
        conv4  conv  112,140,288     199,066   33,642,154  100,926,462    613,684,400   62,074,404      0  134,575,786    637,287,294    160,068,096   12,979,200    911,261,052   10.2%
        conv5  conv   74,760,192     132,710   22,427,990   67,283,970    410,290,000   43,485,660      0   89,717,078    421,033,090    113,806,848    8,652,800    610,776,708    6.8%
        fc6    fc     37,748,736  11,324,621   11,324,621   33,973,863  2,267,586,600   84,149,454      0   49,073,357  2,344,196,547     55,793,664      819,200  2,434,783,274   27.2%
        fc7    fc     16,777,216   5,033,165    5,033,165   15,099,495  1,008,271,400   37,399,758      0   21,810,381  1,041,865,155     24,797,184      819,200  1,082,581,034   12.1%
        fc8    fc      4,096,000   1,228,800    1,228,800    3,686,400    246,779,200    9,142,272      0    5,324,800    254,361,600      6,684,672      200,000    264,932,672    3.0%
        --------------------------------------------------------------------------------------------------------------------------------------------------------------------------------
        total        724,406,816  18,286,397  217,320,869  651,962,607  6,896,024,600  510,588,432      0  888,643,525  7,098,423,647  1,064,978,510  131,854,400  8,947,219,164  100.0%
        dense energy 27,708,195,790 and floor 1,196,832,910 (modelled on iclr19/relaxed batch 1): normalized floor 0.04319
    "#]].assert_eq(&table(&r));
}
