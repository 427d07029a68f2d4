//! Checkpoint files from arbitrary bytes: the metadata reader the experiments library uses (its very source file)
//! and the safetensors structure `checkpoint::load` walks; errors name the file, nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unreachable_pub)]
#[path = "../../experiments/src/checkpoint/meta.rs"]
mod meta;

fuzz_target!(|data: &[u8]| {
    match meta::parse("fuzz.safetensors", data) {
        Ok(m) => {
            // What a resume compares and copies must survive a round trip unchanged.
            let json = serde_json::to_string(&m).expect("metadata serialises");
            let back: meta::CheckpointMeta = serde_json::from_str(&json).expect("and parses");
            assert_eq!(back.epoch, m.epoch);
            assert_eq!(back.arch, m.arch);
        }
        Err(e) => assert!(format!("{e}").starts_with("fuzz.safetensors"), "{e}"),
    }
    if let Ok(st) = safetensors::SafeTensors::deserialize(data) {
        for (_, view) in st.tensors() {
            let elems: usize = view.shape().iter().product();
            assert_eq!(view.data().len() * 8, elems * view.dtype().bitsize());
        }
    }
});
