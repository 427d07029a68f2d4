//! Embedded real data through the input pipelines into zoo models.

use cnn_zoo::Arch;
use datasets::TransformConfig;
use integration_tests::{mnist_batch, seeded_model};

#[test]
fn mnist_reaches_every_mnist_sized_model() -> anyhow::Result<()> {
    let cases = [
        (Arch::Lenet5, TransformConfig::mnist32_resize()),
        (
            Arch::Lenet5Caffe,
            TransformConfig::for_dataset(datasets::DatasetId::Mnist),
        ),
        (Arch::Resnet8, TransformConfig::mnist32_pad()),
    ];
    for (arch, config) in cases {
        let (xs, ys) = mnist_batch(16, config)?;
        let (net, _) = seeded_model(arch, 10, 1, 3)?;
        let logits = net.forward_t(&xs, false)?;
        assert_eq!(logits.dims(), &[16, 10], "{arch}");
        assert_eq!(ys.to_vec1::<u32>()?[..5], [5, 0, 4, 1, 9]);
    }
    Ok(())
}
