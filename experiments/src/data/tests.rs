use std::path::Path;

use tensor_core::DeviceKind;

use super::*;
use crate::registry::{Experiment, Profile, RunContext};

fn ctx(data_dir: Option<&str>) -> RunContext {
    RunContext {
        device: DeviceKind::Cpu,
        data_dir: data_dir.map(PathBuf::from),
        imagenet: false,
        init_from: Default::default(),
    }
}

/// The same run on machines keeping the data in different folders has one spec, and no spec
/// holds a folder; the full profile's runs say which dataset they read in full.
#[test]
fn specs_name_their_data_not_its_folder() {
    let mut full = Vec::new();
    for profile in Profile::ALL {
        for e in Experiment::ALL {
            let here = e.runs(profile, &ctx(Some("/data/here"))).unwrap();
            let there = e.runs(profile, &ctx(Some("/mnt/there"))).unwrap();
            assert_eq!(here, e.runs(profile, &ctx(None)).unwrap(), "{e}");
            assert_eq!(here, there, "{e}");
            let json = serde_json::to_string(&here).unwrap();
            assert!(!json.contains("/data/here"), "{e}: {json}");
            full.extend(here.iter().filter_map(|r| r.full_data()));
            if profile == Profile::Quick {
                assert!(here.iter().all(|r| r.full_data().is_none()), "{e}");
            }
        }
    }
    assert!(full.contains(&DatasetId::Mnist) && full.contains(&DatasetId::Cifar10));
}

#[test]
fn data_sources_keep_their_stored_forms() {
    for (data, form) in [
        (DataSource::Embedded, "\"embedded\""),
        (DataSource::Full, "\"full\""),
    ] {
        assert_eq!(serde_json::to_string(&data).unwrap(), form);
        assert_eq!(serde_json::from_str::<DataSource>(form).unwrap(), data);
    }
    // A spec written when it held the folder read the full dataset from it.
    let legacy: DataSource = serde_json::from_str(r#"{"dir": "/somewhere/data"}"#).unwrap();
    assert_eq!(legacy, DataSource::Full);
    assert!(serde_json::from_str::<DataSource>("\"dir\"").is_err());
}

#[test]
fn the_data_dir_says_where_full_data_is_read() {
    let root = std::env::temp_dir().join(format!("experiments-data-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let dir = DataDir::new(Some(root.clone()));
    assert_eq!(dir.source(DataSource::Embedded), Source::Embedded);
    assert_eq!(dir.source(DataSource::Full), Source::Dir(root.clone()));
    assert_eq!(
        DataDir::default().root(),
        crate::paths::dataset_cache(),
        "no --data-dir: the download cache"
    );
    let err = format!("{:#}", dir.locate(DatasetId::Mnist).unwrap_err());
    assert!(err.contains(&root.display().to_string()), "{err}");
    let file = "t10k-labels-idx1-ubyte.gz";
    let bytes = datasets::embedded_file(&format!("mnist/{file}")).unwrap();
    std::fs::write(root.join(file), bytes).unwrap();
    let found = dir.locate(DatasetId::Mnist).unwrap();
    assert_eq!(
        (found.layout, found.dir.as_path()),
        (datasets::Layout::Flat, Path::new(&root))
    );
    let _ = std::fs::remove_dir_all(&root);
}
