//! The MIT energy-estimation tool's layer format from arbitrary text: typed errors only; every
//! parsed line converts to a workload, and writing then parsing gives the same layers.
#![no_main]

use energy_model::mit_format::{parse, write};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(layers) = parse(text) else {
        return;
    };
    for (i, l) in layers.iter().enumerate() {
        let g = l.geometry().expect("a parsed line has a valid geometry");
        // The counts the energy models multiply must not overflow on a parsed line.
        let _ = (g.weights(), g.macs(), g.in_features(), g.out_features());
        let _ = l.to_workload(format!("layer{i}"));
    }
    let again = parse(&write(&layers)).expect("written lines parse");
    assert_eq!(again, layers);
});
