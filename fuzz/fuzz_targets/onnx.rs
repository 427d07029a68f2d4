//! ONNX models from arbitrary bytes: typed errors naming the file only; a model that reads has
//! at least one layer, every layer's weight support has the layer's weight shape, and the counts
//! the energy models multiply do not overflow.
#![no_main]

use energy_model::onnx::{OnnxOptions, parse};
use libfuzzer_sys::fuzz_target;
use tensor_core::Support;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options, so both the zero-reading and the dense paths run.
    let Some((&pick, model)) = data.split_first() else {
        return;
    };
    let options = OnnxOptions {
        input: (pick & 1 == 1).then_some([1, 8, 8]),
        dense: pick & 2 == 2,
    };
    match parse(model, "fuzz.onnx", None, &options) {
        Ok(net) => {
            assert!(!net.layers.is_empty());
            for l in &net.layers {
                let g = l.geometry;
                let _ = (g.weights(), g.macs(), g.in_features(), g.out_features());
                if let Support::Bitmap(b) = &l.sparsity.weights {
                    assert_eq!(b.shape(), g.weight_shape().as_slice());
                }
            }
        }
        Err(e) => assert!(format!("{e}").starts_with("ONNX model fuzz.onnx"), "{e}"),
    }
});
