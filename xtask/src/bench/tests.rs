use super::*;

#[test]
fn parses_torch_result_lines() {
    let line = "RESULT fw=torch model=lenet5 case=train_step batch=64 median_ms=31.80 min_ms=30.1 \
                max_ms=35.0 imgs_per_s=2012.6";
    let (key, ms) = parse_result(line, 1).unwrap();
    assert_eq!(
        (key.workload.as_str(), key.case.as_str(), key.threads),
        ("lenet5", "train_step", 1)
    );
    assert!((ms - 31.8).abs() < 1e-9);
    let conv = "RESULT fw=torch conv=res_16x32 case=fwd+bwd median_ms=12.5 min_ms=12 gflops=40";
    assert_eq!(parse_result(conv, 2).unwrap().0.workload, "res_16x32");
    assert!(parse_result("RESULT fw=torch conv=x case=bwd_input median_ms=1", 1).is_none());
    assert!(parse_result("torch 2.5 threads=1", 1).is_none());
}

#[test]
fn ratios_are_throughput_ratios() {
    let key = RowKey {
        threads: 1,
        workload: "resnet20".into(),
        case: "train_step".into(),
    };
    let mut samples = BTreeMap::new();
    samples.insert((key.clone(), Contender::Torch), vec![600.0, 500.0, 700.0]);
    samples.insert((key.clone(), Contender::Fast), vec![300.0]);
    samples.insert((key.clone(), Contender::Candle), vec![3000.0, 3000.0]);
    samples.insert((key, Contender::Gpu), vec![20.0, 30.0, 25.0]);
    let rows = summarise(samples);
    assert_eq!(rows.len(), 1);
    assert!((rows[0].fast_vs_torch.unwrap() - 2.0).abs() < 1e-12);
    assert!((rows[0].fast_vs_candle.unwrap() - 10.0).abs() < 1e-12);
    assert!((rows[0].gpu_vs_fast.unwrap() - 12.0).abs() < 1e-12);
    let text = render(&Report {
        machine: "m".into(),
        torch: None,
        device: Some("cuda:0".into()),
        rows,
        memory: vec![],
    });
    assert!(
        text.contains("| 1 | resnet20 | train_step | 600.0 | 300.0 | 3000.0 | 2.00x | 10.00x |")
    );
    assert!(text.contains("On the GPU (cuda:0)"), "{text}");
    assert!(
        text.contains("| 1 | resnet20 | train_step | 300.0 | 25.0 | 12.00x |"),
        "{text}"
    );
}
