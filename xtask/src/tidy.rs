//! `cargo xtask tidy`: mechanical checks of the workspace's architecture rules (ARCHITECTURE.md).

use anyhow::{Context, Result, bail};
use experiments::paths::project_root;
use serde_json::Value;

/// Crates that implement one paper concept each and may depend on tensor-core only.
const DOMAIN: [&str; 5] = [
    "energy-model",
    "sparse-proj",
    "e2-train",
    "energy-prune",
    "cnn-zoo",
];
/// tensor-core's kernels on plain slices: only tensor-core may depend on it, and it depends on no
/// workspace crate and not on the tensor backend.
const KERNELS: &str = "cpu-kernels";
/// Crates that talk to the network or the terminal; libraries must not use them.
const BINARY_ONLY: [&str; 4] = ["indicatif", "ureq", "ctrlc", "clap"];

/// Runs every check and fails with the full list of violations.
pub fn run() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(project_root())
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("cannot parse cargo metadata")?;
    let problems = check(&meta);
    if problems.is_empty() {
        println!("tidy: dependency rules hold");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("tidy: {p}");
        }
        bail!("{} dependency rule violation(s)", problems.len())
    }
}

/// Violations of the dependency rules in `cargo metadata` output.
fn check(meta: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Vec::new();
    let packages = meta["packages"].as_array().unwrap_or(&empty);
    // `--no-deps` lists the workspace's own packages only.
    let workspace: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    for pkg in packages {
        let name = pkg["name"].as_str().unwrap_or("?");
        let deps: Vec<&str> = pkg["dependencies"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .filter_map(|d| d["name"].as_str())
            .collect();
        for dep in &deps {
            if dep.starts_with("candle") && name != "tensor-core" {
                problems.push(format!(
                    "{name} depends on {dep}: only tensor-core names the tensor backend"
                ));
            }
            if *dep == KERNELS && name != "tensor-core" {
                problems.push(format!(
                    "{name} depends on {KERNELS}: only tensor-core wraps the kernels, everything else goes through tensor-core"
                ));
            }
            if name == KERNELS && workspace.contains(dep) {
                problems.push(format!(
                    "{KERNELS} depends on workspace crate {dep}: the kernels sit below tensor-core"
                ));
                continue;
            }
            let is_lib = DOMAIN.contains(&name)
                || name == "datasets"
                || name == "tensor-core"
                || name == KERNELS;
            if is_lib && DOMAIN.contains(dep) {
                problems.push(format!(
                    "{name} depends on domain crate {dep}: domain crates meet only in xtask and integration-tests"
                ));
            }
            // The experiments library composes the domain crates but, like them, never draws
            // or downloads: that stays in xtask.
            if (is_lib || name == "experiments") && BINARY_ONLY.contains(dep) {
                problems.push(format!(
                    "{name} depends on {dep}: libraries never touch the terminal or the network"
                ));
            }
            if is_lib && (*dep == "datasets" || *dep == "xtask" || *dep == "integration-tests") {
                problems.push(format!("{name} depends on {dep}"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn flags_cross_domain_and_backend_dependencies() {
        let meta = serde_json::json!({ "packages": [
            { "name": "sparse-proj", "dependencies": [{ "name": "tensor-core" }, { "name": "energy-model" }] },
            { "name": "cnn-zoo", "dependencies": [{ "name": "candle-nn" }] },
            { "name": "tensor-core", "dependencies": [{ "name": "candle-core" }] },
            { "name": "xtask", "dependencies": [{ "name": "energy-model" }, { "name": "indicatif" }] },
            { "name": "datasets", "dependencies": [{ "name": "indicatif" }] },
            { "name": "experiments", "dependencies": [{ "name": "energy-model" }, { "name": "clap" }] }
        ]});
        let p = check(&meta);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].contains("sparse-proj depends on domain crate energy-model"));
        assert!(p[1].contains("cnn-zoo depends on candle-nn"));
        assert!(p[2].contains("datasets depends on indicatif"));
        assert!(p[3].contains("experiments depends on clap"));
    }

    #[test]
    fn cpu_kernels_sit_below_tensor_core() {
        let meta = serde_json::json!({ "packages": [
            { "name": "tensor-core", "dependencies": [{ "name": "cpu-kernels" }, { "name": "candle-core" }] },
            { "name": "cpu-kernels", "dependencies": [{ "name": "gemm" }, { "name": "rayon" }] },
            { "name": "cnn-zoo", "dependencies": [{ "name": "tensor-core" }] }
        ]});
        assert_eq!(check(&meta), Vec::<String>::new());
        let meta = serde_json::json!({ "packages": [
            { "name": "tensor-core", "dependencies": [{ "name": "cpu-kernels" }] },
            { "name": "cpu-kernels", "dependencies": [
                { "name": "candle-core" }, { "name": "tensor-core" }, { "name": "indicatif" }
            ] },
            { "name": "cnn-zoo", "dependencies": [{ "name": "cpu-kernels" }] },
            { "name": "xtask", "dependencies": [{ "name": "cpu-kernels" }] }
        ]});
        let p = check(&meta);
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p[0].contains("cpu-kernels depends on candle-core"));
        assert!(p[1].contains("cpu-kernels depends on workspace crate tensor-core"));
        assert!(p[2].contains("cpu-kernels depends on indicatif"));
        assert!(p[3].contains("cnn-zoo depends on cpu-kernels"));
        assert!(p[4].contains("xtask depends on cpu-kernels"));
    }
}
