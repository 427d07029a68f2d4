//! E2-Train across crates: the gated backbone is cnn-zoo's ResNet layer for layer, and a tiny run's
//! ledger, priced by energy-model's training model, charges nothing for dropped iterations and
//! less than standard training under SMD + SLU.

use cnn_zoo::{ResnetInit, ResnetOptions};
use datasets::{DatasetId, Normalization, TransformConfig};
use e2_train::{
    ConvMode, E2TrainConfig, ForwardOptions, GatedResnetConfig, Gating, SkipExecution, SluConfig,
    SmdConfig, TrainRun, gated_resnet,
};
use energy_model::training::{TrainingModel, savings};
use integration_tests::{gated, mnist_batch};
use tensor_core::{
    BatchSource, DType, Device, Iteration, Network, NoTaps, NoopObserver, OpsBackend, SeededInit,
    Tensor, WorkLedger,
};

#[test]
fn gated_network_runs_the_zoo_resnet() -> anyhow::Result<()> {
    // The gated network's layers are the backbone's; with every block on and full-precision
    // convs on the same fast kernels, its logits are the backbone's own forward pass.
    for (depth, in_channels) in [(20, 3), (8, 1)] {
        let init = SeededInit::new(0);
        let vb = init.var_builder(DType::F32, &Device::Cpu);
        let options = ResnetOptions {
            init: ResnetInit::E2TrainReference,
            backend: OpsBackend::Fast,
        };
        let zoo = cnn_zoo::resnet_with(depth, 10, in_channels, vb.clone(), options)?;
        let xs = Tensor::randn(0f32, 1., (2, in_channels, 32, 32), &Device::Cpu)?;
        let plain = zoo.forward_t(&xs, false)?;
        let names: Vec<String> = zoo.layers().iter().map(|l| l.name.clone()).collect();
        let config = GatedResnetConfig {
            depth,
            num_classes: 10,
            in_channels,
            conv: ConvMode::Float,
            gates: true,
        };
        let gated = gated_resnet(config, Box::new(zoo), vb)?;
        let gated_names: Vec<String> = gated.layers().iter().map(|l| l.name.clone()).collect();
        assert_eq!(gated_names, names, "resnet{depth}");
        assert_eq!(gated.num_gates(), gated.num_blocks() - 1);
        let opts = ForwardOptions {
            train: false,
            gating: Gating::AllOn,
            skip: SkipExecution::Masked,
        };
        let mut rng = tensor_core::rng(0, "unused");
        let out = gated.forward_gated(&xs, &opts, &mut rng, &mut NoTaps)?;
        let diff = (out.logits - &plain)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert_eq!(diff, 0.0, "resnet{depth}");
    }
    Ok(())
}

/// Fixed images served in order, the same every epoch.
struct Fixed {
    xs: Tensor,
    ys: Tensor,
    batch: usize,
}

impl BatchSource for Fixed {
    fn batches_per_epoch(&self) -> usize {
        self.ys.dims()[0] / self.batch
    }

    fn batch(&mut self, _epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)> {
        let start = index * self.batch;
        Ok((
            self.xs.narrow(0, start, self.batch)?,
            self.ys.narrow(0, start, self.batch)?,
        ))
    }
}

fn tiny_run(config: &E2TrainConfig, data: &mut Fixed) -> anyhow::Result<WorkLedger> {
    let init = SeededInit::new(config.seed);
    let net = gated(config.model, &init)?;
    let params = init.named_vars().into_iter().map(|(_, v)| v).collect();
    let outcome = e2_train::train(
        TrainRun {
            net: &net,
            params,
            train: data,
            eval: None,
        },
        config,
        &mut NoopObserver,
    )?;
    assert_eq!(outcome.history.len(), config.iterations);
    Ok(outcome.ledger)
}

#[test]
fn priced_ledger_of_a_tiny_run() -> anyhow::Result<()> {
    let mut pad = TransformConfig::normalize(Normalization::for_dataset(DatasetId::Mnist));
    pad.pad_to = Some((32, 32));
    let (xs, ys) = mnist_batch(32, pad)?;
    let mut data = Fixed { xs, ys, batch: 8 };
    let mut full = E2TrainConfig::quick_cpu_resnet8();
    full.model.in_channels = 1;
    full.model.conv = ConvMode::quantized8();
    full.iterations = 8;
    full.eval_every = 0;
    full.smd = Some(SmdConfig { p: 0.5 });
    full.slu = Some(SluConfig::with_target(50.0));
    let base = full.baseline();

    let model = TrainingModel::bit_product_proxy();
    let run = tiny_run(&full, &mut data)?;
    assert!(run.dropped() > 0, "seeded drops: at least one of 8");
    assert_eq!(run.executed() + run.dropped(), 8);
    // Dropped iterations cost exactly nothing: the executed ones alone price the same.
    let mut executed_only = WorkLedger::new();
    for it in run.iterations() {
        if let Iteration::Executed { batch, layers } = it {
            executed_only.record_executed(*batch, layers.clone())?;
        }
    }
    let priced = model.price(&run)?.energy;
    assert!(priced.proxy, "the default table is the bit-product proxy");
    assert_eq!(priced.total(), model.price(&executed_only)?.energy.total());
    let mut dropped_only = WorkLedger::new();
    dropped_only.record_dropped();
    assert_eq!(model.price(&dropped_only)?.energy.total(), 0.0);

    // Standard training, run for real, prices exactly as the nominal baseline ledger.
    let baseline = model.price(&tiny_run(&base, &mut data)?)?.energy;
    let init = SeededInit::new(0);
    let net = gated(base.model, &init)?;
    let nominal = model
        .price(&e2_train::baseline_ledger(&net, &full, &|_| 8)?)?
        .energy;
    assert_eq!(baseline.total(), nominal.total());
    assert_eq!(savings(&baseline, &nominal)?, 0.0);
    let saving = savings(&priced, &nominal)?;
    assert!(
        saving > 0.0 && saving < 1.0,
        "SMD + SLU saves a share of standard training: {saving}"
    );
    Ok(())
}

#[test]
fn real_skipping_trains_through_projection_shortcuts() -> anyhow::Result<()> {
    // ResNet-8's two gated blocks both open a stage, so their shortcuts are projections whose
    // training-mode batch norm feeds the gather.
    let mut pad = TransformConfig::normalize(Normalization::for_dataset(DatasetId::Mnist));
    pad.pad_to = Some((32, 32));
    let (xs, ys) = mnist_batch(16, pad)?;
    let mut data = Fixed { xs, ys, batch: 8 };
    let mut config = E2TrainConfig::quick_cpu_resnet8();
    config.model.in_channels = 1;
    config.model.conv = ConvMode::quantized8();
    config.smd = None;
    config.iterations = 2;
    config.eval_every = 0;
    config.skip = e2_train::SkipExecution::Gather;
    let ledger = tiny_run(&config, &mut data)?;
    assert_eq!(ledger.executed(), 2);
    let partial = ledger.iterations().iter().any(|it| match it {
        Iteration::Executed { layers, .. } => layers
            .iter()
            .any(|l| l.executed_fraction > 0.0 && l.executed_fraction < 1.0),
        Iteration::Dropped => false,
    });
    assert!(partial, "some block ran on part of a batch");
    Ok(())
}
