//! The configuration files users edit, from arbitrary bytes: the dataset manifest (TOML), a
//! `SHA256SUMS` list, and the JSON configs of the three methods, parsed then validated. The first
//! byte picks the format. Typed errors only.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match kind % 5 {
        0 => {
            if let Ok(m) = datasets::Manifest::parse("fuzz.toml", text) {
                for d in &m.datasets {
                    for f in &d.files {
                        let _ = f.verify_raw("fuzz", b"");
                        let _ = d.urls(&f.remote_name());
                    }
                }
            }
        }
        1 => {
            if let Ok(lines) = datasets::checksum::parse_sha256sums("fuzz", text) {
                assert!(
                    lines
                        .iter()
                        .all(|l| l.sha256.len() == 64 && !l.path.is_empty())
                );
            }
        }
        2 => {
            if let Ok(c) = serde_json::from_str::<sparse_proj::ConstrainedConfig>(text) {
                let _ = c.validate();
            }
        }
        3 => {
            if let Ok(c) = serde_json::from_str::<energy_prune::EnergyPruneConfig>(text) {
                let _ = c.validate();
            }
        }
        _ => {
            if let Ok(c) = serde_json::from_str::<e2_train::E2TrainConfig>(text) {
                let _ = c.validate();
            }
        }
    }
});
